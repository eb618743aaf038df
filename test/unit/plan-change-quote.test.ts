/**
 * The plan change quote: the lines, totals and settlement that both the preview and the change's
 * invoice (or credit note) are made of — worked numbers, a trial, a period renewed during the
 * resize, refusals, and the invariants against the pure proration it is built on.
 */
import fc from 'fast-check';
import { invoiceTotals, planChangeProration, type PlanPrice } from '../../src/domain/billing';
import { planChangeQuote } from '../../src/services/subscription-plan-change';
import { d, reasonOf } from '../helpers/billing-core';

const plan = (code: string, unitAmount: number, currency = 'EUR', interval: 'MONTH' | 'YEAR' = 'MONTH') =>
  ({ code, name: code, unitAmount, currency, interval }) satisfies PlanPrice;

const STARTER = plan('STARTER', 1000);
const PRO = plan('PRO', 2500);
const JAN_2028 = { start: d('2028-01-01T00:00:00Z'), end: d('2028-02-01T00:00:00Z') };
const FEB_2028 = { start: d('2028-02-01T00:00:00Z'), end: d('2028-03-01T00:00:00Z') };
const MID_JAN = d('2028-01-16T00:00:00Z');

describe('planChangeQuote worked examples', () => {
  it.each<[string, PlanPrice, PlanPrice, number, number[], number, number, number, string, number]>([
    // name, from, to, tax bps, line amounts, subtotal, tax, total, settlement, amount
    ['upgrade, untaxed', STARTER, PRO, 0, [-516, 1290], 774, 0, 774, 'INVOICE', 774],
    ['upgrade at 19 %', STARTER, PRO, 1900, [-516, 1290], 774, 147, 921, 'INVOICE', 921],
    [
      'downgrade at 19 %: the taxed total credited',
      PRO,
      STARTER,
      1900,
      [-1290, 516],
      -774,
      -147,
      -921,
      'CREDIT_NOTE',
      921,
    ],
    [
      'same price, other plan: nothing to settle',
      PRO,
      plan('PRO2', 2500),
      1900,
      [-1290, 1290],
      0,
      0,
      0,
      'NONE',
      0,
    ],
  ])('%s', (_name, from, to, taxRateBps, amounts, subtotal, tax, total, settlement, amount) => {
    const quote = planChangeQuote({ from, to, segments: [{ period: JAN_2028, asOf: MID_JAN }], taxRateBps });
    expect(quote.lines.map((l) => l.amount)).toEqual(amounts);
    expect(quote.lines.map((l) => l.kind)).toEqual(['PRORATION', 'PRORATION']);
    expect(quote.lines.map((l) => l.period)).toEqual([
      { start: MID_JAN, end: JAN_2028.end },
      { start: MID_JAN, end: JAN_2028.end },
    ]);
    expect(quote).toMatchObject({ subtotal, tax, total, settlement, amount });
  });

  it('describes each line by the plan and the day the change takes effect', () => {
    const quote = planChangeQuote({
      from: STARTER,
      to: PRO,
      segments: [{ period: JAN_2028, asOf: MID_JAN }],
      taxRateBps: 0,
    });
    expect(quote.lines.map((l) => l.description)).toEqual([
      'Unused time on STARTER after 2028-01-16',
      'Remaining time on PRO after 2028-01-16',
    ]);
  });

  it('prorates nothing during a trial: no lines, nothing to settle', () => {
    expect(planChangeQuote({ from: STARTER, to: PRO, segments: [], taxRateBps: 1900 })).toEqual({
      lines: [],
      subtotal: 0,
      tax: 0,
      total: 0,
      settlement: 'NONE',
      amount: 0,
    });
  });

  it('reprices a whole period renewed at the old price while the pod was being resized', () => {
    const quote = planChangeQuote({
      from: STARTER,
      to: PRO,
      segments: [
        { period: JAN_2028, asOf: MID_JAN },
        { period: FEB_2028, asOf: FEB_2028.start },
      ],
      taxRateBps: 0,
    });
    expect(quote.lines.map((l) => l.amount)).toEqual([-516, 1290, -1000, 2500]);
    expect(quote).toMatchObject({ subtotal: 2274, total: 2274, settlement: 'INVOICE', amount: 2274 });
  });
});

describe('planChangeQuote refusals', () => {
  it.each<[string, PlanPrice, PlanPrice, Date, string]>([
    ['a change time before the period', STARTER, PRO, d('2027-12-31T23:59:59Z'), 'as_of_outside_period'],
    ['a change time at the period end', STARTER, PRO, JAN_2028.end, 'as_of_outside_period'],
    ['another currency', STARTER, plan('PRO', 2500, 'USD'), MID_JAN, 'currency_mismatch'],
    ['another interval', STARTER, plan('PRO', 25000, 'EUR', 'YEAR'), MID_JAN, 'interval_mismatch'],
  ])('refuses %s', (_name, from, to, asOf, reason) => {
    expect(
      reasonOf(() => planChangeQuote({ from, to, segments: [{ period: JAN_2028, asOf }], taxRateBps: 0 })),
    ).toBe(reason);
  });
});

describe('planChangeQuote properties', () => {
  const price = fc.integer({ min: 0, max: 10_000_000 });
  const change = fc.record({
    from: price,
    to: price,
    offset: fc.integer({ min: 0, max: JAN_2028.end.getTime() - JAN_2028.start.getTime() - 1 }),
    taxRateBps: fc.integer({ min: 0, max: 10_000 }),
  });

  it('is the pure proration’s lines, taxed as an invoice, settled by their sign', () => {
    fc.assert(
      fc.property(change, ({ from, to, offset, taxRateBps }) => {
        const asOf = new Date(JAN_2028.start.getTime() + offset);
        const input = { from: plan('A', from), to: plan('B', to) };
        const quote = planChangeQuote({ ...input, segments: [{ period: JAN_2028, asOf }], taxRateBps });
        const proration = planChangeProration({ ...input, period: JAN_2028, asOf });
        expect(quote.lines).toEqual(proration.lines);
        expect({ subtotal: quote.subtotal, tax: quote.tax, total: quote.total }).toEqual(
          invoiceTotals(proration.lines, taxRateBps),
        );
        expect(quote.settlement).toBe(proration.settlement);
        expect(quote.amount).toBe(Math.abs(quote.total));
        expect(Math.sign(quote.total)).toBe(Math.sign(quote.subtotal));
      }),
    );
  });

  it('gives the same answer for the same inputs (the preview and the invoice agree)', () => {
    fc.assert(
      fc.property(change, ({ from, to, offset, taxRateBps }) => {
        const asOf = new Date(JAN_2028.start.getTime() + offset);
        const make = () =>
          planChangeQuote({
            from: plan('A', from),
            to: plan('B', to),
            segments: [{ period: JAN_2028, asOf: new Date(asOf.getTime()) }],
            taxRateBps,
          });
        expect(make()).toEqual(make());
      }),
    );
  });
});
