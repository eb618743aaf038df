/** Usage overage and UTC days, table-driven: the pure core the renewal and the rollup call. */
import {
  addUtcDays,
  invoiceLine,
  overageLines,
  utcDayStart,
  type MeteredAllowance,
} from '../../src/domain/billing';
import { d, reasonOf } from '../helpers/billing-core';

const period = { start: d('2026-10-15T09:30:00Z'), end: d('2026-11-15T09:30:00Z') };

const bandwidth = (included: number, unitAmount: number): MeteredAllowance => ({
  metric: 'bandwidth_gb',
  label: 'Bandwidth',
  unit: 'GB',
  included,
  unitAmount,
});

describe('overageLines', () => {
  it.each([
    // included, price, used → quantity billed (null: no line)
    [100, 5, undefined, null],
    [100, 5, 0n, null],
    [100, 5, 99n, null],
    [100, 5, 100n, null],
    [100, 5, 101n, 1],
    [100, 5, 130n, 30],
    [0, 5, 7n, 7],
    [100, 0, 500n, null],
    [0, 1, 9_007_199_254_740_991n, 9_007_199_254_740_991],
  ])('included %d at %d per unit, %p used → %p billed', (included, price, used, billed) => {
    const lines = overageLines(
      [bandwidth(included, price)],
      new Map(used === undefined ? [] : [['bandwidth_gb', used]]),
      period,
    );
    if (billed === null) {
      expect(lines).toEqual([]);
      return;
    }
    expect(lines).toEqual([
      {
        kind: 'USAGE',
        description: `Bandwidth beyond the ${included} GB included (${used} GB used), 2026-10-15 – 2026-11-15`,
        quantity: billed,
        unitAmount: price,
        period,
      },
    ]);
  });

  it('amounts to exactly the units beyond the allowance times the price', () => {
    const [line] = overageLines([bandwidth(100, 7)], new Map([['bandwidth_gb', 1234n]]), period);
    expect(invoiceLine(line!).amount).toBe((1234 - 100) * 7);
  });

  it('bills only the metrics the plan prices, each against its own allowance', () => {
    const lines = overageLines(
      [
        bandwidth(10, 2),
        { metric: 'ipv4', label: 'IPv4 addresses', unit: 'IP', included: 1, unitAmount: 300 },
      ],
      new Map([
        ['bandwidth_gb', 12n],
        ['ipv4', 3n],
        ['cpu_seconds', 1_000_000n],
      ]),
      period,
    );
    expect(lines.map((l) => [l.description.split(' beyond')[0], l.quantity, l.unitAmount])).toEqual([
      ['Bandwidth', 2, 2],
      ['IPv4 addresses', 2, 300],
    ]);
  });

  it.each([
    ['an overage beyond the safe integer range', bandwidth(0, 1), 2n ** 60n, 'amount_out_of_range'],
    ['a negative price', bandwidth(0, -1), 5n, 'invalid_line'],
    ['a fractional price', bandwidth(0, 0.5), 5n, 'amount_out_of_range'],
    ['a negative allowance', bandwidth(-1, 1), 5n, 'invalid_line'],
  ])('refuses %s', (_what, allowance, used, reason) => {
    expect(reasonOf(() => overageLines([allowance], new Map([['bandwidth_gb', used]]), period))).toBe(reason);
  });
});

describe('UTC days', () => {
  it.each([
    ['2026-11-23', '2026-11-23T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['1999-12-31', '1999-12-31T00:00:00.000Z'],
  ])('%s starts at %s', (day, start) => {
    expect(utcDayStart(day).toISOString()).toBe(start);
  });

  it.each(['2026-02-29', '2026-13-01', '2026-11-31', '2026-1-5', '2026-11-23T00:00:00Z', '', 'yesterday'])(
    'refuses %j',
    (day) => {
      expect(reasonOf(() => utcDayStart(day))).toBe('invalid_date');
    },
  );

  it.each([
    ['2026-11-23', -1, '2026-11-22'],
    ['2026-03-01', -1, '2026-02-28'],
    ['2024-03-01', -1, '2024-02-29'],
    ['2026-12-31', 1, '2027-01-01'],
    ['2026-11-23', -3, '2026-11-20'],
    ['2026-11-23', 0, '2026-11-23'],
  ])('%s shifted by %d days is %s', (day, days, expected) => {
    expect(addUtcDays(day, days)).toBe(expected);
  });
});
