/** The token and tenant lists as JSON text (see pages.ts), in the shapes of their views. */
import type { TenantStatus } from '../../domain/tenants';
import type { EntityManager } from '../orm';
import { PageWhere, isoJson, textJson, textPage, utc, type Page } from './pages';

/** As many tokens as GET /api/v1/tokens ever listed: it has no cursor. */
const TOKEN_LIST_CAP = 500;

interface TokenPageRow {
  id: string;
  tenant_id: string;
  name: string;
  prefix: string;
  /** `text[]` as a JSON array, by `array_to_json` */
  scopes: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

/** A tenant's API tokens (revoked and expired ones too) by id, in `tokenView`'s shape; never a secret or hash. */
export function tokenPage(em: EntityManager, tenantId: string): Promise<Page> {
  const where = new PageWhere(tenantId);
  return textPage<TokenPageRow>(em, {
    name: where.name('tokens_page'),
    select: `id, tenant_id, name, prefix, array_to_json(scopes) as scopes, ${utc('created_at')},
             ${utc('last_used_at')}, ${utc('expires_at')}, ${utc('revoked_at')}`,
    table: 'api_tokens',
    where: where.where,
    values: where.values,
    limit: TOKEN_LIST_CAP,
    item: (r) =>
      `{"id":${textJson(r.id)},"tenant_id":${textJson(r.tenant_id)},"name":${textJson(r.name)},` +
      `"prefix":${textJson(r.prefix)},"scopes":${r.scopes},"created_at":${isoJson(r.created_at)},` +
      `"last_used_at":${isoJson(r.last_used_at)},"expires_at":${isoJson(r.expires_at)},` +
      `"revoked_at":${isoJson(r.revoked_at)}}`,
  });
}

interface TenantPageRow {
  id: string;
  slug: string;
  name: string;
  currency: string;
  status: string;
  mode: string;
  owner_email: string;
  onboarding_workflow_id: string | null;
  created_at: string;
  activated_at: string | null;
}

/**
 * One page of tenants in `tenantView`'s shape: every tenant for a platform principal (`tenantId`
 * null), only its own for a tenant's — as the tenant filter limits `Tenant` to its id.
 */
export function tenantPage(
  em: EntityManager,
  tenantId: string | null,
  q: { status?: TenantStatus | undefined; after?: string | undefined; limit: number },
): Promise<Page> {
  const where = new PageWhere(tenantId, 'id').add('s', 'status = $?', q.status).add('a', 'id > $?', q.after);
  return textPage<TenantPageRow>(em, {
    name: where.name('tenants_page'),
    select: `id, slug, name, currency, status, mode, owner_email, onboarding_workflow_id, ${utc('created_at')},
             ${utc('activated_at')}`,
    table: 'tenants',
    where: where.where,
    values: where.values,
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"slug":${textJson(r.slug)},"name":${textJson(r.name)},` +
      `"currency":${textJson(r.currency)},"status":${textJson(r.status)},"mode":${textJson(r.mode)},` +
      `"owner_email":${textJson(r.owner_email)},` +
      `"onboarding_workflow_id":${textJson(r.onboarding_workflow_id)},"created_at":${isoJson(r.created_at)},` +
      `"activated_at":${isoJson(r.activated_at)}}`,
  });
}
