/**
 * CloudPod operations behind the routes: create (quota-checked insert + workflow start) and
 * per-operation job rows handed to the pod's workflow. Every path either completes or leaves
 * nothing behind.
 */
import { WorkflowUpdateFailedError, isGrpcServiceError, type Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Config } from '../config';
import { Backup, ProvisioningJob, type CloudPod, type Product } from '../db/entities';
import type { EntityManager } from '../db/orm';
import {
  operationProblem,
  planChangeProblem,
  type JobType,
  type QuotaViolation,
  type Resources,
} from '../domain/cloudpods';
import { AppError, conflict, notFound } from '../domain/errors';
import { newId } from '../domain/ids';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../workflows/shared';
import {
  backupSignal,
  changePlanUpdate,
  restoreSignal,
  retryUpdate,
  suspendSignal,
  terminateSignal,
  unsuspendSignal,
  type CloudPodInput,
  type PodPolicy,
} from '../workflows/messages/cloudpods';
import type { cloudPod } from '../workflows/cloudpods';
import { hotQuery } from '../db/hot';
import { insertPodWithJob } from '../db/repositories/cloudpods';
import { startActivationWorkflow } from './activation-start';

export function podPolicy(config: Config): PodPolicy {
  return {
    retryInitialMs: config.PROVISION_RETRY_INITIAL_MS,
    maxAttempts: config.PROVISION_MAX_ATTEMPTS,
    heartbeatTimeoutMs: config.PROVISION_HEARTBEAT_TIMEOUT_MS,
    retryWindowMs: config.PROVISION_RETRY_WINDOW_MS,
  };
}

export function resourcesOf(p: { vcpu: number; memoryMb: number; diskGb: number }): Resources {
  return { vcpu: p.vcpu, memoryMb: p.memoryMb, diskGb: p.diskGb };
}

export interface CreatePodInput {
  tenantId: string;
  customerId: string;
  productId: string;
  slug: string;
  /** create the pod from this backup (of any pod of the tenant, terminated ones included) */
  restoreFromBackupId?: string | null;
  /** the pod is created by this subscription's activation, so no subscription is created with it */
  forSubscription?: string;
}

export interface PodDeps {
  em: EntityManager;
  temporal: Client;
  config: Config;
}

/** What a workflow start and the views need of a pod. */
export type PodRecord = Pick<
  CloudPod,
  'id' | 'slug' | 'hostname' | 'status' | 'vcpu' | 'memoryMb' | 'diskGb' | 'workflowId' | 'createdAt'
> & {
  tenant: { id: string };
  customer: { id: string };
  product: { id: string };
  vmId: null;
  ipAddress: null;
  failureReason: null;
  node: null;
  activatedAt: null;
  terminatedAt: null;
};

/** The subscription a priced pod is created with, as the create answers it. */
export interface PricedPodSubscription {
  id: string;
  status: 'PENDING';
  activationWorkflowId: string;
}

/** What jobView needs of a job. */
export type JobRecord = Pick<
  ProvisioningJob,
  'id' | 'type' | 'status' | 'attempts' | 'maxAttempts' | 'workflowId' | 'createdAt'
> & {
  pod: { id: string };
  failureReason: null;
  currentStep: null;
  stepAttempt: null;
  lastErrorAt: null;
  input: null;
  startedAt: null;
  finishedAt: null;
};

/** SQLSTATE the `cloud_pods_usage` trigger raises for an insert past the tenant's quota. */
const QUOTA_EXCEEDED = 'PQ001';

/** The driver error behind a failed statement (MikroORM wraps it, the pool does not). */
function sqlError(err: unknown): { code?: string; detail?: string; constraint?: string } {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const { code, detail, constraint } = e as { code?: unknown; detail?: unknown; constraint?: unknown };
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
      return {
        code,
        ...(typeof detail === 'string' ? { detail } : {}),
        ...(typeof constraint === 'string' ? { constraint } : {}),
      };
    }
    e = (e as { cause?: unknown }).cause;
  }
  return {};
}

