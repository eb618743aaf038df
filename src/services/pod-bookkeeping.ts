/**
 * What the pod's workflow records as its steps finish: job and pod status, the VM's id and
 * address, the plan the VM now has, backups, undo failures. Each function is one transaction and
 * repeatable: Temporal retries an activity whose answer was lost, and the retry finds its work
 * done and changes nothing — no second finish time, notification or ops event.
 */
import { LockMode } from '@mikro-orm/core';
import { Backup, CloudPod, OpsEvent, ProvisioningJob, type OpsEventSeverity } from '../db/entities';
import { systemEm, type EntityManager, type MikroORM } from '../db/orm';
import type { JobStatus, PodStatus, Resources } from '../domain/cloudpods';
import { newId } from '../domain/ids';
import { recordNotification } from './notifications';

/** Columns of `cloud_pods` and `provisioning_jobs` a bookkeeping write sets, by column name. */
type Columns = Record<string, string | number | null>;

/**
 * Sets `columns` on one row and moves its `updated_at` — only when a value differs, so a repeated
 * write leaves the row, its timestamps included, as the first left it. `stamps` are set to now()
 * with that change; `firstStamps` keep the time they were first set. Returns whether it changed.
 */
async function change(
  em: EntityManager,
  table: 'cloud_pods' | 'provisioning_jobs',
  id: string,
  columns: Columns,
  opts: { stamps?: string[]; firstStamps?: string[] } = {},
): Promise<boolean> {
  const names = Object.keys(columns);
  const sets = [
    ...names.map((c) => `${c} = ?`),
    ...(opts.stamps ?? []).map((c) => `${c} = now()`),
    ...(opts.firstStamps ?? []).map((c) => `${c} = coalesce(${c}, now())`),
    'updated_at = now()',
  ];
  const values = Object.values(columns);
  const result = await em.execute<{ affectedRows: number }>(
    `update ${table} set ${sets.join(', ')}
      where id = ? and (${names.join(', ')}) is distinct from (${names.map(() => '?').join(', ')})`,
    [...values, id, ...values],
    'run',
  );
  return result.affectedRows > 0;
}

/** A job's status (and reason); a finished job records when, a dead letter when it became one. */
function setJob(em: EntityManager, jobId: string, status: JobStatus, failureReason: string | null = null) {
  const done = status !== 'RUNNING' && status !== 'QUEUED';
  return change(
    em,
    'provisioning_jobs',
    jobId,
    { status, failure_reason: failureReason },
    { stamps: [...(done ? ['finished_at'] : []), ...(status === 'DEAD_LETTER' ? ['dead_lettered_at'] : [])] },
  );
}

export interface OpsEventInput {
  severity: OpsEventSeverity;
  kind: string;
  tenantId: string | null;
  podId: string | null;
  jobId: string | null;
  message: string;
  details: Record<string, unknown>;
  /** one event per key: a retried activity raises it once */
  dedupeKey: string;
}

/** Raises an ops event for the operators, once per `dedupeKey`. */
export async function raiseOpsEvent(em: EntityManager, event: OpsEventInput): Promise<void> {
  await em
    .createQueryBuilder(OpsEvent)
    .insert({ id: newId('event'), createdAt: new Date(), updatedAt: new Date(), ...event })
    .onConflict('dedupe_key')
    .ignore()
    .execute();
}

/**
 * Job QUEUED → RUNNING (attempt counted) and the pod into its in-progress status. Returns false,
 * changing nothing, when the job was cancelled meanwhile (the API gave up delivering it); a job
 * already RUNNING is the same attempt delivered again.
 */
