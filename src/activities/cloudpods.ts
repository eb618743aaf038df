/**
 * CloudPod activities. Each side effect is idempotent by pod (or job) id, so Temporal may retry
 * any of them after a crash: a second createVm adopts the first VM, a second release is a no-op.
 * Provider errors a retry cannot fix become non-retryable ApplicationFailures with a stable type.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backup, CloudPod, Notification, ProvisioningJob, Product } from '../db/entities';
import { systemEm, type MikroORM } from '../db/orm';
import {
  NoCapacityError,
  adjustReservation as adjustReservationRow,
  releaseCapacity as releaseCapacityRow,
  reserveCapacity as reserveCapacityRow,
} from '../db/repositories/capacity';
import type { JobStatus, PodStatus, Resources } from '../domain/cloudpods';
import { FAILURE_TYPES } from '../domain/errors';
import { newId } from '../domain/ids';
import type { Logger } from '../logger';
import type { Dns } from '../providers/dns';
import { ProviderError } from '../providers/errors';
import type { Hypervisor, VmRef } from '../providers/hypervisor';

export interface CloudPodActivityDeps {
  orm: MikroORM;
  hypervisor: Hypervisor;
  dns: Dns;
  logger: Logger;
  /** poll interval of waitForVmRunning */
  pollMs?: number;
}

/**
 * Calls a provider while heartbeating (a Proxmox clone can take minutes; the heartbeat is how a
 * lost worker is noticed quickly). Provider errors a retry cannot fix must not burn the budget.
 */
