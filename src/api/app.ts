/**
 * createApp(deps): the Express application. Tests build it with the same deps the API
 * process uses, so what is tested is what runs.
 */
import { randomUUID } from 'node:crypto';
import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import swaggerUi from 'swagger-ui-express';
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { MikroORM } from '../db/orm';
import { AppError } from '../domain/errors';
import type { Logger } from '../logger';
import type { FaultInjector } from '../providers/simulator';
import { authenticate } from './middleware/auth';
import { createApiMetrics, type ApiMetrics } from './middleware/metrics';
import { notFoundHandler, problemHandler } from './middleware/problem';
import { buildOpenApiDocument } from './openapi';
import { cloudPodRoutes } from './routes/cloudpods';
import { customerRoutes } from './routes/customers';
import { debugRoutes } from './routes/debug';
import { healthRoutes } from './routes/health';
import { nodeRoutes } from './routes/nodes';
import { opsRoutes } from './routes/ops';
import { productRoutes } from './routes/products';
import { tenantRoutes } from './routes/tenants';
import { tokenRoutes } from './routes/tokens';
import './types';

export interface AppDeps {
  config: Config;
  orm: MikroORM;
  temporal: Client;
  logger: Logger;
  version: string;
  commit: string;
  metrics?: ApiMetrics;
  /** the simulator's fault rules, steered by /ops/simulator/faults */
  faults: FaultInjector;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Bodies are JSON; anything else on a method that carries one is 415. */
const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    throw new AppError('unsupported_media_type', 'send the body as application/json');
  }
  next();
};

export function createApp(deps: AppDeps): Express {
  const { config } = deps;
  const metrics = deps.metrics ?? createApiMetrics();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.TRUST_PROXY);
  app.set('query parser', 'simple');

  app.use(
    pinoHttp({
      logger: deps.logger,
      // every line logged through req.log carries `reqId`
      quietReqLogger: true,
      genReqId: (req, res) => {
        const incoming = req.headers['x-request-id'];
        const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/metrics' },
    }),
  );
  app.use(metrics.middleware);

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
      exposedHeaders: ['X-Request-Id', 'Location', 'Retry-After'],
      maxAge: 600,
    }),
  );
  app.use(requireJsonBody);
  app.use(
    express.json({
      limit: config.BODY_LIMIT,
      strict: true,
      type: ['application/json', 'application/*+json'],
    }),
  );

  app.use('/health', healthRoutes({ orm: deps.orm, temporalConnection: deps.temporal.connection }));
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  const openApiDocument = buildOpenApiDocument(deps.version);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(undefined, { swaggerOptions: { url: '/openapi.json' } }));

  const api = express.Router();
  api.use(authenticate(deps.orm));
  api.use('/__debug', debugRoutes({ config, version: deps.version, commit: deps.commit }));
  api.use('/tenants', tenantRoutes({ temporal: deps.temporal, metrics }));
  api.use('/tokens', tokenRoutes());
  api.use('/customers', customerRoutes());
  api.use('/products', productRoutes());
  api.use('/cloudpods', cloudPodRoutes({ orm: deps.orm, temporal: deps.temporal, config, metrics }));
  api.use('/nodes', nodeRoutes());
  api.use('/ops', opsRoutes({ orm: deps.orm, temporal: deps.temporal, config, faults: deps.faults }));
  app.use('/api/v1', api);

  app.use(notFoundHandler);
  app.use(problemHandler);
  return app;
}
