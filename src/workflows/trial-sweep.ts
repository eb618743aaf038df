/**
 * `trialSweep` — started hourly by the `trial-sweep` schedule: records the reminder due for each
 * trial ending within a week (7, 3 and 1 days before its end, `dueTrialReminder`), a page at a
 * time. Each reminder's dedupe key (`trial-reminder:<subId>:<daysBefore>`) makes a sweep that runs
 * twice, or a retried page, record it once. Converting a trial that ended is the billing run's
 * work (a trial's period ends with it). Trials of customers on a sandbox test clock are reminded
 * by the clock's advance, as of the clock's time.
 */
import {
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { RenewalActivities } from '../activities/renewals';
import { trialSweepStateQuery, type TrialSweepInput, type TrialSweepState } from './messages/renewals';
import { SEARCH_ATTRIBUTES } from './shared';

const PAGE_SIZE = 200;
const PAGES_PER_RUN = 20;

const acts = proxyActivities<RenewalActivities>({
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
  },
});

export async function trialSweep(input: TrialSweepInput = {}): Promise<TrialSweepState> {
  const state: TrialSweepState = {
    asOf: input.asOf ?? new Date().toISOString(),
    checked: input.checked ?? 0,
    reminded: input.reminded ?? 0,
    done: false,
  };
  setHandler(trialSweepStateQuery, () => state);
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'RUNNING' }]);
  let cursor = input.cursor ?? null;
  for (let page = 0; page < PAGES_PER_RUN; page++) {
    setCurrentDetails(`Trials ending within a week of ${state.asOf}: ${state.reminded} reminders so far`);
    const result = await acts.remindEndingTrials({ asOf: state.asOf, after: cursor, limit: PAGE_SIZE });
    state.checked += result.checked;
    state.reminded += result.reminded;
    cursor = result.lastId ?? cursor;
    if (result.checked < PAGE_SIZE) {
      state.done = true;
      setCurrentDetails(`Done: ${state.checked} trials ending soon, ${state.reminded} reminders recorded`);
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'DONE' }]);
      return state;
    }
  }
  return continueAsNew<typeof trialSweep>({
    asOf: state.asOf,
    cursor,
    checked: state.checked,
    reminded: state.reminded,
  });
}
