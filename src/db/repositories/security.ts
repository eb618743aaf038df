/** The security event list as JSON text (see pages.ts) in the shape of `securityEventView` (api/routes/security.ts). */
import type { SecurityEventKind, SecuritySeverity } from '../entities';
import type { EntityManager } from '../orm';
import { PageWhere, isoJson, jsonbJson, textJson, textPage, utc, type Page } from './pages';

interface SecurityEventPageRow {
  id: string;
  tenant_id: string | null;
  user_id: string | null;
  kind: string;
  severity: string;
  ip: string | null;
  user_agent: string | null;
  details: string;
  created_at: string;
}

/** One page of security events, newest first: one tenant's, or (`tenantId` null) everyone's. */
export function securityEventPage(
  em: EntityManager,
  tenantId: string | null,
  q: {
    kind?: SecurityEventKind | undefined;
    severity?: SecuritySeverity | undefined;
    before?: string | undefined;
    limit: number;
  },
): Promise<Page> {
  const where = new PageWhere(tenantId)
    .add('k', 'kind = $?', q.kind)
    .add('s', 'severity = $?', q.severity)
    .add('b', 'id < $?', q.before);
  return textPage<SecurityEventPageRow>(em, {
    name: where.name('security_events_page'),
    select: `id, tenant_id, user_id, kind, severity, ip, user_agent, details, ${utc('created_at')}`,
    table: 'security_events',
    where: where.where,
    values: where.values,
    orderBy: 'id desc',
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"tenant_id":${textJson(r.tenant_id)},"user_id":${textJson(r.user_id)},` +
      `"kind":${textJson(r.kind)},"severity":${textJson(r.severity)},"ip":${textJson(r.ip)},` +
      `"user_agent":${textJson(r.user_agent)},"details":${jsonbJson(r.details)},` +
      `"created_at":${isoJson(r.created_at)}}`,
  });
}
