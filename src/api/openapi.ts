/** The OpenAPI 3.1 document, generated from the same zod schemas the routes validate with. */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from './zod';

export const registry = new OpenAPIRegistry();

export const bearerAuth = registry.registerComponent('securitySchemes', 'bearerAuth', {
  type: 'http',
  scheme: 'bearer',
  description: 'A Podplane API token (`ppt_…`), tenant-scoped or platform-admin.',
});

export const Problem = registry.register(
  'Problem',
  z
    .object({
      type: z.string().url(),
      title: z.string(),
      status: z.number().int(),
      detail: z.string(),
      instance: z.string(),
      request_id: z.string(),
      errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    })
    .openapi({ description: 'RFC 9457 problem details' }),
);

/** Standard error responses for a route, by status. */
export function problems(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      String(s),
      { description: `problem (${s})`, content: { 'application/problem+json': { schema: Problem } } },
    ]),
  );
}

const RETRY_AFTER_HEADER = {
  description: 'seconds to wait before retrying',
  schema: { type: 'integer', minimum: 0 },
};

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;

interface Operation {
  responses?: Record<string, unknown>;
}

/**
 * Answers every route can give whatever it declares: 400 for input refused at the edge (control
 * characters, undecodable paths, bodies that do not inflate) and, under /api/v1, 503 with
 * Retry-After while the database is out of reach.
 */
function addEdgeProblems(paths: Record<string, Record<string, unknown>>): void {
  for (const [path, item] of Object.entries(paths)) {
    for (const method of HTTP_METHODS) {
      const op = item[method] as Operation | undefined;
      if (!op) continue;
      const responses = (op.responses ??= {});
      responses['400'] ??= problems(400)['400'];
      if (path.startsWith('/api/v1/')) {
        const unavailable = (responses['503'] ?? problems(503)['503']) as {
          headers?: Record<string, unknown>;
        };
        responses['503'] = {
          ...unavailable,
          headers: { ...unavailable.headers, 'Retry-After': RETRY_AFTER_HEADER },
        };
      }
    }
  }
}

export function buildOpenApiDocument(version: string) {
  const document = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Podplane API',
      version,
      description:
        'Control plane for hosting providers: tenants, API tokens and, as the platform grows, CloudPods and billing. ' +
        'Errors are application/problem+json (RFC 9457).',
    },
    servers: [{ url: '/' }],
  });
  addEdgeProblems((document.paths ?? {}) as Record<string, Record<string, unknown>>);
  return document;
}
