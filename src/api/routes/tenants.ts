/** /api/v1/tenants: platform admins create tenants and set their quotas; a tenant token sees only its own tenant. */
import type { Client } from '@temporalio/client';
import { Tenant } from '../../db/entities';
import { pageBody } from '../../db/repositories/pages';
import { tenantPage } from '../../db/repositories/tenancy';
import { notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { issueToken } from '../../services/api-tokens';
import { createTenant, setTenantQuotas, tenantQuotas } from '../../services/tenants';
import { route, type Route } from '../http/route';
import type { ApiMetrics } from '../middleware/metrics';
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
import { tokenView } from './tokens';
import { CreateTokenBody, TokenCreated, lifetimeOf } from './tokens.schemas';

/** A tenant as the API shows it. */
export function tenantView(tenant: Tenant) {
  return {
    id: tenant.id,
    slug: tenant.slug,
    name: tenant.name,
    currency: tenant.currency,
    status: tenant.status,
    mode: tenant.mode,
    owner_email: tenant.ownerEmail,
    onboarding_workflow_id: tenant.onboardingWorkflowId ?? null,
    created_at: tenant.createdAt.toISOString(),
    activated_at: tenant.activatedAt?.toISOString() ?? null,
  };
}

const admin = { caller: 'platform', permission: 'tenants:admin' } as const;
const platformRead = { caller: 'platform', permission: 'tenants:read' } as const;
/** a tenant's token reaches only its own tenant through the tenant filter: any other id is 404 */
const anyRead = { caller: 'any', permission: 'tenants:read' } as const;

export function tenantRoutes(deps: { temporal: Client; metrics: ApiMetrics }): Route[] {
  return [
    route({
      operationId: 'createTenant',
      tag: 'Tenants',
      method: 'post',
      path: '/api/v1/tenants',
      summary: 'Create a tenant and start its onboarding workflow (platform admin)',
      access: admin,
      body: CreateTenantBody,
      durable: true,
      responses: {
        202: {
          description: 'Tenant created as PENDING; onboarding runs',
          content: { 'application/json': { schema: TenantCreated } },
        },
      },
      problems: [409],
      async handle({ em, body, res, log }) {
        const { tenant, workflowId } = await createTenant(
          { em, temporal: deps.temporal },
          {
            slug: body.slug,
            name: body.name,
            currency: body.currency,
            ownerEmail: body.owner_email,
            sandbox: body.sandbox ?? false,
          },
        );
        deps.metrics.workflowStarts.inc({ workflow: 'onboardTenant' });
        log.info({ tenantId: tenant.id, workflowId }, 'tenant created; onboarding started');
        res
          .status(202)
          .location(`/api/v1/tenants/${tenant.id}`)
          .json({ tenant: tenantView(tenant), workflow_id: workflowId });
      },
    }),
    route({
      operationId: 'listTenants',
      tag: 'Tenants',
      method: 'get',
      path: '/api/v1/tenants',
      summary: 'List tenants (platform admin: all; tenant token: its own)',
      access: anyRead,
      query: ListTenantsQuery,
      responses: {
        200: { description: 'A page of tenants', content: { 'application/json': { schema: TenantList } } },
      },
      async handle({ principal, em, query, res }) {
        // a tenant's principal sees its own tenant only, as the tenant filter shows it
        const page = await tenantPage(em, principal.tenantId, {
          status: query.status,
          after: query.cursor,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'getTenant',
      tag: 'Tenants',
      method: 'get',
      path: '/api/v1/tenants/:id',
      summary: 'Get a tenant',
      access: anyRead,
      params: TenantIdParams,
      responses: {
        200: { description: 'The tenant', content: { 'application/json': { schema: TenantView } } },
      },
      async handle({ em, params, res }) {
        if (!isId('tenant', params.id)) throw notFound('tenant');
        // For a tenant token the filter limits this to its own tenant: any other id is 404.
        const tenant = await em.findOne(Tenant, { id: params.id });
        if (!tenant) throw notFound('tenant');
        res.json(tenantView(tenant));
      },
    }),
    route({
      operationId: 'createTenantToken',
      tag: 'Tenants',
      method: 'post',
      path: '/api/v1/tenants/:id/tokens',
      summary: "Issue a tenant's API token (platform admin); the secret is shown once",
      access: admin,
      params: TenantIdParams,
      body: CreateTokenBody,
      responses: {
        201: { description: 'Token issued', content: { 'application/json': { schema: TokenCreated } } },
      },
      problems: [409],
      async handle({ principal, em, params, body, res, log }) {
        const { id } = params;
        if (!isId('tenant', id)) throw notFound('tenant');
        const issued = await issueToken(em, {
          tenantId: id,
          name: body.name,
          scopes: body.scopes,
          lifetime: lifetimeOf(body),
          createdByTokenId: principal.tokenId,
        });
        log.info({ tenantId: id, issuedTokenId: issued.token.id }, 'tenant token issued by platform admin');
        res.status(201).json({ token: tokenView(issued.token), secret: issued.secret });
      },
    }),
    route({
      operationId: 'getTenantQuotas',
      tag: 'Tenants',
      method: 'get',
      path: '/api/v1/tenants/:id/quotas',
      summary: "A tenant's pod quotas and what its live pods use (platform admin)",
      access: platformRead,
      params: TenantIdParams,
      responses: {
        200: {
          description: 'Limits and usage',
          content: { 'application/json': { schema: TenantQuotasView } },
        },
      },
      async handle({ em, params, res }) {
        if (!isId('tenant', params.id)) throw notFound('tenant');
        res.json(await tenantQuotas(em, params.id));
      },
    }),
    route({
      operationId: 'updateTenantQuotas',
      tag: 'Tenants',
      method: 'patch',
      path: '/api/v1/tenants/:id/quotas',
      summary: "Change a tenant's pod quotas (platform admin); limits not sent stay as they are",
      access: admin,
      params: TenantIdParams,
      body: TenantQuotasBody,
      responses: {
        200: {
          description: 'The new limits and current usage',
          content: { 'application/json': { schema: TenantQuotasView } },
        },
      },
      async handle({ principal, em, params, body, res, log }) {
        const { id } = params;
        if (!isId('tenant', id)) throw notFound('tenant');
        const { report, previous } = await setTenantQuotas(em, id, {
          maxPods: body.max_pods,
          maxVcpu: body.max_vcpu,
          maxMemoryMb: body.max_memory_mb,
          maxDiskGb: body.max_disk_gb,
        });
        log.info(
          { tenantId: id, byTokenId: principal.tokenId, previous, limits: report.limits },
          'tenant quotas changed by platform admin',
        );
        res.json(report);
      },
    }),
  ];
}
