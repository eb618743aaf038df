/** Second-based proration of plan changes: worked numbers, half-even ties, and the invariants. */
import fc from 'fast-check';
import {
  type BillingInterval,
  invoiceTotals,
  periodAt,
  planChangeProration,
  type PlanPrice,
  prorate,
} from '../../src/domain/billing';
import { d, reasonOf } from '../helpers/billing-core';

const DAY = 86_400;

function plan(
  code: string,
  unitAmount: number,
  currency = 'EUR',
  interval: BillingInterval = 'MONTH',
): PlanPrice {
  return { code, name: code.charAt(0) + code.slice(1).toLowerCase(), unitAmount, currency, interval };
}

const JAN_2028 = { start: d('2028-01-01T00:00:00Z'), end: d('2028-02-01T00:00:00Z') };

describe('prorate', () => {
  it.each([
    [1000, 16 * DAY, 31 * DAY, 516],
    [2500, 16 * DAY, 31 * DAY, 1290],
    [2900, 15 * DAY, 29 * DAY, 1500],
    [1000, 31 * DAY, 31 * DAY, 1000],
    [1000, 0, 31 * DAY, 0],
    [1, 1, 2, 0],
    [3, 1, 2, 2],
    [5, 1, 2, 2],
    [7, 1, 2, 4],
  ])('%i × %i / %i → %i', (amount, remaining, total, expected) => {
    expect(prorate(amount, remaining, total)).toBe(expected);
  });

  it.each([
    [1000, 10, 0],
    [1000, -1, 10],
    [1000, 11, 10],
    [1000, 1.5, 10],
  ])('refuses %i × %p / %p', (amount, remaining, total) => {
    expect(reasonOf(() => prorate(amount, remaining, total))).toBe('invalid_period');
  });
});

