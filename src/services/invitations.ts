/**
 * Invitations to join a tenant: issued to the tenant's owner at onboarding and by a tenant's
 * OWNER or ADMIN (only an OWNER invites an OWNER), listed, revoked, and accepted with the token
 * from the mail. The token is 256 random bits; only its SHA-256 is stored and it exists in clear
 * only in the outbox row's body, written in the same transaction as the invitation. Accepting
 * creates the user (or checks the existing user's password), the membership and a session in one
 * transaction that first locks the invitation, so a token works once even when sent twice at once.
 */
import { LockMode, UniqueConstraintViolationException, raw } from '@mikro-orm/core';
import { Invitation, Membership, Tenant, User } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { hashToken } from '../domain/api-tokens';
import { AppError, conflict, forbidden, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import {
  generateOneTimeToken,
  invitationMail,
  invitationStatus,
  isOneTimeToken,
  oneTimeTokenExpiry,
} from '../domain/one-time-tokens';
import { passwordProblem } from '../domain/passwords';
import { ipAllowed } from '../domain/security-policy';
import type { MembershipRole } from '../domain/permissions';
import { normalizeEmail, openSession, type AuthSettings, type RequestOrigin, type SignedIn } from './auth';
import { requireSignedInUser, type MemberActor } from './members';
import { recordNotification } from './notifications';
import { hashPassword, verifyPassword } from './passwords';
import { recordSecurityEvent } from './security-events';
import { policyOf } from './security-policy';

/** The one answer to a token that is unknown, expired, revoked or used: which it is stays untold. */
export const invalidInvitationToken = () =>
  new AppError('validation_failed', 'the invitation token is invalid, expired, revoked or already used', {
    errors: [{ field: 'token', message: 'is invalid, expired, revoked or already used' }],
  });

/** A new invitation token and when it expires; the token goes in a mail and nowhere else. */
export function newInvitationToken(now: Date = new Date()): { token: string; expiresAt: Date } {
  return { token: generateOneTimeToken('invitation'), expiresAt: oneTimeTokenExpiry('invitation', now) };
}

/**
 * Writes an invitation for `token` (stored as its hash) in the caller's transaction. Earlier
 * invitations of the same email to the tenant still pending are revoked: the newest mail is the
 * one that works.
 */
export async function saveInvitation(
  tx: EntityManager,
  input: {
    tenantId: string;
    email: string;
    role: MembershipRole;
    invitedById: string | null;
    token: string;
    expiresAt: Date;
  },
): Promise<Invitation> {
  const now = new Date();
  const email = normalizeEmail(input.email);
  await tx.nativeUpdate(
    Invitation,
    { tenant: input.tenantId, email, acceptedAt: null, revokedAt: null },
    { revokedAt: now, updatedAt: now },
  );
  const invitation = tx.create(Invitation, {
    tenant: input.tenantId,
    email,
    role: input.role,
    tokenHash: hashToken(input.token),
    invitedBy: input.invitedById,
    expiresAt: input.expiresAt,
  });
  await tx.flush();
  return invitation;
}

/** The caller's role in the tenant, read under a share lock so a concurrent change of it waits. */
async function callerRole(
  tx: EntityManager,
  tenantId: string,
  userId: string,
): Promise<MembershipRole | null> {
  const [row] = await tx.execute<{ role: MembershipRole }[]>(
    'select role from memberships where tenant_id = ? and user_id = ? for share',
    [tenantId, userId],
  );
  return row?.role ?? null;
}

/**
 * Invites an email to the tenant with a role and mails the token through the outbox. The caller
 * must be a signed-in OWNER or ADMIN, and an OWNER to invite an OWNER (403); an email that is a
 * member already is 409.
 */
export async function createInvitation(
  em: EntityManager,
  input: { tenantId: string; email: string; role: MembershipRole; actor: MemberActor },
): Promise<Invitation> {
  const { tenantId, role, actor } = input;
  const email = normalizeEmail(input.email);
  const callerId = requireSignedInUser(actor);
  return em.transactional(async (tx) => {
    const caller = await callerRole(tx, tenantId, callerId);
    if (caller !== 'OWNER' && caller !== 'ADMIN') throw forbidden('only an OWNER or ADMIN invites members');
    if (role === 'OWNER' && caller !== 'OWNER') throw forbidden('only an OWNER invites an OWNER');
    const [member] = await tx.execute<{ id: string }[]>(
      `select m.id from memberships m join users u on u.id = m.user_id
        where m.tenant_id = ? and lower(u.email) = ?`,
      [tenantId, email],
    );
    if (member) {
      throw conflict('this email belongs to a member of the tenant already', {
        errors: [{ field: 'email', message: 'is a member already' }],
      });
    }
    const tenant = await tx.findOneOrFail(Tenant, { id: tenantId });
    const { token, expiresAt } = newInvitationToken();
    const invitation = await saveInvitation(tx, {
      tenantId,
      email,
      role,
      invitedById: callerId,
      token,
      expiresAt,
    });
    const mail = invitationMail({ tenantName: tenant.name, role, token, expiresAt });
    await recordNotification(tx, {
      tenantId,
      template: 'member.invitation',
      recipient: email,
      subject: mail.subject,
      body: mail.body,
      dedupeKey: `member.invitation:${invitation.id}`,
    });
    await recordSecurityEvent(tx, {
      kind: 'INVITATION_CREATED',
      severity: role === 'OWNER' || role === 'ADMIN' ? 'MEDIUM' : 'LOW',
      tenantId,
      userId: callerId,
      ip: actor.ip,
      userAgent: actor.userAgent,
      details: { invitation_id: invitation.id, role },
    });
    return invitation;
  });
}

/** The tenant's invitations, newest first, whatever their status. */
export function listInvitations(em: EntityManager, tenantId: string): Promise<Invitation[]> {
  return em.find(Invitation, { tenant: tenantId }, { orderBy: { id: 'desc' } });
}

/**
 * Revokes a pending invitation: its token stops working. Another tenant's is 404; an accepted one
 * is 409; one revoked already stays as it is. Revoking an OWNER's invitation takes an OWNER.
 */
export async function revokeInvitation(
  em: EntityManager,
  input: { tenantId: string; invitationId: string; actor: MemberActor },
): Promise<{ invitation: Invitation; revokedNow: boolean }> {
  const { tenantId, invitationId, actor } = input;
  if (!isId('invitation', invitationId)) throw notFound('invitation');
  return em.transactional(async (tx) => {
    const invitation = await tx.findOne(
      Invitation,
      { id: invitationId, tenant: tenantId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    if (!invitation) throw notFound('invitation');
    const callerId = requireSignedInUser(actor);
    const caller = await callerRole(tx, tenantId, callerId);
    if (caller !== 'OWNER' && caller !== 'ADMIN') {
      throw forbidden('only an OWNER or ADMIN revokes invitations');
    }
    if (invitation.role === 'OWNER' && caller !== 'OWNER') {
      throw forbidden('only an OWNER revokes an OWNER’s invitation');
    }
    if (invitation.acceptedAt) {
      throw conflict('the invitation was accepted already; remove the member instead');
    }
    if (invitation.revokedAt) return { invitation, revokedNow: false };
    invitation.revokedAt = new Date();
    await tx.flush();
    await recordSecurityEvent(tx, {
      kind: 'INVITATION_REVOKED',
      severity: 'LOW',
      tenantId,
      userId: callerId,
      ip: actor.ip,
      userAgent: actor.userAgent,
      details: { invitation_id: invitation.id, role: invitation.role },
    });
    return { invitation, revokedNow: true };
  });
}

export interface AcceptedInvitation {
  membership: Membership;
  userId: string;
  /** the new user was created by this acceptance */
  newUser: boolean;
  /**
   * the sign-in opened with the membership; null when the existing account has MFA on, whose
   * sign-in needs its code (`POST /api/v1/auth/login`)
   */
  signedIn: SignedIn | null;
}

const wrongPassword = () =>
  new AppError(
    'unauthenticated',
    'an account with this email exists: give its current password to accept the invitation',
  );

function findUserByEmail(em: EntityManager, email: string): Promise<User | null> {
  return em.findOne(User, { [raw((alias) => `lower(${alias}.email)`)]: normalizeEmail(email) });
}

/**
 * Accepts an invitation with the token from its mail. For an email nobody has, the password
 * (12 to 128 characters) becomes the new user's; for an existing user it must be their current
 * password (401 otherwise; a locked or disabled account is refused the same way). An unknown,
 * expired, revoked or used token is 400 and writes nothing. The user becomes a member with the
 * invited role and is signed in to the tenant.
 */
export async function acceptInvitation(
  em: EntityManager,
  settings: AuthSettings,
  input: { token: string; password: string },
  origin: RequestOrigin,
): Promise<AcceptedInvitation> {
  if (!isOneTimeToken('invitation', input.token)) throw invalidInvitationToken();
  const tokenHash = hashToken(input.token);
  const found = await em.findOne(Invitation, { tokenHash }, { populate: ['tenant'] });
  if (!found || invitationStatus(found, new Date()) !== 'PENDING') throw invalidInvitationToken();
  if (found.tenant.status !== 'ACTIVE') {
    throw forbidden(`the tenant is ${found.tenant.status}; its invitations cannot be accepted now`);
  }
  // as a login to the tenant would be: refused outside its IP allowlist, before anything is written
  const policy = await policyOf(em, found.tenant.id);
  if (!ipAllowed(policy.ipAllowlist, origin.ip)) {
    throw new AppError(
      'ip_not_allowed',
      'your address is not in the IP allowlist of the tenant you are invited to',
    );
  }
  const existing = await findUserByEmail(em, found.email);
  let passwordHash: string | null = null;
  if (existing) {
    const refused = existing.disabledAt || (existing.lockedUntil && existing.lockedUntil > new Date());
    if (refused || !(await verifyPassword(existing.passwordHash, input.password))) {
      await recordSecurityEvent(em, {
        kind: 'LOGIN_FAILED',
        severity: 'LOW',
        tenantId: found.tenant.id,
        userId: existing.id,
        ip: origin.ip,
        userAgent: origin.userAgent,
        details: { reason: refused ? 'refused_account' : 'wrong_password', invitation_id: found.id },
      });
      throw wrongPassword();
    }
  } else {
    const problem = passwordProblem(input.password);
    if (problem) {
      throw new AppError('validation_failed', `the password ${problem}`, {
        errors: [{ field: 'password', message: problem }],
      });
    }
    passwordHash = await hashPassword(input.password, settings.hashParams);
  }
  return em.transactional(async (tx) => {
    // Read again under its lock: an acceptance racing this one has used it by now.
    const invitation = await tx.findOne(
      Invitation,
      { id: found.id },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    const now = new Date();
    if (!invitation || invitationStatus(invitation, now) !== 'PENDING') throw invalidInvitationToken();
    const user = existing
      ? tx.getReference(User, existing.id)
      : tx.create(User, { email: invitation.email, passwordHash: passwordHash as string });
    const membership = tx.create(Membership, { user, tenant: found.tenant.id, role: invitation.role });
    invitation.acceptedAt = now;
    invitation.acceptedBy = user;
    try {
      await tx.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw conflict(
          existing
            ? 'you are a member of this tenant already'
            : 'an account with this email was created meanwhile; accept again with its password',
        );
      }
      throw err;
    }
    await recordSecurityEvent(tx, {
      kind: 'MEMBER_ADDED',
      severity: invitation.role === 'OWNER' || invitation.role === 'ADMIN' ? 'MEDIUM' : 'LOW',
      tenantId: found.tenant.id,
      userId: user.id,
      ip: origin.ip,
      userAgent: origin.userAgent,
      details: {
        invitation_id: invitation.id,
        membership_id: membership.id,
        role: invitation.role,
        new_user: !existing,
      },
    });
    const signedIn = existing?.mfaEnabledAt
      ? null
      : await openSession(tx, settings, { userId: user.id, tenantId: found.tenant.id }, origin);
    return { membership, userId: user.id, newUser: !existing, signedIn };
  });
}
