/** /api/v1/ops (platform admin): the job overview, dead-letter retry, and the simulator's fault switch. */
import { Router } from 'express';
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import type { MikroORM } from '../../db/orm';
import { notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { FAULT_OPERATIONS } from '../../domain/faults';
import type { FaultInjector } from '../../providers/simulator';
import { jobView, retryJob } from '../../services/cloudpods';
import { emOf, requirePlatformAdmin } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { bearerAuth, problems, registry } from '../openapi';
import { z } from '../zod';

const security = [{ [bearerAuth.name]: [] }];
const JobIdParams = z.object({ id: z.string() });
const FaultBody = z
  .strictObject({
    operation: z.enum(FAULT_OPERATIONS),
    slug_pattern: z.string().min(1).max(100).openapi({ example: 'fail-*' }),
    times: z.number().int().min(1).max(1000).nullable().optional(),
    message: z.string().min(1).max(300).optional(),
  })
  .openapi('FaultRule');

registry.registerPath({
  method: 'get',
  path: '/api/v1/ops/overview',
  summary: 'Jobs by status and type, dead letters in 24 h, jobs running > 15 min, oldest queued job',
  security,
  responses: {
    200: {
      description: 'Overview',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
    ...problems(401, 403),
  },
});
registry.registerPath({
  method: 'post',
  path: '/api/v1/ops/jobs/{id}/retry',
  summary:
    'Retry a dead-lettered job of any type: a provisioning runs the saga again, an operation runs again; 409 with the reason when the pod refuses',
  security,
  request: { params: JobIdParams },
  responses: {
    202: {
      description: 'Retry sent',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
    ...problems(401, 403, 404, 409, 422, 503),
  },
});
registry.registerPath({
  method: 'post',
  path: '/api/v1/ops/simulator/faults',
  summary: 'Add a fault rule to the simulated hypervisor/DNS (fail an operation for matching pod slugs)',
  security,
  request: { body: { content: { 'application/json': { schema: FaultBody } } } },
  responses: {
    201: {
      description: 'Rule added',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
    ...problems(400, 401, 403),
  },
});

/** Raw query timestamps arrive as strings from MikroORM's connection. */
const iso = (v: string | Date) => new Date(v).toISOString();

interface Counted {
  type: string;
  status: string;
  count: number;
}

export function opsRoutes(deps: {
  orm: MikroORM;
  temporal: Client;
  config: Config;
  faults: FaultInjector;
}): Router {
  const router = Router();

  router.get('/overview', async (req, res) => {
    requirePlatformAdmin(req);
    const conn = emOf(req).getConnection();
    const [byStatus, deadLetters, stuck, oldest] = await Promise.all([
      conn.execute<Counted[]>(
        'select type, status, count(*)::int as count from provisioning_jobs group by type, status order by type, status',
      ),
      conn.execute<
        {
          id: string;
          pod_id: string;
          tenant_id: string;
          type: string;
          failure_reason: string;
          updated_at: string;
        }[]
      >(
        `select id, pod_id, tenant_id, type, failure_reason, updated_at from provisioning_jobs
          where status = 'DEAD_LETTER' and updated_at > now() - interval '24 hours' order by updated_at desc limit 50`,
      ),
      conn.execute<{ id: string; pod_id: string; type: string; started_at: string }[]>(
        `select id, pod_id, type, started_at from provisioning_jobs
          where status = 'RUNNING' and started_at < now() - interval '15 minutes' order by started_at limit 50`,
      ),
      conn.execute<{ id: string; type: string; created_at: string }[]>(
        "select id, type, created_at from provisioning_jobs where status = 'QUEUED' order by created_at limit 1",
      ),
    ]);
    const byStatusTotals: Record<string, number> = {};
    const byType: Record<string, Record<string, number>> = {};
    for (const row of byStatus) {
      byStatusTotals[row.status] = (byStatusTotals[row.status] ?? 0) + row.count;
      (byType[row.type] ??= {})[row.status] = row.count;
    }
    const q = oldest[0];
    res.json({
      jobs_by_status: byStatusTotals,
      jobs_by_type: byType,
      dead_letters_24h: {
        count: deadLetters.length,
        jobs: deadLetters.map((j) => ({
          id: j.id,
          pod_id: j.pod_id,
          tenant_id: j.tenant_id,
          type: j.type,
          failure_reason: j.failure_reason,
          at: iso(j.updated_at),
        })),
      },
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
    });
  });

  router.post('/jobs/:id/retry', async (req, res) => {
    requirePlatformAdmin(req, 'write');
    const { id } = parse(JobIdParams, req.params, 'params');
    if (!isId('job', id)) throw notFound('job');
    const job = await retryJob({ em: emOf(req), temporal: deps.temporal, config: deps.config }, id);
    req.log.info({ jobId: id, podId: job.pod.id, type: job.type }, 'dead-lettered job retried by operator');
    res.status(202).json({ job: jobView(job) });
  });

  const faultView = (r: {
    id: string;
    operation: string;
    slugPattern: string;
    remaining?: number | null;
    message: string;
  }) => ({
    id: r.id,
    operation: r.operation,
    slug_pattern: r.slugPattern,
    remaining: r.remaining ?? null,
    message: r.message,
  });

  router.get('/simulator/faults', async (req, res) => {
    requirePlatformAdmin(req);
    res.json({ data: (await deps.faults.list()).map(faultView) });
  });

  router.post('/simulator/faults', async (req, res) => {
    requirePlatformAdmin(req, 'write');
    const b = parse(FaultBody, req.body);
    const rule = await deps.faults.add({
      operation: b.operation,
      slugPattern: b.slug_pattern,
      times: b.times ?? null,
      ...(b.message ? { message: b.message } : {}),
    });
    req.log.warn({ rule: faultView(rule) }, 'simulator fault rule added');
    res.status(201).json(faultView(rule));
  });

  router.delete('/simulator/faults/:id', async (req, res) => {
    requirePlatformAdmin(req, 'write');
    const { id } = parse(JobIdParams, req.params, 'params');
    if (!(await deps.faults.remove(id))) throw notFound('fault rule');
    res.status(204).end();
  });

  return router;
}
