/**
 * Plan change: reserve the new plan's capacity, resize the VM, record the plan. A failed step rolls
 * the resize and the reservation back; an undo that fails dead-letters the job. The `changePlan`
 * update waits for the outcome and answers with it.
 */
import { ApplicationFailure, CancellationScope, condition } from '@temporalio/workflow';
import type { Resources } from '../domain/cloudpods';
import { FAILURE_TYPES } from '../domain/errors';
import { statusAfterFailure, statusPlan, type Pod } from './cloudpods-pod';
import { describeFailure, type OperationContext } from './cloudpods-context';
import type { ChangePlanArgs, ChangePlanResult, PodOperation } from './messages/cloudpods';
import { Saga } from './saga';

export type ChangePlanOperation = Extract<PodOperation, { kind: 'CHANGE_PLAN' }>;

/** The `changePlan` update's handler: queues the change and answers with its outcome. */
export async function awaitPlanChange(pod: Pod, args: ChangePlanArgs): Promise<ChangePlanResult> {
  pod.enqueue({ kind: 'CHANGE_PLAN', ...args });
  await condition(() => pod.isPlanChangeSettled(args.jobId));
  const outcome = pod.takePlanChangeOutcome(args.jobId);
  if (!outcome?.ok)
    throw ApplicationFailure.nonRetryable(
      outcome?.reason ?? 'plan change failed',
      FAILURE_TYPES.invalidPlanChange,
    );
  return { jobId: args.jobId, resources: outcome.resources };
}

/** Runs the plan change `op`; its outcome is settled on the pod for the waiting update. */
export async function changePlan(ctx: OperationContext, op: ChangePlanOperation): Promise<void> {
  const { pod, podId, steps, undos, books } = ctx;
  const before = pod.state.resources;
  // The pod may have changed since the update was validated.
  const problem = pod.planChangeProblem(op.resources);
  if (problem) {
    await books.finishJob(op.jobId, 'CANCELED', pod.state.status, problem);
    pod.settlePlanChange(op.jobId, { ok: false, reason: problem });
    return;
  }
  const { during, succeeded } = statusPlan('CHANGE_PLAN', pod.state.status);
  if (!(await ctx.begin(op.jobId, during))) {
    pod.settlePlanChange(op.jobId, { ok: false, reason: 'the plan change was cancelled before it started' });
    return;
  }
  ctx.enter(during);
  const saga = new Saga('reserve capacity');
  /** what the VM has after a reverted resize (a grown disk cannot shrink back) */
  let revertedTo: Resources = before;
  try {
    ctx.show('Reserving capacity for the new plan');
    await saga.step('reserve capacity', () => steps.adjustReservation(podId, op.resources), {
      run: () => undos.adjustReservation(podId, revertedTo),
      needs: 'resize VM',
    });
    ctx.show('Resizing the VM');
    await saga.step('resize VM', () => steps.resizeVm(podId, op.resources), {
      run: async () => {
        revertedTo = await undos.revertResize(podId, before);
      },
    });
    await books.applyPlan(podId, op.productId, op.resources);
    await books.finishJob(op.jobId, 'COMPLETED', succeeded, null);
    pod.applyPlan(op.resources);
    ctx.enter(succeeded);
    ctx.showStatus();
    pod.settlePlanChange(op.jobId, { ok: true, resources: op.resources });
  } catch (err) {
    const reason = `plan change: ${saga.current} failed: ${describeFailure(err)}`;
    const after = statusAfterFailure('CHANGE_PLAN', during);
    await CancellationScope.nonCancellable(async () => {
      const undone = await ctx.compensate(op.jobId, saga);
      await books.finishJob(op.jobId, undone ? 'ROLLED_BACK' : 'DEAD_LETTER', after, reason);
      ctx.enter(after);
      if (!undone) pod.awaitRetry(op);
    });
    pod.settlePlanChange(op.jobId, { ok: false, reason });
  }
}