/** The backup a pod is restored from must be the tenant's, completed, unexpired, and fit the plan. */
async function checkRestorable(em: EntityManager, input: CreatePodInput): Promise<void> {
  if (!input.restoreFromBackupId) return;
  const [row] = await em.execute<
    { status: string; expires_at: string | Date | null; size_gb: number | null; disk_gb: number | null }[]
  >(
    `select b.status, b.expires_at, b.size_gb, p.disk_gb
       from backups b left join products p on p.id = ? and p.tenant_id = b.tenant_id
      where b.id = ? and b.tenant_id = ?`,
    [input.productId, input.restoreFromBackupId, input.tenantId],
  );
  const restorable =
    row?.status === 'COMPLETED' && (!row.expires_at || new Date(row.expires_at).getTime() > Date.now());
  if (!row || !restorable) {
    throw new AppError(
      'unprocessable',
      'restore_from_backup_id does not name a restorable backup of this tenant',
      {
        errors: [{ field: 'restore_from_backup_id', message: 'unknown, failed or expired backup' }],
      },
    );
  }
  if (row.disk_gb !== null && (row.size_gb ?? 0) > row.disk_gb) {
    throw new AppError(
      'unprocessable',
      `the backup needs a ${row.size_gb} GB disk; the plan has ${row.disk_gb} GB`,
      {
        errors: [{ field: 'product_id', message: 'disk too small for the backup' }],
      },
    );
  }
}

/**
 * The pod and its job in one statement: no transaction stays open and no lock outlives the insert
 * (the tenant's usage row, which orders its creates, is held for that one statement). Quotas are
 * exact because the trigger that counts the pod checks the quota against the counted total.
 */
async function insertPod(
  em: EntityManager,
  config: Config,
  input: CreatePodInput,
): Promise<{ pod: PodRecord; job: JobRecord; subscription: PricedPodSubscription | null }> {
  await checkRestorable(em, input);
  const podId = newId('pod');
  const subscriptionId = input.forSubscription ? null : newId('subscription');
  const now = new Date();
  let inserted: Awaited<ReturnType<typeof insertPodWithJob>>;
  try {
    inserted = await insertPodWithJob(em, {
      podId,
      jobId: newId('job'),
      tenantId: input.tenantId,
      customerId: input.customerId,
      productId: input.productId,
      slug: input.slug,
      zone: config.DNS_ZONE,
      workflowId: workflowIds.cloudPod(podId),
      restoreFromBackupId: input.restoreFromBackupId ?? null,
      queueName: TASK_QUEUES.provisioning,
      maxAttempts: config.PROVISION_MAX_ATTEMPTS,
      now,
      subscriptionId,
      activationWorkflowId: subscriptionId ? workflowIds.activateSubscription(subscriptionId) : null,
    });
  } catch (err) {
    const sql = sqlError(err);
    if (sql.code === QUOTA_EXCEEDED && sql.detail) {
      const violation = JSON.parse(sql.detail) as QuotaViolation;
      throw new AppError(
        'quota_exceeded',
        `the ${violation.quota} quota is ${violation.limit}; ${violation.used} in use and this pod needs ${violation.requested} more`,
        { quota: violation },
      );
    }
    if (sql.code === '23505' && sql.constraint === 'cloud_pods_tenant_id_slug_unique') {
      throw conflict(`a pod with slug '${input.slug}' already exists`, {
        errors: [{ field: 'slug', message: 'is taken' }],
      });
    }
    throw err;
  }
  if (!inserted.ok) {
    throw inserted.missing === 'customer'
      ? new AppError('unprocessable', 'customer_id does not name a customer of this tenant', {
          errors: [{ field: 'customer_id', message: 'unknown customer' }],
        })
      : new AppError('unprocessable', 'product_id does not name an available product of this tenant', {
          errors: [{ field: 'product_id', message: 'unknown or retired product' }],
        });
  }
  const { pod: p, job: j, subscription: sub } = inserted;
  const pod: PodRecord = {
    id: p.id,
    slug: p.slug,
    hostname: p.hostname,
    status: p.status,
    vcpu: p.vcpu,
    memoryMb: p.memory_mb,
    diskGb: p.disk_gb,
    workflowId: p.workflow_id,
    createdAt: new Date(p.created_at),
    tenant: { id: p.tenant_id },
    customer: { id: p.customer_id },
    product: { id: p.product_id },
    vmId: null,
    ipAddress: null,
    failureReason: null,
    node: null,
    activatedAt: null,
    terminatedAt: null,
  };
  const job: JobRecord = {
    id: j.id,
    type: j.type,
    status: j.status,
    attempts: j.attempts,
    maxAttempts: j.max_attempts,
    workflowId: j.workflow_id,
    createdAt: new Date(j.created_at),
    pod: { id: p.id },
    failureReason: null,
    currentStep: null,
    stepAttempt: null,
    lastErrorAt: null,
    input: null,
    startedAt: null,
    finishedAt: null,
  };
  const subscription = sub
    ? { id: sub.id, status: sub.status, activationWorkflowId: sub.activation_workflow_id }
    : null;
  return { pod, job, subscription };
}

