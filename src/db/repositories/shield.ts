/** The shield event list as JSON text (see pages.ts) in the shape of `ShieldEventView` (api/routes/shield.schemas.ts). */
import type { ShieldEventAction } from '../entities';
import type { EntityManager } from '../orm';
import { PageWhere, intJson, isoJson, textJson, textPage, utc, type Page } from './pages';

interface ShieldEventPageRow {
  id: string;
  tenant_id: string;
  ip: string;
  source: string;
  mode: string;
  action: string;
  rule_id: string | null;
  rule_action: string | null;
  rule_cidr: string | null;
  method: string;
  path: string;
  actor_id: string;
  request_id: string;
  window_start: string;
  hits: string;
  created_at: string;
  last_at: string;
}

/** One page of shield events, newest first: one tenant's, or (`tenantId` null) everyone's. */
export function shieldEventPage(
  em: EntityManager,
  tenantId: string | null,
  q: {
    ip?: string | undefined;
    action?: ShieldEventAction | undefined;
    before?: string | undefined;
    limit: number;
  },
): Promise<Page> {
  const where = new PageWhere(tenantId)
    .add('i', 'ip = $?', q.ip)
    .add('a', 'action = $?', q.action)
    .add('b', 'id < $?', q.before);
  return textPage<ShieldEventPageRow>(em, {
    name: where.name('shield_events_page'),
    select:
      'id, tenant_id, ip, source, mode, action, rule_id, rule_action, rule_cidr, method, path, actor_id, ' +
      `request_id, ${utc('window_start')}, hits, ${utc('created_at')}, ${utc('last_at')}`,
    table: 'shield_events',
    where: where.where,
    values: where.values,
    orderBy: 'id desc',
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"tenant_id":${textJson(r.tenant_id)},"ip":${textJson(r.ip)},` +
      `"source":${textJson(r.source)},"mode":${textJson(r.mode)},"action":${textJson(r.action)},` +
      `"rule_id":${textJson(r.rule_id)},"rule_action":${textJson(r.rule_action)},"rule_cidr":${textJson(r.rule_cidr)},` +
      `"method":${textJson(r.method)},"path":${textJson(r.path)},"actor_id":${textJson(r.actor_id)},` +
      `"request_id":${textJson(r.request_id)},"window_start":${isoJson(r.window_start)},"hits":${intJson(r.hits)},` +
      `"created_at":${isoJson(r.created_at)},"last_at":${isoJson(r.last_at)}}`,
  });
}
