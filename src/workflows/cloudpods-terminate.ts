/**
 * Terminate: a pre-termination backup, then destroy the VM, delete its DNS record and release its
 * capacity. Forward-only once destruction has begun: no step has an undo, and a failure leaves the
 * pod TERMINATING, dead-lettered until an operator retries it.
 */
import { CancellationScope } from '@temporalio/workflow';
import { backsUpBeforeTerminate, podDetails, statusAfterFailure, statusPlan } from './cloudpods-pod';
import { describeFailure, type OperationContext } from './cloudpods-context';
import { Saga } from './saga';

export async function terminate(ctx: OperationContext, jobId: string): Promise<void> {
  const { pod, podId, steps, books } = ctx;
  const before = pod.state.status;
  const { during, succeeded } = statusPlan('TERMINATE', before);
  if (!(await ctx.begin(jobId, during))) return;
  ctx.enter(during);
  // The saga only names the step that failed: nothing here is undone.
  const saga = new Saga('pre-termination backup');
  let destroying = false;
  try {
    // A pod that never came up has nothing to back up; the activity also skips a missing VM.
    if (backsUpBeforeTerminate(before)) {
      ctx.show('Taking the pre-termination backup');
      await saga.step('pre-termination backup', () => steps.takePreTerminationBackup(podId, jobId));
    }
    // From here on terminate only goes forward: the pod never becomes ACTIVE again.
    destroying = true;
    ctx.show('Destroying the VM');
    await saga.step('destroy VM', () => steps.destroyVm(podId));
    ctx.show('Deleting the DNS record');
    await saga.step('delete DNS record', () => steps.deleteDnsRecord(podId));
    await saga.step('release capacity', () => steps.releaseCapacity(podId));
    await books.markPodTerminated(podId, jobId);
    ctx.enter(succeeded);
    ctx.show(podDetails.terminated);
  } catch (err) {
    const reason = `terminate: ${saga.current} failed: ${describeFailure(err)}`;
    const after = statusAfterFailure('TERMINATE', before, { destroying });
    await CancellationScope.nonCancellable(async () => {
      await books.finishJob(jobId, 'DEAD_LETTER', after, reason);
      ctx.enter(after);
      ctx.show(podDetails.awaitingRetry(reason));
      pod.awaitRetry({ kind: 'TERMINATE', jobId });
    });
  }
}