/** What a workflow start needs of a pod: an entity or a freshly inserted record. */
type StartablePod = Pick<
  CloudPod,
  'id' | 'slug' | 'hostname' | 'status' | 'vcpu' | 'memoryMb' | 'diskGb' | 'workflowId'
> & {
  tenant: { id: string };
  customer: { id: string };
};

/** What every start of a pod's workflow carries: search attributes current with the pod, a summary. */
function startOptions(pod: StartablePod) {
  return {
    workflowId: pod.workflowId,
    taskQueue: TASK_QUEUES.provisioning,
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.TenantId, value: pod.tenant.id },
      { key: SEARCH_ATTRIBUTES.CloudPodId, value: pod.id },
      { key: SEARCH_ATTRIBUTES.CustomerId, value: pod.customer.id },
      { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: pod.status },
    ],
    staticSummary: `CloudPod ${pod.hostname} (${pod.id})`,
    staticDetails: `Pod ${pod.slug} of customer ${pod.customer.id}; its status and current plan are in the current details`,
  };
}

/**
 * The workflow input for a pod: provisioning `provisionJobId` while the pod is PENDING (or when an
 * operator retries a provisioning), otherwise resuming the pod as the database has it (its
 * workflow ended: retry window passed, cancelled from the UI).
 */
function workflowInput(pod: StartablePod, config: Config, provisionJobId: string | null): CloudPodInput {
  return {
    podId: pod.id,
    tenantId: pod.tenant.id,
    slug: pod.slug,
    resources: resourcesOf(pod),
    provisionJobId: provisionJobId ?? '',
    policy: podPolicy(config),
    ...(provisionJobId ? {} : { resume: { status: pod.status, resources: resourcesOf(pod) } }),
  };
}

/** Every API call to Temporal has a deadline: an engine that does not answer is a quick 503, never a hung request. */
function engine<T>(deps: { temporal: Client; config: Config }, fn: () => Promise<T>): Promise<T> {
  return deps.temporal.withDeadline(Date.now() + deps.config.TEMPORAL_CALL_TIMEOUT_MS, fn);
}

/** gRPC status UNAVAILABLE: the call did not reach the server. */
const GRPC_UNAVAILABLE = 14;