describe('planChangeProration worked examples', () => {
  it.each<[string, PlanPrice, PlanPrice, { start: Date; end: Date }, string, number, number, number, number]>(
    [
      // name, from, to, period, asOf, remaining s, credit, charge, net
      [
        'EUR upgrade mid-January',
        plan('STARTER', 1000),
        plan('PRO', 2500),
        JAN_2028,
        '2028-01-16T00:00:00Z',
        16 * DAY,
        -516,
        1290,
        774,
      ],
      [
        'JPY downgrade with 10 of 31 days left',
        plan('PRO', 3000, 'JPY'),
        plan('STARTER', 1000, 'JPY'),
        JAN_2028,
        '2028-01-22T00:00:00Z',
        10 * DAY,
        -968,
        323,
        -645,
      ],
      [
        'BHD upgrade mid-January',
        plan('STARTER', 12_345, 'BHD'),
        plan('PRO', 24_690, 'BHD'),
        JAN_2028,
        '2028-01-16T00:00:00Z',
        16 * DAY,
        -6372,
        12_743,
        6371,
      ],
      [
        'leap February, 15 of 29 days left',
        plan('STARTER', 2900),
        plan('PRO', 5800),
        { start: d('2028-02-01T00:00:00Z'), end: d('2028-03-01T00:00:00Z') },
        '2028-02-15T00:00:00Z',
        15 * DAY,
        -1500,
        3000,
        1500,
      ],
      [
        'common February, 14 of 28 days left',
        plan('STARTER', 2900),
        plan('PRO', 5800),
        { start: d('2027-02-01T00:00:00Z'), end: d('2027-03-01T00:00:00Z') },
        '2027-02-15T00:00:00Z',
        14 * DAY,
        -1450,
        2900,
        1450,
      ],
      [
        'Jan 31 anchor: first period ends Feb 29',
        plan('STARTER', 2900),
        plan('PRO', 5800),
        periodAt(d('2028-01-31T00:00:00Z'), 'MONTH', 0),
        '2028-02-14T00:00:00Z',
        15 * DAY,
        -1500,
        3000,
        1500,
      ],
      [
        'yearly plan, July 1 of leap 2028',
        plan('STARTER', 120_000, 'EUR', 'YEAR'),
        plan('PRO', 240_000, 'EUR', 'YEAR'),
        { start: d('2028-01-01T00:00:00Z'), end: d('2029-01-01T00:00:00Z') },
        '2028-07-01T00:00:00Z',
        184 * DAY,
        -60_328,
        120_656,
        60_328,
      ],
      [
        'half-even ties: 2.5 → 2 and 1.5 → 2',
        plan('A', 5),
        plan('B', 3),
        { start: d('2028-01-01T00:00:00Z'), end: d('2028-01-03T00:00:00Z') },
        '2028-01-02T00:00:00Z',
        DAY,
        -2,
        2,
        0,
      ],
      [
        'half-even ties: 0.5 → 0 and 3.5 → 4',
        plan('A', 1),
        plan('B', 7),
        { start: d('2028-01-01T00:00:00Z'), end: d('2028-01-03T00:00:00Z') },
        '2028-01-02T00:00:00Z',
        DAY,
        0,
        4,
        4,
      ],
      [
        'change at the period start: full amounts',
        plan('STARTER', 1000),
        plan('PRO', 2500),
        JAN_2028,
        '2028-01-01T00:00:00Z',
        31 * DAY,
        -1000,
        2500,
        1500,
      ],
      [
        'one second left rounds to nothing',
        plan('STARTER', 1000),
        plan('PRO', 2500),
        JAN_2028,
        '2028-01-31T23:59:59Z',
        1,
        0,
        0,
        0,
      ],
      [
        'the partial second in progress is not counted',
        plan('A', 2_678_400),
        plan('B', 0),
        JAN_2028,
        '2028-01-16T00:00:00.600Z',
        16 * DAY - 1,
        -(16 * DAY - 1),
        0,
        -(16 * DAY - 1),
      ],
    ],
  )('%s', (_name, from, to, period, asOf, remaining, credit, charge, net) => {
    const result = planChangeProration({ period, asOf: d(asOf), from, to });
    expect(result.remainingSeconds).toBe(remaining);
    expect(result.periodSeconds).toBe((period.end.getTime() - period.start.getTime()) / 1000);
    expect([result.credit.amount, result.charge.amount, result.net]).toEqual([credit, charge, net]);
    expect(result.currency).toBe(from.currency);
  });

  it('produces two PRORATION lines over [asOf, end) with descriptions', () => {
    const result = planChangeProration({
      period: JAN_2028,
      asOf: d('2028-01-16T00:00:00Z'),
      from: plan('STARTER', 1000),
      to: plan('PRO', 2500),
    });
    const covered = { start: d('2028-01-16T00:00:00Z'), end: d('2028-02-01T00:00:00Z') };
    expect(result.lines).toEqual([
      {
        kind: 'PRORATION',
        description: 'Unused time on Starter after 2028-01-16',
        quantity: 1,
        unitAmount: -516,
        amount: -516,
        period: covered,
      },
      {
        kind: 'PRORATION',
        description: 'Remaining time on Pro after 2028-01-16',
        quantity: 1,
        unitAmount: 1290,
        amount: 1290,
        period: covered,
      },
    ]);
    expect(result.lines).toEqual([result.credit, result.charge]);
    expect(result.covered).toEqual(covered);
    expect(result.settlement).toBe('INVOICE');
  });

  it('settles a downgrade with a credit note and an equal price with nothing', () => {
    const base = { period: JAN_2028, asOf: d('2028-01-10T00:00:00Z') };
    expect(
      planChangeProration({ ...base, from: plan('PRO', 2500), to: plan('STARTER', 1000) }).settlement,
    ).toBe('CREDIT_NOTE');
    const same = planChangeProration({ ...base, from: plan('PRO', 2500), to: plan('PRO2', 2500) });
    expect([same.net, same.settlement]).toEqual([0, 'NONE']);
  });

  it('gives a zero credit as +0, never -0', () => {
    const result = planChangeProration({
      period: JAN_2028,
      asOf: d('2028-01-10T00:00:00Z'),
      from: plan('FREE', 0),
      to: plan('PRO', 2500),
    });
    expect(Object.is(result.credit.amount, 0)).toBe(true);
    expect(Object.is(result.credit.unitAmount, 0)).toBe(true);
  });

  it('is the same answer for the preview and the invoice (explicit asOf, no clock)', () => {
    const input = {
      period: JAN_2028,
      asOf: d('2028-01-16T07:08:09Z'),
      from: plan('STARTER', 1000),
      to: plan('PRO', 2500),
    };
    expect(planChangeProration(input)).toEqual(planChangeProration({ ...input, asOf: new Date(input.asOf) }));
  });

  it('keeps huge prices exact (products beyond 2^53)', () => {
    const price = Number.MAX_SAFE_INTEGER;
    const result = planChangeProration({
      period: JAN_2028,
      asOf: d('2028-01-02T00:00:00Z'),
      from: plan('A', price),
      to: plan('B', 0),
    });
    expect(result.credit.amount).toBe(-8_716_644_440_071_927);
  });
});

