/**
 * /api/v1/security/shield: a tenant's shield — IP allow/deny rules in OFF, MONITOR or ENFORCE mode
 * (middleware/shield.ts applies them to every request of the tenant's principals) — and the
 * refusals it recorded, aggregated per address and minute. A tenant's OWNER and ADMIN members and
 * its write tokens read and set it; a platform administrator reads every tenant's events.
 */
import type { MikroORM } from '../../db/orm';
import { pageBody } from '../../db/repositories/pages';
import { shieldEventPage } from '../../db/repositories/shield';
import { AppError } from '../../domain/errors';
import { replaceShield, shieldOf, type StoredShield } from '../../services/shield';
import { route, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import { forgetShieldPolicy } from '../middleware/shield';
import { encodeCursor } from './common.schemas';
import {
  ListShieldEventsQuery,
  PutShieldBody,
  ShieldEventList,
  ShieldPolicyView,
  type ShieldPolicyView as ShieldPolicyViewType,
} from './shield.schemas';

export function shieldView(shield: StoredShield): ShieldPolicyViewType {
  return {
    tenant_id: shield.tenantId,
    mode: shield.mode,
    rules: shield.rules.map((r) => ({
      id: r.id,
      position: r.position,
      action: r.action,
      cidr: r.cidr,
      note: r.note,
      created_by: r.createdBy,
      created_at: r.createdAt.toISOString(),
    })),
    updated_at: shield.updatedAt?.toISOString() ?? null,
    updated_by: shield.updatedBy,
  };
}

export function shieldRoutes(deps: { orm: MikroORM }): Route[] {
  return [
    route({
      operationId: 'getShield',
      tag: 'Security',
      method: 'get',
      path: '/api/v1/security/shield',
      summary: 'The calling tenant’s shield: its mode and ordered IP rules',
      description:
        'A tenant that never set its shield has it OFF with no rules. Rules are evaluated in order and the ' +
        'first whose CIDR holds the client address decides (ALLOW lets it through, DENY refuses it); when ' +
        'any ALLOW rule exists, an address no rule holds is refused.',
      access: { caller: 'tenant', permission: 'security:read' },
      responses: {
        200: { description: 'The shield', content: { 'application/json': { schema: ShieldPolicyView } } },
      },
      async handle({ principal, em, res }) {
        res.json(shieldView(await shieldOf(em, tenantOf(principal))));
      },
    }),
    route({
      operationId: 'putShield',
      tag: 'Security',
      method: 'put',
      path: '/api/v1/security/shield',
      summary: 'Set the calling tenant’s shield: mode and the whole rule list',
      description:
        'Replaces the mode and every rule (in the order given). CIDRs are validated (400) and stored ' +
        'normalised. A shield in ENFORCE that would refuse the address this request comes from is 422 and ' +
        'nothing changes. The change applies at once in this API process and within 3 seconds in others. ' +
        'Rules that stay (same action and CIDR) keep their id and author.',
      access: { caller: 'tenant', permission: 'security:write' },
      body: PutShieldBody,
      problems: [422],
      responses: {
        200: {
          description: 'The shield as stored',
          content: { 'application/json': { schema: ShieldPolicyView } },
        },
      },
      async handle({ req, principal, em, body, res, log }) {
        const tenantId = tenantOf(principal);
        const stored = await replaceShield(em, { ...principal, tenantId }, body, req.ip);
        forgetShieldPolicy(tenantId);
        log.info({ mode: stored.mode, rules: stored.rules.length }, 'shield set');
        res.json(shieldView(stored));
      },
    }),
    route({
      operationId: 'listShieldEvents',
      tag: 'Security',
      method: 'get',
      path: '/api/v1/security/shield/events',
      summary: 'List the requests the shield and the IP allowlist refused, newest first',
      description:
        'One row per tenant, client address, source (SHIELD rules or the security policy’s ALLOWLIST), ' +
        'action (BLOCKED, or WOULD_BLOCK in MONITOR) and minute, with the number of refused requests in ' +
        '`hits` and the first request’s method, path, caller and request id. A tenant sees its own rows; ' +
        'a platform administrator sees every tenant’s and may filter by `tenant_id`. Filter by `ip` and `action`.',
      access: { caller: 'any', permission: 'security:read' },
      query: ListShieldEventsQuery,
      responses: {
        200: {
          description: 'A page of shield events',
          content: { 'application/json': { schema: ShieldEventList } },
        },
      },
      async handle({ principal, query, res }) {
        if (principal.tenantId && query.tenant_id !== undefined && query.tenant_id !== principal.tenantId) {
          throw new AppError('forbidden', 'only platform administrators read other tenants’ shield events', {
            errors: [{ field: 'tenant_id', message: 'must be your own tenant or left out' }],
          });
        }
        const page = await shieldEventPage(deps.orm.em, principal.tenantId ?? query.tenant_id ?? null, {
          ip: query.ip,
          action: query.action,
          before: query.cursor,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
  ];
}
