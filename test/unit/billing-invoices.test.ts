/** Invoice totals: exact line sums, tax rounded half-even once on the subtotal, credit balance. */
import fc from 'fast-check';
import {
  applyCreditBalance,
  type InvoiceLineDraft,
  type InvoiceLineKind,
  invoiceDueDate,
  invoiceLine,
  invoiceTotals,
  priceInvoice,
  taxOn,
} from '../../src/domain/billing';
import { d, reasonOf } from '../helpers/billing-core';

const line = (kind: InvoiceLineKind, quantity: number, unitAmount: number) =>
  invoiceLine({ kind, description: `${kind} line`, quantity, unitAmount });

describe('invoiceLine', () => {
  it('computes the amount as quantity × unit amount', () => {
    const period = { start: d('2028-01-01T00:00:00Z'), end: d('2028-02-01T00:00:00Z') };
    expect(
      invoiceLine({
        kind: 'USAGE',
        description: 'Bandwidth overage (GB)',
        quantity: 3,
        unitAmount: 150,
        period,
      }),
    ).toEqual({
      kind: 'USAGE',
      description: 'Bandwidth overage (GB)',
      quantity: 3,
      unitAmount: 150,
      amount: 450,
      period,
    });
  });

  it.each<[string, InvoiceLineKind, number, number, string]>([
    ['negative quantity', 'USAGE', -1, 100, 'invalid_line'],
    ['fractional quantity', 'USAGE', 1.5, 100, 'invalid_line'],
    ['negative subscription price', 'SUBSCRIPTION', 1, -100, 'invalid_line'],
    ['negative usage price', 'USAGE', 1, -1, 'invalid_line'],
    ['positive credit', 'CREDIT', 1, 1, 'invalid_line'],
    ['fractional unit amount', 'SUBSCRIPTION', 1, 9.99, 'amount_out_of_range'],
    ['amount beyond 2^53', 'USAGE', 2, Number.MAX_SAFE_INTEGER, 'amount_out_of_range'],
  ])('refuses %s', (_name, kind, quantity, unitAmount, reason) => {
    expect(reasonOf(() => line(kind, quantity, unitAmount))).toBe(reason);
  });

  it('accepts a proration line of either sign and a zero-quantity usage line', () => {
    expect(line('PRORATION', 1, -516).amount).toBe(-516);
    expect(line('PRORATION', 1, 1290).amount).toBe(1290);
    expect(line('USAGE', 0, 150).amount).toBe(0);
    expect(line('CREDIT', 1, -500).amount).toBe(-500);
  });

  it('refuses a period that ends before it starts', () => {
    const period = { start: d('2028-02-01T00:00:00Z'), end: d('2028-01-01T00:00:00Z') };
    expect(
      reasonOf(() =>
        invoiceLine({ kind: 'SUBSCRIPTION', description: 'x', quantity: 1, unitAmount: 1, period }),
      ),
    ).toBe('invalid_line');
  });
});

describe('taxOn', () => {
  it.each([
    [250, 100, 2],
    [350, 100, 4],
    [150, 100, 2],
    [-250, 100, -2],
    [-350, 100, -4],
    [3224, 1900, 613],
    [10_000, 2000, 2000],
    [1000, 1000, 100],
    [12_345, 500, 617],
    [999, 0, 0],
    [999, 10_000, 999],
  ])('%i at %i bps → %i', (taxable, bps, expected) => {
    expect(taxOn(taxable, bps)).toBe(expected);
  });

  it.each([-1, 10_001, 12.5, NaN])('refuses a rate of %p bps', (bps) => {
    expect(reasonOf(() => taxOn(100, bps))).toBe('invalid_tax_rate');
  });
});

describe('invoiceTotals', () => {
  it('sums the lines and taxes the subtotal (EUR, 19 %)', () => {
    const lines = [
      line('SUBSCRIPTION', 1, 2500),
      line('USAGE', 3, 150),
      line('CREDIT', 1, -500),
      line('PRORATION', 1, -516),
      line('PRORATION', 1, 1290),
    ];
    expect(invoiceTotals(lines, 1900)).toEqual({ subtotal: 3224, tax: 613, total: 3837 });
  });

  it('rounds tax once on the subtotal, not per line', () => {
    // per line, 1 % of 50 is 0.5 → 0 three times; on the subtotal, 1.5 → 2
    const lines = [line('USAGE', 1, 50), line('USAGE', 1, 50), line('USAGE', 1, 50)];
    expect(invoiceTotals(lines, 100)).toEqual({ subtotal: 150, tax: 2, total: 152 });
  });

  it.each<[string, InvoiceLineDraft[], number, { subtotal: number; tax: number; total: number }]>([
    ['no lines', [], 2000, { subtotal: 0, tax: 0, total: 0 }],
    ['JPY at 10 %', [line('SUBSCRIPTION', 1, 1000)], 1000, { subtotal: 1000, tax: 100, total: 1100 }],
    ['BHD at 5 %', [line('SUBSCRIPTION', 1, 12_345)], 500, { subtotal: 12_345, tax: 617, total: 12_962 }],
    [
      'a credit larger than the charges',
      [line('SUBSCRIPTION', 1, 1000), line('CREDIT', 1, -1250)],
      1000,
      { subtotal: -250, tax: -25, total: -275 },
    ],
  ])('%s', (_name, lines, bps, expected) => {
    expect(invoiceTotals(lines, bps)).toEqual(expected);
  });

  it('refuses a line whose amount is not quantity × unit amount', () => {
    const bad: InvoiceLineDraft = { ...line('USAGE', 3, 150), amount: 451 };
    expect(reasonOf(() => invoiceTotals([bad], 0))).toBe('invalid_line');
  });
});

