/** How pods, jobs and backups look to API clients: the views of the CloudPod routes. */
import type { Backup, CloudPod, ProvisioningJob } from '../../db/entities';
import type { JobRecord } from '../../services/cloudpods';

/** What a pod's API view reads: a pod entity, or a freshly inserted record (services/cloudpods.ts). */
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

export function jobView(job: JobRecord | ProvisioningJob) {
  return {
    id: job.id,
    pod_id: job.pod.id,
    type: job.type,
    status: job.status,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    failure_reason: job.failureReason ?? null,
    current_step: job.currentStep ?? null,
    step_attempt: job.stepAttempt ?? null,
    last_error_at: job.lastErrorAt?.toISOString() ?? null,
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
    expires_at: b.expiresAt?.toISOString() ?? null,
  };
}
