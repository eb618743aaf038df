/**
 * The OpenAPI 3.1 document, built from the route table and the same zod schemas the routes
 * validate with. Each build uses a registry of its own: nothing is registered at import.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { TAGS, openApiPath, type Route } from './http/route';
import { rateLimitOf } from './middleware/rate-limit';
import { z } from './zod';

export const Problem = z
  .object({
    type: z.string().url(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string(),
    request_id: z.string(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem', { description: 'RFC 9457 problem details' });

const PROBLEM_TITLES: Record<number, string> = {
  400: 'malformed or invalid input',
  401: 'no valid credentials',
  403: 'not allowed (permission, tenant suspended, or quota exceeded)',
  404: 'no such resource for this caller',
  409: 'conflicts with the current state',
  413: 'body too large',
  415: 'body is not JSON',
  422: 'semantically invalid',
  429: 'too many requests',
  503: 'temporarily unavailable; retry after Retry-After',
};

const RETRY_AFTER_HEADER = z.string().openapi({ description: 'seconds to wait before retrying' });

function problem(status: number): ResponseConfig {
  return {
    description: PROBLEM_TITLES[status] ?? `problem (${status})`,
    content: { 'application/problem+json': { schema: Problem } },
    ...(status === 503 || status === 429 ? { headers: z.object({ 'Retry-After': RETRY_AFTER_HEADER }) } : {}),
  };
}

/**
 * The problem answers a route can give, from its shape: credentials (401, 403), input (400),
 * a path naming a resource (404), a JSON body (413, 415), an idempotency key (409, 422), and
 * under /api/v1 a database or Temporal that cannot be reached (503), a rate limit it spends (429)
 * — plus what it declares.
 */
export function problemStatuses(route: Route): number[] {
  const statuses = new Set<number>(route.problems);
  statuses.add(400);
  if (!('public' in route.access)) {
    statuses.add(401);
    statuses.add(403);
  }
  if (route.params) statuses.add(404);
  if (route.body) {
    statuses.add(413);
    statuses.add(415);
  }
  if (route.idempotent) {
    statuses.add(409);
    statuses.add(422);
  }
  if (route.path.startsWith('/api/v1/')) statuses.add(503);
  if (rateLimitOf(route) !== 'none') statuses.add(429);
  return [...statuses].sort((a, b) => a - b);
}

const CALLERS = {
  tenant: "a tenant's token",
  platform: 'platform administrators',
  any: 'any token',
} as const;

const IDEMPOTENCY_KEY = z.object({
  'Idempotency-Key': z.string().min(1).max(255).optional().openapi({
    description:
      'Makes a retry safe: the same key with the same body returns the stored answer (24 h); with another body 422; while the first request runs 409',
  }),
});

export function buildOpenApiDocument(routes: readonly Route[], version: string) {
  const registry = new OpenAPIRegistry();
  const bearerAuth = registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description:
      'Either a Podplane API token (`ppt_…`, tenant or platform, holding its scopes) or a user’s access ' +
      'token from `POST /api/v1/auth/login` (a short-lived JWT carrying the permissions of the user’s role ' +
      'in the tenant signed into). Both give the same principal; each route names the permission it needs.',
  });
  for (const r of routes) {
    const isPublic = 'public' in r.access;
    const responses: Record<number, ResponseConfig> = { ...r.responses };
    for (const status of problemStatuses(r)) responses[status] ??= problem(status);
    const access =
      'public' in r.access
        ? `Public: ${r.access.public}.`
        : `Needs \`${r.access.permission}\` (${CALLERS[r.access.caller]}).`;
    registry.registerPath({
      method: r.method,
      path: openApiPath(r.path),
      operationId: r.operationId,
      tags: [r.tag],
      summary: r.summary,
      description: [r.description, access].filter(Boolean).join('\n\n'),
      ...(isPublic ? { security: [] } : { security: [{ [bearerAuth.name]: [] }] }),
      request: {
        ...(r.params ? { params: r.params as never } : {}),
        ...(r.query ? { query: r.query as never } : {}),
        ...(r.idempotent ? { headers: IDEMPOTENCY_KEY } : {}),
        ...(r.body ? { body: { content: { 'application/json': { schema: r.body } } } } : {}),
        ...(r.rawBody
          ? {
              body: {
                content: { [r.rawBody.contentType]: { schema: z.string().openapi({ format: 'binary' }) } },
              },
            }
          : {}),
      },
      responses,
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Podplane API',
      version,
      description:
        'Control plane for hosting providers: tenants, API tokens, customers, products, nodes, and CloudPods ' +
        '(VMs with a DNS name) provisioned by durable workflows with compensating rollback. Long work answers 202 ' +
        'with a job; errors are application/problem+json (RFC 9457).',
    },
    servers: [{ url: '/' }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
  });
}
