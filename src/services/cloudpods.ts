/**
 * CloudPod operations behind the routes: create (quota-checked insert + workflow start) and
 * per-operation job rows handed to the pod's workflow. Every path either completes or leaves
 * nothing behind.
 */
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Config } from '../config';
import { Backup, CloudPod, Customer, Product, ProvisioningJob, Tenant, TenantQuota } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { DEFAULT_QUOTAS } from '../domain/tenants';
import {
  operationProblem,
  planChangeProblem,
  podHostname,
  quotaViolation,
  type JobType,
  type Resources,
} from '../domain/cloudpods';
import { AppError, conflict, notFound } from '../domain/errors';
import { newId } from '../domain/ids';
import {
  SEARCH_ATTRIBUTES,
  TASK_QUEUES,
  backupSignal,
  changePlanUpdate,
  restoreSignal,
  suspendSignal,
  terminateSignal,
  unsuspendSignal,
  workflowIds,
  type CloudPodInput,
  type PodPolicy,
} from '../workflows/shared';
import type { cloudPod } from '../workflows/cloudpods';

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
}

export interface PodDeps {
  em: EntityManager;
  temporal: Client;
  config: Config;
}

/** Quota check and insert in one transaction with the tenant's quota row locked, so racing creates cannot overshoot. */
async function insertPod(
  em: EntityManager,
  config: Config,
  input: CreatePodInput,
): Promise<{ pod: CloudPod; job: ProvisioningJob }> {
  return em.transactional(async (tx) => {
    const tenant = await tx.findOneOrFail(Tenant, { id: input.tenantId });
    const customer = await tx.findOne(Customer, {
      id: input.customerId,
      tenant: input.tenantId,
      deletedAt: null,
    });
    if (!customer) {
      throw new AppError('unprocessable', 'customer_id does not name a customer of this tenant', {
        errors: [{ field: 'customer_id', message: 'unknown customer' }],
      });
    }
    const product = await tx.findOne(Product, {
      id: input.productId,
      tenant: input.tenantId,
      deletedAt: null,
    });
    if (!product) {
      throw new AppError('unprocessable', 'product_id does not name an available product of this tenant', {
        errors: [{ field: 'product_id', message: 'unknown or retired product' }],
      });
    }
    // tx.execute runs inside the transaction, so the lock holds until commit.
    await tx.execute('select 1 from tenant_quotas where tenant_id = ? for update', [input.tenantId]);
    const quota = await tx.findOne(TenantQuota, { tenant: input.tenantId });
    const [usage] = await tx.execute<{ pods: number; vcpu: number; memory_mb: number; disk_gb: number }[]>(
      `select count(*)::int as pods, coalesce(sum(vcpu), 0)::int as vcpu, coalesce(sum(memory_mb), 0)::int as memory_mb,
              coalesce(sum(disk_gb), 0)::int as disk_gb
         from cloud_pods where tenant_id = ? and status <> 'TERMINATED' and deleted_at is null`,
      [input.tenantId],
    );
    const requested = resourcesOf(product);
    const violation = quotaViolation(
      quota ?? DEFAULT_QUOTAS,
      {
        pods: usage?.pods ?? 0,
        vcpu: usage?.vcpu ?? 0,
        memoryMb: usage?.memory_mb ?? 0,
        diskGb: usage?.disk_gb ?? 0,
      },
      { pods: 1, ...requested },
    );
    if (violation) {
      throw new AppError(
        'quota_exceeded',
        `the ${violation.quota} quota is ${violation.limit}; ${violation.used} in use and this pod needs ${violation.requested} more`,
        { quota: violation },
      );
    }
    const id = newId('pod');
    const pod = tx.create(CloudPod, {
      id,
      tenant,
      customer,
      product,
      slug: input.slug,
      hostname: podHostname(input.slug, tenant.slug, config.DNS_ZONE),
      ...requested,
      workflowId: workflowIds.cloudPod(id),
    });
    const job = tx.create(ProvisioningJob, {
      tenant,
      pod,
      type: 'PROVISION',
      queueName: TASK_QUEUES.provisioning,
      maxAttempts: config.PROVISION_MAX_ATTEMPTS,
      workflowId: pod.workflowId,
    });
    try {
      await tx.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw conflict(`a pod with slug '${input.slug}' already exists`, {
          errors: [{ field: 'slug', message: 'is taken' }],
        });
      }
      throw err;
    }
    return { pod, job };
  });
}

