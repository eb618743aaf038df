/**
 * `cloudPod` — `cloudpod-<podId>`: the entity workflow of one CloudPod for its whole life.
 *
 * First the provisioning saga (`cloudpods-provision.ts`), then one operation at a time: plan change
 * (update), suspend, unsuspend, terminate, backup, restore (signals), each in its own module. Any
 * dead-lettered job waits for the operator's `retry` update. A terminate that arrives while the pod
 * is still being provisioned stops the provisioning, rolls it back and terminates.
 *
 * This file is the wiring only: message handlers, the wait loop and continueAsNew. The pod's state
 * and its rules live in `cloudpods-pod.ts`.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { backup, restore } from './cloudpods-backup';
import { awaitPlanChange, changePlan } from './cloudpods-change-plan';
import { OperationContext, podActivities } from './cloudpods-context';
import { Pod, podDetails } from './cloudpods-pod';
import { ProvisioningScope, provision } from './cloudpods-provision';
import { suspend, unsuspend } from './cloudpods-suspend';
import { terminate } from './cloudpods-terminate';
import {
  backupSignal,
  changePlanUpdate,
  podStateQuery,
  restoreSignal,
  retryUpdate,
  suspendSignal,
  terminateSignal,
  unsuspendSignal,
  type ChangePlanArgs,
  type CloudPodInput,
  type CloudPodState,
  type PodOperation,
  type PodPolicy,
  type RetryableJob,
} from './messages/cloudpods';

export async function cloudPod(input: CloudPodInput): Promise<CloudPodState> {
  const pod = new Pod(input);
  const ctx = new OperationContext(pod, podActivities(input.policy));
  const provisioning = new ProvisioningScope();
  registerHandlers(pod, provisioning);

  if (!input.carried && !input.resume) {
    await run(ctx, provisioning, { kind: 'PROVISION', jobId: input.provisionJobId });
  }
  for (;;) {
    if (pod.state.status === 'TERMINATED') return closeTerminated(ctx);
    if (!(await waitForWork(pod, input.policy))) return pod.state;
    const op = pod.takeRetry() ?? pod.next();
    if (op) {
      await run(ctx, provisioning, op);
      continue;
    }
    // History is long: carry the state into a fresh run once every handler is done.
    await condition(allHandlersFinished);
    return continueAsNew<typeof cloudPod>({ ...input, carried: pod.carry() });
  }
}

/** Update validators refuse by throwing: a rejected update never reaches history. */
function refuse(problem: string | undefined): void {
  if (problem) throw new Error(problem);
}

function registerHandlers(pod: Pod, provisioning: ProvisioningScope): void {
  setHandler(podStateQuery, () => pod.state);
  setHandler(
    retryUpdate,
    ({ jobId }) => {
      pod.requestRetry(jobId);
      return { jobId };
    },
    { validator: ({ jobId }: { jobId: string }) => refuse(pod.retryRefusal(jobId)) },
  );
  setHandler(suspendSignal, ({ jobId }) => pod.enqueue({ kind: 'SUSPEND', jobId }));
  setHandler(unsuspendSignal, ({ jobId }) => pod.enqueue({ kind: 'UNSUSPEND', jobId }));
  setHandler(terminateSignal, ({ jobId }) => {
    pod.enqueue({ kind: 'TERMINATE', jobId });
    provisioning.stopForTerminate();
  });
  setHandler(backupSignal, ({ jobId, backupId }) => pod.enqueue({ kind: 'BACKUP', jobId, backupId }));
  setHandler(restoreSignal, ({ jobId, backupId }) => pod.enqueue({ kind: 'RESTORE', jobId, backupId }));
  setHandler(changePlanUpdate, (args) => awaitPlanChange(pod, args), {
    validator: (args: ChangePlanArgs) => refuse(pod.planChangeRefusal(args)),
  });
}

/**
 * Waits for an operation, an operator retry or the server's continueAsNew suggestion. A FAILED pod
 * waits only so long; false when its retry window passed, and its workflow then ends.
 */
async function waitForWork(pod: Pod, policy: PodPolicy): Promise<boolean> {
  const wake = () => pod.hasWork() || workflowInfo().continueAsNewSuggested;
  if (pod.state.status !== 'FAILED') {
    await condition(wake);
    return true;
  }
  if (await condition(wake, policy.retryWindowMs)) return true;
  setCurrentDetails(podDetails.retryWindowPassed);
  pod.awaitRetry(null);
  return false;
}

/** Late operations of a terminated pod are closed, not left queued. */
async function closeTerminated(ctx: OperationContext): Promise<CloudPodState> {
  for (const op of ctx.pod.closeQueue()) {
    await ctx.books.finishJob(op.jobId, 'CANCELED', 'TERMINATED', 'the pod is TERMINATED');
  }
  await condition(allHandlersFinished);
  return ctx.pod.state;
}

async function run(ctx: OperationContext, provisioning: ProvisioningScope, job: RetryableJob): Promise<void> {
  const waiting = ctx.pod.supersedeRetry();
  ctx.taken = false;
  try {
    if (job.kind === 'PROVISION') await provision(ctx, provisioning, job.jobId);
    else await runOperation(ctx, job);
  } finally {
    ctx.pod.keepRetryable(waiting, job, ctx.taken);
  }
}

/** One operation, holding the pod's current-job slot while it runs. */
async function runOperation(ctx: OperationContext, op: PodOperation): Promise<void> {
  ctx.pod.startJob(op.jobId, op.kind);
  try {
    await dispatch(ctx, op);
  } finally {
    ctx.pod.endJob();
  }
}

async function dispatch(ctx: OperationContext, op: PodOperation): Promise<void> {
  if (op.kind === 'TERMINATE') return terminate(ctx, op.jobId);
  if (op.kind === 'CHANGE_PLAN') return changePlan(ctx, op);
  const refusal = ctx.pod.operationRefusal(op.kind);
  if (refusal) return ctx.books.finishJob(op.jobId, 'CANCELED', ctx.pod.state.status, refusal);
  switch (op.kind) {
    case 'SUSPEND':
      return suspend(ctx, op.jobId);
    case 'UNSUSPEND':
      return unsuspend(ctx, op);
    case 'BACKUP':
      return backup(ctx, op);
    case 'RESTORE':
      return restore(ctx, op);
  }
}
