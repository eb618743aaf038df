/** CloudPod rules: statuses, transitions, plan limits, plan changes and quota arithmetic. */

export const POD_STATUSES = [
  'PENDING',
  'PROVISIONING',
  'ACTIVE',
  'UPDATING',
  'SUSPENDED',
  'TERMINATING',
  'TERMINATED',
  'FAILED',
] as const;
export type PodStatus = (typeof POD_STATUSES)[number];

export const JOB_TYPES = [
  'PROVISION',
  'CHANGE_PLAN',
  'SUSPEND',
  'UNSUSPEND',
  'TERMINATE',
  'BACKUP',
  'RESTORE',
] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const JOB_STATUSES = [
  'QUEUED',
  'RUNNING',
  'COMPLETED',
  'ROLLED_BACK',
  'DEAD_LETTER',
  'CANCELED',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Jobs in these states hold the pod's single operation slot. */
export const OPEN_JOB_STATUSES: readonly JobStatus[] = ['QUEUED', 'RUNNING'];

export const BACKUP_KINDS = ['SCHEDULED', 'MANUAL', 'PRE_TERMINATION'] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];
export const BACKUP_STATUSES = ['PENDING', 'COMPLETED', 'FAILED', 'DELETED'] as const;
export type BackupStatus = (typeof BACKUP_STATUSES)[number];

export const NODE_STATUSES = ['ONLINE', 'DRAINING', 'OFFLINE'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

export interface Resources {
  vcpu: number;
  memoryMb: number;
  diskGb: number;
}

export const ZERO: Resources = Object.freeze({ vcpu: 0, memoryMb: 0, diskGb: 0 });

export function addResources(a: Resources, b: Resources): Resources {
  return { vcpu: a.vcpu + b.vcpu, memoryMb: a.memoryMb + b.memoryMb, diskGb: a.diskGb + b.diskGb };
}

export function subtractResources(a: Resources, b: Resources): Resources {
  return { vcpu: a.vcpu - b.vcpu, memoryMb: a.memoryMb - b.memoryMb, diskGb: a.diskGb - b.diskGb };
}

/** Which operations the customer or an operator may request in each status. */
const ALLOWED: Record<Exclude<JobType, 'PROVISION'>, readonly PodStatus[]> = {
  CHANGE_PLAN: ['ACTIVE'],
  SUSPEND: ['ACTIVE'],
  UNSUSPEND: ['SUSPENDED'],
  // Every pod but a terminated one can be deleted: a pod still coming up stops and rolls back, a
  // dead-lettered terminate (TERMINATING) runs again, an operation in progress finishes first.
  TERMINATE: ['PENDING', 'PROVISIONING', 'ACTIVE', 'UPDATING', 'SUSPENDED', 'TERMINATING', 'FAILED'],
  BACKUP: ['ACTIVE', 'SUSPENDED'],
  RESTORE: ['ACTIVE', 'SUSPENDED'],
};

/** Why `op` cannot run on a pod in `status`, or undefined when it can. */
export function operationProblem(op: Exclude<JobType, 'PROVISION'>, status: PodStatus): string | undefined {
  if (ALLOWED[op].includes(status)) return undefined;
  return `a ${status} pod cannot ${op.toLowerCase().replace('_', ' ')} (allowed from ${ALLOWED[op].join(', ')})`;
}

/** Plan change rules shared by the API and the workflow's update validator. */
export function planChangeProblem(
  status: PodStatus,
  current: Resources,
  target: Resources,
): string | undefined {
  if (status !== 'ACTIVE') return `the pod is ${status}; plans change only on ACTIVE pods`;
  if (target.diskGb < current.diskGb) {
    return `disks cannot shrink (current ${current.diskGb} GB, target ${target.diskGb} GB)`;
  }
  if (
    target.vcpu === current.vcpu &&
    target.memoryMb === current.memoryMb &&
    target.diskGb === current.diskGb
  ) {
    return 'the target plan has the same limits as the current one';
  }
  return undefined;
}

export interface QuotaLimitsForPods {
  maxPods: number;
  maxVcpu: number;
  maxMemoryMb: number;
  maxDiskGb: number;
}

export interface QuotaViolation {
  quota: 'max_pods' | 'max_vcpu' | 'max_memory_mb' | 'max_disk_gb';
  limit: number;
  used: number;
  requested: number;
}

/** The first quota that `requested` (one more pod) would exceed, given current usage. */
export function quotaViolation(
  limits: QuotaLimitsForPods,
  used: Resources & { pods: number },
  requested: Resources & { pods: number },
): QuotaViolation | undefined {
  const checks: [QuotaViolation['quota'], number, number, number][] = [
    ['max_pods', limits.maxPods, used.pods, requested.pods],
    ['max_vcpu', limits.maxVcpu, used.vcpu, requested.vcpu],
    ['max_memory_mb', limits.maxMemoryMb, used.memoryMb, requested.memoryMb],
    ['max_disk_gb', limits.maxDiskGb, used.diskGb, requested.diskGb],
  ];
  for (const [quota, limit, u, r] of checks) {
    if (r > 0 && u + r > limit) return { quota, limit, used: u, requested: r };
  }
  return undefined;
}

/** DNS-safe host name of a pod: `<pod-slug>.<tenant-slug>.<zone>`. */
export function podHostname(podSlug: string, tenantSlug: string, zone: string): string {
  return `${podSlug}.${tenantSlug}.${zone}`;
}
