/**
 * CloudPod activities. Each side effect is idempotent by pod (or job) id, so Temporal may retry
 * any of them after a crash: a second createVm adopts the first VM, a second release is a no-op,
 * every undo treats "nothing to undo" as success.
 *
 * Failures are sorted: provider refusals are non-retryable with a stable type; provider failures a
 * retry may fix count against the step's attempts; an outage of our own database is waited out
 * inside the attempt (heartbeating), so it never spends the provider's retry budget.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backup, CloudPod, ProvisioningJob } from '../db/entities';
import { systemEm, type EntityManager, type MikroORM } from '../db/orm';
import {
  NoCapacityError,
  adjustReservation as adjustReservationRow,
  releaseCapacity as releaseCapacityRow,
  reserveCapacity as reserveCapacityRow,
} from '../db/repositories/capacity';
import { isDatabaseUnavailable } from '../db/unavailable';
import * as records from '../services/pod-bookkeeping';
import type { JobStatus, PodStatus, Resources } from '../domain/cloudpods';
import { FAILURE_TYPES } from '../domain/errors';
import type { Logger } from '../logger';
import type { Dns } from '../providers/dns';
import { ProviderError } from '../providers/errors';
import type { Hypervisor, VmInfo, VmRef } from '../providers/hypervisor';

export interface CloudPodActivityDeps {
  orm: MikroORM;
  hypervisor: Hypervisor;
  dns: Dns;
  logger: Logger;
  /** poll interval of waitForVmRunning */
  pollMs?: number;
  /** how long backups stay restorable (BACKUP_RETENTION_DAYS) */
  backupRetentionDays?: number;
}

/** Readable step names, shown on the job while the step runs or retries. */
const STEP_NAMES: Record<string, string> = {
  reserveCapacity: 'reserve capacity',
  createVm: 'create VM',
  waitForVmRunning: 'wait for VM running',
  createDnsRecord: 'create DNS record',
  releaseCapacity: 'release capacity',
  destroyVm: 'destroy VM',
  deleteDnsRecord: 'delete DNS record',
  adjustReservation: 'reserve capacity',
  resizeVm: 'resize VM',
  revertResize: 'undo resize VM',
  stopVm: 'stop VM',
  lockVm: 'lock VM',
  startVm: 'start VM',
  unsuspendVm: 'unlock and start VM',
  takeBackup: 'backup',
  takePreTerminationBackup: 'pre-termination backup',
  restoreBackup: 'restore backup',
};

/** Pre-termination backups are named after their job, within Proxmox's 40-character limit. */
export function preTerminationBackupName(jobId: string): string {
  return `pt-${jobId.replace(/_/g, '-')}`.slice(0, 40);
}

/**
 * Calls a provider while heartbeating (a Proxmox clone can take minutes; the heartbeat is how a
 * lost worker is noticed quickly). The call is never abandoned half-way: a cancellation is honoured
 * once it returns, so an undo never races the step it undoes.
 */
