/**
 * Suspend: stop the VM, then lock it; a lock that keeps failing undoes the stop, so the status says
 * what the VM is. Unsuspend: one step that unlocks and starts it.
 */
import { CancellationScope } from '@temporalio/workflow';
import { statusAfterFailure, statusPlan } from './cloudpods-pod';
import { describeFailure, runSingleStep, type OperationContext } from './cloudpods-context';
import type { PodOperation } from './messages/cloudpods';
import { Saga } from './saga';

export async function suspend(ctx: OperationContext, jobId: string): Promise<void> {
  const { pod, podId, steps, undos, books } = ctx;
  const before = pod.state.status;
  const { during, succeeded } = statusPlan('SUSPEND', before);
  if (!(await ctx.begin(jobId, during))) return;
  ctx.enter(during);
  ctx.show('Stopping and locking the VM');
  const saga = new Saga('stop VM');
  try {
    await saga.step('stop VM', () => steps.stopVm(podId), { run: () => undos.startVm(podId) });
    await saga.step('lock VM', () => steps.lockVm(podId));
    await books.finishJob(jobId, 'COMPLETED', succeeded, null);
    ctx.enter(succeeded);
  } catch (err) {
    const reason = `suspend: ${saga.current} failed: ${describeFailure(err)}`;
    await CancellationScope.nonCancellable(async () => {
      const undone = await ctx.compensate(jobId, saga);
      // Not undone: the VM stays stopped, which SUSPENDED describes; the operator retries the lock.
      const after = statusAfterFailure('SUSPEND', before, { undone });
      await books.finishJob(jobId, undone ? 'ROLLED_BACK' : 'DEAD_LETTER', after, reason);
      ctx.enter(after);
      if (!undone) pod.awaitRetry({ kind: 'SUSPEND', jobId });
    });
  }
  ctx.showStatus();
}

export function unsuspend(
  ctx: OperationContext,
  op: Extract<PodOperation, { kind: 'UNSUSPEND' }>,
): Promise<void> {
  return runSingleStep(ctx, op, {
    details: 'Unlocking and starting the VM',
    run: () => ctx.steps.unsuspendVm(ctx.podId),
  });
}
