/**
 * createApp(deps): the Express application. Tests build it with the same deps the API
 * process uses, so what is tested is what runs.
 */
import cors from 'cors';
import express, { type Express } from 'express';
import helmet from 'helmet';
import swaggerUi from 'swagger-ui-express';
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { MikroORM } from '../db/orm';
import type { Logger } from '../logger';
import type { FaultInjector } from '../providers/simulator';
import { mountRoutes, servedRoutes } from './http/route';
import { createApiMetrics, type ApiMetrics } from './middleware/metrics';
import { createRateLimits } from './middleware/rate-limit';
import { requestLog } from './middleware/request-log';
import { noteDatabaseReachable, notFoundHandler, problemHandler } from './middleware/problem';
import { refuseHostileInput, type RouteShape } from './middleware/validate';
import { buildOpenApiDocument } from './openapi';
import { routeTable } from './routes';
import './types';

export interface AppDeps {
  config: Config;
  orm: MikroORM;
  temporal: Client;
  logger: Logger;
  version: string;
  commit: string;
  metrics?: ApiMetrics;
  /**
   * The simulators' fault rules behind /ops/simulator/faults; built from `orm` when omitted —
   * the API needs no provider client to serve them, and builds none.
   */
  faults?: FaultInjector;
}

/** The parts of Express 5's router layers that `mountedRoutes` reads. */
interface RouterLayer {
  rawPath?: unknown;
  route?: { path: unknown };
  handle?: { stack?: unknown };
}

/** Every route mounted on `app`, nested routers included, in Express syntax (`/api/v1/customers/:id`). */
export function mountedRoutes(app: Express): RouteShape[] {
  const routes: RouteShape[] = [];
  const join = (prefix: string, path: string) =>
    `${prefix}/${path}`.replace(/\/{2,}/g, '/').replace(/(.)\/$/, '$1');
  const walk = (stack: RouterLayer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths: unknown[] = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths) if (typeof path === 'string') routes.push({ path: join(prefix, path) });
      } else if (Array.isArray(layer.handle?.stack) && typeof layer.rawPath === 'string') {
        walk(layer.handle.stack as RouterLayer[], join(prefix, layer.rawPath));
      }
    }
  };
  walk((app.router as unknown as { stack: RouterLayer[] }).stack, '');
  return routes;
}

export function createApp(deps: AppDeps): Express {
  const { config } = deps;
  const metrics = deps.metrics ?? createApiMetrics();
  const app = express();
  app.disable('x-powered-by');
  // Every answer is Cache-Control: no-store, so an ETag (a hash of each body) would buy nothing.
  app.set('etag', false);
  app.set('trust proxy', config.TRUST_PROXY);
  app.set('query parser', 'simple');

  app.use(requestLog(deps.logger));
  app.use(metrics.middleware);
  // A request the database answered closes a database outage: one whose token was read from it
  // and did not fail with a 5xx, or an authenticated one that succeeded (its handler read or wrote).
  app.use((req, res, next) => {
    res.on('finish', () => {
      const answered = res.locals.databaseAnswered === true || (req.principal && res.statusCode < 400);
      if (answered && res.statusCode < 500) noteDatabaseReachable(req.log);
    });
    next();
  });

  const apiHelmet = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
    frameguard: { action: 'deny' },
    strictTransportSecurity: { maxAge: 31536000, includeSubDomains: true },
    crossOriginResourcePolicy: { policy: 'same-site' },
  });
  // The docs page loads its own scripts and styles from this origin only.
  const docsHelmet = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
  });
  app.use((req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    return (req.path === '/docs' || req.path.startsWith('/docs/') ? docsHelmet : apiHelmet)(req, res, next);
  });

  app.use(
    cors({
      origin: (origin, cb) => cb(null, origin !== undefined && config.ALLOWED_ORIGINS.includes(origin)),
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'],
      exposedHeaders: [
        'X-Request-Id',
        'Location',
        'Retry-After',
        'RateLimit',
        'RateLimit-Policy',
        'X-RateLimit-Limit',
        'X-RateLimit-Remaining',
        'X-RateLimit-Reset',
      ],
      maxAge: 600,
    }),
  );
  // Routes are all mounted by the time the first request arrives.
  let mounted: RouteShape[] | undefined;
  app.use(refuseHostileInput(() => (mounted ??= mountedRoutes(app))));

  let document: unknown;
  const served = servedRoutes(
    routeTable({
      ...deps,
      metrics,
      openApi: () => (document ??= buildOpenApiDocument(served, deps.version)),
    }),
    config,
  );
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(undefined, { swaggerOptions: { url: '/openapi.json' } }));
  const rateLimits = createRateLimits(config, deps.logger);
  /** the rate limits, whose Redis connection `rateLimitsOf(app).close()` ends */
  app.locals.rateLimits = rateLimits;
  mountRoutes(app, served, { orm: deps.orm, config, rateLimits });
  /** the served route table, for the tests that walk it */
  app.locals.routes = served;

  app.use(notFoundHandler);
  app.use(problemHandler);
  return app;
}
