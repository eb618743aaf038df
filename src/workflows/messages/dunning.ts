/**
 * The dunning workflow's messages: its run input (what `continueAsNew` carries), its state query,
 * its stop signal, and the start options every starter uses (the activation workflow as a child,
 * renewals through the client), so all runs look the same in the Temporal UI. Its start input
 * (`DunningInput`) and the `paymentSucceeded` signal live in `messages/billing.ts`, where the
 * payment paths find them. Imported by both sides, so it stays deterministic.
 */
import { WorkflowIdReusePolicy, defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../shared';
import type { DunningInput } from './billing';

/** One automatic retry: payment attempt `attempt` (the failed charge was attempt 1) at `at` (ISO). */
export interface DunningRetryTime {
  attempt: number;
  at: string;
}

/**
 * The absolute timeline of one invoice's dunning, computed once from its copied policy when dunning
 * starts and carried unchanged through `continueAsNew`: a rollover never moves a date.
 */
export interface DunningTimeline {
  retries: DunningRetryTime[];
  /** when the subscription is suspended if nothing was collected (null: the policy never suspends) */
  suspendAt: string | null;
  /** when the subscription is canceled and its pod terminated (null: never) */
  terminateAt: string | null;
}

/** `PodplaneStatus` of a dunning run: DUNNING → SUSPENDED → CANCELED, or PAID/VOID at any point. */
export type DunningStatus = 'DUNNING' | 'SUSPENDED' | 'PAID' | 'VOID' | 'CANCELED' | 'UNPAID';

/**
 * The test clock a sandbox customer's dunning runs on: its waits end when the clock reaches their
 * times (`clockAdvancedUpdate`), not on timers. `now` is the clock's time as the run last heard it.
 */
export interface DunningClock {
  testClockId: string;
  now: string;
}

/** The `patched()` id of the test clock support: histories recorded before it replay without it. */
export const TEST_CLOCKS_PATCH = 'test-clocks';

/** What one run hands the next. */
export interface DunningCarry {
  invoiceNumber: string;
  timeline: DunningTimeline;
  /** index into `timeline.retries` of the next retry to run */
  next: number;
  /** dunning suspended the subscription (and asked the pod to suspend): settlement unsuspends it */
  suspended: boolean;
  /** a hard decline of the current payment method: remaining retry times only remind */
  remindersOnly: boolean;
  /** signals received and not yet acted on */
  paid: boolean;
  stopRequested: boolean;
  /** the customer's test clock (absent or null: the wall clock) */
  clock?: DunningClock | null;
}

/** The workflow's argument: the start input, plus what an earlier run carried over. */
export interface DunningRunInput extends DunningInput {
  carried?: DunningCarry;
}

export interface DunningState {
  invoiceId: string;
  subscriptionId: string | null;
  invoiceNumber: string | null;
  status: DunningStatus;
  timeline: DunningTimeline | null;
  /** the retry the workflow waits for, or null after the last one */
  nextRetry: DunningRetryTime | null;
  suspended: boolean;
  remindersOnly: boolean;
  /** the outcome of the latest step (`FAILED`, `HARD_DECLINED`, `SUSPENDED` …) */
  lastOutcome: string | null;
  /** the time the run waits for now (null: a payment only, or not waiting) */
  wakeAt: string | null;
  /** the run waits (true) or is busy with a step (false) */
  waiting: boolean;
  /** the customer's test clock and its time as the run last heard it; null on the wall clock */
  testClockId: string | null;
  clockNow: string | null;
}

export const dunningStateQuery = defineQuery<DunningState>('state');

/**
 * The customer's test clock reached `now`: a run on that clock does what became due by then and
 * answers once it waits again (or has ended), with its state. Refused by a run not on a clock.
 */
export const clockAdvancedUpdate = defineUpdate<DunningState, [{ now: string }]>('clockAdvanced');

/** The customer's test clock was deleted: the run waits on the wall clock from now on. */
export const testClockDetachedSignal = defineSignal('testClockDetached');

/**
 * Asks a dunning run to look again now rather than at its next retry: sent when the subscription is
 * canceled or the invoice voided. Only a hint: the run re-reads the invoice and its subscription,
 * ends when nothing is left to collect, and otherwise keeps its timeline.
 */
export const stopDunningSignal = defineSignal<[{ reason: string }]>('stopDunning');

/**
 * Options of every start of `dunning-<invoiceId>`. A duplicate is rejected even after the first
 * run closed: an invoice is dunned once, whoever asks (activation, a renewal, a retried activity).
 */
export function dunningStartOptions(input: DunningInput) {
  return {
    workflowId: workflowIds.dunning(input.invoiceId),
    taskQueue: TASK_QUEUES.billing,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.CustomerId, value: input.customerId },
      ...(input.subscriptionId
        ? [{ key: SEARCH_ATTRIBUTES.SubscriptionId, value: input.subscriptionId }]
        : []),
      { key: SEARCH_ATTRIBUTES.InvoiceId, value: input.invoiceId },
      { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'DUNNING' },
    ],
    staticSummary: `Dunning of invoice ${input.invoiceId}`,
    staticDetails:
      `Collects invoice ${input.invoiceId}${input.subscriptionId ? ` of subscription ${input.subscriptionId}` : ''} ` +
      "on the tenant's dunning policy as copied onto the invoice: retries with an email on each failure, " +
      'then suspension, then cancellation and pod termination. A payment ends it at any point.',
  };
}