async function provider<T>(run: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat();
  const beat = setInterval(() => ctx.heartbeat(), 1000);
  try {
    const result = await run();
    if (ctx.cancellationSignal.aborted) throw new CancelledFailure('activity cancelled');
    return result;
  } catch (err) {
    if (err instanceof ProviderError) {
      // The message reaches the tenant (failure_reason): a network failure's address and port stay
      // in the details, which only operators see (the job's last_error, the Temporal UI).
      const details = { code: err.code ?? null, raw: err.message };
      const message =
        err.code === 'NETWORK'
          ? `${err.provider} ${err.operation}: the provider could not be reached`
          : err.message;
      if (!err.retryable)
        throw ApplicationFailure.nonRetryable(message, FAILURE_TYPES.providerRejected, details);
      const { retryAfterMs } = err;
      throw ApplicationFailure.create({
        message,
        type: FAILURE_TYPES.providerFailed,
        details: [details],
        ...(retryAfterMs ? { nextRetryDelay: retryAfterMs } : {}),
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
  backupRetentionDays = 30,
}: CloudPodActivityDeps) {
  /**
   * The body of a saga step: records the step and its attempt on the pod's running job, records the
   * raw error (operator-only) when the attempt fails, and waits out an outage of our own database
   * inside the attempt, heartbeating, so it does not count as a failed attempt.
   */
  async function step<T>(podId: string, body: () => Promise<T>): Promise<T> {
    const ctx = Context.current();
    const { activityType, attempt } = ctx.info;
    const name = STEP_NAMES[activityType] ?? activityType;
    let outageLogged = false;
    for (let wait = 250; ; wait = Math.min(wait * 2, 5000)) {
      try {
        await records.recordStep(orm, podId, name, attempt);
        return await body();
      } catch (err) {
        if (isDatabaseUnavailable(err)) {
          if (!outageLogged) {
            logger.warn({ podId, step: name }, 'database unavailable; the step waits for it');
            outageLogged = true;
          }
          const beat = setInterval(() => ctx.heartbeat(), 1000);
          try {
            ctx.heartbeat();
            await sleep(wait, undefined, { signal: ctx.cancellationSignal });
          } finally {
            clearInterval(beat);
          }
          continue;
        }
        await recordStepError(podId, err).catch(() => undefined);
        throw err;
      }
    }
  }

  async function recordStepError(podId: string, err: unknown): Promise<void> {
    const raw =
      err instanceof ApplicationFailure
        ? (err.details?.[0] as { raw?: unknown } | undefined)?.raw
        : undefined;
    const message = (typeof raw === 'string' ? raw : err instanceof Error ? err.message : String(err)).slice(
      0,
      2000,
    );
    await records.recordStepError(orm, podId, message);
  }

  async function loadPod(podId: string, em: EntityManager = systemEm(orm)): Promise<CloudPod> {
    const pod = await em.findOne(CloudPod, { id: podId }, { populate: ['node', 'tenant'] });
    if (!pod) throw ApplicationFailure.nonRetryable(`pod ${podId} does not exist`, FAILURE_TYPES.podNotFound);
    return pod;
  }

  function vmRef(pod: CloudPod): VmRef {
    return {
      podId: pod.id,
      podSlug: pod.slug,
      node: pod.node?.name ?? '',
      vmId: pod.vmId ?? null,
      customerId: pod.customer.id,
    };
  }

  /**
   * The pod's VM, as an operation sees it. A VM that is suspended yet running (someone with
   * administrator rights on the hypervisor started it) is recorded as an ops event for the
   * operators; reconciliation will stop it again.
   */
  async function inspectVm(pod: CloudPod): Promise<VmInfo | null> {
    const vm = await provider(() => hypervisor.findVm(vmRef(pod)));
    if (vm?.suspended && vm.status !== 'stopped') {
      const job = await systemEm(orm).findOne(ProvisioningJob, { pod: pod.id, status: 'RUNNING' });
      await records.raiseOpsEvent(systemEm(orm), {
        severity: 'HIGH',
        kind: 'suspended_vm_running',
        tenantId: pod.tenant.id,
        podId: pod.id,
        jobId: job?.id ?? null,
        message: `The VM of suspended pod ${pod.id} is running: it was started outside Podplane.`,
        details: { vmId: vm.vmId, node: vm.node, status: vm.status },
        dedupeKey: `suspended_vm_running:${pod.id}:${job?.id ?? 'none'}`,
      });
      logger.warn({ podId: pod.id, vmId: vm.vmId }, 'suspended VM found running');
    }
    return vm;
  }

  async function backupArtifact(
    em: EntityManager,
    pod: CloudPod,
    row: Backup,
    name: string,
  ): Promise<string> {
    const artifact = await provider(() => hypervisor.backupVm(vmRef(pod), name));
    // The backup must exist apart from the VM before anything relies on it (a destroy follows).
    const found = await provider(() => hypervisor.findBackup(artifact.backupId));
    if (!found) throw new Error(`backup ${artifact.backupId} was reported but cannot be found`);
    await records.completeBackup(em, row, artifact, new Date(Date.now() + backupRetentionDays * 86_400_000));
    return row.id;
  }

  /**
   * The VM runs, unsuspended; it is unsuspended only if suspended (the suspension may be the very
   * call that keeps failing).
   */
  async function unlockAndStart(podId: string): Promise<void> {
    const pod = await loadPod(podId);
    const vm = await inspectVm(pod);
    if (vm?.suspended) await provider(() => hypervisor.setSuspended(vmRef(pod), false));
    await provider(() => hypervisor.startVm(vmRef(pod)));
  }

  return {
    /**
     * Job QUEUED → RUNNING (attempt counted) and the pod into its in-progress status. Returns false,
     * changing nothing, when the job was cancelled meanwhile (the API gave up delivering it).
     */
    async beginJob(jobId: string, podStatus: PodStatus): Promise<boolean> {
      const runId = Context.current().info.workflowExecution?.runId ?? null;
      const begun = await records.beginJob(orm, jobId, podStatus, runId);
      if (begun === null)
        throw ApplicationFailure.nonRetryable(`job ${jobId} does not exist`, FAILURE_TYPES.jobNotFound);
      return begun;
    },

    async finishJob(
      jobId: string,
      status: JobStatus,
      podStatus: PodStatus,
      failureReason: string | null,
    ): Promise<void> {
      await records.finishJob(orm, jobId, status, podStatus, failureReason);
    },

    async reserveCapacity(podId: string): Promise<{ nodeName: string }> {
      return step(podId, async () => {
        try {
          const { nodeName } = await reserveCapacityRow(systemEm(orm), podId);
          return { nodeName };
        } catch (err) {
          // Retryable: capacity frees up as other pods terminate; the step's retry budget bounds it.
          if (err instanceof NoCapacityError)
            throw ApplicationFailure.retryable(err.message, FAILURE_TYPES.noCapacity);
          throw err;
        }
      });
    },

    async releaseCapacity(podId: string): Promise<void> {
      await step(podId, () => releaseCapacityRow(systemEm(orm), podId));
    },

    async adjustReservation(podId: string, to: Resources): Promise<void> {
      await step(podId, async () => {
        try {
          await adjustReservationRow(systemEm(orm), podId, to);
        } catch (err) {
          if (err instanceof NoCapacityError)
            throw ApplicationFailure.nonRetryable(err.message, FAILURE_TYPES.noCapacity);
          throw err;
        }
      });
    },

    /** Creates (or adopts) the pod's VM — from its backup when the pod restores one — and records its id. */
    async createVm(podId: string): Promise<{ vmId: string }> {
      return step(podId, async () => {
        const em = systemEm(orm);
        const pod = await loadPod(podId, em);
        let fromBackupId: string | null = null;
        if (pod.restoreFromBackupId) {
          const backup = await em.findOne(Backup, { id: pod.restoreFromBackupId, status: 'COMPLETED' });
          if (!backup?.providerSnapshotId)
            throw ApplicationFailure.nonRetryable(
              `backup ${pod.restoreFromBackupId} is no longer restorable`,
              FAILURE_TYPES.backupNotFound,
            );
          fromBackupId = backup.providerSnapshotId;
        }
        // The VM id is recorded before the VM is made, so a retry looks it up instead of cloning again.
        const reserve = async () => {
          const vmId = await hypervisor.reserveVmId(vmRef(pod));
          await records.recordVmId(orm, podId, vmId);
          pod.vmId = vmId;
        };
        const create = () =>
          hypervisor.createVm({
            ...vmRef(pod),
            hostname: pod.hostname,
            vcpu: pod.vcpu,
            memoryMb: pod.memoryMb,
            diskGb: pod.diskGb,
            fromBackupId,
          });
        const vm = await provider(async () => {
          if (!pod.vmId) await reserve();
          try {
            return await create();
          } catch (err) {
            // Someone took the id between the reservation and the clone: reserve another one.
            if (!(err instanceof ProviderError) || err.code !== 'VMID_TAKEN') throw err;
            await reserve();
            return create();
          }
        });
        if (vm.vmId !== pod.vmId) await records.recordVmId(orm, podId, vm.vmId);
        return { vmId: vm.vmId };
      });
    },

    /** Polls until the VM runs and has an address, heartbeating so a lost worker is noticed. */
    async waitForVmRunning(podId: string): Promise<{ ipAddress: string }> {
      return step(podId, async () => {
        const pod = await loadPod(podId);
        const ctx = Context.current();
        for (let poll = 1; ; poll++) {
          ctx.heartbeat({ poll });
          const vm = await provider(() => hypervisor.findVm(vmRef(pod)));
          if (!vm) throw new Error(`the VM of pod ${podId} disappeared while starting`);
          if (vm.status === 'running' && vm.ipAddress) {
            await records.recordIpAddress(orm, podId, vm.ipAddress);
            return { ipAddress: vm.ipAddress };
          }
          await sleep(pollMs, undefined, { signal: ctx.cancellationSignal });
        }
      });
    },

    /** Destroys the pod's VM; a VM that does not exist is already destroyed. */
    async destroyVm(podId: string): Promise<void> {
      await step(podId, async () => {
        const pod = await loadPod(podId);
        await provider(() => hypervisor.destroyVm(vmRef(pod)));
        await records.recordVmId(orm, podId, null);
      });
    },

    async createDnsRecord(podId: string): Promise<void> {
      await step(podId, async () => {
        const pod = await loadPod(podId);
        if (!pod.ipAddress) throw new Error(`pod ${podId} has no IP address yet`);
        const ip = pod.ipAddress;
        await provider(() => dns.upsertA({ fqdn: pod.hostname, podSlug: pod.slug }, ip));
      });
    },

    /** Deletes the pod's record; a record that does not exist is already deleted. */
    async deleteDnsRecord(podId: string): Promise<void> {
      await step(podId, async () => {
        const pod = await loadPod(podId);
        await provider(() => dns.deleteA({ fqdn: pod.hostname, podSlug: pod.slug }));
        await records.recordIpAddress(orm, podId, null);
      });
    },

    /** Pod ACTIVE, job COMPLETED and the notification, in one transaction; repeatable. */
    async markPodActive(podId: string, jobId: string): Promise<void> {
      await records.markPodActive(orm, podId, jobId);
    },

    /** The saga gave up: pod FAILED, job DEAD_LETTER, both with the readable reason. */
    async markProvisionFailed(podId: string, jobId: string, reason: string): Promise<void> {
      await records.markProvisionFailed(orm, podId, jobId, reason);
    },

    /**
     * Undos that could not be done (and those skipped because they depended on them): recorded on
     * the job in its own field and raised as a CRITICAL ops event — an operator must clean up.
     */
    async reportUndoFailures(
      podId: string,
      jobId: string,
      failures: { step: string; reason: string }[],
      skipped: string[],
    ): Promise<void> {
      const summary = [
        ...failures.map((f) => `undo of ${f.step} failed: ${f.reason}`),
        ...(skipped.length ? [`not undone because of it: ${skipped.join(', ')}`] : []),
      ].join('; ');
      await records.recordUndoFailures(orm, podId, jobId, failures, summary, { failures, skipped });
      logger.fatal(
        { podId, jobId, failures, skipped, severity: 'CRITICAL' },
        'compensation failed; manual cleanup needed',
      );
    },

    async stopVm(podId: string): Promise<void> {
      await step(podId, async () => {
        const pod = await loadPod(podId);
        await provider(() => hypervisor.stopVm(vmRef(pod)));
      });
    },

    async lockVm(podId: string): Promise<void> {
      await step(podId, async () => {
        const pod = await loadPod(podId);
        await provider(() => hypervisor.setSuspended(vmRef(pod), true));
      });
    },

    /** Undo of a stop: the VM runs again, as it did before the suspension began. */
    async startVm(podId: string): Promise<void> {
      await step(podId, () => unlockAndStart(podId));
    },

    async unsuspendVm(podId: string): Promise<void> {
      await step(podId, () => unlockAndStart(podId));
    },

    async resizeVm(podId: string, to: Resources): Promise<void> {
      await step(podId, async () => {
        const pod = await loadPod(podId);
        await provider(() => hypervisor.resizeVm(vmRef(pod), to));
      });
    },

    /**
     * Undo of a resize: cores and memory back to `before`; a disk that already grew stays grown
     * (disks never shrink). Returns what the VM has afterwards, which the reservation then matches.
     */
    async revertResize(podId: string, before: Resources): Promise<Resources> {
      return step(podId, async () => {
        const pod = await loadPod(podId);
        const vm = await provider(() => hypervisor.findVm(vmRef(pod)));
        if (!vm) return before;
        const target = { ...before, diskGb: Math.max(before.diskGb, vm.diskGb) };
        await provider(() => hypervisor.resizeVm(vmRef(pod), target));
        return target;
      });
    },

    /** Records the new plan on the pod once the VM has it. */
    async applyPlan(podId: string, productId: string, to: Resources): Promise<void> {
      await records.applyPlan(orm, podId, productId, to);
    },

    /** Backs the VM up into the `backupId` row (created by the API): an artifact apart from the VM. */
    async takeBackup(podId: string, backupId: string): Promise<string> {
      return step(podId, async () => {
        const em = systemEm(orm);
        const pod = await loadPod(podId, em);
        const row = await em.findOne(Backup, { id: backupId });
        if (!row)
          throw ApplicationFailure.nonRetryable(
            `backup ${backupId} does not exist`,
            FAILURE_TYPES.backupNotFound,
          );
        if (row.status === 'COMPLETED') return row.id;
        await inspectVm(pod);
        return backupArtifact(em, pod, row, row.id);
      });
    },

    /**
     * The pre-termination backup, keyed by the terminate job (a retry finds its row), verified to
     * exist apart from the VM before the destroy that follows. No VM: nothing to back up.
     */
    async takePreTerminationBackup(podId: string, jobId: string): Promise<string | null> {
      return step(podId, async () => {
        const em = systemEm(orm);
        const pod = await loadPod(podId, em);
        const existing = await em.findOne(Backup, { jobId });
        if (existing?.status === 'COMPLETED') return existing.id;
        const vm = await inspectVm(pod);
        if (!vm) return null;
        const row = existing ?? (await records.preTerminationBackupRow(em, pod, jobId));
        return backupArtifact(em, pod, row, preTerminationBackupName(jobId));
      });
    },

    async markBackupFailed(backupId: string): Promise<void> {
      await records.markBackupFailed(orm, backupId);
    },

    async restoreBackup(podId: string, backupId: string): Promise<void> {
      await step(podId, async () => {
        const pod = await loadPod(podId);
        const row = await systemEm(orm).findOne(Backup, {
          id: backupId,
          tenant: pod.tenant.id,
          status: 'COMPLETED',
        });
        if (!row?.providerSnapshotId) {
          throw ApplicationFailure.nonRetryable(
            `backup ${backupId} is not a completed backup of this tenant`,
            FAILURE_TYPES.backupNotFound,
          );
        }
        const artifact = row.providerSnapshotId;
        await provider(() => hypervisor.restoreBackup(vmRef(pod), artifact));
      });
    },

    async markPodTerminated(podId: string, jobId: string): Promise<void> {
      await records.markPodTerminated(orm, podId, jobId);
    },
  };
}

export type CloudPodActivities = ReturnType<typeof createCloudPodActivities>;
