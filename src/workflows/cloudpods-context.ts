/**
 * What every CloudPod operation runs with: the pod, its activities on their three retry budgets,
 * and the workflow effects (status search attribute, current details, compensation) through which
 * an operation applies what the pod decides. Also the single-step operation that unsuspend, backup
 * and restore share.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { CloudPodActivities } from '../activities/cloudpods';
import type { PodStatus } from '../domain/cloudpods';
import { FAILURE_TYPES } from '../domain/errors';
import { podDetails, statusAfterFailure, statusPlan, type AtRestOperation, type Pod } from './cloudpods-pod';
import type { PodPolicy } from './messages/cloudpods';
import type { Saga } from './saga';

/** Failure types whose message is written for the tenant; anything else is summarized. */
const READABLE_TYPES: readonly string[] = Object.values(FAILURE_TYPES);

/** What an activity failure is about: the failure its last attempt raised. */
function rootCause(err: unknown): unknown {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  return cause;
}

/** A readable reason for the tenant: business and provider refusals verbatim, anything else summarized. */
export function describeFailure(err: unknown): string {
  const cause = rootCause(err);
  if (cause instanceof ApplicationFailure && cause.type && READABLE_TYPES.includes(cause.type))
    return cause.message;
  return 'it kept failing after its retries (the operator view of the job has the details)';
}

/** The pod's activities, one proxy per retry budget. */
export interface PodActivities {
  /** saga steps: retried on the pod policy, waited for when cancelled */
  steps: CloudPodActivities;
  /** undos: a longer budget than the steps they undo */
  undos: CloudPodActivities;
  /** bookkeeping writes to our own database */
  books: CloudPodActivities;
}

export function podActivities(policy: PodPolicy): PodActivities {
  const stepRetry = {
    initialInterval: policy.retryInitialMs,
    backoffCoefficient: 5,
    maximumInterval: policy.retryInitialMs * 15,
    maximumAttempts: policy.maxAttempts,
  };
  return {
    // A cancelled step is waited for: an undo must never race the step it undoes.
    steps: proxyActivities<CloudPodActivities>({
      startToCloseTimeout: '15 minutes',
      heartbeatTimeout: policy.heartbeatTimeoutMs,
      retry: stepRetry,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }),
    // Undo steps get a longer budget; one that still fails is recorded and raised, never swallowed.
    undos: proxyActivities<CloudPodActivities>({
      startToCloseTimeout: '15 minutes',
      heartbeatTimeout: policy.heartbeatTimeoutMs,
      retry: { ...stepRetry, maximumAttempts: Math.max(10, policy.maxAttempts) },
    }),
    // Bookkeeping writes to our own database retry until they land.
    books: proxyActivities<CloudPodActivities>({
      startToCloseTimeout: '1 minute',
      retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
    }),
  };
}

/** One pod's operations share this: the pod, its activities and the effects they apply. */
export class OperationContext {
  readonly podId: string;
  readonly steps: CloudPodActivities;
  readonly undos: CloudPodActivities;
  readonly books: CloudPodActivities;
  /** whether the running job was taken (its row QUEUED → RUNNING); a cancelled job is not */
  taken = false;

  constructor(
    readonly pod: Pod,
    activities: PodActivities,
  ) {
    this.podId = pod.state.podId;
    this.steps = activities.steps;
    this.undos = activities.undos;
    this.books = activities.books;
  }

  /** Takes the job's row (QUEUED → RUNNING, the pod to `podStatus`); false when it was cancelled. */
  async begin(jobId: string, podStatus: PodStatus): Promise<boolean> {
    this.taken = await this.books.beginJob(jobId, podStatus);
    return this.taken;
  }

  /** Moves the pod to `status` and makes it searchable. */
  enter(status: PodStatus): void {
    upsertSearchAttributes(this.pod.enter(status));
  }

  show(details: string): void {
    setCurrentDetails(details);
  }

  /** The current details at rest: the status and the plan the pod has now. */
  showStatus(): void {
    setCurrentDetails(podDetails.atRest(this.pod.state));
  }

  /**
   * Runs the saga's undos in reverse, each retried on its own budget. An undo whose prerequisite
   * failed is skipped; failures are recorded on the job and raised as a CRITICAL ops event.
   * Returns whether everything was undone.
   */
  async compensate(jobId: string, saga: Saga): Promise<boolean> {
    const { failed, skipped } = await saga.compensate(
      (step) => setCurrentDetails(podDetails.rollingBack(step)),
      (err) => {
        // Undo bookkeeping keeps the raw message: it is operator-only.
        const cause = rootCause(err);
        return cause instanceof Error ? cause.message : String(cause);
      },
    );
    if (failed.length === 0) return true;
    await this.books.reportUndoFailures(this.podId, jobId, failed, skipped);
    return false;
  }
}

/** An operation of one activity: what the operator sees while it runs, and what it does. */
export interface SingleStep {
  details: string;
  run: () => Promise<unknown>;
  /** bookkeeping of a failure beyond the job's row (a backup row marked FAILED) */
  recordFailure?: () => Promise<unknown>;
}

/**
 * Unsuspend, backup, restore: one step each, nothing to undo, dead-lettered for an operator retry
 * on failure, with the pod back in the status it started from.
 */
export async function runSingleStep(
  ctx: OperationContext,
  op: AtRestOperation,
  step: SingleStep,
): Promise<void> {
  const before = ctx.pod.state.status;
  const { during, succeeded } = statusPlan(op.kind, before);
  if (!(await ctx.begin(op.jobId, during))) return;
  ctx.enter(during);
  ctx.show(step.details);
  try {
    await step.run();
    await ctx.books.finishJob(op.jobId, 'COMPLETED', succeeded, null);
    ctx.enter(succeeded);
  } catch (err) {
    const reason = `${op.kind.toLowerCase()} failed: ${describeFailure(err)}`;
    const after = statusAfterFailure(op.kind, before);
    await CancellationScope.nonCancellable(async () => {
      await step.recordFailure?.();
      await ctx.books.finishJob(op.jobId, 'DEAD_LETTER', after, reason);
      ctx.enter(after);
      ctx.pod.awaitRetry(op);
    });
  }
  ctx.showStatus();
}
