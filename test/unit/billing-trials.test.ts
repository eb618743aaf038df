/** Trial dates: the end of a trial and its 7/3/1-day reminders; short trials get fewer. */
import fc from 'fast-check';
import { dueTrialReminder, MS_PER_DAY, trialEnd, trialReminders } from '../../src/domain/billing';
import { d, reasonOf } from '../helpers/billing-core';

const START = d('2028-02-20T09:00:00Z');

describe('trialEnd', () => {
  it.each([
    [14, '2028-03-05T09:00:00.000Z'],
    [9, '2028-02-29T09:00:00.000Z'],
    [0, '2028-02-20T09:00:00.000Z'],
    [0.5, '2028-02-20T21:00:00.000Z'],
  ])('%p days → %s', (days, expected) => {
    expect(trialEnd(START, days).toISOString()).toBe(expected);
  });

  it.each([-1, NaN, Infinity])('refuses %p days', (days) => {
    expect(reasonOf(() => trialEnd(START, days))).toBe('invalid_trial');
  });
});

describe('trialReminders', () => {
  it('a 14-day trial across Feb 29 gets all three, earliest first', () => {
    expect(trialReminders(START, trialEnd(START, 14)).map((r) => [r.daysBefore, r.at.toISOString()])).toEqual(
      [
        [7, '2028-02-27T09:00:00.000Z'],
        [3, '2028-03-02T09:00:00.000Z'],
        [1, '2028-03-04T09:00:00.000Z'],
      ],
    );
  });

  it.each([
    [30, [7, 3, 1]],
    [8, [7, 3, 1]],
    [7, [3, 1]],
    [5, [3, 1]],
    [3, [1]],
    [2, [1]],
    [1, []],
    [0, []],
  ])('a %i-day trial is reminded %p days before its end', (days, expected) => {
    expect(trialReminders(START, trialEnd(START, days)).map((r) => r.daysBefore)).toEqual(expected);
  });

  it('takes other offsets (fractional for tests), ignoring duplicates', () => {
    const end = new Date(START.getTime() + 100);
    const ms = (n: number) => n / MS_PER_DAY;
    expect(
      trialReminders(START, end, [ms(50), ms(10), ms(10), ms(200)]).map(
        (r) => r.at.getTime() - START.getTime(),
      ),
    ).toEqual([50, 90]);
  });

  it('refuses a trial that ends before it starts and non-positive offsets', () => {
    expect(reasonOf(() => trialReminders(START, d('2028-02-19T00:00:00Z')))).toBe('invalid_trial');
    expect(reasonOf(() => trialReminders(START, trialEnd(START, 14), [0]))).toBe('invalid_trial');
  });

  it('every reminder lies strictly inside the trial, one per offset that fits (property)', () => {
    fc.assert(
      fc.property(
        fc.date({ min: d('2000-01-01T00:00:00Z'), max: d('2100-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: 0, max: 60 * MS_PER_DAY }),
        (start, lengthMs) => {
          const end = new Date(start.getTime() + lengthMs);
          const reminders = trialReminders(start, end);
          expect(reminders.map((r) => r.daysBefore)).toEqual(
            [7, 3, 1].filter((n) => n * MS_PER_DAY < lengthMs),
          );
          for (const r of reminders) {
            expect(r.at.getTime()).toBeGreaterThan(start.getTime());
            expect(end.getTime() - r.at.getTime()).toBe(r.daysBefore * MS_PER_DAY);
          }
        },
      ),
    );
  });
});

describe('dueTrialReminder', () => {
  const end = trialEnd(START, 14);
  it.each<[string, string, number[], number | undefined]>([
    ['before the first reminder', '2028-02-27T08:59:59Z', [], undefined],
    ['the 7-day reminder is due', '2028-02-27T09:00:00Z', [], 7],
    ['the 7-day reminder was sent', '2028-02-28T09:00:00Z', [7], undefined],
    ['the 3-day reminder is due', '2028-03-02T10:00:00Z', [7], 3],
    ['a missed 7-day reminder is superseded by the 3-day one', '2028-03-02T10:00:00Z', [], 3],
    ['the 1-day reminder is due', '2028-03-04T09:30:00Z', [7, 3], 1],
    ['everything sent', '2028-03-04T20:00:00Z', [7, 3, 1], undefined],
    ['the trial has ended', '2028-03-05T09:00:00Z', [7, 3], undefined],
  ])('%s', (_name, now, sent, expected) => {
    expect(
      dueTrialReminder({ trialStart: START, trialEnd: end, now: d(now), sentDaysBefore: sent })?.daysBefore,
    ).toBe(expected);
  });
});
