/**
 * `advanceTestClock` — `test-clock-<clockId>-advance-<n>`: walks a sandbox test clock forward to
 * its target. At each step it finds the earliest time by the target at which something falls due
 * for the clock's customers — a period's end (renewal, or a trial's conversion), a trial reminder,
 * a dunning retry, suspension or termination — moves the clock there, runs it as of that time and
 * waits for it to settle (the renewal's result, the dunning run's answer) before looking again.
 * Then its customers' usage is rolled up until the target's day, and the clock stands at the
 * target, READY.
 *
 *   ADVANCING ──nothing left before the target──▶ READY
 *       │ a renewal failed, or a step gave up after its retries
 *       ▼
 *   INTERNAL_FAILURE (the clock stays where it got to; a new advance may go on from there)
 *
 * Every event it ran is remembered (carried through `continueAsNew`), so none runs twice in one
 * advance even if it left nothing changed. The clock row's advance count guards every write: an
 * advance the API has given up on (its start was not confirmed) finds itself superseded and stops.
 */
import {
  CancellationScope,
  continueAsNew,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { TestClockActivities } from '../activities/test-clocks';
import type { TimedClockEvent } from '../domain/test-clocks';
import {
  advanceTestClockStateQuery,
  type AdvanceTestClockInput,
  type AdvanceTestClockState,
  type AdvanceTestClockStatus,
} from './messages/test-clocks';
import { SEARCH_ATTRIBUTES } from './shared';

/** Writes to the clock row and reads: short, retried a few times, then the advance fails visibly. */
const quick = proxyActivities<TestClockActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 8,
  },
});

/** Steps that wait for other workflows (a renewal, a dunning run's step): heartbeating while they wait. */
const waiting = proxyActivities<TestClockActivities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 5,
  },
});

/** The `patched()` id of the usage rollup at the end of an advance. */
const USAGE_ON_TEST_CLOCKS_PATCH = 'usage-on-test-clocks';

/** Stops per run before the history rolls over. */
const STEPS_PER_RUN = 100;

const when = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;

/** Walks the clock to its target (states in the module comment). */
export async function advanceTestClock(input: AdvanceTestClockInput): Promise<AdvanceTestClockState> {
  const handled = new Set(input.carried?.handled ?? []);
  const state: AdvanceTestClockState = {
    clockId: input.clockId,
    target: input.target,
    status: 'ADVANCING',
    frozenTime: null,
    steps: input.carried?.steps ?? 0,
    events: input.carried?.events ?? 0,
    lastStep: null,
    failure: null,
  };
  setHandler(advanceTestClockStateQuery, () => state);
  const setStatus = (status: AdvanceTestClockStatus) => {
    state.status = status;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: status }]);
  };
  if (!workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.TenantId)) {
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'ADVANCING' },
    ]);
  }

  let outcome: 'done' | 'rollover' | 'superseded' | { failure: string };
  try {
    outcome = await walk(input, state, handled);
  } catch (err) {
    // A step that gave up after its retries, or a cancel from the UI: the clock must not stay ADVANCING.
    const reason = `the advance stopped: ${err instanceof Error ? err.message : String(err)}`;
    await CancellationScope.nonCancellable(() =>
      quick.failTestClockAdvance(input.clockId, input.seq, reason),
    );
    state.failure = reason;
    setStatus('INTERNAL_FAILURE');
    setCurrentDetails(`INTERNAL_FAILURE at ${when(state.frozenTime ?? input.target)}: ${reason}`);
    throw err;
  }

  if (outcome === 'rollover') {
    return continueAsNew<typeof advanceTestClock>({
      ...input,
      carried: { handled: [...handled], steps: state.steps, events: state.events },
    });
  }
  if (outcome === 'superseded') {
    setStatus('SUPERSEDED');
    setCurrentDetails(`Another advance drives test clock ${input.clockId} now: nothing more to do here`);
    return state;
  }
  if (outcome !== 'done') {
    await quick.failTestClockAdvance(input.clockId, input.seq, outcome.failure);
    state.failure = outcome.failure;
    setStatus('INTERNAL_FAILURE');
    setCurrentDetails(`INTERNAL_FAILURE at ${when(state.frozenTime ?? input.target)}: ${outcome.failure}`);
    return state;
  }
  // The days the clock passed, in `usage_daily` for its customers (histories from before this
  // step replay without it).
  if (patched(USAGE_ON_TEST_CLOCKS_PATCH)) {
    setCurrentDetails(`Test clock at ${when(input.target)}: rolling up its customers' usage`);
    await quick.rollupUsageOnTestClock(input.clockId, input.target);
  }
  if (!(await quick.finishTestClockAdvance(input.clockId, input.seq))) {
    setStatus('SUPERSEDED');
    setCurrentDetails(`Another advance drives test clock ${input.clockId} now: nothing more to do here`);
    return state;
  }
  state.frozenTime = input.target;
  setStatus('READY');
  setCurrentDetails(
    `Test clock at ${when(input.target)}, READY: ${state.steps} stops, ${state.events} events run`,
  );
  return state;
}

/** The stops of one run: until nothing is left before the target, or the history should roll over. */
async function walk(
  input: AdvanceTestClockInput,
  state: AdvanceTestClockState,
  handled: Set<string>,
): Promise<'done' | 'rollover' | 'superseded' | { failure: string }> {
  const begun = await quick.beginTestClockAdvance(input.clockId, input.seq);
  if (!begun) return 'superseded';
  state.frozenTime = begun.frozenTime;
  for (let stop = 0; ; stop++) {
    if (stop >= STEPS_PER_RUN || workflowInfo().continueAsNewSuggested) return 'rollover';
    setCurrentDetails(
      `Test clock at ${when(state.frozenTime)}: finding what falls due by ${when(input.target)} ` +
        `(${state.steps} stops, ${state.events} events so far)`,
    );
    const next = await waiting.nextTestClockStep(input.clockId, input.seq, [...handled]);
    if ('superseded' in next) return 'superseded';
    if (!next.step) return 'done';
    const { at, events } = next.step;
    const moved = await quick.moveTestClock(input.clockId, input.seq, at);
    if (moved === null) return 'superseded';
    state.frozenTime = moved;
    state.steps += 1;
    state.lastStep = { at: moved, events: events.map((e) => e.key) };
    setCurrentDetails(`Test clock at ${when(moved)}: running ${events.map((e) => e.key).join(', ')}`);
    let reminded = false;
    for (const e of events) {
      const failure = await runEvent(input, e, moved, reminded);
      if (e.event.kind === 'trial-reminder') reminded = true;
      handled.add(e.key);
      state.events += 1;
      if (failure) return { failure };
    }
  }
}

/** Runs one event as of the clock's time `at`; a failure's reason, or null. */
async function runEvent(
  input: AdvanceTestClockInput,
  e: TimedClockEvent,
  at: string,
  remindedAlready: boolean,
): Promise<string | null> {
  switch (e.event.kind) {
    case 'renewal':
      return (await waiting.renewOnTestClock(e.event)).failure;
    case 'trial-reminder':
      // one pass records every reminder due at this time
      if (!remindedAlready) await quick.remindTrialsOnTestClock(input.clockId, at);
      return null;
    case 'dunning':
      await waiting.advanceDunningOnTestClock(e.event.invoiceId, at);
      return null;
  }
}
