/**
 * Provisioning: the saga reserve → VM → running → DNS → ACTIVE. Each step registers its undo
 * before it runs; a step that exhausts its retries rolls back in reverse and leaves the pod FAILED,
 * waiting for an operator retry. A terminate that arrives meanwhile stops it and it rolls back.
 */
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import { podDetails, statusAfterFailure, statusPlan } from './cloudpods-pod';
import { describeFailure, type OperationContext } from './cloudpods-context';
import { Saga } from './saga';

/** The scope of a running provisioning saga, so that a terminate signal can stop it. */
export class ProvisioningScope {
  private running: CancellationScope | null = null;
  private stoppedByTerminate = false;

  /** A pod still coming up: stop the provisioning; it rolls back, then the terminate runs. */
  stopForTerminate(): void {
    if (!this.running) return;
    this.stoppedByTerminate = true;
    this.running.cancel();
  }

  open(): CancellationScope {
    const scope = new CancellationScope();
    this.running = scope;
    this.stoppedByTerminate = false;
    return scope;
  }

  close(): void {
    this.running = null;
  }

  /** Whether `err` is the cancellation a terminate caused. */
  stoppedBy(err: unknown): boolean {
    return this.stoppedByTerminate && isCancellation(err);
  }
}

/** The saga's steps, each with the undo registered before it runs. */
async function provisionSteps(ctx: OperationContext, saga: Saga): Promise<void> {
  const { podId, steps, undos } = ctx;
  ctx.show('Reserving node capacity');
  // Capacity a VM still holds must not be released when that VM could not be destroyed.
  const { nodeName } = await saga.step('reserve capacity', () => steps.reserveCapacity(podId), {
    run: () => undos.releaseCapacity(podId),
    needs: 'create VM',
  });
  ctx.show(`Creating the VM on ${nodeName}`);
  await saga.step('create VM', () => steps.createVm(podId), { run: () => undos.destroyVm(podId) });
  ctx.show('Waiting for the VM to run');
  await saga.step('wait for VM running', () => steps.waitForVmRunning(podId));
  ctx.show('Publishing the DNS record');
  await saga.step('create DNS record', () => steps.createDnsRecord(podId), {
    run: () => undos.deleteDnsRecord(podId),
  });
}

/**
 * Provisions the pod (job `jobId`). Cancelled from the UI, it rolls back and rethrows, so the
 * workflow ends cancelled; stopped by a terminate, it rolls back and the terminate runs next.
 */
export async function provision(
  ctx: OperationContext,
  scopes: ProvisioningScope,
  jobId: string,
): Promise<void> {
  const { pod, podId, books } = ctx;
  const { during, succeeded } = statusPlan('PROVISION', pod.state.status);
  pod.startJob(jobId, 'PROVISION');
  if (pod.terminateQueued()) {
    // Deleted before provisioning started: nothing to build, nothing to undo.
    await books.finishJob(
      jobId,
      'CANCELED',
      pod.state.status,
      'the pod was deleted before it was provisioned',
    );
    return;
  }
  if (!(await ctx.begin(jobId, during))) return;
  pod.countProvisionAttempt();
  ctx.enter(during);
  const saga = new Saga('reserve capacity');
  const scope = scopes.open();
  try {
    await scope.run(() => provisionSteps(ctx, saga));
    scopes.close();
    await books.markPodActive(podId, jobId);
    pod.recordProvisioning(null);
    ctx.enter(succeeded);
    ctx.showStatus();
  } catch (err) {
    scopes.close();
    const byTerminate = scopes.stoppedBy(err);
    const reason = byTerminate
      ? 'provisioning stopped: the pod was deleted'
      : isCancellation(err)
        ? `${saga.current} cancelled by an operator`
        : `${saga.current} failed: ${describeFailure(err)}`;
    await CancellationScope.nonCancellable(async () => {
      await ctx.compensate(jobId, saga);
      if (byTerminate) {
        await books.finishJob(jobId, 'CANCELED', during, reason);
        return;
      }
      await books.markProvisionFailed(podId, jobId, reason);
      pod.recordProvisioning(reason);
      ctx.enter(statusAfterFailure('PROVISION', during));
      ctx.show(podDetails.provisionFailed(reason));
      pod.awaitRetry({ kind: 'PROVISION', jobId });
    });
    // Cancelled from the UI: the rollback is done; the workflow ends cancelled.
    if (isCancellation(err) && !byTerminate) throw err;
  } finally {
    pod.endJob();
  }
}
