/** CloudPod entities: hypervisor nodes, pods, their operation jobs and backups. */
import { Check, Entity, Enum, Index, ManyToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import {
  BACKUP_KINDS,
  BACKUP_STATUSES,
  JOB_STATUSES,
  JOB_TYPES,
  NODE_STATUSES,
  POD_STATUSES,
  type BackupKind,
  type BackupStatus,
  type JobStatus,
  type JobType,
  type NodeStatus,
  type PodStatus,
} from '../../domain/cloudpods';
import { Row } from './base';
import { Customer, Product } from './catalog';
import { Tenant } from './tenancy';

/**
 * A hypervisor node. `allocated_*` only moves through conditional UPDATEs and a CHECK keeps it
 * within capacity, so concurrent reservations can never oversubscribe a node.
 */
@Entity({ tableName: 'core_nodes' })
@Check({
  name: 'core_nodes_allocation_check',
  // Written the way PostgreSQL normalizes it, so the schema diff sees no change.
  expression:
    '((allocated_vcpu >= 0) AND (allocated_vcpu <= capacity_vcpu)) AND ((allocated_memory_mb >= 0) AND (allocated_memory_mb <= capacity_memory_mb)) AND ((allocated_disk_gb >= 0) AND (allocated_disk_gb <= capacity_disk_gb))',
})
export class CoreNode extends Row {
  static override readonly idKind = 'node' as const;

  @Property({ type: 'string', length: 100, unique: true })
  name!: string;

  @Property({ type: 'string', length: 50 })
  region!: string;

  @Enum({ items: () => NODE_STATUSES, type: 'string' })
  status: NodeStatus & Opt = 'ONLINE';

  @Property({ type: 'integer' })
  capacityVcpu!: number;

  @Property({ type: 'integer' })
  capacityMemoryMb!: number;

  @Property({ type: 'integer' })
  capacityDiskGb!: number;

  @Property({ type: 'integer' })
  allocatedVcpu: number & Opt = 0;

  @Property({ type: 'integer' })
  allocatedMemoryMb: number & Opt = 0;

  @Property({ type: 'integer' })
  allocatedDiskGb: number & Opt = 0;

  @Property({ type: 'integer', version: true })
  version: number & Opt = 1;
}

@Entity({ tableName: 'cloud_pods' })
@Unique({ properties: ['tenant', 'slug'] })
@Index({ properties: ['tenant', 'status', 'id'] })
@Index({ properties: ['tenant', 'id'] })
@Index({ properties: ['customer'] })
export class CloudPod extends Row {
  static override readonly idKind = 'pod' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @ManyToOne({ entity: () => Customer })
  customer!: Customer;

  @ManyToOne({ entity: () => Product })
  product!: Product;

  @Property({ type: 'string', length: 40 })
  slug!: string;

  @Property({ type: 'string', length: 253 })
  hostname!: string;

  @Enum({ items: () => POD_STATUSES, type: 'string' })
  status: PodStatus & Opt = 'PENDING';

  @Index()
  @ManyToOne({ entity: () => CoreNode, nullable: true })
  node?: CoreNode | null;

  @Property({ type: 'string', length: 100, nullable: true })
  vmId?: string | null;

  @Property({ type: 'string', length: 45, nullable: true })
  ipAddress?: string | null;

  @Property({ type: 'integer' })
  vcpu!: number;

  @Property({ type: 'integer' })
  memoryMb!: number;

  @Property({ type: 'integer' })
  diskGb!: number;

  /** what is reserved on `node` for this pod; released exactly once */
  @Property({ type: 'integer' })
  reservedVcpu: number & Opt = 0;

  @Property({ type: 'integer' })
  reservedMemoryMb: number & Opt = 0;

  @Property({ type: 'integer' })
  reservedDiskGb: number & Opt = 0;

  @Property({ type: 'text', nullable: true })
  failureReason?: string | null;

  @Property({ type: 'string', length: 200 })
  workflowId!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  activatedAt?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  terminatedAt?: Date | null;

  /** a pod created from a backup: provisioning restores this backup instead of the template */
  @Property({ type: 'string', length: 40, nullable: true })
  restoreFromBackupId?: string | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  deletedAt?: Date | null;
}

/** One row per operation on a pod; at most one QUEUED or RUNNING per pod (partial unique index). */
@Entity({ tableName: 'provisioning_jobs' })
@Index({ properties: ['queueName', 'status', 'priority'] })
@Index({ properties: ['status', 'scheduledFor'] })
@Index({ properties: ['tenant', 'status'] })
@Index({ properties: ['pod', 'createdAt'] })
// One open operation per pod, plus one open terminate: a DELETE is never refused because another
// operation (or the provisioning) is still running — it queues behind it, or stops the provisioning.
@Unique({
  name: 'provisioning_jobs_one_open_per_pod',
  expression:
    'create unique index "provisioning_jobs_one_open_per_pod" on "provisioning_jobs" ("pod_id") where "status" in (\'QUEUED\', \'RUNNING\') and "type" <> \'TERMINATE\'',
})
@Unique({
  name: 'provisioning_jobs_one_open_terminate_per_pod',
  expression:
    'create unique index "provisioning_jobs_one_open_terminate_per_pod" on "provisioning_jobs" ("pod_id") where "status" in (\'QUEUED\', \'RUNNING\') and "type" = \'TERMINATE\'',
})
export class ProvisioningJob extends Row {
  static override readonly idKind = 'job' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @ManyToOne({ entity: () => CloudPod, deleteRule: 'cascade' })
  pod!: CloudPod;

  @Enum({ items: () => JOB_TYPES, type: 'string' })
  type!: JobType;

  @Property({ type: 'string', length: 50 })
  queueName: string & Opt = 'provisioning';

  @Enum({ items: () => JOB_STATUSES, type: 'string' })
  status: JobStatus & Opt = 'QUEUED';

  @Property({ type: 'integer' })
  priority: number & Opt = 0;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  scheduledFor: Date & Opt = new Date();

  @Property({ type: 'integer' })
  attempts: number & Opt = 0;

  @Property({ type: 'integer' })
  maxAttempts: number & Opt = 3;

  /** operation arguments (target plan, backup id…) */
  @Property({ type: 'json', nullable: true })
  input?: Record<string, unknown> | null;

  /** readable reason, shown to the tenant: never an infrastructure detail */
  @Property({ type: 'text', nullable: true })
  failureReason?: string | null;

  /** the step running now (or the one that failed), for the tenant and the operator */
  @Property({ type: 'string', length: 100, nullable: true })
  currentStep?: string | null;

  /** attempt number of the current step, as Temporal counts it */
  @Property({ type: 'integer', nullable: true })
  stepAttempt?: number | null;

  /** operator-only: the last raw error of the current step (provider or infrastructure detail) */
  @Property({ type: 'text', nullable: true })
  lastError?: string | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  lastErrorAt?: Date | null;

  /** operator-only: an undo that could not be done (manual cleanup needed); never overwritten by the failure reason */
  @Property({ type: 'text', nullable: true })
  undoFailure?: string | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  deadLetteredAt?: Date | null;

  @Property({ type: 'string', length: 200 })
  workflowId!: string;

  @Property({ type: 'string', length: 100, nullable: true })
  runId?: string | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  startedAt?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  finishedAt?: Date | null;
}

/**
 * A backup is an artifact apart from its VM (Proxmox: a vzdump archive on backup storage; the
 * simulator: a `sim_backups` row), so it outlives the VM's destroy until `expiresAt`.
 */
@Entity({ tableName: 'backups' })
@Index({ properties: ['pod', 'createdAt'] })
@Index({ properties: ['tenant', 'status', 'expiresAt'] })
export class Backup extends Row {
  static override readonly idKind = 'backup' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @ManyToOne({ entity: () => CloudPod, deleteRule: 'cascade' })
  pod!: CloudPod;

  /** the provider's id of the backup artifact (Proxmox volid `storage:backup/vzdump-…`) */
  @Property({ type: 'string', length: 200, nullable: true })
  providerSnapshotId?: string | null;

  /** the job that takes it: a retried pre-termination backup finds its row by job */
  @Property({ type: 'string', length: 40, nullable: true, unique: true })
  jobId?: string | null;

  @Enum({ items: () => BACKUP_KINDS, type: 'string' })
  kind!: BackupKind;

  @Enum({ items: () => BACKUP_STATUSES, type: 'string' })
  status: BackupStatus & Opt = 'PENDING';

  @Property({ type: 'integer', nullable: true })
  sizeGb?: number | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  expiresAt?: Date | null;
}

export const OPS_EVENT_SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type OpsEventSeverity = (typeof OPS_EVENT_SEVERITIES)[number];

/**
 * Something an operator must see and act on (a failed undo leaves a VM running, a resource leaked).
 * Listed by the ops overview; `dedupeKey` makes raising it idempotent under activity retries.
 */
@Entity({ tableName: 'ops_events' })
@Index({ properties: ['severity', 'createdAt'] })
export class OpsEvent extends Row {
  static override readonly idKind = 'event' as const;

  @Enum({ items: () => OPS_EVENT_SEVERITIES, type: 'string' })
  severity!: OpsEventSeverity;

  /** stable machine name, e.g. `undo_failed` */
  @Property({ type: 'string', length: 60 })
  kind!: string;

  @Property({ type: 'string', length: 40, nullable: true })
  tenantId?: string | null;

  @Property({ type: 'string', length: 40, nullable: true })
  podId?: string | null;

  @Property({ type: 'string', length: 40, nullable: true })
  jobId?: string | null;

  @Property({ type: 'text' })
  message!: string;

  @Property({ type: 'json', nullable: true })
  details?: Record<string, unknown> | null;

  @Property({ type: 'string', length: 200, unique: true })
  dedupeKey!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  resolvedAt?: Date | null;
}
