/** GET /api/v1/__debug: build and configuration summary for platform admins, secrets left out. */
import type { Config } from '../../config';
import { route, type Route } from '../http/route';
import { z } from '../zod';

export function debugRoutes(deps: { config: Config; version: string; commit: string }): Route[] {
  return [
    route({
      operationId: 'debugSummary',
      tag: 'System',
      method: 'get',
      path: '/api/v1/__debug',
      summary: 'Build and configuration summary (platform admin)',
      access: { caller: 'platform', permission: 'ops:read' },
      responses: {
        200: {
          description: 'Summary',
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
        },
      },
      handle({ res }) {
        const { config } = deps;
        res.json({
          version: deps.version,
          commit: deps.commit,
          node: process.version,
          uptime_seconds: Math.round(process.uptime()),
          config: {
            node_env: config.NODE_ENV,
            log_level: config.LOG_LEVEL,
            port: config.PORT,
            database: config.DATABASE_URL ? 'external' : 'embedded',
            temporal_address: config.TEMPORAL_ADDRESS ?? 'embedded dev server',
            temporal_namespace: config.TEMPORAL_NAMESPACE,
            allowed_origins: config.ALLOWED_ORIGINS,
            body_limit: config.BODY_LIMIT,
            trust_proxy: config.TRUST_PROXY,
            jwt_secret: '[set]',
            payments: config.STRIPE_SECRET_KEY ? 'stripe' : 'simulated',
            stripe_api_base: config.STRIPE_API_BASE ?? null,
            stripe_secret_key: config.STRIPE_SECRET_KEY ? '[set]' : '[unset]',
            stripe_webhook_secret: config.STRIPE_WEBHOOK_SECRET ? '[set]' : '[unset]',
          },
        });
      },
    }),
  ];
}