describe('applyCreditBalance', () => {
  it.each([
    // total, balance → applied, due, balance after
    [1000, 0, 0, 1000, 0],
    [1000, 300, 300, 700, 0],
    [1000, 1000, 1000, 0, 0],
    [1000, 5000, 1000, 0, 4000],
    [0, 500, 0, 0, 500],
    [-200, 500, 0, 0, 700],
    [-200, 0, 0, 0, 200],
  ])('total %i with balance %i → applied %i, due %i, balance %i', (total, balance, applied, due, after) => {
    expect(applyCreditBalance(total, balance)).toEqual({
      appliedCredit: applied,
      amountDue: due,
      creditBalanceAfter: after,
    });
  });

  it('refuses a negative balance', () => {
    expect(reasonOf(() => applyCreditBalance(1000, -1))).toBe('invalid_credit_balance');
  });
});

describe('priceInvoice', () => {
  it('totals, then spends the credit balance', () => {
    const lines = [line('SUBSCRIPTION', 1, 2500), line('USAGE', 2, 250)];
    expect(priceInvoice(lines, { taxRateBps: 2000, creditBalance: 1000 })).toEqual({
      lines,
      subtotal: 3000,
      tax: 600,
      total: 3600,
      appliedCredit: 1000,
      amountDue: 2600,
      creditBalanceAfter: 0,
    });
  });
});

describe('invoiceDueDate', () => {
  it.each([
    ['2028-02-20T10:00:00Z', 14, '2028-03-05T10:00:00.000Z'],
    ['2027-02-20T10:00:00Z', 14, '2027-03-06T10:00:00.000Z'],
    ['2028-02-20T10:00:00Z', 0, '2028-02-20T10:00:00.000Z'],
  ])('%s net %i → %s', (issued, days, due) => {
    expect(invoiceDueDate(d(issued), days).toISOString()).toBe(due);
  });

  it('refuses negative terms', () => {
    expect(reasonOf(() => invoiceDueDate(d('2028-01-01T00:00:00Z'), -1))).toBe('invalid_period');
  });
});

describe('invoice properties', () => {
  const kindAndPrice = fc.oneof(
    fc.record({
      kind: fc.constant<InvoiceLineKind>('SUBSCRIPTION'),
      unit: fc.integer({ min: 0, max: 10 ** 9 }),
    }),
    fc.record({ kind: fc.constant<InvoiceLineKind>('USAGE'), unit: fc.integer({ min: 0, max: 10 ** 6 }) }),
    fc.record({
      kind: fc.constant<InvoiceLineKind>('CREDIT'),
      unit: fc.integer({ min: -(10 ** 9), max: 0 }),
    }),
    fc.record({
      kind: fc.constant<InvoiceLineKind>('PRORATION'),
      unit: fc.integer({ min: -(10 ** 9), max: 10 ** 9 }),
    }),
  );
  const linesArb = fc.array(
    fc
      .tuple(kindAndPrice, fc.integer({ min: 0, max: 1000 }))
      .map(([{ kind, unit }, quantity]) => line(kind, kind === 'USAGE' ? quantity : 1, unit)),
    { maxLength: 30 },
  );
  const bpsArb = fc.integer({ min: 0, max: 10_000 });

  it('the subtotal is the sum of the lines, the total is subtotal + tax, tax within half a unit', () => {
    fc.assert(
      fc.property(linesArb, bpsArb, (lines, bps) => {
        const totals = invoiceTotals(lines, bps);
        const sum = lines.reduce((acc, l) => acc + BigInt(l.quantity) * BigInt(l.unitAmount), 0n);
        expect(BigInt(totals.subtotal)).toBe(sum);
        expect(totals.total).toBe(totals.subtotal + totals.tax);
        const error = BigInt(totals.tax) * 10_000n - sum * BigInt(bps);
        expect(2n * (error < 0n ? -error : error) <= 10_000n).toBe(true);
      }),
    );
  });

  it('credit never exceeds the total or the balance, and nothing is lost', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(10 ** 12), max: 10 ** 12 }),
        fc.integer({ min: 0, max: 10 ** 12 }),
        (total, balance) => {
          const { appliedCredit, amountDue, creditBalanceAfter } = applyCreditBalance(total, balance);
          expect(appliedCredit).toBeGreaterThanOrEqual(0);
          expect(appliedCredit).toBeLessThanOrEqual(Math.max(total, 0));
          expect(appliedCredit).toBeLessThanOrEqual(balance);
          expect(amountDue).toBeGreaterThanOrEqual(0);
          expect(appliedCredit + amountDue).toBe(Math.max(total, 0));
          expect(creditBalanceAfter).toBe(balance - appliedCredit + Math.max(-total, 0));
        },
      ),
    );
  });
});
