/**
 * `usageRollup` — started daily at 02:00 UTC by the `usage-rollup` schedule (its runs are
 * `usage-rollup-<scheduled time>`), or by hand for named days (`usage-rollup-<day>`): sums each
 * UTC day's usage records into `usage_daily`, one idempotent statement per day. Started with no
 * days it rolls up the ROLLUP_LOOKBACK_DAYS days before the day it starts, so records reported up
 * to that late, and a run missed within the schedule's catch-up window, are rolled up by the next
 * run; rolling a day up again only adds what arrived since, and a day an invoice froze never
 * changes. Billing does not wait for it: renewals read the records themselves.
 */
import {
  ApplicationFailure,
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { UsageActivities } from '../activities/usage';
import { addUtcDays, isoDate, utcDayStart } from '../domain/billing';
import {
  ROLLUP_LOOKBACK_DAYS,
  usageRollupStateQuery,
  type UsageRollupInput,
  type UsageRollupState,
} from './messages/usage';
import { SEARCH_ATTRIBUTES } from './shared';

/** Days one run rolls up before it continues as new, so a long backfill keeps a small history. */
const DAYS_PER_RUN = 31;

/** One day over every tenant: a busy day is a large scan, so it gets minutes, and retries. */
const acts = proxyActivities<UsageActivities>({
  startToCloseTimeout: '15 minutes',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
  },
});

/** The `count` UTC days before the day of `now`, oldest first. */
function daysBefore(now: Date, count: number): string[] {
  const today = isoDate(now);
  return Array.from({ length: count }, (_, i) => addUtcDays(today, i - count));
}

export async function usageRollup(input: UsageRollupInput = {}): Promise<UsageRollupState> {
  // Workflow time is deterministic: the day a run starts in is the same on every replay.
  const days = input.days ?? daysBefore(new Date(), ROLLUP_LOOKBACK_DAYS);
  // A malformed day fails the run at once, before anything is rolled up, typed as the activity's
  // own refusal would be (activities/refusals.ts): no retry can fix it.
  for (const day of days) {
    try {
      utcDayStart(day);
    } catch (err) {
      throw ApplicationFailure.nonRetryable(
        err instanceof Error ? err.message : String(err),
        'billing.validation_failed',
      );
    }
  }
  const state: UsageRollupState = { days, rolledUp: [...(input.rolledUp ?? [])], done: false };
  setHandler(usageRollupStateQuery, () => state);
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'RUNNING' }]);

  for (const day of days.slice(0, DAYS_PER_RUN)) {
    setCurrentDetails(`Rolling up ${day} (${state.rolledUp.length} of the days done)`);
    state.rolledUp.push(await acts.rollupUsageDay(day));
  }
  if (days.length > DAYS_PER_RUN) {
    return continueAsNew<typeof usageRollup>({ days: days.slice(DAYS_PER_RUN), rolledUp: state.rolledUp });
  }
  state.done = true;
  const rows = state.rolledUp.reduce((sum, d) => sum + d.rows, 0);
  setCurrentDetails(
    `Done: ${state.rolledUp.map((d) => d.day).join(', ')} rolled up, ${rows} daily rows written`,
  );
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'DONE' }]);
  return state;
}
