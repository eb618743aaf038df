/**
 * /api/v1/security: security events (failed and locked sign-ins, refused platform calls, tokens
 * and sessions ended, passwords changed) and a signed-in user's own security profile. A tenant's
 * OWNER and ADMIN members and its write tokens read its events; a platform administrator reads
 * everyone's and may narrow them to one tenant.
 */
import { Membership, SecurityEvent, User } from '../../db/entities';
import { systemEm, type MikroORM } from '../../db/orm';
import { pageBody } from '../../db/repositories/pages';
import { securityEventPage } from '../../db/repositories/security';
import { AppError, notFound } from '../../domain/errors';
import { activeSessions } from '../../services/auth';
import { route, type Route } from '../http/route';
import type { z } from '../zod';
import { encodeCursor } from './common.schemas';
import {
  ListSecurityEventsQuery,
  SecurityEventList,
  SecurityProfile,
  type SecurityEventView,
} from './security.schemas';

/** How many of a user's own events their profile shows. */
const RECENT_EVENTS = 20;

/** A security event as the API shows it; the list page writes the same fields straight from the rows. */
export function securityEventView(e: SecurityEvent): SecurityEventView {
  return {
    id: e.id,
    tenant_id: e.tenant?.id ?? null,
    user_id: e.user?.id ?? null,
    kind: e.kind,
    severity: e.severity,
    ip: e.ip ?? null,
    user_agent: e.userAgent ?? null,
    details: e.details,
    created_at: e.createdAt.toISOString(),
  };
}

export function securityRoutes(deps: { orm: MikroORM }): Route[] {
  return [
    route({
      operationId: 'listSecurityEvents',
      tag: 'Security',
      method: 'get',
      path: '/api/v1/security/events',
      summary: 'List security events, newest first',
      description:
        'A tenant’s OWNER or ADMIN, or one of its write tokens, sees the tenant’s events only (naming another ' +
        'tenant is 403). A platform administrator sees every event, including failed logins for unknown emails ' +
        '(kept as a hash of the email), and may filter by `tenant_id`. Filter by `kind` and `severity`.',
      access: { caller: 'any', permission: 'security:read' },
      query: ListSecurityEventsQuery,
      responses: {
        200: {
          description: 'A page of security events',
          content: { 'application/json': { schema: SecurityEventList } },
        },
      },
      async handle({ principal, query, res }) {
        if (principal.tenantId && query.tenant_id !== undefined && query.tenant_id !== principal.tenantId) {
          throw new AppError('forbidden', 'only platform administrators read other tenants’ events', {
            errors: [{ field: 'tenant_id', message: 'must be your own tenant or left out' }],
          });
        }
        const page = await securityEventPage(deps.orm.em, principal.tenantId ?? query.tenant_id ?? null, {
          kind: query.kind,
          severity: query.severity,
          before: query.cursor,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'getSecurityProfile',
      tag: 'Security',
      method: 'get',
      path: '/api/v1/security/me/profile',
      summary: 'Your own security profile: memberships, sessions, last login and recent events',
      access: { caller: 'any', permission: 'account:self' },
      responses: {
        200: {
          description: 'Your profile',
          content: { 'application/json': { schema: SecurityProfile } },
        },
      },
      async handle({ principal, res }) {
        if (principal.actorType !== 'user') {
          throw new AppError('forbidden', 'this route needs a user’s access token');
        }
        // The user's memberships span tenants: read unfiltered, always naming the user.
        const em = systemEm(deps.orm);
        const user = await em.findOne(User, { id: principal.actorId });
        if (!user) throw notFound('user');
        const [memberships, sessions, events] = await Promise.all([
          em.find(Membership, { user }, { populate: ['tenant'], orderBy: { id: 'asc' } }),
          activeSessions(em.fork(), user.id),
          em.fork().find(SecurityEvent, { user: user.id }, { orderBy: { id: 'desc' }, limit: RECENT_EVENTS }),
        ]);
        const body: z.infer<typeof SecurityProfile> = {
          user_id: user.id,
          email: user.email,
          memberships: memberships.map((m) => ({
            tenant_id: m.tenant.id,
            tenant_name: m.tenant.name,
            role: m.role,
          })),
          platform_admin: user.platformAdmin,
          active_sessions: sessions.length,
          mfa_enabled: user.mfaEnabledAt != null,
          last_login_at: user.lastLoginAt?.toISOString() ?? null,
          password_changed_at: user.passwordChangedAt.toISOString(),
          recent_events: events.map(securityEventView),
        };
        res.json(body);
      },
    }),
  ];
}