export function beginJob(
  orm: MikroORM,
  jobId: string,
  podStatus: PodStatus,
  runId: string | null,
): Promise<boolean | null> {
  return systemEm(orm).transactional(async (em) => {
    const job = await em.findOne(ProvisioningJob, { id: jobId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!job) return null;
    if (job.status === 'QUEUED') {
      job.status = 'RUNNING';
      job.attempts += 1;
      job.startedAt = new Date();
      job.finishedAt = null;
      job.failureReason = null;
      job.currentStep = null;
      job.stepAttempt = null;
      job.lastError = null;
      job.lastErrorAt = null;
      job.runId = runId;
    } else if (job.status !== 'RUNNING') {
      return false;
    }
    await change(em, 'cloud_pods', job.pod.id, { status: podStatus });
    return true;
  });
}

/** A job's end and the status its pod is left in. */
export async function finishJob(
  orm: MikroORM,
  jobId: string,
  status: JobStatus,
  podStatus: PodStatus,
  failureReason: string | null,
): Promise<void> {
  await systemEm(orm).transactional(async (em) => {
    const job = await em.findOne(ProvisioningJob, { id: jobId });
    if (!job) return;
    await setJob(em, jobId, status, failureReason);
    await change(em, 'cloud_pods', job.pod.id, { status: podStatus, failure_reason: failureReason });
  });
}

/** The step the running job is at, and its attempt: shown to operators while it retries. */
export async function recordStep(orm: MikroORM, podId: string, step: string, attempt: number): Promise<void> {
  await systemEm(orm).execute(
    `update provisioning_jobs set current_step = ?, step_attempt = ?, updated_at = now()
        where pod_id = ? and status = 'RUNNING' and (current_step, step_attempt) is distinct from (?, ?)`,
    [step, attempt, podId, step, attempt],
  );
}

/** The raw error of the running job's last failed attempt, for operators. */
export async function recordStepError(orm: MikroORM, podId: string, message: string): Promise<void> {
  await systemEm(orm).execute(
    `update provisioning_jobs set last_error = ?, last_error_at = now(), updated_at = now()
        where pod_id = ? and status = 'RUNNING'`,
    [message, podId],
  );
}

/** The pod's VM id (null once the VM is destroyed). */
export async function recordVmId(orm: MikroORM, podId: string, vmId: string | null): Promise<void> {
  await change(systemEm(orm), 'cloud_pods', podId, { vm_id: vmId });
}

/** The pod's address (null once its DNS record is gone). */
export async function recordIpAddress(orm: MikroORM, podId: string, ipAddress: string | null): Promise<void> {
  await change(systemEm(orm), 'cloud_pods', podId, { ip_address: ipAddress });
}

/** Pod ACTIVE (activated once), job COMPLETED and the owner told, in one transaction. */
export async function markPodActive(orm: MikroORM, podId: string, jobId: string): Promise<void> {
  await systemEm(orm).transactional(async (em) => {
    const pod = await em.findOneOrFail(CloudPod, { id: podId }, { populate: ['tenant'] });
    await change(
      em,
      'cloud_pods',
      podId,
      { status: 'ACTIVE', failure_reason: null },
      { firstStamps: ['activated_at'] },
    );
    await setJob(em, jobId, 'COMPLETED');
    await recordNotification(em, {
      tenantId: pod.tenant.id,
      customerId: pod.customer.id,
      template: 'cloudpod.active',
      recipient: pod.tenant.ownerEmail,
      subject: `CloudPod ${pod.hostname} is ready`,
      body: `Your CloudPod ${pod.hostname} is running at ${pod.ipAddress ?? 'its address'}.`,
      dedupeKey: `cloudpod.active:${jobId}`,
    });
  });
}

/** The saga gave up: pod FAILED, job DEAD_LETTER, both with the readable reason. */
export async function markProvisionFailed(
  orm: MikroORM,
  podId: string,
  jobId: string,
  reason: string,
): Promise<void> {
  await systemEm(orm).transactional(async (em) => {
    await change(em, 'cloud_pods', podId, { status: 'FAILED', failure_reason: reason });
    await setJob(em, jobId, 'DEAD_LETTER', reason);
  });
}

/**
 * Undos that could not be done: the summary on the job in its own field, and a CRITICAL ops event
 * — an operator must clean up.
 */
export async function recordUndoFailures(
  orm: MikroORM,
  podId: string,
  jobId: string,
  failures: { step: string; reason: string }[],
  summary: string,
  details: Record<string, unknown>,
): Promise<void> {
  await systemEm(orm).transactional(async (em) => {
    const pod = await em.findOne(CloudPod, { id: podId });
    const job = await em.findOne(ProvisioningJob, { id: jobId });
    await change(em, 'provisioning_jobs', jobId, { undo_failure: summary });
    await raiseOpsEvent(em, {
      severity: 'CRITICAL',
      kind: 'undo_failed',
      tenantId: pod?.tenant.id ?? null,
      podId,
      jobId,
      message: `Compensation failed for pod ${podId}: ${summary}. Manual cleanup needed.`,
      details,
      dedupeKey: `undo_failed:${jobId}:${job?.attempts ?? 0}:${failures.map((f) => f.step).join(',')}`,
    });
  });
}

/** The new plan on the pod, once the VM has it. */
export async function applyPlan(
  orm: MikroORM,
  podId: string,
  productId: string,
  to: Resources,
): Promise<void> {
  await change(systemEm(orm), 'cloud_pods', podId, {
    product_id: productId,
    vcpu: to.vcpu,
    memory_mb: to.memoryMb,
    disk_gb: to.diskGb,
  });
}

/** Pod TERMINATED (terminated once), its VM id and address gone, job COMPLETED. */
export async function markPodTerminated(orm: MikroORM, podId: string, jobId: string): Promise<void> {
  await systemEm(orm).transactional(async (em) => {
    await change(
      em,
      'cloud_pods',
      podId,
      { status: 'TERMINATED', vm_id: null, ip_address: null, failure_reason: null },
      { firstStamps: ['terminated_at'] },
    );
    await setJob(em, jobId, 'COMPLETED');
  });
}

/** The pre-termination backup's row for a terminate job: the one a retry finds, or a new one. */
export async function preTerminationBackupRow(
  em: EntityManager,
  pod: CloudPod,
  jobId: string,
): Promise<Backup> {
  const row =
    (await em.findOne(Backup, { jobId })) ??
    em.create(Backup, { tenant: pod.tenant, pod, kind: 'PRE_TERMINATION', jobId });
  await em.flush();
  return row;
}

/** A backup whose artifact exists apart from the VM: restorable until `expiresAt`. */
export async function completeBackup(
  em: EntityManager,
  row: Backup,
  artifact: { backupId: string; sizeGb: number },
  expiresAt: Date,
): Promise<void> {
  row.providerSnapshotId = artifact.backupId;
  row.sizeGb = artifact.sizeGb;
  row.status = 'COMPLETED';
  row.expiresAt = expiresAt;
  await em.flush();
}

/** A backup that could not be taken; one already completed stays completed. */
export async function markBackupFailed(orm: MikroORM, backupId: string): Promise<void> {
  await systemEm(orm).nativeUpdate(
    Backup,
    { id: backupId, status: 'PENDING' },
    { status: 'FAILED', updatedAt: new Date() },
  );
}
