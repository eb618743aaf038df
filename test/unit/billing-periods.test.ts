/** Billing periods: anchored on the start day, clamped at month ends, leap years, whole seconds. */
import fc from 'fast-check';
import {
  type BillingInterval,
  addMonthsClamped,
  daysInMonth,
  nextPeriod,
  periodAt,
  periodBoundary,
  periodContaining,
  periodEnd,
  periodSeconds,
  periodStart,
} from '../../src/domain/billing';
import { d, reasonOf } from '../helpers/billing-core';

const iso = (date: Date) => date.toISOString();
const DAY = 86_400;
const DAY_MS = DAY * 1000;

describe('daysInMonth', () => {
  it.each([
    [2028, 1, 29],
    [2027, 1, 28],
    [2000, 1, 29],
    [2100, 1, 28],
    [2028, 0, 31],
    [2028, 3, 30],
    [2028, 11, 31],
  ])('%i-%i has %i days', (year, month, days) => expect(daysInMonth(year, month)).toBe(days));
});

describe('monthly boundaries anchored on Jan 31', () => {
  const expected2027 = [
    '2027-01-31',
    '2027-02-28',
    '2027-03-31',
    '2027-04-30',
    '2027-05-31',
    '2027-06-30',
    '2027-07-31',
    '2027-08-31',
    '2027-09-30',
    '2027-10-31',
    '2027-11-30',
    '2027-12-31',
    '2028-01-31',
    '2028-02-29',
    '2028-03-31',
  ];
  it.each(expected2027.map((day, index) => [index, day]))('boundary %i is %s', (index, day) => {
    expect(iso(periodBoundary(d('2027-01-31T00:00:00Z'), 'MONTH', index))).toBe(`${day}T00:00:00.000Z`);
  });

  it('in a leap year renews on Feb 29, then on Mar 31 again', () => {
    const anchor = d('2028-01-31T00:00:00Z');
    expect(iso(periodEnd(anchor, 'MONTH', 0))).toBe('2028-02-29T00:00:00.000Z');
    expect(iso(periodEnd(anchor, 'MONTH', 1))).toBe('2028-03-31T00:00:00.000Z');
    expect(iso(periodEnd(anchor, 'MONTH', 2))).toBe('2028-04-30T00:00:00.000Z');
  });
});

describe('periodBoundary', () => {
  it.each<[string, BillingInterval, number, string]>([
    ['2028-01-30T00:00:00Z', 'MONTH', 1, '2028-02-29T00:00:00.000Z'],
    ['2028-01-30T00:00:00Z', 'MONTH', 2, '2028-03-30T00:00:00.000Z'],
    ['2027-01-29T00:00:00Z', 'MONTH', 1, '2027-02-28T00:00:00.000Z'],
    ['2027-01-29T00:00:00Z', 'MONTH', 2, '2027-03-29T00:00:00.000Z'],
    ['2027-12-31T00:00:00Z', 'MONTH', 2, '2028-02-29T00:00:00.000Z'],
    ['2027-08-31T00:00:00Z', 'MONTH', 6, '2028-02-29T00:00:00.000Z'],
    ['2028-05-15T00:00:00Z', 'MONTH', 0, '2028-05-15T00:00:00.000Z'],
    ['2028-05-15T00:00:00Z', 'MONTH', 25, '2030-06-15T00:00:00.000Z'],
    ['2028-01-31T13:45:10.250Z', 'MONTH', 1, '2028-02-29T13:45:10.250Z'],
    ['2028-02-29T00:00:00Z', 'YEAR', 1, '2029-02-28T00:00:00.000Z'],
    ['2028-02-29T00:00:00Z', 'YEAR', 2, '2030-02-28T00:00:00.000Z'],
    ['2028-02-29T00:00:00Z', 'YEAR', 3, '2031-02-28T00:00:00.000Z'],
    ['2028-02-29T00:00:00Z', 'YEAR', 4, '2032-02-29T00:00:00.000Z'],
    ['2096-02-29T08:00:00Z', 'YEAR', 4, '2100-02-28T08:00:00.000Z'],
    ['2028-01-15T09:30:00Z', 'YEAR', 1, '2029-01-15T09:30:00.000Z'],
  ])('%s %s #%i → %s', (anchor, interval, index, expected) => {
    expect(iso(periodBoundary(d(anchor), interval, index))).toBe(expected);
  });

  it.each([-1, 1.5, NaN])('refuses index %p', (index) => {
    expect(reasonOf(() => periodBoundary(d('2028-01-01T00:00:00Z'), 'MONTH', index))).toBe(
      'invalid_period_index',
    );
  });

  it('refuses an invalid anchor', () => {
    expect(reasonOf(() => periodBoundary(new Date(NaN), 'MONTH', 1))).toBe('invalid_date');
  });

  it('addMonthsClamped does not overflow through a short month', () => {
    expect(iso(addMonthsClamped(d('2027-03-31T00:00:00Z'), -1))).toBe('2027-02-28T00:00:00.000Z');
  });
});

