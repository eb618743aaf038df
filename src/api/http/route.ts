/**
 * A route is one object: method, path, summary, who may call it, its schemas, whether it is
 * idempotent or starts durable work, and its handler. `mountRoutes` puts every route on Express
 * with exactly the authentication, authorization, body parsing, validation and idempotency it
 * declares; `openApiDocument` (./openapi.ts) describes the same objects, so the two cannot drift.
 */
import express, { type Express, type Request, type RequestHandler, type Response } from 'express';
import type { ResponseConfig } from '@asteasolutions/zod-to-openapi';
import type { z } from 'zod';
import type { Config } from '../../config';
import { withAuditContext, type AuditContext } from '../../db/audit-context';
import { systemEm, type EntityManager, type MikroORM } from '../../db/orm';
import { AppError } from '../../domain/errors';
import { ROLE_PERMISSIONS, type Permission } from '../../domain/permissions';
import type { Principal } from '../../domain/principal';
import type { Logger } from '../../logger';
import { authenticate, authorize } from '../middleware/auth';
import { idempotency } from '../middleware/idempotency';
import type { RateLimits, RouteRateLimit } from '../middleware/rate-limit';
import { shield } from '../middleware/shield';
import { parse, refuseHostileBody, refuseMalformedUtf8 } from '../middleware/validate';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** Groups in /docs, one per area. */
export const TAGS = {
  CloudPods: 'Pods, their jobs, plan changes, suspension and backups',
  Customers: 'A tenant’s customers',
  Products: 'A tenant’s plans',
  Billing:
    'Subscriptions, invoices, credit notes and payments: amounts are integers in minor units of their currency',
  Tokens: 'API tokens',
  Members: 'A tenant’s members, their roles and invitations',
  Auth: 'Sign-in: users, access and refresh tokens, sessions, passwords',
  Security: 'Security events and the signed-in user’s profile',
  Audit: 'The tamper-evident audit trail: every change, who made it and why, hash-chained per tenant',
  Tenants: 'Tenants and their quotas (platform administrators)',
  Nodes: 'Hypervisor nodes and their capacity (platform administrators)',
  Operations: 'Jobs, dead letters and ops events (platform administrators)',
  Simulator: 'The simulated hypervisor and DNS (platform administrators, simulator only)',
  System: 'Health, metrics and this description',
} as const;
export type Tag = keyof typeof TAGS;

/**
 * Who may call a route. `public` routes name why they are public; every other route names the
 * permission it needs and whose principals may call it: a tenant's (API token or, later, user),
 * the platform's (administrators), or either (a tenant sees only its own rows).
 */
export type Access = { public: string } | { caller: 'tenant' | 'platform' | 'any'; permission: Permission };

export interface RouteContext<P, Q, B> {
  req: Request;
  res: Response;
  /** the caller; on a public route, a system principal standing for the anonymous caller */
  principal: Principal;
  /** tenant-filtered for a tenant's principal */
  em: EntityManager;
  params: P;
  query: Q;
  body: B;
  log: Logger;
}

type Infer<S> = S extends z.ZodType ? z.infer<S> : undefined;

/** What a route declares about itself, typed or erased alike. */
interface RouteMeta {
  /** stable, unique: the OpenAPI operationId */
  operationId: string;
  tag: Tag;
  method: Method;
  /** Express syntax: `/api/v1/customers/:id` */
  path: string;
  summary: string;
  description?: string;
  access: Access;
  /**
   * this route's JSON body limit instead of `BODY_LIMIT` (express syntax, `1mb`): for batch routes
   * whose largest valid body is bigger than any single-object body
   */
  bodyLimit?: string;
  /** a body taken as raw bytes (a webhook whose signature covers them): `req.body` is a Buffer */
  rawBody?: { contentType: string };
  /** the success answers */
  responses: Record<number, ResponseConfig>;
  /** mounted only when this holds for the configuration (the simulator's routes) */
  when?: (config: Config) => boolean;
  /**
   * the rate limit this route spends (DESIGN.md §8); unset: `auth` under /api/v1/auth/,
   * `password-reset` under /api/v1/auth/password-reset, `webhook` under /api/v1/billing/webhooks/,
   * none for other public routes, and the caller's budget on authenticated ones (`api` for a
   * tenant's principal, `admin` for a platform principal) — see middleware/rate-limit.ts
   */
  rateLimit?: RouteRateLimit;
}

export interface RouteDefinition<
  P extends z.ZodType | undefined,
  Q extends z.ZodType | undefined,
  B extends z.ZodType | undefined,
> extends RouteMeta {
  params?: P;
  query?: Q;
  /** a JSON body, parsed and validated for this route only */
  body?: B;
  /** takes an `Idempotency-Key` */
  idempotent?: boolean;
  /** starts or signals durable work (a workflow): answers 503 while Temporal cannot be reached */
  durable?: boolean;
  /** problem statuses beyond those the route's shape implies (401/403 with auth, 400 with input, …) */
  problems?: number[];
  handle: (ctx: RouteContext<Infer<P>, Infer<Q>, Infer<B>>) => Promise<void> | void;
}

