/** /api/v1/ops (platform admin): the job overview and dead-letter retry (the simulator's routes: ./simulator.ts). */
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import type { MikroORM } from '../../db/orm';
import { opsOverview } from '../../db/repositories/ops';
import { notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { retryJob } from '../../services/cloudpods';
import { jobView } from './cloudpods.views';
import { route, type Route } from '../http/route';
import { z } from '../zod';
import { OpsOverviewView } from './ops.schemas';

const JobIdParams = z.object({ id: z.string() });

export function opsRoutes(deps: { orm: MikroORM; temporal: Client; config: Config }): Route[] {
  return [
    route({
      operationId: 'opsOverview',
      tag: 'Operations',
      method: 'get',
      path: '/api/v1/ops/overview',
      summary:
        'Jobs by status and type, dead letters in 24 h, steps failing and retrying, jobs running > 15 min, oldest queued job, unresolved ops events',
      access: { caller: 'platform', permission: 'ops:read' },
      responses: {
        200: {
          description:
            'Overview across all tenants: `dead_letters_24h` (dated by when each job dead-lettered, with any undo failure), ' +
            '`retrying` (RUNNING jobs whose current step fails and retries: step, attempt, last error), `running_over_15_min`, ' +
            '`oldest_queued`, and `ops_events` (unresolved, last 7 days, CRITICAL and HIGH first)',
          content: { 'application/json': { schema: OpsOverviewView } },
        },
      },
      async handle({ em, res }) {
        res.json(await opsOverview(em));
      },
    }),
    route({
      operationId: 'retryJob',
      tag: 'Operations',
      method: 'post',
      path: '/api/v1/ops/jobs/:id/retry',
      summary:
        'Retry a dead-lettered job of any type: a provisioning runs the saga again, an operation runs again; 409 with the reason when the pod refuses',
      access: { caller: 'platform', permission: 'ops:admin' },
      params: JobIdParams,
      durable: true,
      responses: {
        202: {
          description: 'Retry sent',
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
        },
      },
      problems: [409, 422],
      async handle({ em, params, res, log }) {
        const { id } = params;
        if (!isId('job', id)) throw notFound('job');
        const job = await retryJob({ em, temporal: deps.temporal, config: deps.config }, id);
        log.info({ jobId: id, podId: job.pod.id, type: job.type }, 'dead-lettered job retried by operator');
        res.status(202).json({ job: jobView(job) });
      },
    }),
  ];
}