describe('periodAt', () => {
  it('returns index, start and end', () => {
    const anchor = d('2028-01-31T00:00:00Z');
    expect(periodAt(anchor, 'MONTH', 1)).toEqual({
      index: 1,
      start: d('2028-02-29T00:00:00Z'),
      end: d('2028-03-31T00:00:00Z'),
    });
    expect(periodStart(anchor, 'MONTH', 1)).toEqual(d('2028-02-29T00:00:00Z'));
  });
});

describe('periodContaining', () => {
  const anchor = d('2028-01-31T00:00:00Z');
  it.each<[string, BillingInterval, number]>([
    ['2028-01-31T00:00:00Z', 'MONTH', 0],
    ['2028-02-28T23:59:59.999Z', 'MONTH', 0],
    ['2028-02-29T00:00:00Z', 'MONTH', 1],
    ['2028-03-30T12:00:00Z', 'MONTH', 1],
    ['2028-03-31T00:00:00Z', 'MONTH', 2],
    ['2029-01-31T00:00:00Z', 'MONTH', 12],
    ['2029-01-30T23:59:59.999Z', 'MONTH', 11],
    ['2029-01-30T23:59:59.999Z', 'YEAR', 0],
    ['2029-01-31T00:00:00Z', 'YEAR', 1],
  ])('%s (%s) is in period %i', (at, interval, index) => {
    const period = periodContaining(anchor, interval, d(at));
    expect(period.index).toBe(index);
    expect(period.start.getTime()).toBeLessThanOrEqual(d(at).getTime());
    expect(period.end.getTime()).toBeGreaterThan(d(at).getTime());
  });

  it('refuses a time before the anchor', () => {
    expect(reasonOf(() => periodContaining(anchor, 'MONTH', d('2028-01-30T23:59:59Z')))).toBe(
      'invalid_period',
    );
  });
});

describe('nextPeriod', () => {
  const anchor = d('2028-01-31T00:00:00Z');
  it('walks Jan 31 → Feb 29 → Mar 31 → Apr 30 from the stored period', () => {
    const first = periodAt(anchor, 'MONTH', 0);
    const second = nextPeriod(anchor, 'MONTH', first);
    const third = nextPeriod(anchor, 'MONTH', second);
    expect([second, third].map((p) => [p.index, iso(p.start), iso(p.end)])).toEqual([
      [1, '2028-02-29T00:00:00.000Z', '2028-03-31T00:00:00.000Z'],
      [2, '2028-03-31T00:00:00.000Z', '2028-04-30T00:00:00.000Z'],
    ]);
  });

  it('refuses a period whose end is not a boundary of the anchor', () => {
    const current = { start: d('2028-02-29T00:00:00Z'), end: d('2028-03-29T00:00:00Z') };
    expect(reasonOf(() => nextPeriod(anchor, 'MONTH', current))).toBe('not_a_period_boundary');
  });
});

