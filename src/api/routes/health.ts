/** Liveness and readiness. Readiness names the dependency that is down. */
import type { ConnectionLike } from '@temporalio/client';
import type { MikroORM } from '../../db/orm';
import { route, type Route } from '../http/route';
import { z } from '../zod';

const CHECK_TIMEOUT_MS = 2000;

const Readiness = z
  .object({
    status: z.enum(['ready', 'unavailable']),
    checks: z.record(z.string(), z.object({ status: z.enum(['up', 'down']), error: z.string().optional() })),
  })
  .openapi('Readiness');

const PROBES = 'probes (a load balancer, Kubernetes) call it without credentials, and it reveals no data';

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(deps: { orm: MikroORM; temporalConnection: ConnectionLike }): Route[] {
  const startedAt = Date.now();
  return [
    route({
      operationId: 'liveness',
      tag: 'System',
      method: 'get',
      path: '/health',
      summary: 'Liveness',
      access: { public: PROBES },
      responses: {
        200: {
          description: 'The process is alive',
          content: {
            'application/json': {
              schema: z.object({
                status: z.literal('ok'),
                timestamp: z.string(),
                uptime_seconds: z.number(),
              }),
            },
          },
        },
      },
      handle({ res }) {
        res.json({
          status: 'ok',
          timestamp: new Date().toISOString(),
          uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
        });
      },
    }),
    route({
      operationId: 'readiness',
      tag: 'System',
      method: 'get',
      path: '/health/ready',
      summary: 'Readiness: PostgreSQL and Temporal',
      access: { public: PROBES },
      responses: {
        200: {
          description: 'Every dependency is up',
          content: { 'application/json': { schema: Readiness } },
        },
        503: {
          description: 'At least one dependency is down',
          content: { 'application/json': { schema: Readiness } },
        },
      },
      async handle({ res, log }) {
        const checks: Record<string, () => Promise<unknown>> = {
          database: () => deps.orm.em.getConnection().execute('select 1'),
          // Deadline and abort both: the client's retry interceptor must not keep a probe alive past the check.
          temporal: async () => {
            const abort = new AbortController();
            const timer = setTimeout(() => abort.abort(), CHECK_TIMEOUT_MS);
            try {
              return await deps.temporalConnection.withAbortSignal(abort.signal, () =>
                deps.temporalConnection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () =>
                  deps.temporalConnection.workflowService.getSystemInfo({}),
                ),
              );
            } finally {
              clearTimeout(timer);
            }
          },
        };
        type Check = z.infer<typeof Readiness>['checks'][string];
        const results = await Promise.all(
          Object.entries(checks).map(async ([name, run]): Promise<[string, Check]> => {
            try {
              await withTimeout(run(), CHECK_TIMEOUT_MS, name);
              return [name, { status: 'up' }];
            } catch (err) {
              log.warn({ err, dependency: name }, 'readiness check failed');
              return [name, { status: 'down', error: `${name} is unreachable` }];
            }
          }),
        );
        const down = results.some(([, r]) => r.status === 'down');
        const body: z.infer<typeof Readiness> = {
          status: down ? 'unavailable' : 'ready',
          checks: Object.fromEntries(results),
        };
        res.status(down ? 503 : 200).json(body);
      },
    }),
  ];
}
