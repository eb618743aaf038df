/**
 * Pods and jobs written straight into the database, for tests that need a state (a dead letter, a
 * step retrying, a pod on a customer) without running the saga that would produce it.
 */
import { newId } from '../../src/domain/ids';
import type { TestDatabase } from './db';

export interface SqlPod {
  id: string;
  workflowId: string;
}

export async function insertPod(
  db: TestDatabase,
  p: {
    tenantId: string;
    customerId: string;
    productId: string;
    slug: string;
    status?: string;
    deleted?: boolean;
    resources?: { vcpu: number; memoryMb: number; diskGb: number };
  },
): Promise<SqlPod> {
  const id = newId('pod');
  const workflowId = `cloudpod-${id}`;
  const r = p.resources ?? { vcpu: 1, memoryMb: 1024, diskGb: 20 };
  await db.query(
    `insert into cloud_pods (id, tenant_id, customer_id, product_id, slug, hostname, status, vcpu, memory_mb, disk_gb,
        workflow_id, deleted_at, created_at, updated_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now(), now())`,
    [
      id,
      p.tenantId,
      p.customerId,
      p.productId,
      p.slug,
      `${p.slug}.sql.test`,
      p.status ?? 'ACTIVE',
      r.vcpu,
      r.memoryMb,
      r.diskGb,
      workflowId,
      p.deleted ? new Date() : null,
    ],
  );
  return { id, workflowId };
}

/** A job row; `sql` columns are SQL expressions (e.g. `now() - interval '1 hour'`), the rest values. */
export async function insertJob(
  db: TestDatabase,
  j: {
    tenantId: string;
    pod: SqlPod;
    type?: string;
    status: string;
    failureReason?: string | null;
    currentStep?: string | null;
    stepAttempt?: number | null;
    lastError?: string | null;
    undoFailure?: string | null;
    sql?: Partial<
      Record<'started_at' | 'created_at' | 'updated_at' | 'last_error_at' | 'dead_lettered_at', string>
    >;
  },
): Promise<string> {
  const id = newId('job');
  const t = (
    col: 'started_at' | 'created_at' | 'updated_at' | 'last_error_at' | 'dead_lettered_at',
    dflt: string,
  ) => j.sql?.[col] ?? dflt;
  await db.query(
    `insert into provisioning_jobs (id, tenant_id, pod_id, type, status, scheduled_for, workflow_id, failure_reason,
        current_step, step_attempt, last_error, undo_failure, started_at, created_at, updated_at, last_error_at, dead_lettered_at)
     values ($1, $2, $3, $4, $5, now(), $6, $7, $8, $9, $10, $11,
        ${t('started_at', 'now()')}, ${t('created_at', 'now()')}, ${t('updated_at', 'now()')},
        ${t('last_error_at', 'null')}, ${t('dead_lettered_at', 'null')})`,
    [
      id,
      j.tenantId,
      j.pod.id,
      j.type ?? 'PROVISION',
      j.status,
      j.pod.workflowId,
      j.failureReason ?? null,
      j.currentStep ?? null,
      j.stepAttempt ?? null,
      j.lastError ?? null,
      j.undoFailure ?? null,
    ],
  );
  return id;
}

export async function insertOpsEvent(
  db: TestDatabase,
  e: {
    severity: 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';
    kind: string;
    message: string;
    tenantId?: string;
    podId?: string;
    jobId?: string;
    /** SQL expression */
    createdAt?: string;
    resolved?: boolean;
  },
): Promise<string> {
  const id = newId('event');
  await db.query(
    `insert into ops_events (id, severity, kind, tenant_id, pod_id, job_id, message, details, dedupe_key, resolved_at, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, ${e.createdAt ?? 'now()'})`,
    [
      id,
      e.severity,
      e.kind,
      e.tenantId ?? null,
      e.podId ?? null,
      e.jobId ?? null,
      e.message,
      JSON.stringify({ test: true }),
      `test:${id}`,
      e.resolved ? new Date() : null,
    ],
  );
  return id;
}