export async function createPod(
  deps: PodDeps,
  input: CreatePodInput,
): Promise<{ pod: CloudPod; job: ProvisioningJob }> {
  const { pod, job } = await insertPod(deps.em, deps.config, input);
  const workflowInput: CloudPodInput = {
    podId: pod.id,
    tenantId: input.tenantId,
    slug: pod.slug,
    resources: resourcesOf(pod),
    provisionJobId: job.id,
    policy: podPolicy(deps.config),
  };
  try {
    await deps.temporal.workflow.start<typeof cloudPod>('cloudPod', {
      workflowId: pod.workflowId,
      taskQueue: TASK_QUEUES.provisioning,
      args: [workflowInput],
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
        { key: SEARCH_ATTRIBUTES.CloudPodId, value: pod.id },
        { key: SEARCH_ATTRIBUTES.CustomerId, value: input.customerId },
        { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'PENDING' },
      ],
      staticSummary: `CloudPod ${pod.hostname} (${pod.id})`,
      staticDetails: `Plan ${pod.vcpu} vCPU / ${pod.memoryMb} MB / ${pod.diskGb} GB for customer ${input.customerId}`,
    });
  } catch (err) {
    // Nothing half-written: the pod and its job go away with the failed start.
    await deps.em.getConnection().execute('delete from cloud_pods where id = ?', [pod.id]);
    throw new AppError(
      'unavailable',
      'the workflow engine could not be reached; the pod was not created',
      {},
      { cause: err },
    );
  }
  return { pod, job };
}

/** Inserts the operation's job; the partial unique index turns a concurrent operation into 409. */
async function openJob(
  em: EntityManager,
  pod: CloudPod,
  type: JobType,
  input: Record<string, unknown> | null,
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
    await em.flush();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) {
      em.clear();
      throw conflict('another operation is in progress on this pod; retry when its job has finished');
    }
    throw err;
  }
  return job;
}

async function cancelJob(em: EntityManager, jobId: string, reason: string): Promise<void> {
  await em.nativeUpdate(
    ProvisioningJob,
    { id: jobId },
    { status: 'CANCELED', failureReason: reason, finishedAt: new Date() },
  );
}

export type SignalOperation = 'SUSPEND' | 'UNSUSPEND' | 'TERMINATE' | 'BACKUP' | 'RESTORE';

/** Opens a job for a signal-driven operation and signals the pod's workflow. */
export async function requestOperation(
  deps: { em: EntityManager; temporal: Client },
  pod: CloudPod,
  type: SignalOperation,
  extra: { backupId?: string } = {},
): Promise<{ job: ProvisioningJob; backup?: Backup }> {
  const problem = operationProblem(type, pod.status);
  if (problem) throw conflict(problem);
  let backup: Backup | undefined;
  if (type === 'BACKUP') {
    backup = deps.em.create(Backup, { tenant: pod.tenant, pod, kind: 'MANUAL' });
  }
  if (type === 'RESTORE') {
    const found = await deps.em.findOne(Backup, { id: extra.backupId ?? '', pod: pod.id });
    if (!found) throw notFound('backup');
    if (found.status !== 'COMPLETED')
      throw conflict(`backup ${found.id} is ${found.status}; only COMPLETED backups restore`);
  }
  const backupId = backup?.id ?? extra.backupId;
  const job = await openJob(deps.em, pod, type, backupId ? { backup_id: backupId } : null);
  const handle = deps.temporal.workflow.getHandle(pod.workflowId);
  try {
    if (type === 'SUSPEND') await handle.signal(suspendSignal, { jobId: job.id });
    else if (type === 'UNSUSPEND') await handle.signal(unsuspendSignal, { jobId: job.id });
    else if (type === 'TERMINATE') await handle.signal(terminateSignal, { jobId: job.id });
    else if (type === 'BACKUP')
      await handle.signal(backupSignal, { jobId: job.id, backupId: backupId ?? '' });
    else await handle.signal(restoreSignal, { jobId: job.id, backupId: backupId ?? '' });
  } catch (err) {
    await cancelJob(deps.em, job.id, 'the pod workflow could not be signalled');
    if (backup) await deps.em.nativeDelete(Backup, { id: backup.id });
    throw new AppError(
      'unavailable',
      'the workflow engine could not be reached; nothing was changed',
      {},
      { cause: err },
    );
  }
  return backup ? { job, backup } : { job };
}

