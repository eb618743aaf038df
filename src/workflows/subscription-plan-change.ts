/**
 * `changeSubscriptionPlan` — `subscription-change-plan-<subId>-<changeId>`: the pod first, money
 * second. The subscription's pod is resized through its own `cloudPod` workflow (a CHANGE_PLAN job);
 * only once the job COMPLETED is the subscription switched to the new product and price and the
 * proration settled, as of the moment the change was requested: an upgrade is invoiced and charged
 * now, a downgrade becomes a credit note to the customer's balance, a trial is only switched. A
 * resize that is refused, rolled back or canceled bills nothing and leaves the subscription on its
 * plan; a dead-lettered one is waited for as long as the pod waits for an operator's retry. An
 * upgrade whose charge fails leaves its invoice open, the subscription PAST_DUE, and hands the
 * invoice to `dunning-<invoiceId>`, started as an abandoned child (as activation does).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BillingActivities } from '../activities/billing';
import type { PlanChangeActivities } from '../activities/plan-change';
import { startDunningChild } from './dunning-child';
import {
  planChangeStateQuery,
  type ChangeSubscriptionPlanInput,
  type PlanChangeState,
  type PlanChangeStep,
  type PlanChangeWorkflowStatus,
} from './messages/plan-change';
import { SEARCH_ATTRIBUTES } from './shared';

/**
 * Every step is repeatable and must happen once the resize has begun — a change that gave up
 * half-way would leave a resized pod unbilled — so steps retry without a limit, backing off to once a
 * minute; business refusals are non-retryable and come back as the failure they are.
 */
const STEPS = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
} as const;

const acts = proxyActivities<PlanChangeActivities>(STEPS);
const billing = proxyActivities<BillingActivities>(STEPS);

/** Waits on the job's row (heartbeating) until its status differs from the one last seen. */
const watch = proxyActivities<PlanChangeActivities>({
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '30 seconds',
  retry: STEPS.retry,
});

/** Job statuses after which the resize has ended for good. */
const ENDED = ['COMPLETED', 'ROLLED_BACK', 'CANCELED'];

interface JobState {
  status: string;
  failureReason: string | null;
}

export async function changeSubscriptionPlan(input: ChangeSubscriptionPlanInput): Promise<PlanChangeState> {
  const state: PlanChangeState = {
    changeId: input.changeId,
    subscriptionId: input.subscriptionId,
    step: 'resizing',
    status: 'RESIZING',
    jobId: null,
    settlement: null,
    invoiceId: null,
    creditNoteId: null,
    failure: null,
  };
  setHandler(planChangeStateQuery, () => state);
  const show = (step: PlanChangeStep, details: string, status?: PlanChangeWorkflowStatus) => {
    state.step = step;
    setCurrentDetails(details);
    if (status && status !== state.status) {
      state.status = status;
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: status }]);
    }
  };
  // The API starts the workflow with its search attributes; one started by hand gets them here.
  if (!workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.SubscriptionId)) {
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.CustomerId, value: input.customerId },
      { key: SEARCH_ATTRIBUTES.SubscriptionId, value: input.subscriptionId },
      { key: SEARCH_ATTRIBUTES.CloudPodId, value: input.podId },
      { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'RESIZING' },
    ]);
  }
  const fail = async (reason: string): Promise<PlanChangeState> => {
    state.failure = reason;
    // Recorded even when the workflow is being canceled: the change must not hold its slot for good.
    await CancellationScope.nonCancellable(() => acts.failPlanChange(input.changeId, reason));
    show('failed', `Plan not changed: ${reason}; nothing was billed`, 'FAILED');
    return state;
  };

  try {
    show('resizing', `Resizing pod ${input.podId}; nothing is billed before the resize succeeds`);
    if (!(await acts.claimPlanChange(input.changeId))) {
      state.failure = 'the change was withdrawn before it started (its start was not confirmed)';
      show('failed', `Plan not changed: ${state.failure}`, 'FAILED');
      return state;
    }
    let jobId: string;
    try {
      ({ jobId } = await acts.requestPlanChangeResize(input.changeId));
    } catch (err) {
      const refusal = refusalOf(err);
      if (refusal === null) throw err;
      return await fail(`the pod refused the plan change: ${refusal}`);
    }
    state.jobId = jobId;
    show('resizing', `Waiting for the pod's job ${jobId}; nothing is billed before it COMPLETED`);
    const job = await awaitResize(jobId, input.deadLetterWaitMs, (deadLettered) =>
      show(
        'waiting-for-operator',
        `Job ${jobId} is dead-lettered (${deadLettered.failureReason ?? 'no reason'}); nothing billed; ` +
          "waiting for an operator's retry",
      ),
    );
    if (job.status !== 'COMPLETED') {
      return await fail(job.failureReason ?? `the resize ended ${job.status}`);
    }

    // Once the pod runs the new plan, money follows it: a cancellation no longer stops the settlement.
    return await CancellationScope.nonCancellable(() => settleAndCollect(input, state, show));
  } catch (err) {
    // Canceled from the UI before the resize ended: the change gives its slot back, billing nothing.
    if (isCancellation(err) && state.status === 'RESIZING') {
      await fail(
        `the change was canceled by an operator${state.jobId ? ` while the pod's job ${state.jobId} ran` : ''}`,
      );
    }
    throw err;
  }
}

