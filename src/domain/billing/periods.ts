/**
 * Billing periods, in UTC, anchored on the subscription's billing anchor.
 *
 * Boundary `i` is the anchor moved `i` months (or years) forward with its day of month clamped to
 * the target month's length, and the anchor's time of day kept. Every boundary is derived from the
 * anchor, never from the previous boundary: a Jan 31 anchor renews on Feb 28 (Feb 29 in leap
 * years) and then on Mar 31 again, where chaining would drift to Mar 28 for good. The anchor
 * must therefore be stored with the subscription; the current period alone cannot recover it.
 */
import { billingError } from './errors';

export const BILLING_INTERVALS = ['MONTH', 'YEAR'] as const;
export type BillingInterval = (typeof BILLING_INTERVALS)[number];

export const MS_PER_SECOND = 1000;
export const MS_PER_DAY = 86_400_000;

/** A half-open interval [start, end) of time. */
export interface BillingPeriod {
  start: Date;
  end: Date;
}

/** Period number `index` of a subscription (0 is the one starting at the anchor). */
export interface IndexedPeriod extends BillingPeriod {
  index: number;
}

const MONTHS_PER: Record<BillingInterval, number> = { MONTH: 1, YEAR: 12 };

export function assertValidDate(date: Date, what = 'date'): Date {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw billingError('validation_failed', 'invalid_date', `${what} is not a valid date`);
  }
  return date;
}

/** Number of days in a month of the proleptic Gregorian calendar (`month` 0-based). */
export function daysInMonth(year: number, month: number): number {
  const probe = new Date(0);
  probe.setUTCFullYear(year, month + 1, 0);
  return probe.getUTCDate();
}

/**
 * `anchor` moved `months` calendar months forward, day clamped to the target month's length,
 * time of day unchanged.
 */
export function addMonthsClamped(anchor: Date, months: number): Date {
  assertValidDate(anchor, 'anchor');
  const monthIndex = anchor.getUTCMonth() + months;
  const year = anchor.getUTCFullYear() + Math.floor(monthIndex / 12);
  const month = ((monthIndex % 12) + 12) % 12;
  const result = new Date(anchor.getTime());
  // Year, month and day in one call: setting them one by one could overflow through a short month.
  result.setUTCFullYear(year, month, Math.min(anchor.getUTCDate(), daysInMonth(year, month)));
  return result;
}

function assertIndex(index: number): void {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw billingError(
      'validation_failed',
      'invalid_period_index',
      'a period index is a non-negative integer',
    );
  }
}

/** Boundary `index`: the start of period `index` and the end of period `index - 1`. */
export function periodBoundary(anchor: Date, interval: BillingInterval, index: number): Date {
  assertIndex(index);
  return addMonthsClamped(anchor, index * MONTHS_PER[interval]);
}

/** Start of period `index`. */
export function periodStart(anchor: Date, interval: BillingInterval, index: number): Date {
  return periodBoundary(anchor, interval, index);
}

/** End (exclusive) of period `index`, which is the start of period `index + 1`. */
export function periodEnd(anchor: Date, interval: BillingInterval, index: number): Date {
  assertIndex(index);
  return periodBoundary(anchor, interval, index + 1);
}

/** Period `index` with both bounds. */
export function periodAt(anchor: Date, interval: BillingInterval, index: number): IndexedPeriod {
  return { index, start: periodStart(anchor, interval, index), end: periodEnd(anchor, interval, index) };
}

/** The period that contains `at` (start ≤ at < end); `at` must not precede the anchor. */
export function periodContaining(anchor: Date, interval: BillingInterval, at: Date): IndexedPeriod {
  assertValidDate(anchor, 'anchor');
  assertValidDate(at, 'at');
  if (at.getTime() < anchor.getTime()) {
    throw billingError('validation_failed', 'invalid_period', 'the time precedes the billing anchor');
  }
  const monthsApart =
    (at.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + (at.getUTCMonth() - anchor.getUTCMonth());
  // The calendar estimate is off by at most one period (day-of-month and time of day); correct it.
  let index = Math.max(0, Math.floor(monthsApart / MONTHS_PER[interval]));
  while (index > 0 && periodBoundary(anchor, interval, index).getTime() > at.getTime()) index -= 1;
  while (periodBoundary(anchor, interval, index + 1).getTime() <= at.getTime()) index += 1;
  return periodAt(anchor, interval, index);
}

/**
 * The period following `current`, which must be a period of this anchor and interval (its end a
 * boundary): renewal passes the stored current period and gets the next one.
 */
export function nextPeriod(anchor: Date, interval: BillingInterval, current: BillingPeriod): IndexedPeriod {
  assertValidDate(current.end, 'period end');
  const next = periodContaining(anchor, interval, current.end);
  if (next.start.getTime() !== current.end.getTime()) {
    throw billingError(
      'validation_failed',
      'not_a_period_boundary',
      `${current.end.toISOString()} is not a period boundary of this subscription`,
    );
  }
  return next;
}

/**
 * Whole seconds from `start` to `end`, any partial second dropped. Both bounds of an anchored
 * period share the anchor's sub-second part, so a period's length is always exact.
 */
export function periodSeconds(start: Date, end: Date): number {
  assertValidDate(start, 'start');
  assertValidDate(end, 'end');
  const ms = end.getTime() - start.getTime();
  if (ms < 0) {
    throw billingError('validation_failed', 'invalid_period', 'a period cannot end before it starts');
  }
  return Math.floor(ms / MS_PER_SECOND);
}

/**
 * `date` plus a (possibly fractional) number of days, rounded to the millisecond. Fractional days
 * let tests express dunning and trial schedules in milliseconds: `5 / MS_PER_DAY` is exactly 5 ms.
 */
export function addDays(date: Date, days: number): Date {
  assertValidDate(date);
  return new Date(date.getTime() + daysToMs(days));
}

/** Days as whole milliseconds (rounded to the nearest; days may be fractional). */
export function daysToMs(days: number): number {
  if (!Number.isFinite(days)) {
    throw billingError('validation_failed', 'invalid_period', 'a number of days must be finite');
  }
  return Math.round(days * MS_PER_DAY);
}

/** The UTC calendar date of `date`, `YYYY-MM-DD`, as shown on invoice lines. */
export function isoDate(date: Date): string {
  return assertValidDate(date).toISOString().slice(0, 10);
}