/** A route with its types erased, as the table holds it. */
export interface Route extends RouteMeta {
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  idempotent: boolean;
  durable: boolean;
  problems: number[];
  run(req: Request, res: Response): Promise<void>;
}

/** Declares a route; the handler's params, query and body are typed from the schemas. */
export function route<
  P extends z.ZodType | undefined = undefined,
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(def: RouteDefinition<P, Q, B>): Route {
  const { handle, params, query, body, idempotent, durable, problems, ...meta } = def;
  return {
    ...meta,
    ...(params ? { params } : {}),
    ...(query ? { query } : {}),
    ...(body ? { body } : {}),
    idempotent: idempotent ?? false,
    durable: durable ?? false,
    problems: problems ?? [],
    async run(req, res) {
      await handle({
        req,
        res,
        principal: req.principal ?? ANONYMOUS,
        // read on use: authentication forks the EntityManager only for handlers that ask for it
        get em() {
          return req.em as EntityManager;
        },
        params: (params ? parse(params, req.params, 'params') : undefined) as Infer<P>,
        query: (query ? parse(query, req.query, 'query') : undefined) as Infer<Q>,
        body: (body ? parse(body, req.body) : meta.rawBody ? (req.body as Buffer) : undefined) as Infer<B>,
        log: req.log,
      });
    },
  };
}

function auditContextOf(req: Request, operationId: string): AuditContext {
  const principal = req.principal ?? ANONYMOUS;
  return {
    actorType: principal.actorType,
    actorId: principal.actorId,
    requestId: req.id,
    operation: operationId,
  };
}

/** The caller of a public route: no tenant, no permission. */
const ANONYMOUS: Principal = {
  actorType: 'system',
  actorId: 'anonymous',
  tenantId: null,
  role: 'anonymous',
  permissions: ROLE_PERMISSIONS.anonymous,
  tokenId: null,
  sessionId: null,
};

/** Bodies are JSON; anything else on a route that takes one is 415. */
const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    throw new AppError('unsupported_media_type', 'send the body as application/json');
  }
  next();
};

export interface MountDeps {
  orm: MikroORM;
  config: Config;
  /** absent: no rate limits */
  rateLimits?: RateLimits;
}

/** The routes this configuration serves (`when` applied). */
export function servedRoutes(routes: readonly Route[], config: Config): Route[] {
  return routes.filter((r) => !r.when || r.when(config));
}

/** Mounts every served route with the chain its declaration implies. */
export function mountRoutes(app: Express, routes: readonly Route[], deps: MountDeps): void {
  const authenticated = authenticate(deps.orm);
  const shielded = shield(deps.orm);
  const jsonParser = (limit: string) =>
    express.json({
      limit,
      strict: true,
      type: ['application/json', 'application/*+json'],
      verify: refuseMalformedUtf8,
    });
  const json = jsonParser(deps.config.BODY_LIMIT);
  const idempotent = idempotency(deps.orm);
  const seen = new Set<string>();
  for (const r of servedRoutes(routes, deps.config)) {
    const key = `${r.method.toUpperCase()} ${r.path}`;
    if (seen.has(key)) throw new Error(`route ${key} is declared twice`);
    seen.add(key);
    const chain: RequestHandler[] = [
      (_req, res, next) => {
        res.locals.route = r.path;
        next();
      },
    ];
    // Before the body is read: a refused request costs no parsing. After authentication on
    // authenticated routes: the budget is the caller's.
    const limit = deps.rateLimits?.forRoute(r);
    if ('public' in r.access) {
      if (limit) chain.push(limit);
      chain.push((req, _res, next) => {
        let em: EntityManager | undefined;
        Object.defineProperty(req, 'em', { configurable: true, get: () => (em ??= systemEm(deps.orm)) });
        next();
      });
    } else {
      chain.push(authenticated);
      if (limit) chain.push(limit);
      // A refused address learns nothing about the route or its permission (IP allowlist, shield).
      chain.push(shielded, authorize(r.access));
    }
    if (r.rawBody) {
      chain.push(express.raw({ type: r.rawBody.contentType, limit: deps.config.BODY_LIMIT }));
    } else if (r.body) {
      chain.push(requireJsonBody, r.bodyLimit ? jsonParser(r.bodyLimit) : json, refuseHostileBody);
    }
    if (r.idempotent) chain.push(idempotent);
    // Every transaction the handler starts tells the audit trail who called, in which request.
    chain.push(async (req, res) => {
      await withAuditContext(
        () => auditContextOf(req, r.operationId),
        () => r.run(req, res),
      );
    });
    app[r.method](r.path, ...chain);
  }
}

/** `/api/v1/customers/:id` → `/api/v1/customers/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}