type Show = (step: PlanChangeStep, details: string, status?: PlanChangeWorkflowStatus) => void;

/**
 * After the resize COMPLETED: the plan switched and the proration settled (once, by the activity),
 * then an upgrade's invoice charged; unpaid, the subscription is PAST_DUE and dunning collects it.
 */
async function settleAndCollect(
  input: ChangeSubscriptionPlanInput,
  state: PlanChangeState,
  show: Show,
): Promise<PlanChangeState> {
  show('settling', 'Pod resized: switching the plan and settling the proration', 'SETTLING');
  const settled = await acts.settlePlanChange(input.changeId);
  state.settlement = settled.settlement;
  state.creditNoteId = settled.creditNoteId;
  if (settled.settlement !== 'INVOICE' || !settled.invoiceId) {
    const how =
      settled.settlement === 'CREDIT_NOTE'
        ? `credit note ${settled.creditNoteId ?? ''} of ${settled.amount} to the customer's balance`
        : 'nothing to settle';
    show('done', `Plan changed; ${how}`, 'CHANGED');
    return state;
  }

  const number = settled.invoiceNumber ?? settled.invoiceId;
  state.invoiceId = settled.invoiceId;
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.InvoiceId, value: settled.invoiceId }]);
  if (settled.charge) {
    show('charging', `Charging invoice ${number} (${settled.amountDue} due)`, 'CHARGING');
    await billing.chargeInvoice(settled.invoiceId, 1);
  }
  const collected = await acts.settlePlanChangeCollection(input.changeId);
  if (!collected.dunning) {
    show('done', `Plan changed; invoice ${number} issued`, 'CHANGED');
    return state;
  }
  show('starting-dunning', `Invoice ${number} unpaid: PAST_DUE, starting dunning`);
  await startDunning(input, settled.invoiceId, collected.failedAt);
  show(
    'done',
    `Plan changed; invoice ${number} unpaid: PAST_DUE, dunning-${settled.invoiceId} collects it`,
    'PAST_DUE',
  );
  return state;
}

/** The reason of a business refusal from an activity (non-retryable `billing.<kind>`), else null. */
function refusalOf(err: unknown): string | null {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) return null;
  return err.cause.type?.startsWith('billing.') ? err.cause.message : null;
}

/**
 * Waits for the job to end. A DEAD_LETTER job may still be retried by an operator and complete, so
 * it is waited for up to `deadLetterWaitMs` (the pod's own retry window); after that it counts as
 * failed.
 */
async function awaitResize(
  jobId: string,
  deadLetterWaitMs: number,
  onDeadLetter: (job: JobState) => void,
): Promise<JobState> {
  let job: JobState = await watch.awaitPlanChangeJob(jobId, '');
  for (;;) {
    if (ENDED.includes(job.status)) return job;
    if (job.status !== 'DEAD_LETTER') {
      job = await watch.awaitPlanChangeJob(jobId, job.status);
      continue;
    }
    onDeadLetter(job);
    const moved = await withinWindow(() => watch.awaitPlanChangeJob(jobId, 'DEAD_LETTER'), deadLetterWaitMs);
    if (!moved) {
      return {
        status: 'DEAD_LETTER',
        failureReason: `${job.failureReason ?? 'the resize failed'}; not retried within the retry window`,
      };
    }
    job = moved;
  }
}

/** `fn`'s result, or null when it has not finished within `ms` (it is then canceled). */
async function withinWindow<T>(fn: () => Promise<T>, ms: number): Promise<T | null> {
  try {
    return await CancellationScope.withTimeout(ms, fn);
  } catch (err) {
    // A cancellation of the whole workflow is not a timeout.
    if (isCancellation(err) && !CancellationScope.current().consideredCancelled) return null;
    throw err;
  }
}

/** Dunning of the proration invoice, as activation starts it for a first invoice. */
function startDunning(
  input: ChangeSubscriptionPlanInput,
  invoiceId: string,
  failedAt: string | null,
): Promise<void> {
  return startDunningChild({
    invoiceId,
    subscriptionId: input.subscriptionId,
    tenantId: input.tenantId,
    customerId: input.customerId,
    failedAt: failedAt ?? new Date().toISOString(),
  });
}
