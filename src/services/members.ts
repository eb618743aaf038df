/**
 * A tenant's members: listing them, changing a member's role (OWNER only) and removing a member
 * (OWNER or ADMIN; an ADMIN cannot remove an OWNER). A tenant never loses its last OWNER: every
 * change locks the tenant's OWNER rows, the target's and the caller's, in id order, so two
 * demotions racing each other are decided one after the other and the second sees the first's
 * outcome. Members are managed by signed-in users only: an API token acts for no person and is
 * refused. Used by the members routes; each change runs in one transaction with its security event.
 */
import { LockMode } from '@mikro-orm/core';
import { Membership, Session } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { AppError, forbidden, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import type { MembershipRole } from '../domain/permissions';
import { recordSecurityEvent } from './security-events';

/** Who is changing the tenant's members: the signed-in user (null for an API token) and where from. */
export interface MemberActor {
  userId: string | null;
  ip?: string | null | undefined;
  userAgent?: string | null | undefined;
}

/** A member as the services return it: the membership with its user's email. */
export interface MemberRow {
  id: string;
  user_id: string;
  email: string;
  role: MembershipRole;
  created_at: Date | string;
  last_login_at: Date | string | null;
}

export const lastOwner = (detail: string) => new AppError('last_owner', detail);

/** A person must stand behind a change of who may act in a tenant. */
export function requireSignedInUser(actor: MemberActor): string {
  if (!actor.userId) {
    throw forbidden('members are managed by a signed-in OWNER or ADMIN; an API token cannot');
  }
  return actor.userId;
}

interface LockedRow {
  id: string;
  user_id: string;
  role: MembershipRole;
}

/**
 * Locks, FOR UPDATE and in id order, the tenant's OWNER memberships, the target's and the
 * caller's. A row another transaction changed meanwhile is read again as it now is (PostgreSQL
 * re-checks it under the lock), so the OWNERs counted here are the OWNERs there are.
 */
async function lockMembers(
  tx: EntityManager,
  tenantId: string,
  membershipId: string,
  callerUserId: string | null,
): Promise<LockedRow[]> {
  return tx.execute<LockedRow[]>(
    `select id, user_id, role from memberships
      where tenant_id = ? and (role = 'OWNER' or id = ? or user_id = ?)
      order by id for update`,
    [tenantId, membershipId, callerUserId ?? ''],
  );
}

async function memberRow(tx: EntityManager, tenantId: string, membershipId: string): Promise<MemberRow> {
  const [row] = await tx.execute<MemberRow[]>(
    `select m.id, m.user_id, u.email, m.role, m.created_at, u.last_login_at
       from memberships m join users u on u.id = m.user_id
      where m.tenant_id = ? and m.id = ?`,
    [tenantId, membershipId],
  );
  if (!row) throw notFound('member');
  return row;
}

/** The tenant's members, oldest first. */
export async function listMembers(em: EntityManager, tenantId: string): Promise<MemberRow[]> {
  return em.execute<MemberRow[]>(
    `select m.id, m.user_id, u.email, m.role, m.created_at, u.last_login_at
       from memberships m join users u on u.id = m.user_id
      where m.tenant_id = ?
      order by m.id`,
    [tenantId],
  );
}

/** One member of the tenant; another tenant's membership is 404. */
export async function getMember(
  em: EntityManager,
  tenantId: string,
  membershipId: string,
): Promise<MemberRow> {
  if (!isId('membership', membershipId)) throw notFound('member');
  return memberRow(em, tenantId, membershipId);
}

/**
 * Gives a member another role. Only an OWNER may (403 otherwise, API tokens included); demoting
 * the last OWNER is 409 `last-owner`. The same role again changes nothing.
 */
export async function changeMemberRole(
  em: EntityManager,
  input: { tenantId: string; membershipId: string; role: MembershipRole; actor: MemberActor },
): Promise<{ member: MemberRow; previousRole: MembershipRole }> {
  const { tenantId, membershipId, role, actor } = input;
  if (!isId('membership', membershipId)) throw notFound('member');
  return em.transactional(async (tx) => {
    const locked = await lockMembers(tx, tenantId, membershipId, actor.userId);
    // The lookup comes first: another tenant's member is 404 to anyone, never 403.
    const target = locked.find((m) => m.id === membershipId);
    if (!target) throw notFound('member');
    const callerId = requireSignedInUser(actor);
    const caller = locked.find((m) => m.user_id === callerId);
    if (caller?.role !== 'OWNER') throw forbidden('only an OWNER changes members’ roles');
    if (target.role === role) {
      return { member: await memberRow(tx, tenantId, membershipId), previousRole: role };
    }
    const owners = locked.filter((m) => m.role === 'OWNER').length;
    if (target.role === 'OWNER' && owners <= 1) {
      throw lastOwner('this member is the tenant’s last OWNER; make another member OWNER first');
    }
    await tx.execute(`update memberships set role = ?, updated_at = now() where id = ?`, [
      role,
      membershipId,
    ]);
    await recordSecurityEvent(tx, {
      kind: 'ROLE_CHANGED',
      severity: role === 'OWNER' || target.role === 'OWNER' ? 'HIGH' : 'MEDIUM',
      tenantId,
      userId: callerId,
      ip: actor.ip,
      userAgent: actor.userAgent,
      details: { membership_id: membershipId, member_user_id: target.user_id, from: target.role, to: role },
    });
    return { member: await memberRow(tx, tenantId, membershipId), previousRole: target.role };
  });
}

/**
 * Removes a member from the tenant and ends their sessions in it (their sessions in other
 * tenants stand). An OWNER or ADMIN may; an ADMIN cannot remove an OWNER (403); the last OWNER
 * cannot be removed (409 `last-owner`).
 */
export async function removeMember(
  em: EntityManager,
  input: { tenantId: string; membershipId: string; actor: MemberActor },
): Promise<{ userId: string; revokedSessions: number }> {
  const { tenantId, membershipId, actor } = input;
  if (!isId('membership', membershipId)) throw notFound('member');
  return em.transactional(async (tx) => {
    const locked = await lockMembers(tx, tenantId, membershipId, actor.userId);
    const target = locked.find((m) => m.id === membershipId);
    if (!target) throw notFound('member');
    const callerId = requireSignedInUser(actor);
    const caller = locked.find((m) => m.user_id === callerId);
    if (caller?.role !== 'OWNER' && caller?.role !== 'ADMIN') {
      throw forbidden('only an OWNER or ADMIN removes members');
    }
    if (target.role === 'OWNER' && caller.role !== 'OWNER') throw forbidden('only an OWNER removes an OWNER');
    const owners = locked.filter((m) => m.role === 'OWNER').length;
    if (target.role === 'OWNER' && owners <= 1) {
      throw lastOwner('this member is the tenant’s last OWNER; make another member OWNER first');
    }
    await tx.nativeDelete(Membership, { id: membershipId, tenant: tenantId });
    const now = new Date();
    const families = await tx.find(
      Session,
      { user: target.user_id, tenant: tenantId, parent: null, revokedAt: null },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (families.length > 0) {
      await tx.nativeUpdate(
        Session,
        { familyId: { $in: families.map((f) => f.id) }, revokedAt: null },
        { revokedAt: now, revokeReason: 'REVOKED', updatedAt: now },
      );
    }
    await recordSecurityEvent(tx, {
      kind: 'MEMBER_REMOVED',
      severity: target.role === 'OWNER' || target.role === 'ADMIN' ? 'HIGH' : 'MEDIUM',
      tenantId,
      userId: callerId,
      ip: actor.ip,
      userAgent: actor.userAgent,
      details: {
        membership_id: membershipId,
        member_user_id: target.user_id,
        role: target.role,
        revoked_sessions: families.length,
      },
    });
    return { userId: target.user_id, revokedSessions: families.length };
  });
}