describe('planChangeProration refusals', () => {
  const base = { period: JAN_2028, from: plan('STARTER', 1000), to: plan('PRO', 2500) };
  it.each<[string, Parameters<typeof planChangeProration>[0], string]>([
    ['asOf at the period end', { ...base, asOf: d('2028-02-01T00:00:00Z') }, 'as_of_outside_period'],
    ['asOf before the period', { ...base, asOf: d('2027-12-31T23:59:59Z') }, 'as_of_outside_period'],
    ['invalid asOf', { ...base, asOf: new Date(NaN) }, 'invalid_date'],
    [
      'different currencies',
      { ...base, asOf: d('2028-01-10T00:00:00Z'), to: plan('PRO', 2500, 'USD') },
      'currency_mismatch',
    ],
    [
      'different intervals',
      { ...base, asOf: d('2028-01-10T00:00:00Z'), to: plan('PRO', 25_000, 'EUR', 'YEAR') },
      'interval_mismatch',
    ],
    ['negative price', { ...base, asOf: d('2028-01-10T00:00:00Z'), to: plan('PRO', -1) }, 'invalid_line'],
    [
      'fractional price',
      { ...base, asOf: d('2028-01-10T00:00:00Z'), to: plan('PRO', 10.5) },
      'amount_out_of_range',
    ],
    [
      'period shorter than a second',
      {
        ...base,
        period: { start: d('2028-01-01T00:00:00.000Z'), end: d('2028-01-01T00:00:00.500Z') },
        asOf: d('2028-01-01T00:00:00Z'),
      },
      'invalid_period',
    ],
  ])('%s', (_name, input, reason) => {
    expect(reasonOf(() => planChangeProration(input))).toBe(reason);
  });
});

describe('proration properties', () => {
  const priceArb = fc.oneof(
    fc.integer({ min: 0, max: 100_000_000 }),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  );
  const changeArb = fc
    .record({
      anchor: fc.date({
        min: d('2000-01-01T00:00:00Z'),
        max: d('2100-01-01T00:00:00Z'),
        noInvalidDate: true,
      }),
      interval: fc.constantFrom<BillingInterval>('MONTH', 'YEAR'),
      index: fc.integer({ min: 0, max: 24 }),
      fraction: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      a: priceArb,
      b: priceArb,
      currency: fc.constantFrom('EUR', 'JPY', 'BHD'),
    })
    .map(({ anchor, interval, index, fraction, a, b, currency }) => {
      const period = periodAt(anchor, interval, index);
      const span = period.end.getTime() - period.start.getTime();
      const asOf = new Date(period.start.getTime() + Math.floor(fraction * span));
      return { period, asOf, from: plan('A', a, currency, interval), to: plan('B', b, currency, interval) };
    });

  // The bound asked of any proration is one minor unit per line; rounding both directions from the
  // same fraction makes it exact.
  it('an immediate change back nets to exactly zero', () => {
    fc.assert(
      fc.property(changeArb, (change) => {
        const there = planChangeProration(change);
        const back = planChangeProration({ ...change, from: change.to, to: change.from });
        expect(there.net + back.net).toBe(0);
      }),
    );
  });

  it('each line is within half a minor unit of the exact fraction', () => {
    fc.assert(
      fc.property(changeArb, (change) => {
        const result = planChangeProration(change);
        const period = BigInt(result.periodSeconds);
        const remaining = BigInt(result.remainingSeconds);
        const pairs: [number, number][] = [
          [-result.credit.amount, change.from.unitAmount],
          [result.charge.amount, change.to.unitAmount],
        ];
        for (const [rounded, price] of pairs) {
          const error = BigInt(rounded) * period - BigInt(price) * remaining;
          expect(2n * (error < 0n ? -error : error) <= period).toBe(true);
          expect(rounded).toBeLessThanOrEqual(price);
        }
      }),
    );
  });

  it('never charges for a cheaper plan nor credits for a dearer one, and the lines total the net', () => {
    fc.assert(
      fc.property(changeArb, (change) => {
        const result = planChangeProration(change);
        if (change.to.unitAmount >= change.from.unitAmount) expect(result.net).toBeGreaterThanOrEqual(0);
        if (change.to.unitAmount <= change.from.unitAmount) expect(result.net).toBeLessThanOrEqual(0);
        expect(invoiceTotals(result.lines, 0).subtotal).toBe(result.net);
        expect(result.remainingSeconds).toBeGreaterThanOrEqual(0);
        expect(result.remainingSeconds).toBeLessThanOrEqual(result.periodSeconds);
      }),
    );
  });
});
