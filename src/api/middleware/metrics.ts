/** Prometheus metrics for the API: request duration by route template and status. */
import type { RequestHandler } from 'express';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  middleware: RequestHandler;
  workflowStarts: Counter<'workflow'>;
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'podplane_api_' });
  const duration = new Histogram({
    name: 'podplane_http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const workflowStarts = new Counter({
    name: 'podplane_workflow_starts_total',
    help: 'Workflows started by the API, by workflow type',
    labelNames: ['workflow'] as const,
    registers: [registry],
  });
  const middleware: RequestHandler = (req, res, next) => {
    const end = duration.startTimer();
    res.once('finish', () => {
      // The route template (not the raw path) keeps label cardinality bounded; the route table
      // records it before anything can fail, so error answers carry it too.
      const template: unknown = res.locals.route;
      const route = typeof template === 'string' ? template : 'unmatched';
      end({ method: req.method, route, status_code: String(res.statusCode) });
    });
    next();
  };
  return { registry, middleware, workflowStarts };
}
