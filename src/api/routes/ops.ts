/** /api/v1/ops (platform admin): the job overview and dead-letter retry (the simulator's routes: ./simulator.ts). */
import { Router } from 'express';
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import type { MikroORM } from '../../db/orm';
import { opsOverview } from '../../db/repositories/ops';
import { notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { jobView, retryJob } from '../../services/cloudpods';
import { emOf, requirePlatformAdmin } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { bearerAuth, problems, registry } from '../openapi';
import { z } from '../zod';
import { OpsOverviewView } from './ops.schemas';

const security = [{ [bearerAuth.name]: [] }];
const JobIdParams = z.object({ id: z.string() });

registry.registerPath({
  method: 'get',
  path: '/api/v1/ops/overview',
  summary:
    'Jobs by status and type, dead letters in 24 h, steps failing and retrying, jobs running > 15 min, oldest queued job, unresolved ops events',
  security,
  responses: {
    200: {
      description:
        'Overview across all tenants: `dead_letters_24h` (dated by when each job dead-lettered, with any undo failure), ' +
        '`retrying` (RUNNING jobs whose current step fails and retries: step, attempt, last error), `running_over_15_min`, ' +
        '`oldest_queued`, and `ops_events` (unresolved, last 7 days, CRITICAL and HIGH first)',
      content: { 'application/json': { schema: OpsOverviewView } },
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

export function opsRoutes(deps: { orm: MikroORM; temporal: Client; config: Config }): Router {
  const router = Router();

  router.get('/overview', async (req, res) => {
    requirePlatformAdmin(req);
    res.json(await opsOverview(emOf(req)));
  });

  router.post('/jobs/:id/retry', async (req, res) => {
    requirePlatformAdmin(req, 'write');
    const { id } = parse(JobIdParams, req.params, 'params');
    if (!isId('job', id)) throw notFound('job');
    const job = await retryJob({ em: emOf(req), temporal: deps.temporal, config: deps.config }, id);
    req.log.info({ jobId: id, podId: job.pod.id, type: job.type }, 'dead-lettered job retried by operator');
    res.status(202).json({ job: jobView(job) });
  });

  return router;
}
