/**
 * The operator's overview (GET /api/v1/ops/overview): plain-row reads across every tenant — jobs
 * by status, recent dead letters, steps failing and retrying, stuck and queued jobs, and the ops
 * events nobody has resolved yet.
 */
import type { EntityManager } from '../orm';

/** how many rows each list of the overview shows at most */
export const OVERVIEW_LIST_LIMIT = 50;

/** Raw query timestamps arrive as strings from MikroORM's connection. */
const iso = (v: string | Date) => new Date(v).toISOString();
const isoOrNull = (v: string | Date | null) => (v === null ? null : iso(v));

interface Counted {
  type: string;
  status: string;
  count: number;
}

interface DeadLetterRow {
  id: string;
  pod_id: string;
  tenant_id: string;
  type: string;
  failure_reason: string | null;
  undo_failure: string | null;
  dead_lettered_at: string;
  total: number;
}

interface RetryingRow {
  id: string;
  pod_id: string;
  tenant_id: string;
  type: string;
  current_step: string | null;
  step_attempt: number | null;
  last_error: string | null;
  last_error_at: string | null;
  started_at: string | null;
}

interface OpsEventRow {
  id: string;
  severity: string;
  kind: string;
  tenant_id: string | null;
  pod_id: string | null;
  job_id: string | null;
  message: string;
  created_at: string;
}

export async function opsOverview(em: EntityManager) {
  const conn = em.getConnection();
  const [byStatus, deadLetters, retrying, stuck, oldest, events] = await Promise.all([
    conn.execute<Counted[]>(
      'select type, status, count(*)::int as count from provisioning_jobs group by type, status order by type, status',
    ),
    // dead_lettered_at, not updated_at: the workers' native updates do not touch updated_at, and
    // the job's start says nothing about when it gave up.
    conn.execute<DeadLetterRow[]>(
      `select id, pod_id, tenant_id, type, failure_reason, undo_failure, dead_lettered_at, count(*) over ()::int as total
         from provisioning_jobs
        where status = 'DEAD_LETTER' and dead_lettered_at > now() - interval '24 hours'
        order by dead_lettered_at desc, id desc limit ?`,
      [OVERVIEW_LIST_LIMIT],
    ),
    conn.execute<RetryingRow[]>(
      `select id, pod_id, tenant_id, type, current_step, step_attempt, last_error, last_error_at, started_at
         from provisioning_jobs
        where status = 'RUNNING' and (step_attempt > 1 or last_error is not null)
        order by coalesce(last_error_at, started_at, created_at) desc, id desc limit ?`,
      [OVERVIEW_LIST_LIMIT],
    ),
    conn.execute<{ id: string; pod_id: string; type: string; started_at: string }[]>(
      `select id, pod_id, type, started_at from provisioning_jobs
        where status = 'RUNNING' and started_at < now() - interval '15 minutes' order by started_at limit ?`,
      [OVERVIEW_LIST_LIMIT],
    ),
    conn.execute<{ id: string; type: string; created_at: string }[]>(
      "select id, type, created_at from provisioning_jobs where status = 'QUEUED' order by created_at limit 1",
    ),
    conn.execute<OpsEventRow[]>(
      `select id, severity, kind, tenant_id, pod_id, job_id, message, created_at from ops_events
        where resolved_at is null and created_at > now() - interval '7 days'
        order by case severity when 'CRITICAL' then 0 when 'HIGH' then 1 when 'MEDIUM' then 2 else 3 end,
                 created_at desc, id desc
        limit ?`,
      [OVERVIEW_LIST_LIMIT],
    ),
  ]);
  const jobsByStatus: Record<string, number> = {};
  const jobsByType: Record<string, Record<string, number>> = {};
  for (const row of byStatus) {
    jobsByStatus[row.status] = (jobsByStatus[row.status] ?? 0) + row.count;
    (jobsByType[row.type] ??= {})[row.status] = row.count;
  }
  const q = oldest[0];
  return {
    jobs_by_status: jobsByStatus,
    jobs_by_type: jobsByType,
    dead_letters_24h: {
      count: deadLetters[0]?.total ?? 0,
      jobs: deadLetters.map((j) => ({
        id: j.id,
        pod_id: j.pod_id,
        tenant_id: j.tenant_id,
        type: j.type,
        failure_reason: j.failure_reason,
        undo_failure: j.undo_failure,
        at: iso(j.dead_lettered_at),
      })),
    },
    retrying: retrying.map((j) => ({
      id: j.id,
      pod_id: j.pod_id,
      tenant_id: j.tenant_id,
      type: j.type,
      current_step: j.current_step,
      step_attempt: j.step_attempt,
      last_error: j.last_error,
      last_error_at: isoOrNull(j.last_error_at),
      started_at: isoOrNull(j.started_at),
    })),
    running_over_15_min: stuck.map((j) => ({
      id: j.id,
      pod_id: j.pod_id,
      type: j.type,
      started_at: iso(j.started_at),
    })),
    oldest_queued: q
      ? {
          id: q.id,
          type: q.type,
          created_at: iso(q.created_at),
          age_seconds: Math.round((Date.now() - new Date(q.created_at).getTime()) / 1000),
        }
      : null,
    ops_events: events.map((e) => ({
      id: e.id,
      severity: e.severity,
      kind: e.kind,
      tenant_id: e.tenant_id,
      pod_id: e.pod_id,
      job_id: e.job_id,
      message: e.message,
      created_at: iso(e.created_at),
    })),
  };
}

export type OpsOverview = Awaited<ReturnType<typeof opsOverview>>;