async function provider<T>(run: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat();
  const beat = setInterval(() => ctx.heartbeat(), 1000);
  // A cancelled activity (worker shutting down, workflow cancelled) stops waiting on the provider;
  // the next attempt finds whatever the call did, since every provider call is idempotent.
  const cancelled = new Promise<never>((_, reject) => {
    const signal = ctx.cancellationSignal;
    const onAbort = () =>
      reject(signal.reason instanceof Error ? signal.reason : new Error('activity cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  cancelled.catch(() => undefined);
  try {
    return await Promise.race([run(), cancelled]);
  } catch (err) {
    if (err instanceof ProviderError && !err.retryable) {
      throw ApplicationFailure.nonRetryable(err.message, FAILURE_TYPES.providerRejected, {
        code: err.code ?? null,
      });
    }
    throw err;
  } finally {
    clearInterval(beat);
  }
}

export function createCloudPodActivities({
  orm,
  hypervisor,
  dns,
  logger,
  pollMs = 250,
}: CloudPodActivityDeps) {
  async function loadPod(podId: string): Promise<CloudPod> {
    const pod = await systemEm(orm).findOne(CloudPod, { id: podId }, { populate: ['node', 'tenant'] });
    if (!pod) throw ApplicationFailure.nonRetryable(`pod ${podId} does not exist`, FAILURE_TYPES.podNotFound);
    return pod;
  }

  function vmRef(pod: CloudPod): VmRef {
    return { podId: pod.id, podSlug: pod.slug, node: pod.node?.name ?? '' };
  }

  async function setJob(
    jobId: string,
    status: JobStatus,
    failureReason: string | null = null,
  ): Promise<void> {
    const done = status !== 'RUNNING' && status !== 'QUEUED';
    await systemEm(orm).nativeUpdate(
      ProvisioningJob,
      { id: jobId },
      { status, failureReason, ...(done ? { finishedAt: new Date() } : {}) },
    );
  }

  return {
    /** Job RUNNING (attempt counted) and the pod into its in-progress status. */
    async beginJob(jobId: string, podStatus: PodStatus): Promise<void> {
      const info = Context.current().info;
      const em = systemEm(orm);
      const job = await em.findOne(ProvisioningJob, { id: jobId });
      if (!job) throw ApplicationFailure.nonRetryable(`job ${jobId} does not exist`, FAILURE_TYPES.jobNotFound);
      if (job.status !== 'RUNNING') {
        job.status = 'RUNNING';
        job.attempts += 1;
        job.startedAt = new Date();
        job.finishedAt = null;
        job.failureReason = null;
        job.runId = info.workflowExecution?.runId ?? null;
        await em.flush();
      }
      await em.nativeUpdate(CloudPod, { id: job.pod.id }, { status: podStatus });
    },

    async finishJob(
      jobId: string,
      status: JobStatus,
      podStatus: PodStatus,
      failureReason: string | null,
    ): Promise<void> {
      const em = systemEm(orm);
      const job = await em.findOne(ProvisioningJob, { id: jobId });
      if (!job) return;
      await setJob(jobId, status, failureReason);
      await em.nativeUpdate(CloudPod, { id: job.pod.id }, { status: podStatus, failureReason });
    },

    async reserveCapacity(podId: string): Promise<{ nodeName: string }> {
      try {
        const { nodeName } = await reserveCapacityRow(systemEm(orm), podId);
        return { nodeName };
      } catch (err) {
        // Retryable: capacity frees up as other pods terminate; the step's retry budget bounds it.
        if (err instanceof NoCapacityError)
          throw ApplicationFailure.retryable(err.message, FAILURE_TYPES.noCapacity);
        throw err;
      }
    },

    async releaseCapacity(podId: string): Promise<void> {
      await releaseCapacityRow(systemEm(orm), podId);
    },

    async adjustReservation(podId: string, to: Resources): Promise<void> {
      try {
        await adjustReservationRow(systemEm(orm), podId, to);
      } catch (err) {
        if (err instanceof NoCapacityError)
          throw ApplicationFailure.nonRetryable(err.message, FAILURE_TYPES.noCapacity);
        throw err;
      }
    },

    /** Creates (or adopts) the pod's VM and records its id. */
    async createVm(podId: string): Promise<{ vmId: string }> {
      const pod = await loadPod(podId);
      const vm = await provider(() =>
        hypervisor.createVm({
          ...vmRef(pod),
          hostname: pod.hostname,
          vcpu: pod.vcpu,
          memoryMb: pod.memoryMb,
          diskGb: pod.diskGb,
        }),
      );
      await systemEm(orm).nativeUpdate(CloudPod, { id: podId }, { vmId: vm.vmId });
      return { vmId: vm.vmId };
    },

    /** Polls until the VM runs and has an address, heartbeating so a lost worker is noticed. */
    async waitForVmRunning(podId: string): Promise<{ ipAddress: string }> {
      const pod = await loadPod(podId);
      const ctx = Context.current();
      for (let poll = 1; ; poll++) {
        ctx.heartbeat({ poll });
        const vm = await provider(() => hypervisor.findVm(vmRef(pod)));
        if (!vm) throw new Error(`the VM of pod ${podId} disappeared while starting`);
        if (vm.status === 'running' && vm.ipAddress) {
          await systemEm(orm).nativeUpdate(CloudPod, { id: podId }, { ipAddress: vm.ipAddress });
          return { ipAddress: vm.ipAddress };
        }
        await sleep(pollMs, undefined, { signal: ctx.cancellationSignal });
      }
    },

    async destroyVm(podId: string): Promise<void> {
      const pod = await loadPod(podId);
      await provider(() => hypervisor.destroyVm(vmRef(pod)));
      await systemEm(orm).nativeUpdate(CloudPod, { id: podId }, { vmId: null, ipAddress: null });
    },

    async createDnsRecord(podId: string): Promise<void> {
      const pod = await loadPod(podId);
      if (!pod.ipAddress) throw new Error(`pod ${podId} has no IP address yet`);
      const ip = pod.ipAddress;
      await provider(() => dns.upsertA({ fqdn: pod.hostname, podSlug: pod.slug }, ip));
    },

    async deleteDnsRecord(podId: string): Promise<void> {
      const pod = await loadPod(podId);
      await provider(() => dns.deleteA({ fqdn: pod.hostname, podSlug: pod.slug }));
    },

    async markPodActive(podId: string, jobId: string): Promise<void> {
      const em = systemEm(orm);
      const pod = await loadPod(podId);
      await em.nativeUpdate(
        CloudPod,
        { id: podId },
        { status: 'ACTIVE', activatedAt: new Date(), failureReason: null },
      );
      await setJob(jobId, 'COMPLETED');
      await em
        .createQueryBuilder(Notification)
        .insert({
          id: newId('notification'),
          tenant: pod.tenant.id,
          template: 'cloudpod.active',
          recipient: pod.tenant.ownerEmail,
          subject: `CloudPod ${pod.hostname} is ready`,
          body: `Your CloudPod ${pod.hostname} is running at ${pod.ipAddress ?? 'its address'}.`,
          status: 'PENDING',
          dedupeKey: `cloudpod.active:${jobId}`,
          createdAt: new Date(),
        })
        .onConflict('dedupe_key')
        .ignore()
        .execute();
    },

    /** The saga gave up: pod FAILED, job DEAD_LETTER, both with the readable reason. */
    async markProvisionFailed(podId: string, jobId: string, reason: string): Promise<void> {
      await systemEm(orm).nativeUpdate(CloudPod, { id: podId }, { status: 'FAILED', failureReason: reason });
      await setJob(jobId, 'DEAD_LETTER', reason);
    },

    /** An undo kept failing after its own retries: leave a loud trace for operators. */
    async reportUndoFailure(podId: string, step: string, reason: string): Promise<void> {
      logger.fatal(
        { podId, step, reason, severity: 'CRITICAL' },
        'compensation failed; manual cleanup needed',
      );
      await systemEm(orm).nativeUpdate(
        CloudPod,
        { id: podId },
        { failureReason: `undo of ${step} failed: ${reason}` },
      );
    },

    async suspendVm(podId: string): Promise<void> {
      const pod = await loadPod(podId);
      await provider(() => hypervisor.stopVm(vmRef(pod)));
      await provider(() => hypervisor.setLocked(vmRef(pod), true));
    },

    async unsuspendVm(podId: string): Promise<void> {
      const pod = await loadPod(podId);
      await provider(() => hypervisor.setLocked(vmRef(pod), false));
      await provider(() => hypervisor.startVm(vmRef(pod)));
    },

    async resizeVm(podId: string, to: Resources): Promise<void> {
      const pod = await loadPod(podId);
      await provider(() => hypervisor.resizeVm(vmRef(pod), to));
    },

    /** Records the new plan on the pod once the VM has it. */
    async applyPlan(podId: string, productId: string, to: Resources): Promise<void> {
      const em = systemEm(orm);
      await em.nativeUpdate(
        CloudPod,
        { id: podId },
        {
          product: em.getReference(Product, productId),
          vcpu: to.vcpu,
          memoryMb: to.memoryMb,
          diskGb: to.diskGb,
        },
      );
    },

    /** Snapshots the VM into `backupId` (created by the API) or a pre-termination backup keyed by job. */
    async takeBackup(
      podId: string,
      backup: { backupId: string } | { preTerminationJobId: string },
    ): Promise<string> {
      const em = systemEm(orm);
      const pod = await loadPod(podId);
      let row: Backup | null;
      if ('backupId' in backup) {
        row = await em.findOne(Backup, { id: backup.backupId });
        if (!row)
          throw ApplicationFailure.nonRetryable(`backup ${backup.backupId} does not exist`, FAILURE_TYPES.backupNotFound);
      } else {
        const snapshotName = `pre-termination-${backup.preTerminationJobId}`;
        row =
          (await em.findOne(Backup, { pod: podId, providerSnapshotId: snapshotName })) ??
          em.create(Backup, {
            tenant: pod.tenant,
            pod,
            kind: 'PRE_TERMINATION',
            providerSnapshotId: snapshotName,
          });
        await em.flush();
      }
      const snapshot = await provider(() =>
        hypervisor.snapshotVm(vmRef(pod), row.providerSnapshotId ?? row.id),
      );
      row.providerSnapshotId = snapshot.snapshotId;
      row.sizeGb = snapshot.sizeGb;
      row.status = 'COMPLETED';
      await em.flush();
      return row.id;
    },

    async markBackupFailed(backupId: string): Promise<void> {
      await systemEm(orm).nativeUpdate(Backup, { id: backupId, status: 'PENDING' }, { status: 'FAILED' });
    },

    async restoreBackup(podId: string, backupId: string): Promise<void> {
      const pod = await loadPod(podId);
      const row = await systemEm(orm).findOne(Backup, { id: backupId, pod: podId, status: 'COMPLETED' });
      if (!row?.providerSnapshotId) {
        throw ApplicationFailure.nonRetryable(
          `backup ${backupId} is not a completed backup of this pod`,
          FAILURE_TYPES.backupNotFound,
        );
      }
      const snapshotId = row.providerSnapshotId;
      await provider(() => hypervisor.restoreSnapshot(vmRef(pod), snapshotId));
    },

    async markPodTerminated(podId: string, jobId: string): Promise<void> {
      await systemEm(orm).nativeUpdate(
        CloudPod,
        { id: podId },
        { status: 'TERMINATED', terminatedAt: new Date(), vmId: null, ipAddress: null },
      );
      await setJob(jobId, 'COMPLETED');
    },
  };
}

export type CloudPodActivities = ReturnType<typeof createCloudPodActivities>;
