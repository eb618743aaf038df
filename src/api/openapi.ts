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

export function buildOpenApiDocument(version: string) {
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
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
}
