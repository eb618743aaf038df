/**
 * Messages of `advanceTestClock` (`test-clock-<clockId>-advance-<n>`): its input (what
 * `continueAsNew` carries), its `state` query and the options every start uses. Imported by both
 * sides, so it stays deterministic.
 */
import { WorkflowIdReusePolicy, defineQuery } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../shared';

export interface AdvanceTestClockInput {
  tenantId: string;
  clockId: string;
  /** the clock's advance count when this advance was requested: the clock row must still say so */
  seq: number;
  /** where the clock goes (ISO) */
  target: string;
  carried?: AdvanceTestClockCarry;
}

/** What one run hands the next. */
export interface AdvanceTestClockCarry {
  /** keys of the events this advance has run, so none runs twice however it turns out */
  handled: string[];
  steps: number;
  events: number;
}

export type AdvanceTestClockStatus = 'ADVANCING' | 'READY' | 'INTERNAL_FAILURE' | 'SUPERSEDED';

export interface AdvanceTestClockState {
  clockId: string;
  target: string;
  status: AdvanceTestClockStatus;
  /** the clock's time as this advance last moved it */
  frozenTime: string | null;
  /** times the clock stopped at to run what was due */
  steps: number;
  /** events run (renewals, trial reminders, dunning steps) */
  events: number;
  /** the latest stop: its time and the events run there */
  lastStep: { at: string; events: string[] } | null;
  failure: string | null;
}

export const advanceTestClockStateQuery = defineQuery<AdvanceTestClockState>('state');

/** Options of every start: one workflow per requested advance (its id holds the advance count). */
export function advanceTestClockStartOptions(input: AdvanceTestClockInput) {
  return {
    workflowId: workflowIds.advanceTestClock(input.clockId, input.seq),
    taskQueue: TASK_QUEUES.billing,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'ADVANCING' },
    ],
    staticSummary: `Advance test clock ${input.clockId} to ${input.target}`,
    staticDetails:
      `Walks test clock ${input.clockId} forward to ${input.target}, stopping at each time something falls due ` +
      "for its customers — a period's end (renewal or trial conversion), a trial reminder, a dunning retry, " +
      'suspension or termination — and running it as of that time before moving on.',
  };
}
