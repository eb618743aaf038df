/**
 * Trial dates: the trial end and the reminders sent before it (7, 3 and 1 days by default).
 */
import { billingError } from './errors';
import { addDays, assertValidDate } from './periods';

export const TRIAL_REMINDER_DAYS: readonly number[] = Object.freeze([7, 3, 1]);

export interface TrialReminder {
  /** how many days before the trial end this reminder is sent */
  daysBefore: number;
  at: Date;
}

/** End of a trial of `trialDays` days (fractional for tests) that starts at `trialStart`. */
export function trialEnd(trialStart: Date, trialDays: number): Date {
  if (!Number.isFinite(trialDays) || trialDays < 0) {
    throw billingError('validation_failed', 'invalid_trial', 'trial days are a non-negative number');
  }
  return addDays(assertValidDate(trialStart, 'trial start'), trialDays);
}

function checkTrial(trialStart: Date, trialEndAt: Date): void {
  assertValidDate(trialStart, 'trial start');
  assertValidDate(trialEndAt, 'trial end');
  if (trialEndAt.getTime() < trialStart.getTime()) {
    throw billingError('validation_failed', 'invalid_trial', 'a trial cannot end before it starts');
  }
}

/**
 * The reminders of one trial, earliest first. A reminder that would fall at or before the trial
 * start is left out — "your trial ends in 7 days" sent at sign-up of a 7-day trial repeats the
 * sign-up confirmation — so short trials get fewer reminders, and a one-day trial none.
 */
export function trialReminders(
  trialStart: Date,
  trialEndAt: Date,
  daysBefore: readonly number[] = TRIAL_REMINDER_DAYS,
): TrialReminder[] {
  checkTrial(trialStart, trialEndAt);
  if (daysBefore.some((days) => !Number.isFinite(days) || days <= 0)) {
    throw billingError(
      'validation_failed',
      'invalid_trial',
      'reminders are a positive number of days before the end',
    );
  }
  return [...new Set(daysBefore)]
    .map((days) => ({ daysBefore: days, at: addDays(trialEndAt, -days) }))
    .filter((reminder) => reminder.at.getTime() > trialStart.getTime())
    .sort((a, b) => a.at.getTime() - b.at.getTime());
}

/**
 * The one reminder an hourly sweep should send at `now`, if any: the most recent reminder that is
 * due and not yet sent. Older unsent reminders are stale (a later one supersedes them, so a sweep
 * that was down never sends a burst), and nothing is sent once the trial has ended.
 */
export function dueTrialReminder(input: {
  trialStart: Date;
  trialEnd: Date;
  now: Date;
  sentDaysBefore: readonly number[];
  daysBefore?: readonly number[];
}): TrialReminder | undefined {
  const now = assertValidDate(input.now, 'now').getTime();
  if (now >= input.trialEnd.getTime()) return undefined;
  const due = trialReminders(input.trialStart, input.trialEnd, input.daysBefore).filter(
    (reminder) => reminder.at.getTime() <= now,
  );
  const latest = due.at(-1);
  return latest && !input.sentDaysBefore.includes(latest.daysBefore) ? latest : undefined;
}