describe('periodSeconds', () => {
  it.each([
    ['2028-02-01T00:00:00Z', '2028-03-01T00:00:00Z', 29 * DAY],
    ['2027-02-01T00:00:00Z', '2027-03-01T00:00:00Z', 28 * DAY],
    ['2028-01-01T00:00:00Z', '2028-02-01T00:00:00Z', 31 * DAY],
    ['2028-01-31T00:00:00Z', '2028-02-29T00:00:00Z', 29 * DAY],
    ['2028-01-01T00:00:00Z', '2029-01-01T00:00:00Z', 366 * DAY],
    ['2027-01-01T00:00:00Z', '2028-01-01T00:00:00Z', 365 * DAY],
    ['2028-01-01T00:00:00.000Z', '2028-01-01T00:00:01.999Z', 1],
    ['2028-01-01T00:00:00Z', '2028-01-01T00:00:00Z', 0],
  ])('%s → %s is %i s', (start, end, seconds) => {
    expect(periodSeconds(d(start), d(end))).toBe(seconds);
  });

  it('refuses an end before the start', () => {
    expect(reasonOf(() => periodSeconds(d('2028-01-02T00:00:00Z'), d('2028-01-01T00:00:00Z')))).toBe(
      'invalid_period',
    );
  });
});

describe('period properties', () => {
  const anchorArb = fc.date({
    min: d('1970-01-01T00:00:00Z'),
    max: d('2200-12-31T23:59:59.999Z'),
    noInvalidDate: true,
  });
  const intervalArb = fc.constantFrom<BillingInterval>('MONTH', 'YEAR');

  it('consecutive periods tile time with no gap or overlap and their seconds add up', () => {
    fc.assert(
      fc.property(anchorArb, intervalArb, fc.integer({ min: 1, max: 60 }), (anchor, interval, count) => {
        const periods = Array.from({ length: count }, (_, i) => periodAt(anchor, interval, i));
        let seconds = 0;
        periods.forEach((period, i) => {
          expect(period.end.getTime()).toBeGreaterThan(period.start.getTime());
          const following = periods[i + 1];
          if (following) expect(following.start.getTime()).toBe(period.end.getTime());
          seconds += periodSeconds(period.start, period.end);
        });
        const first = periods[0]!;
        const last = periods[count - 1]!;
        expect(first.start.getTime()).toBe(anchor.getTime());
        expect(seconds).toBe(periodSeconds(first.start, last.end));
        expect((last.end.getTime() - first.start.getTime()) % 1000).toBe(0);
      }),
    );
  });

  it('keeps the anchor day, clamped to the month length, and the time of day', () => {
    fc.assert(
      fc.property(anchorArb, intervalArb, fc.integer({ min: 0, max: 600 }), (anchor, interval, index) => {
        const boundary = periodBoundary(anchor, interval, index);
        const monthLength = daysInMonth(boundary.getUTCFullYear(), boundary.getUTCMonth());
        expect(boundary.getUTCDate()).toBe(Math.min(anchor.getUTCDate(), monthLength));
        expect(boundary.getTime() % DAY_MS).toBe(anchor.getTime() % DAY_MS);
      }),
    );
  });

  it('periodContaining finds the period that holds the time', () => {
    fc.assert(
      fc.property(
        anchorArb,
        intervalArb,
        fc.integer({ min: 0, max: 40 * 366 * DAY_MS }),
        (anchor, interval, offset) => {
          const at = new Date(anchor.getTime() + offset);
          const period = periodContaining(anchor, interval, at);
          expect(period.start.getTime()).toBeLessThanOrEqual(at.getTime());
          expect(period.end.getTime()).toBeGreaterThan(at.getTime());
          expect(period.start).toEqual(periodBoundary(anchor, interval, period.index));
        },
      ),
    );
  });
});
