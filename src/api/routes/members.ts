/**
 * /api/v1/members: a tenant's members. Its members and tokens with `members:read` list them; a
 * signed-in OWNER changes roles, an OWNER or ADMIN removes members (an ADMIN cannot remove an
 * OWNER), and the last OWNER can be neither demoted nor removed. API tokens cannot change members.
 */
import type { Request } from 'express';
import type { Principal } from '../../domain/principal';
import {
  changeMemberRole,
  listMembers,
  removeMember,
  type MemberActor,
  type MemberRow,
} from '../../services/members';
import { route, type Route } from '../http/route';
import { forgetSessions, tenantOf } from '../middleware/auth';
import { MemberIdParams, MemberList, MemberView, UpdateMemberBody } from './members.schemas';

const read = { caller: 'tenant', permission: 'members:read' } as const;
const write = { caller: 'tenant', permission: 'members:write' } as const;

const iso = (value: Date | string) => new Date(value).toISOString();

export function memberView(row: MemberRow): MemberView {
  return {
    id: row.id,
    user_id: row.user_id,
    email: row.email,
    role: row.role,
    created_at: iso(row.created_at),
    last_login_at: row.last_login_at === null ? null : iso(row.last_login_at),
  };
}

/** Who is changing the members: the signed-in user (none for an API token) and where from. */
export function memberActor(principal: Principal, req: Request): MemberActor {
  return {
    userId: principal.actorType === 'user' ? principal.actorId : null,
    ip: req.ip ?? null,
    userAgent: req.get('user-agent') ?? null,
  };
}

export function memberRoutes(): Route[] {
  return [
    route({
      operationId: 'listMembers',
      tag: 'Members',
      method: 'get',
      path: '/api/v1/members',
      summary: 'List the tenant’s members and their roles, oldest first',
      access: read,
      responses: {
        200: { description: 'Members', content: { 'application/json': { schema: MemberList } } },
      },
      async handle({ principal, em, res }) {
        const rows = await listMembers(em, tenantOf(principal));
        res.json({ data: rows.map(memberView) });
      },
    }),
    route({
      operationId: 'updateMemberRole',
      tag: 'Members',
      method: 'patch',
      path: '/api/v1/members/:id',
      summary: 'Change a member’s role (a signed-in OWNER only)',
      description:
        'Only an OWNER changes roles (403 for anyone else, API tokens included). Demoting the tenant’s last OWNER ' +
        'is 409 `last-owner`; concurrent changes are decided one after the other, so a tenant always keeps an OWNER. ' +
        'The member’s sessions act with the new role from their next request.',
      access: write,
      params: MemberIdParams,
      body: UpdateMemberBody,
      problems: [409],
      responses: {
        200: {
          description: 'The member with the new role',
          content: { 'application/json': { schema: MemberView } },
        },
      },
      async handle({ req, principal, em, params, body, res, log }) {
        const { member, previousRole } = await changeMemberRole(em, {
          tenantId: tenantOf(principal),
          membershipId: params.id,
          role: body.role,
          actor: memberActor(principal, req),
        });
        forgetSessions({ userId: member.user_id });
        if (previousRole !== member.role) {
          log.info({ membershipId: member.id, from: previousRole, to: member.role }, 'member role changed');
        }
        res.json(memberView(member));
      },
    }),
    route({
      operationId: 'removeMember',
      tag: 'Members',
      method: 'delete',
      path: '/api/v1/members/:id',
      summary: 'Remove a member from the tenant; their sessions in it end',
      description:
        'A signed-in OWNER or ADMIN removes members; an ADMIN cannot remove an OWNER (403), and the last OWNER ' +
        'cannot be removed (409 `last-owner`). The user keeps their account and their other tenants.',
      access: write,
      params: MemberIdParams,
      problems: [409],
      responses: { 204: { description: 'Removed' } },
      async handle({ req, principal, em, params, res, log }) {
        const { userId, revokedSessions } = await removeMember(em, {
          tenantId: tenantOf(principal),
          membershipId: params.id,
          actor: memberActor(principal, req),
        });
        forgetSessions({ userId });
        log.info({ membershipId: params.id, revokedSessions }, 'member removed');
        res.status(204).end();
      },
    }),
  ];
}
