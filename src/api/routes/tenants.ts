/** /api/v1/tenants: platform admins create tenants and set their quotas; a tenant token sees only its own tenant. */
import { Router } from 'express';
import type { Client } from '@temporalio/client';
import { Tenant } from '../../db/entities';
import { notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { issueToken, tokenView } from '../../services/api-tokens';
import { createTenant, setTenantQuotas, tenantQuotas, tenantView } from '../../services/tenants';
import { emOf, requireAny, requirePlatformAdmin } from '../middleware/auth';
import type { ApiMetrics } from '../middleware/metrics';
import { parse } from '../middleware/validate';
import { bearerAuth, problems, registry } from '../openapi';
import { encodeCursor } from './common.schemas';
import {
  CreateTenantBody,
  ListTenantsQuery,
  TenantCreated,
  TenantIdParams,
  TenantList,
  TenantQuotasBody,
  TenantQuotasView,
  TenantView,
} from './tenants.schemas';
import { CreateTokenBody, TokenCreated } from './tokens.schemas';

const security = [{ [bearerAuth.name]: [] }];

registry.registerPath({
  method: 'post',
  path: '/api/v1/tenants',
  summary: 'Create a tenant and start its onboarding workflow (platform admin)',
  security,
  request: { body: { content: { 'application/json': { schema: CreateTenantBody } } } },
  responses: {
    202: {
      description: 'Tenant created as PENDING; onboarding runs',
      content: { 'application/json': { schema: TenantCreated } },
    },
    ...problems(400, 401, 403, 409, 413, 503),
  },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/tenants',
  summary: 'List tenants (platform admin: all; tenant token: its own)',
  security,
  request: { query: ListTenantsQuery },
  responses: {
    200: { description: 'A page of tenants', content: { 'application/json': { schema: TenantList } } },
    ...problems(400, 401),
  },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/tenants/{id}',
  summary: 'Get a tenant',
  security,
  request: { params: TenantIdParams },
  responses: {
    200: { description: 'The tenant', content: { 'application/json': { schema: TenantView } } },
    ...problems(401, 404),
  },
});
registry.registerPath({
  method: 'post',
  path: '/api/v1/tenants/{id}/tokens',
  summary: "Issue a tenant's API token (platform admin); the secret is shown once",
  security,
  request: { params: TenantIdParams, body: { content: { 'application/json': { schema: CreateTokenBody } } } },
  responses: {
    201: { description: 'Token issued', content: { 'application/json': { schema: TokenCreated } } },
    ...problems(400, 401, 403, 404, 409),
  },
});

registry.registerPath({
  method: 'get',
  path: '/api/v1/tenants/{id}/quotas',
  summary: "A tenant's pod quotas and what its live pods use (platform admin)",
  security,
  request: { params: TenantIdParams },
  responses: {
    200: { description: 'Limits and usage', content: { 'application/json': { schema: TenantQuotasView } } },
    ...problems(401, 403, 404),
  },
});
registry.registerPath({
  method: 'patch',
  path: '/api/v1/tenants/{id}/quotas',
  summary: "Change a tenant's pod quotas (platform admin); limits not sent stay as they are",
  security,
  request: {
    params: TenantIdParams,
    body: { content: { 'application/json': { schema: TenantQuotasBody } } },
  },
  responses: {
    200: {
      description: 'The new limits and current usage',
      content: { 'application/json': { schema: TenantQuotasView } },
    },
    ...problems(400, 401, 403, 404, 413, 415),
  },
});

export function tenantRoutes(deps: { temporal: Client; metrics: ApiMetrics }): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    requirePlatformAdmin(req, 'write');
    const body = parse(CreateTenantBody, req.body);
    const { tenant, workflowId } = await createTenant(
      { em: emOf(req), temporal: deps.temporal },
      { slug: body.slug, name: body.name, currency: body.currency, ownerEmail: body.owner_email },
    );
    deps.metrics.workflowStarts.inc({ workflow: 'onboardTenant' });
    req.log.info({ tenantId: tenant.id, workflowId }, 'tenant created; onboarding started');
    res
      .status(202)
      .location(`/api/v1/tenants/${tenant.id}`)
      .json({ tenant: tenantView(tenant), workflow_id: workflowId });
  });

  router.get('/', async (req, res) => {
    requireAny(req);
    const query = parse(ListTenantsQuery, req.query, 'query');
    const after = query.cursor;
    const rows = await emOf(req).find(
      Tenant,
      { ...(query.status ? { status: query.status } : {}), ...(after ? { id: { $gt: after } } : {}) },
      { orderBy: { id: 'asc' }, limit: query.limit + 1 },
    );
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    res.json({
      data: page.map(tenantView),
      next_cursor: rows.length > query.limit && last ? encodeCursor(last.id) : null,
    });
  });

  router.get('/:id', async (req, res) => {
    requireAny(req);
    const { id } = parse(TenantIdParams, req.params, 'params');
    if (!isId('tenant', id)) throw notFound('tenant');
    // For a tenant token the filter limits this to its own tenant: any other id is 404.
    const tenant = await emOf(req).findOne(Tenant, { id });
    if (!tenant) throw notFound('tenant');
    res.json(tenantView(tenant));
  });

  router.post('/:id/tokens', async (req, res) => {
    const admin = requirePlatformAdmin(req, 'write');
    const { id } = parse(TenantIdParams, req.params, 'params');
    const body = parse(CreateTokenBody, req.body);
    if (!isId('tenant', id)) throw notFound('tenant');
    const issued = await issueToken(emOf(req), {
      tenantId: id,
      name: body.name,
      scopes: body.scopes,
      expiresInDays: body.expires_in_days,
      createdByTokenId: admin.tokenId,
    });
    req.log.info({ tenantId: id, issuedTokenId: issued.token.id }, 'tenant token issued by platform admin');
    res.status(201).json({ token: tokenView(issued.token), secret: issued.secret });
  });

  router.get('/:id/quotas', async (req, res) => {
    requirePlatformAdmin(req);
    const { id } = parse(TenantIdParams, req.params, 'params');
    if (!isId('tenant', id)) throw notFound('tenant');
    res.json(await tenantQuotas(emOf(req), id));
  });

  router.patch('/:id/quotas', async (req, res) => {
    const admin = requirePlatformAdmin(req, 'write');
    const { id } = parse(TenantIdParams, req.params, 'params');
    const body = parse(TenantQuotasBody, req.body);
    if (!isId('tenant', id)) throw notFound('tenant');
    const { report, previous } = await setTenantQuotas(emOf(req), id, {
      maxPods: body.max_pods,
      maxVcpu: body.max_vcpu,
      maxMemoryMb: body.max_memory_mb,
      maxDiskGb: body.max_disk_gb,
    });
    req.log.info(
      { tenantId: id, byTokenId: admin.tokenId, previous, limits: report.limits },
      'tenant quotas changed by platform admin',
    );
    res.json(report);
  });

  return router;
}