/** True only for errors that prove the call never reached the workflow; anything else may have landed. */
export function provenUndelivered(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    if (isGrpcServiceError(e) && Number(e.code) === GRPC_UNAVAILABLE) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const engineDown = (detail: string, cause: unknown) =>
  new AppError('unavailable', `the workflow engine could not be reached; ${detail}`, {}, { cause });

/** The latest PROVISION job of a pod (the one a PENDING pod's workflow provisions). */
async function provisionJobOf(em: EntityManager, podId: string): Promise<ProvisioningJob | null> {
  return em.findOne(
    ProvisioningJob,
    { pod: podId, type: 'PROVISION' },
    { orderBy: { createdAt: 'desc', id: 'desc' } },
  );
}

/** Starts the provisioning of a pod; a workflow already running for it is left alone (idempotent by id). */
export async function startPodWorkflow(
  deps: { temporal: Client; config: Config },
  pod: StartablePod,
  provisionJobId: string,
): Promise<void> {
  try {
    await engine(deps, () =>
      deps.temporal.workflow.start<typeof cloudPod>('cloudPod', {
        ...startOptions(pod),
        args: [workflowInput(pod, deps.config, provisionJobId)],
      }),
    );
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

/**
 * Creates a pod: its row and PROVISION job, then its provisioning. A pod of a priced product comes
 * with the PENDING subscription that pays for it, and its provisioning is that subscription's
 * activation (which starts the pod's workflow, and bills the pod once it is ACTIVE), so no priced
 * pod ever runs unbilled.
 */
export async function createPod(
  deps: PodDeps,
  input: CreatePodInput,
): Promise<{ pod: PodRecord; job: JobRecord; subscription: PricedPodSubscription | null }> {
  const { pod, job, subscription } = await insertPod(deps.em, deps.config, input);
  try {
    if (subscription) {
      await startActivationWorkflow(deps, {
        subscriptionId: subscription.id,
        tenantId: input.tenantId,
        customerId: input.customerId,
        podSlug: pod.slug,
      });
    } else {
      await startPodWorkflow(deps, pod, job.id);
    }
  } catch (err) {
    // Nothing half-written: the pod, its job and its subscription go away with the failed start.
    // (Should the start have landed after all, its first step finds nothing and the run ends
    // without side effects.)
    if (subscription) {
      await hotQuery(deps.em, 'subscription_delete_unstarted', 'delete from subscriptions where id = $1', [
        subscription.id,
      ]);
    }
    await hotQuery(deps.em, 'pod_delete_unstarted', 'delete from cloud_pods where id = $1', [pod.id]);
    throw engineDown('the pod was not created', err);
  }
  return { pod, job, subscription };
}

/** Inserts the operation's job; the partial unique indexes turn a concurrent operation into 409. */
async function openJob(
  em: EntityManager,
  pod: CloudPod,
  type: JobType,
  input: Record<string, unknown> | null,
  extra?: Backup,
): Promise<ProvisioningJob> {
  const job = em.create(ProvisioningJob, {
    tenant: pod.tenant,
    pod,
    type,
    queueName: TASK_QUEUES.provisioning,
    workflowId: pod.workflowId,
    input,
  });
  try {
    await em.transactional(async (tx) => {
      tx.persist(job);
      if (extra) tx.persist(extra);
      await tx.flush();
    });
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) {
      em.clear();
      throw conflict(
        type === 'TERMINATE'
          ? 'this pod is already being terminated'
          : 'another operation is in progress on this pod; retry when its job has finished',
      );
    }
    throw err;
  }
  return job;
}

/** Cancels a job that was never delivered; false when the workflow has already begun it. */
async function cancelQueuedJob(em: EntityManager, jobId: string, reason: string): Promise<boolean> {
  const now = new Date();
  const n = await em.nativeUpdate(
    ProvisioningJob,
    { id: jobId, status: 'QUEUED' },
    { status: 'CANCELED', failureReason: reason, finishedAt: now, updatedAt: now },
  );
  return n > 0;
}

export type SignalOperation = 'SUSPEND' | 'UNSUSPEND' | 'TERMINATE' | 'BACKUP' | 'RESTORE';

/**
 * Delivers a queued job to the pod's workflow, starting a run when the pod has none (a PENDING pod
 * whose start was lost provisions, a pod whose workflow ended resumes). Repeatable: the workflow
 * takes each job once.
 */
export async function deliverJob(
  deps: { em: EntityManager; temporal: Client; config: Config },
  pod: CloudPod,
  job: ProvisioningJob,
): Promise<void> {
  const backupId = typeof job.input?.backup_id === 'string' ? job.input.backup_id : '';
  const provisionJobId =
    pod.status === 'PENDING' ? ((await provisionJobOf(deps.em, pod.id))?.id ?? null) : null;
  const signal = {
    SUSPEND: suspendSignal,
    UNSUSPEND: unsuspendSignal,
    TERMINATE: terminateSignal,
    BACKUP: backupSignal,
    RESTORE: restoreSignal,
  }[job.type as SignalOperation];
  if (!signal) throw new Error(`${job.type} jobs are not delivered by signal`);
  await engine(deps, () =>
    deps.temporal.workflow.signalWithStart<typeof cloudPod, [{ jobId: string; backupId: string }]>(
      'cloudPod',
      {
        ...startOptions(pod),
        args: [workflowInput(pod, deps.config, provisionJobId)],
        signal: signal as typeof backupSignal,
        signalArgs: [{ jobId: job.id, backupId }],
      },
    ),
  );
}

/** Opens a job for a signal-driven operation and hands it to the pod's workflow. */
export async function requestOperation(
  deps: { em: EntityManager; temporal: Client; config: Config },
  pod: CloudPod,
  type: SignalOperation,
  extra: { backupId?: string } = {},
): Promise<{ job: ProvisioningJob; backup?: Backup }> {
  const problem = operationProblem(type, pod.status);
  if (problem) throw conflict(problem);
  let backup: Backup | undefined;
  if (type === 'BACKUP') {
    backup = deps.em.create(Backup, { tenant: pod.tenant, pod, kind: 'MANUAL' }, { persist: false });
  }
  if (type === 'RESTORE') {
    const found = await deps.em.findOne(Backup, { id: extra.backupId ?? '', pod: pod.id });
    if (!found) throw notFound('backup');
    if (found.status !== 'COMPLETED')
      throw conflict(`backup ${found.id} is ${found.status}; only COMPLETED backups restore`);
  }
  const backupId = backup?.id ?? extra.backupId;
  const job = await openJob(deps.em, pod, type, backupId ? { backup_id: backupId } : null, backup);
  try {
    await deliverJob(deps, pod, job);
  } catch (err) {
    if (!provenUndelivered(err)) {
      // It may have landed: the job stays QUEUED and the sweeper delivers it again (the workflow
      // takes a job once), so the answer is the same 202 as a clean delivery.
      return backup ? { job, backup } : { job };
    }
    await cancelQueuedJob(deps.em, job.id, 'the pod workflow could not be reached');
    if (backup) await deps.em.nativeDelete(Backup, { id: backup.id });
    throw engineDown('nothing was changed', err);
  }
  return backup ? { job, backup } : { job };
}

/** Opens a CHANGE_PLAN job and hands it to the workflow's update; a rejected update cancels the job. */
export async function requestPlanChange(
  deps: { em: EntityManager; temporal: Client; config: Config },
  pod: CloudPod,
  product: Product,
): Promise<ProvisioningJob> {
  const target = resourcesOf(product);
  const problem = planChangeProblem(pod.status, resourcesOf(pod), target);
  if (problem) throw new AppError(pod.status === 'ACTIVE' ? 'unprocessable' : 'conflict', problem);
  const job = await openJob(deps.em, pod, 'CHANGE_PLAN', { product_id: product.id });
  const update = async () => {
    const handle = await deps.temporal.workflow.getHandle(pod.workflowId).startUpdate(changePlanUpdate, {
      args: [{ jobId: job.id, productId: product.id, resources: target }],
      waitForStage: 'ACCEPTED',
      updateId: job.id,
    });
    // A validator's refusal comes back as the update's outcome, not as an error of startUpdate: read
    // an outcome that is already there without waiting for one (the poll is aborted at once).
    await deps.temporal
      .withAbortSignal(AbortSignal.abort(), () => handle.result())
      .catch((err: unknown) => {
        if (err instanceof WorkflowUpdateFailedError) throw err;
      });
  };
  try {
    try {
      await engine(deps, update);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      // The pod's workflow ended (cancelled from the UI): resume it, then ask again.
      await engine(deps, () =>
        deps.temporal.workflow.start<typeof cloudPod>('cloudPod', {
          ...startOptions(pod),
          args: [workflowInput(pod, deps.config, null)],
        }),
      ).catch((e: unknown) => {
        if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
      });
      await engine(deps, update);
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (err instanceof WorkflowUpdateFailedError) {
      const why = err.cause instanceof Error ? err.cause.message : reason;
      // Refused by the validator: the job never started. (Already finished: it ran; its row says how.)
      if (await cancelQueuedJob(deps.em, job.id, why))
        throw new AppError('conflict', `the pod refused the plan change: ${why}`);
      await deps.em.refresh(job);
      return job;
    }
    // Not confirmed in time: cancel it unless the workflow has already begun it (then it runs: 202).
    if (await cancelQueuedJob(deps.em, job.id, 'the workflow engine did not confirm the plan change in time'))
      throw engineDown('nothing was changed', err);
  }
  return job;
}

/**
 * Operator retry of a dead-lettered job (route and CLI). While the pod's workflow runs, the retry
 * is its `retry` update, whose validator refuses synchronously (409 with the reason); once the
 * workflow has ended it starts a run that provisions again, or re-delivers the operation.
 */
export async function retryJob(
  deps: { em: EntityManager; temporal: Client; config: Config },
  jobId: string,
): Promise<ProvisioningJob> {
  const { em } = deps;
  const job = await em.findOne(
    ProvisioningJob,
    { id: jobId },
    { populate: ['pod', 'pod.tenant', 'pod.customer'] },
  );
  if (!job) throw notFound('job');
  const pod = job.pod;
  if (job.status !== 'DEAD_LETTER')
    throw conflict(`job ${jobId} is ${job.status}; only DEAD_LETTER jobs are retried`);
  if (pod.status === 'TERMINATED') throw conflict(`pod ${pod.id} is TERMINATED; its jobs cannot be retried`);
  const previous = {
    failureReason: job.failureReason,
    deadLetteredAt: job.deadLetteredAt,
    finishedAt: job.finishedAt,
  };
  const reopened = await em.nativeUpdate(
    ProvisioningJob,
    { id: jobId, status: 'DEAD_LETTER' },
    { status: 'QUEUED', finishedAt: null, updatedAt: new Date() },
  );
  if (reopened === 0) throw conflict(`job ${jobId} changed meanwhile; reload it`);
  const restore = () =>
    em.nativeUpdate(ProvisioningJob, { id: jobId, status: 'QUEUED' }, { status: 'DEAD_LETTER', ...previous });
  try {
    await engine(deps, () =>
      deps.temporal.workflow.getHandle(pod.workflowId).executeUpdate(retryUpdate, { args: [{ jobId }] }),
    );
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      await restore();
      const reason = err.cause instanceof Error ? err.cause.message : err.message;
      throw conflict(`the pod refused the retry: ${reason}`);
    }
    if (err instanceof WorkflowNotFoundError) {
      // The workflow has ended (retry window passed): a new run takes the job.
      try {
        if (job.type === 'CHANGE_PLAN') {
          throw conflict(`pod ${pod.id} no longer waits for this plan change; request the plan change again`);
        }
        if (job.type === 'PROVISION') {
          await engine(deps, () =>
            deps.temporal.workflow.start<typeof cloudPod>('cloudPod', {
              ...startOptions(pod),
              args: [workflowInput(pod, deps.config, jobId)],
            }),
          );
        } else await deliverJob(deps, pod, job);
      } catch (startErr) {
        await restore();
        if (startErr instanceof AppError) throw startErr;
        if (startErr instanceof WorkflowExecutionAlreadyStartedError)
          throw conflict(`pod ${pod.id} has a running workflow again; retry the request`);
        throw engineDown('the job stays dead-lettered', startErr);
      }
    } else if (provenUndelivered(err) || (await restore()) > 0) {
      throw engineDown('the job stays dead-lettered', err);
    }
  }
  await em.refresh(job);
  return job;
}

/**
 * Re-delivers work that a crash left between two writes: a PENDING pod whose workflow never
 * started (its PROVISION job QUEUED; a priced pod's subscription activation, which starts it), an
 * operation job still QUEUED (its signal may have been lost).
 * Starting by the pod's workflow id and signalling by job id are idempotent, so it may run any time
 * — at every worker start and then periodically.
 */
export async function sweepStrandedWork(deps: {
  em: EntityManager;
  temporal: Client;
  config: Config;
}): Promise<{ started: number; redelivered: number; canceled: number }> {
  const { em, config } = deps;
  const olderThan = new Date(Date.now() - config.SWEEP_MIN_AGE_MS);
  const jobs = await em.find(
    ProvisioningJob,
    { status: 'QUEUED', createdAt: { $lt: olderThan } },
    { populate: ['pod', 'pod.tenant', 'pod.customer'], orderBy: { createdAt: 'asc' }, limit: 200 },
  );
  let started = 0;
  let redelivered = 0;
  let canceled = 0;
  for (const job of jobs) {
    const pod = job.pod;
    if (job.type === 'PROVISION') {
      if (pod.status !== 'PENDING') continue;
      // A priced pod is provisioned by its subscription's activation, never on its own.
      const [claim] = await em.execute<{ id: string }[]>(
        `select id from subscriptions where pod_id = ? and status = 'PENDING' and activation_workflow_id is not null`,
        [pod.id],
      );
      if (claim) {
        await startActivationWorkflow(deps, {
          subscriptionId: claim.id,
          tenantId: pod.tenant.id,
          customerId: pod.customer.id,
          podSlug: pod.slug,
        });
      } else {
        await startPodWorkflow(deps, pod, job.id);
      }
      started += 1;
    } else if (job.type === 'CHANGE_PLAN') {
      // An update the API never saw accepted: it answered 503 or died; nothing may run it late.
      if (await cancelQueuedJob(em, job.id, 'the plan change was never confirmed by the workflow engine'))
        canceled += 1;
    } else {
      await deliverJob(deps, pod, job);
      redelivered += 1;
    }
  }
  return { started, redelivered, canceled };
}
