/** GET /metrics and GET /openapi.json: what monitoring and API clients read about this process. */
import type { ApiMetrics } from '../middleware/metrics';
import { route, type Route } from '../http/route';
import { z } from '../zod';

export function systemRoutes(deps: { metrics: ApiMetrics; openApi: () => unknown }): Route[] {
  return [
    route({
      operationId: 'metrics',
      tag: 'System',
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics of this API process',
      access: {
        public:
          'Prometheus scrapes it without credentials; it holds counts and durations by route template, no tenant data',
      },
      responses: {
        200: {
          description: 'Prometheus text exposition format',
          content: { 'text/plain': { schema: z.string() } },
        },
      },
      async handle({ res }) {
        res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
      },
    }),
    route({
      operationId: 'openApiDocument',
      tag: 'System',
      method: 'get',
      path: '/openapi.json',
      summary: 'This document: the OpenAPI 3.1 description of the API',
      access: { public: 'the API description is published for client generators and /docs' },
      responses: {
        200: {
          description: 'OpenAPI 3.1 document',
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
        },
      },
      handle({ res }) {
        res.json(deps.openApi());
      },
    }),
  ];
}