/** Opens a CHANGE_PLAN job and hands it to the workflow's update; a rejected update cancels the job. */
export async function requestPlanChange(
  deps: { em: EntityManager; temporal: Client },
  pod: CloudPod,
  product: Product,
): Promise<ProvisioningJob> {
  const target = resourcesOf(product);
  const problem = planChangeProblem(pod.status, resourcesOf(pod), target);
  if (problem) throw new AppError(pod.status === 'ACTIVE' ? 'unprocessable' : 'conflict', problem);
  const job = await openJob(deps.em, pod, 'CHANGE_PLAN', { product_id: product.id });
  try {
    await deps.temporal.workflow.getHandle(pod.workflowId).startUpdate(changePlanUpdate, {
      args: [{ jobId: job.id, productId: product.id, resources: target }],
      waitForStage: 'ACCEPTED',
      updateId: job.id,
    });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    await cancelJob(deps.em, job.id, reason);
    if (err instanceof WorkflowUpdateFailedError) {
      throw new AppError('conflict', `the pod refused the plan change: ${reason}`);
    }
    throw new AppError(
      'unavailable',
      'the workflow engine could not be reached; nothing was changed',
      {},
      { cause: err },
    );
  }
  return job;
}

/** What a pod's API view reads: a pod entity, or a plain list row (db/repositories/cloudpods.ts). */
export type PodViewSource = Pick<
  CloudPod,
  | 'id'
  | 'slug'
  | 'hostname'
  | 'status'
  | 'vcpu'
  | 'memoryMb'
  | 'diskGb'
  | 'vmId'
  | 'ipAddress'
  | 'failureReason'
> &
  Pick<CloudPod, 'workflowId' | 'createdAt' | 'activatedAt' | 'terminatedAt'> & {
    customer: { id: string };
    product: { id: string };
    node?: { id: string } | null;
  };

export function podView(pod: PodViewSource, currentJob?: ProvisioningJob | null) {
  return {
    id: pod.id,
    slug: pod.slug,
    hostname: pod.hostname,
    status: pod.status,
    customer_id: pod.customer.id,
    product_id: pod.product.id,
    limits: { vcpu: pod.vcpu, memory_mb: pod.memoryMb, disk_gb: pod.diskGb },
    node_id: pod.node?.id ?? null,
    vm_id: pod.vmId ?? null,
    ip_address: pod.ipAddress ?? null,
    failure_reason: pod.failureReason ?? null,
    workflow_id: pod.workflowId,
    created_at: pod.createdAt.toISOString(),
    activated_at: pod.activatedAt?.toISOString() ?? null,
    terminated_at: pod.terminatedAt?.toISOString() ?? null,
    ...(currentJob !== undefined ? { current_job: currentJob ? jobView(currentJob) : null } : {}),
  };
}

export function jobView(job: ProvisioningJob) {
  return {
    id: job.id,
    pod_id: job.pod.id,
    type: job.type,
    status: job.status,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    failure_reason: job.failureReason ?? null,
    input: job.input ?? null,
    workflow_id: job.workflowId,
    created_at: job.createdAt.toISOString(),
    started_at: job.startedAt?.toISOString() ?? null,
    finished_at: job.finishedAt?.toISOString() ?? null,
  };
}

export function backupView(b: Backup) {
  return {
    id: b.id,
    pod_id: b.pod.id,
    kind: b.kind,
    status: b.status,
    size_gb: b.sizeGb ?? null,
    created_at: b.createdAt.toISOString(),
  };
}
