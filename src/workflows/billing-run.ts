/**
 * `billingRun` — started hourly by the `billing-run` schedule: finds the subscriptions whose
 * period ended (trials ending included) and starts each one's `renewSubscription`, a page at a
 * time (keyset by id, heartbeating), continuing as new every few pages so its history stays
 * small however many are due. It does not wait for the renewals: each is its own workflow, and
 * its id (subscription and period) makes a run that fires twice, overlaps or is retried start
 * nothing twice — a renewal already running is skipped, one that finished finds its period renewed.
 * Customers on a sandbox test clock are not its to renew: their time is the clock's, and the
 * clock's advance (`advanceTestClock`) starts their renewals.
 */
import {
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { RenewalActivities } from '../activities/renewals';
import { billingRunStateQuery, type BillingRunInput, type BillingRunState } from './messages/renewals';
import { SEARCH_ATTRIBUTES } from './shared';

const BILLING_RUN_DEFAULTS = { pageSize: 100, pagesPerRun: 10 } as const;

/** One page's starts: heartbeats after every batch, so a lost worker is noticed within a minute. */
const pages = proxyActivities<RenewalActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
  },
});

export async function billingRun(input: BillingRunInput = {}): Promise<BillingRunState> {
  const pageSize = input.pageSize ?? BILLING_RUN_DEFAULTS.pageSize;
  const pagesPerRun = input.pagesPerRun ?? BILLING_RUN_DEFAULTS.pagesPerRun;
  const state: BillingRunState = {
    // Fixed for the whole run (continuations included): a period ending meanwhile waits for the next run.
    asOf: input.asOf ?? new Date().toISOString(),
    cursor: input.cursor ?? null,
    pages: 0,
    found: 0,
    started: 0,
    alreadyRunning: 0,
    ...input.totals,
    done: false,
  };
  setHandler(billingRunStateQuery, () => state);
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'RUNNING' }]);

  for (let page = 0; page < pagesPerRun; page++) {
    setCurrentDetails(
      `Page ${state.pages + 1} of subscriptions due by ${state.asOf}; ${state.started} renewals started, ` +
        `${state.alreadyRunning} already running`,
    );
    const result = await pages.startDueRenewals({ asOf: state.asOf, after: state.cursor, limit: pageSize });
    state.pages += 1;
    state.found += result.found;
    state.started += result.started;
    state.alreadyRunning += result.alreadyRunning;
    state.cursor = result.lastId ?? state.cursor;
    if (result.found < pageSize) {
      state.done = true;
      setCurrentDetails(
        `Done: ${state.found} due by ${state.asOf}, ${state.started} renewals started, ` +
          `${state.alreadyRunning} already running`,
      );
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'DONE' }]);
      return state;
    }
  }
  return continueAsNew<typeof billingRun>({
    asOf: state.asOf,
    cursor: state.cursor,
    pageSize,
    pagesPerRun,
    totals: {
      pages: state.pages,
      found: state.found,
      started: state.started,
      alreadyRunning: state.alreadyRunning,
    },
  });
}
