/**
 * Test clocks, as Stripe users know them: a sandbox tenant's clock holds a frozen time that its
 * customers' billing runs at, moved forward only by an advance. What an advance may ask for, and
 * the order in which it walks the customers' due events, are decided here.
 */
import { addMonthsClamped, assertValidDate, dueTrialReminder, trialReminders } from './billing';

/** READY: time stands still; ADVANCING: an advance walks it forward; INTERNAL_FAILURE: one could not finish. */
export const TEST_CLOCK_STATUSES = ['READY', 'ADVANCING', 'INTERNAL_FAILURE'] as const;
export type TestClockStatus = (typeof TEST_CLOCK_STATUSES)[number];

/** As at Stripe: a clock carries a few customers, so that one advance stays a short walk. */
export const MAX_TEST_CLOCK_CUSTOMERS = 3;

/** One advance moves a clock at most this many months: a walk of two years of monthly billing. */
export const MAX_ADVANCE_MONTHS = 24;

/** Why the clock at `frozen` cannot be advanced to `target`, or undefined when it can. */
export function advanceProblem(frozen: Date, target: Date): string | undefined {
  assertValidDate(frozen, 'frozen time');
  if (Number.isNaN(target.getTime())) return 'frozen_time is not a valid time';
  if (target.getTime() <= frozen.getTime()) {
    return `frozen_time must be later than the clock's current frozen_time (${frozen.toISOString()})`;
  }
  const limit = addMonthsClamped(frozen, MAX_ADVANCE_MONTHS);
  if (target.getTime() > limit.getTime()) {
    return `one advance moves a clock at most ${MAX_ADVANCE_MONTHS} months, to ${limit.toISOString()}`;
  }
  return undefined;
}

/** Something due for one of a clock's customers at a point of its time. */
export type ClockEvent =
  | {
      kind: 'renewal';
      /** the subscription's current period ends: renew it (a trial converts) */
      subscriptionId: string;
      tenantId: string;
      customerId: string;
      /** the end of the period that ends, ISO: the renewal's period start */
      periodStart: string;
    }
  | { kind: 'trial-reminder'; subscriptionId: string; daysBefore: number }
  | {
      kind: 'dunning';
      invoiceId: string;
      /** the time the dunning run waits for, ISO */
      wakeAt: string;
    };

/** A clock event at its time (ISO), with a key naming it among the events of one advance. */
export interface TimedClockEvent {
  at: string;
  key: string;
  event: ClockEvent;
}

export function clockEventKey(event: ClockEvent): string {
  switch (event.kind) {
    case 'renewal':
      return `renewal:${event.subscriptionId}:${event.periodStart}`;
    case 'trial-reminder':
      return `trial-reminder:${event.subscriptionId}:${event.daysBefore}`;
    case 'dunning':
      return `dunning:${event.invoiceId}:${event.wakeAt}`;
  }
}

/** The next step of an advance: the time the clock moves to, and every event due then. */
export interface ClockStep {
  at: string;
  events: TimedClockEvent[];
}

/**
 * The next step of an advance from `frozen` towards `target`: the earliest time at which an event
 * not yet handled by this advance is due, and all events due then. An event whose time the clock
 * has already passed (it arrived while the clock stood further on) is due at once, at `frozen`:
 * the clock never moves back. Null when nothing is due by `target`.
 */
export function nextClockStep(
  events: readonly TimedClockEvent[],
  frozen: Date,
  target: Date,
  handled: ReadonlySet<string>,
): ClockStep | null {
  let earliest: number | null = null;
  const due: { atMs: number; event: TimedClockEvent }[] = [];
  for (const e of events) {
    if (handled.has(e.key)) continue;
    const atMs = Math.max(Date.parse(e.at), frozen.getTime());
    if (Number.isNaN(atMs) || atMs > target.getTime()) continue;
    due.push({ atMs, event: e });
    if (earliest === null || atMs < earliest) earliest = atMs;
  }
  if (earliest === null) return null;
  const at = earliest;
  const now = due
    .filter((d) => d.atMs === at)
    .map((d) => d.event)
    .sort((a, b) => ORDER[a.event.kind] - ORDER[b.event.kind] || a.key.localeCompare(b.key));
  return { at: new Date(at).toISOString(), events: now };
}

/** At one time, reminders go out before the renewal that ends a trial, and dunning looks last. */
const ORDER: Record<ClockEvent['kind'], number> = { 'trial-reminder': 0, renewal: 1, dunning: 2 };

/**
 * The reminders of a trial that are events for a clock at `frozen`: each reminder at its own time,
 * as the hourly sweep would send it then (`dueTrialReminder`), so a reminder made stale by a later
 * one is not an event at all. One the clock has passed unsent is due at once, if still the latest.
 */
export function trialReminderEvents(trial: {
  subscriptionId: string;
  trialStart: Date;
  trialEnd: Date;
  frozen: Date;
  sentDaysBefore: readonly number[];
}): TimedClockEvent[] {
  return trialReminders(trial.trialStart, trial.trialEnd).flatMap((reminder) => {
    const at = new Date(Math.max(reminder.at.getTime(), trial.frozen.getTime()));
    const due = dueTrialReminder({
      trialStart: trial.trialStart,
      trialEnd: trial.trialEnd,
      now: at,
      sentDaysBefore: trial.sentDaysBefore,
    });
    if (due?.daysBefore !== reminder.daysBefore) return [];
    const event: ClockEvent = {
      kind: 'trial-reminder',
      subscriptionId: trial.subscriptionId,
      daysBefore: reminder.daysBefore,
    };
    return [{ at: reminder.at.toISOString(), key: clockEventKey(event), event }];
  });
}
