/**
 * Dunning schedule arithmetic: when to retry a failed charge, when to suspend, when to terminate.
 *
 * The policy is the tenant's `DunningPolicy` (offsets in days, fractional allowed, so a test
 * policy can be a few milliseconds long). The dunning workflow sleeps until each computed time;
 * it never re-derives them.
 */
import type { DunningPolicy } from '../tenants';
import { billingError } from './errors';
import { assertValidDate, daysToMs, MS_PER_DAY } from './periods';

/** Policies stay small and short: each retry is a timer and an attempt in one workflow history. */
export const MAX_DUNNING_RETRIES = 20;
export const MAX_DUNNING_DAYS = 365;

/** Why a policy cannot be used, or undefined when it can (checked when a tenant saves it). */
export function dunningPolicyProblem(policy: DunningPolicy): string | undefined {
  const offsets = policy.retryOffsetsDays;
  if (offsets.length > MAX_DUNNING_RETRIES) return `at most ${MAX_DUNNING_RETRIES} retries are allowed`;
  let previousMs = 0;
  for (const days of offsets) {
    if (!Number.isFinite(days) || days > MAX_DUNNING_DAYS) {
      return `retry offsets are finite numbers of days up to ${MAX_DUNNING_DAYS}`;
    }
    const ms = daysToMs(days);
    // Offsets are compared in whole milliseconds, the resolution the schedule is computed in.
    if (ms <= previousMs) return 'retry offsets must be positive and strictly increasing';
    previousMs = ms;
  }
  const terminate = policy.terminateAfterDaysOverdue;
  if (terminate !== null) {
    if (!Number.isFinite(terminate) || terminate < 0 || terminate > MAX_DUNNING_DAYS) {
      return `the termination threshold is null or 0–${MAX_DUNNING_DAYS} days`;
    }
    if (offsets.length > 0 && daysToMs(terminate) <= previousMs) {
      return 'termination must come after the last retry';
    }
  }
  return undefined;
}

export interface DunningRetry {
  /** the payment attempt number; attempt 1 is the charge that failed */
  attempt: number;
  at: Date;
}

export interface DunningSchedule {
  /** when dunning begins: the due date, or the failed charge if that came later */
  startsAt: Date;
  /** retries in time order, all strictly after `startsAt` and before `terminateAt` */
  retries: DunningRetry[];
  /** when the subscription is suspended if the last retry has failed; null if the policy never suspends */
  suspendAt: Date | null;
  /** when the subscription is canceled and the pod terminated; null if the policy never terminates */
  terminateAt: Date | null;
}

/**
 * The absolute dunning timeline of one unpaid invoice.
 *
 * Retries are offsets from `startsAt` = max(due date, failed charge): with automatic collection
 * both coincide; a charge that failed after the due date still gets every retry. Termination is
 * counted in days overdue, from the due date, but never before `startsAt`; retries that would fall
 * at or after termination are dropped, since there is nothing left to pay for. Suspension happens
 * when the last retry fails, so `suspendAt` is the last retry's time (or `startsAt` with no retries).
 */
export function dunningSchedule(
  invoice: { dueAt: Date; failedAt: Date },
  policy: DunningPolicy,
): DunningSchedule {
  assertValidDate(invoice.dueAt, 'due date');
  assertValidDate(invoice.failedAt, 'failure time');
  const problem = dunningPolicyProblem(policy);
  if (problem) throw billingError('validation_failed', 'invalid_dunning_policy', problem);

  const startsMs = Math.max(invoice.dueAt.getTime(), invoice.failedAt.getTime());
  const terminateMs =
    policy.terminateAfterDaysOverdue === null
      ? null
      : Math.max(invoice.dueAt.getTime() + daysToMs(policy.terminateAfterDaysOverdue), startsMs);
  const retries = policy.retryOffsetsDays
    .map((days, i) => ({ attempt: i + 2, atMs: startsMs + daysToMs(days) }))
    .filter(({ atMs }) => terminateMs === null || atMs < terminateMs)
    .map(({ attempt, atMs }) => ({ attempt, at: new Date(atMs) }));
  const last = retries.at(-1);
  return {
    startsAt: new Date(startsMs),
    retries,
    suspendAt: policy.suspendAfterLastRetry ? new Date(last ? last.at.getTime() : startsMs) : null,
    terminateAt: terminateMs === null ? null : new Date(terminateMs),
  };
}

/**
 * A policy whose offsets are given in milliseconds, for tests that run a whole dunning cycle in a
 * fraction of a second. The stored form stays in (fractional) days.
 */
export function dunningPolicyInMilliseconds(spec: {
  retryOffsetsMs: number[];
  terminateAfterMsOverdue: number | null;
  suspendAfterLastRetry?: boolean;
  notifyOnEveryFailure?: boolean;
}): DunningPolicy {
  return {
    retryOffsetsDays: spec.retryOffsetsMs.map((ms) => ms / MS_PER_DAY),
    suspendAfterLastRetry: spec.suspendAfterLastRetry ?? true,
    terminateAfterDaysOverdue:
      spec.terminateAfterMsOverdue === null ? null : spec.terminateAfterMsOverdue / MS_PER_DAY,
    notifyOnEveryFailure: spec.notifyOnEveryFailure ?? true,
  };
}
