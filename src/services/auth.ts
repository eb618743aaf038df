/**
 * Users and their sign-ins: creating a user with a membership, login, refresh-token rotation with
 * reuse detection, logout, a user's sessions, and password changes. Each change runs in one
 * transaction; password hashing (CPU-bound) happens before it, never inside. Every change of a
 * session family starts by locking the family's first row, so a refresh racing a logout cannot
 * leave a live token in a revoked family. Used by the auth routes and the CLI.
 */
import { LockMode, UniqueConstraintViolationException, raw } from '@mikro-orm/core';
import { Membership, Session, Tenant, User, type SessionRevokeReason } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { hashToken } from '../domain/api-tokens';
import { AppError, conflict, forbidden, notFound } from '../domain/errors';
import { isId, newId } from '../domain/ids';
import { needsRehash, passwordProblem, type HashParams } from '../domain/passwords';
import type { MembershipRole } from '../domain/permissions';
import { REFRESH_TOKEN_SHAPE, generateRefreshToken, refreshOutcome } from '../domain/sessions';
import { hashPassword, verifyAgainstNobody, verifyPassword } from './passwords';
import { emailFingerprint, recordSecurityEvent } from './security-events';

export interface AuthSettings {
  hashParams: HashParams;
  /** how long a sign-in lasts from login, refreshed or not */
  sessionTtlSeconds: number;
  /** wrong passwords in a row that lock an account, and for how long; 10 and 15 minutes unless set */
  lockout?: { threshold: number; durationMs: number };
}

const DEFAULT_LOCKOUT = { threshold: 10, durationMs: 15 * 60_000 };
/** this many wrong passwords in a row for one account make its failure events HIGH */
const FAILURES_HIGH = 3;

/** Where a login or refresh came from, kept on the session it creates. */
export interface RequestOrigin {
  ip: string | null;
  userAgent: string | null;
}

const USER_AGENT_MAX = 500;
const IP_MAX = 45;

/** The one answer to a wrong email, a wrong password and a disabled account alike. */
const badCredentials = () => new AppError('unauthenticated', 'the email or password is wrong');
const sessionEnded = () =>
  new AppError('unauthenticated', 'the refresh token is invalid or its session has ended; sign in again');

/** Emails are compared in lower case, as the schemas store them. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

function findUserByEmail(em: EntityManager, email: string): Promise<User | null> {
  // `lower(email)` is what the unique index covers, so the lookup uses it.
  return em.findOne(User, { [raw((alias) => `lower(${alias}.email)`)]: normalizeEmail(email) });
}

function refusePassword(password: string, field: string): void {
  const problem = passwordProblem(password);
  if (problem) {
    throw new AppError('validation_failed', `the ${field.replace(/_/g, ' ')} ${problem}`, {
      errors: [{ field, message: problem }],
    });
  }
}

export interface CreateUserInput {
  email: string;
  password: string;
  platformAdmin?: boolean;
  /** a membership to create with the user */
  membership?: { tenantId: string; role: MembershipRole } | undefined;
}

/**
 * Creates a user (and optionally their membership of a tenant). A password that breaks the rules
 * is 400; an email another user has, however spelled, is 409; an unknown tenant 404.
 */
export async function createUser(
  em: EntityManager,
  settings: AuthSettings,
  input: CreateUserInput,
): Promise<{ user: User; membership: Membership | null }> {
  refusePassword(input.password, 'password');
  const passwordHash = await hashPassword(input.password, settings.hashParams);
  return em.transactional(async (tx) => {
    const tenant = input.membership
      ? isId('tenant', input.membership.tenantId)
        ? await tx.findOne(Tenant, { id: input.membership.tenantId })
        : null
      : null;
    if (input.membership && !tenant) throw notFound('tenant');
    const user = tx.create(User, {
      email: normalizeEmail(input.email),
      passwordHash,
      platformAdmin: input.platformAdmin ?? false,
    });
    const membership =
      tenant && input.membership
        ? tx.create(Membership, { user, tenant, role: input.membership.role })
        : null;
    try {
      await tx.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw conflict('a user with this email already exists', {
          errors: [{ field: 'email', message: 'is taken' }],
        });
      }
      throw err;
    }
    return { user, membership };
  });
}

/** Gives a user a role in a tenant; a user already a member of it is 409. */
export async function addMembership(
  em: EntityManager,
  input: { userId: string; tenantId: string; role: MembershipRole },
): Promise<Membership> {
  return em.transactional(async (tx) => {
    const user = isId('user', input.userId) ? await tx.findOne(User, { id: input.userId }) : null;
    if (!user) throw notFound('user');
    const tenant = isId('tenant', input.tenantId) ? await tx.findOne(Tenant, { id: input.tenantId }) : null;
    if (!tenant) throw notFound('tenant');
    const membership = tx.create(Membership, { user, tenant, role: input.role });
    try {
      await tx.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw conflict('the user is already a member of this tenant');
      }
      throw err;
    }
    return membership;
  });
}

/** A new refresh token for `session`'s family: the secret to hand out once, and the row holding its hash. */
interface IssuedRefresh {
  session: Session;
  refreshToken: string;
}

/** What a login or a refresh hands the caller (with an access token the route signs). */
export interface SignedIn {
  userId: string;
  /** the session id users and access tokens see: the id of the family's first row */
  sessionId: string;
  tenantId: string | null;
  refreshToken: string;
}

/**
 * The tenant a login acts in: the one named (the user must be a member), else the only one the
 * user belongs to; a platform administrator who names none acts for the platform.
 */
async function tenantForLogin(
  em: EntityManager,
  user: User,
  tenantId: string | undefined,
): Promise<Tenant | null> {
  const memberships = await em.find(Membership, { user }, { populate: ['tenant'], orderBy: { id: 'asc' } });
  let tenant: Tenant | null;
  if (tenantId !== undefined) {
    tenant = memberships.find((m) => m.tenant.id === tenantId)?.tenant ?? null;
    if (!tenant) throw forbidden('you are not a member of this tenant');
  } else if (user.platformAdmin) {
    return null;
  } else if (memberships.length === 1) {
    tenant = (memberships[0] as Membership).tenant;
  } else if (memberships.length === 0) {
    throw forbidden('you are not a member of any tenant');
  } else {
    throw new AppError('validation_failed', 'you are a member of several tenants: name one', {
      errors: [
        {
          field: 'tenant_id',
          message: `is required; one of ${memberships.map((m) => m.tenant.id).join(', ')}`,
        },
      ],
    });
  }
  if (tenant.status !== 'ACTIVE')
    throw forbidden(`the tenant is ${tenant.status}; its members cannot sign in`);
  return tenant;
}

function clip(value: string | null, max: number): string | null {
  return value === null ? null : value.slice(0, max);
}

/**
 * Counts one wrong password against the user, in one statement so that concurrent attempts each
 * count: the threshold'th locks the account for the lock's duration and starts the count afresh. An
 * attempt while locked changes nothing (it never extends the lock), so a stranger guessing cannot
 * keep an account locked beyond one lock per threshold of attempts.
 */
async function countFailure(
  tx: EntityManager,
  userId: string,
  lockout: { threshold: number; durationMs: number },
  now: Date,
): Promise<{ failures: number; lockedNow: boolean; lockedUntil: Date | null }> {
  const until = new Date(now.getTime() + lockout.durationMs);
  const rows: { failed_login_count: number; locked_until: Date | string | null; locked_now: boolean }[] =
    await tx.getConnection().execute(
      `update "users" set
         "failed_login_count" = case
           when "locked_until" > ? then "failed_login_count"
           when "failed_login_count" + 1 >= ? then 0
           else "failed_login_count" + 1 end,
         "locked_until" = case
           when "locked_until" > ? then "locked_until"
           when "failed_login_count" + 1 >= ? then ?::timestamptz
           else "locked_until" end
       where "id" = ?
       returning "failed_login_count", "locked_until", ("locked_until" = ?::timestamptz) as locked_now`,
      [now, lockout.threshold, now, lockout.threshold, until, userId, until],
      'all',
      tx.getTransactionContext(),
    );
  const row = rows[0];
  if (!row) return { failures: 0, lockedNow: false, lockedUntil: null };
  return {
    // the attempt that locked started the count afresh; it was the threshold'th
    failures: row.locked_now ? lockout.threshold : row.failed_login_count,
    lockedNow: row.locked_now,
    lockedUntil: row.locked_until === null ? null : new Date(row.locked_until),
  };
}

/**
 * Checks an email and password and opens a session. A wrong email, a wrong password, a disabled
 * account and a locked one are the same 401 after the same work (an unknown email, and any
 * attempt on a locked account, is checked against a dummy hash: a locked account's password is
 * never tried). Each failure is recorded as a security event (HIGH from the third in a row);
 * `lockout.threshold` wrong passwords in a row lock the account for `lockout.durationMs`, and a
 * successful login starts the count afresh. A hash weaker than the current parameters is replaced
 * while the password is at hand.
 */
export async function login(
  em: EntityManager,
  settings: AuthSettings,
  input: { email: string; password: string; tenantId?: string | undefined },
  origin: RequestOrigin,
): Promise<SignedIn> {
  const lockout = settings.lockout ?? DEFAULT_LOCKOUT;
  const seen = { ip: origin.ip, userAgent: origin.userAgent };
  const user = await findUserByEmail(em, input.email);
  if (!user) {
    await verifyAgainstNobody(input.password, settings.hashParams);
    await recordSecurityEvent(em, {
      kind: 'LOGIN_FAILED',
      severity: 'LOW',
      ...seen,
      details: { reason: 'unknown_email', ...emailFingerprint(normalizeEmail(input.email)) },
    });
    throw badCredentials();
  }
  if (user.lockedUntil && user.lockedUntil > new Date()) {
    await verifyAgainstNobody(input.password, settings.hashParams);
    await recordSecurityEvent(em, {
      kind: 'LOGIN_FAILED',
      severity: 'HIGH',
      userId: user.id,
      ...seen,
      details: { reason: 'locked', locked_until: user.lockedUntil.toISOString() },
    });
    throw badCredentials();
  }
  const matches = await verifyPassword(user.passwordHash, input.password);
  if (!matches) {
    await em.transactional(async (tx) => {
      const { failures, lockedNow, lockedUntil } = await countFailure(tx, user.id, lockout, new Date());
      await recordSecurityEvent(tx, {
        kind: 'LOGIN_FAILED',
        severity: failures >= FAILURES_HIGH ? 'HIGH' : 'LOW',
        userId: user.id,
        ...seen,
        details: { reason: 'wrong_password', consecutive_failures: failures },
      });
      if (lockedNow) {
        await recordSecurityEvent(tx, {
          kind: 'LOGIN_LOCKED',
          severity: 'HIGH',
          userId: user.id,
          ...seen,
          details: { consecutive_failures: failures, locked_until: lockedUntil?.toISOString() ?? null },
        });
      }
    });
    throw badCredentials();
  }
  if (user.disabledAt) {
    await recordSecurityEvent(em, {
      kind: 'LOGIN_FAILED',
      severity: 'MEDIUM',
      userId: user.id,
      ...seen,
      details: { reason: 'disabled' },
    });
    throw badCredentials();
  }
  const tenant = await tenantForLogin(em, user, input.tenantId);
  const rehashed = needsRehash(user.passwordHash, settings.hashParams)
    ? await hashPassword(input.password, settings.hashParams)
    : null;
  return em.transactional(async (tx) => {
    if (rehashed) {
      // Only if the hash is still the one verified: a password changed meanwhile wins.
      await tx.nativeUpdate(
        User,
        { id: user.id, passwordHash: user.passwordHash },
        { passwordHash: rehashed, updatedAt: new Date() },
      );
    }
    await tx.nativeUpdate(
      User,
      { id: user.id },
      { failedLoginCount: 0, lockedUntil: null, lastLoginAt: new Date() },
    );
    const id = newId('session');
    const refreshToken = generateRefreshToken();
    tx.create(Session, {
      id,
      familyId: id,
      user: user.id,
      tenant: tenant?.id ?? null,
      refreshTokenHash: hashToken(refreshToken),
      expiresAt: new Date(Date.now() + settings.sessionTtlSeconds * 1000),
      createdIp: clip(origin.ip, IP_MAX),
      createdUserAgent: clip(origin.userAgent, USER_AGENT_MAX),
      lastUsedAt: new Date(),
    });
    await tx.flush();
    return { userId: user.id, sessionId: id, tenantId: tenant?.id ?? null, refreshToken };
  });
}

/**
 * The family's first row, locked FOR UPDATE: every change of a family holds it. Read afresh (a
 * transaction's fork starts with its parent's entities, which may predate a concurrent change).
 */
async function lockFamily(tx: EntityManager, familyId: string): Promise<Session | null> {
  return tx.findOne(Session, { id: familyId }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
}

/** Revokes every row of a family not yet revoked; the caller holds the family's lock. */
async function revokeFamilyRows(
  tx: EntityManager,
  familyId: string,
  reason: SessionRevokeReason,
  now: Date,
): Promise<void> {
  await tx.nativeUpdate(
    Session,
    { familyId, revokedAt: null },
    { revokedAt: now, revokeReason: reason, updatedAt: now },
  );
}

type RefreshStep = { kind: 'rotated'; issued: IssuedRefresh; root: Session } | { kind: 'refused' };

/** A refresh: the next tokens, or the session it ended because the token had been used before. */
export type RefreshResult = { refreshed: SignedIn } | { reusedSessionId: string };

/** The 401 for a refresh token that was used twice; its session is revoked by then. */
export const refreshTokenReused = () =>
  new AppError(
    'unauthenticated',
    'the refresh token was already used: every token of its session is revoked; sign in again',
  );

/**
 * Exchanges a refresh token for the next one of its family (the presented one is marked rotated).
 * A token already exchanged is a copy in someone else's hands: its whole family is revoked (and
 * stays revoked: the transaction commits, and the caller answers 401 with `refreshTokenReused`).
 * Two refreshes racing with the same token are the same case: the second finds it rotated.
 */
export async function refresh(
  em: EntityManager,
  settings: AuthSettings,
  refreshToken: string,
  origin: RequestOrigin,
): Promise<RefreshResult> {
  if (!REFRESH_TOKEN_SHAPE.test(refreshToken)) throw sessionEnded();
  const tokenHash = hashToken(refreshToken);
  const found = await em.findOne(Session, { refreshTokenHash: tokenHash });
  if (!found) throw sessionEnded();
  let familyRevoked = false;
  const result = await em.transactional(async (tx): Promise<RefreshStep> => {
    const root = await lockFamily(tx, found.familyId);
    // Read again under the family's lock: a refresh that raced this one has rotated it by now.
    const row = await tx.findOne(
      Session,
      { refreshTokenHash: tokenHash },
      { populate: ['user'], refresh: true },
    );
    if (!root || !row) return { kind: 'refused' };
    const now = new Date();
    const outcome = refreshOutcome(
      {
        rotatedAt: row.rotatedAt ?? null,
        revokedAt: row.revokedAt ?? null,
        expiresAt: row.expiresAt,
        familyRevoked: root.revokedAt != null,
      },
      now,
    );
    if (outcome === 'reused') {
      await revokeFamilyRows(tx, root.id, 'REFRESH_TOKEN_REUSED', now);
      await recordSecurityEvent(tx, {
        kind: 'REFRESH_REUSE_DETECTED',
        severity: 'HIGH',
        tenantId: root.tenant?.id ?? null,
        userId: row.user.id,
        ip: origin.ip,
        userAgent: origin.userAgent,
        details: { session_id: root.id },
      });
      familyRevoked = true;
      return { kind: 'refused' };
    }
    if (outcome === 'ended' || row.user.disabledAt) return { kind: 'refused' };
    if (root.tenant) {
      const member = await tx.count(Membership, { user: row.user, tenant: root.tenant });
      if (member === 0) return { kind: 'refused' };
    } else if (!row.user.platformAdmin) {
      return { kind: 'refused' };
    }
    row.rotatedAt = now;
    root.lastUsedAt = now;
    const next = generateRefreshToken();
    const session = tx.create(Session, {
      familyId: root.id,
      user: row.user,
      tenant: root.tenant ?? null,
      parent: row,
      refreshTokenHash: hashToken(next),
      expiresAt: root.expiresAt,
      createdIp: clip(origin.ip, IP_MAX),
      createdUserAgent: clip(origin.userAgent, USER_AGENT_MAX),
      lastUsedAt: now,
    });
    await tx.flush();
    return { kind: 'rotated', issued: { session, refreshToken: next }, root };
  });
  if (familyRevoked) return { reusedSessionId: found.familyId };
  if (result.kind === 'refused') throw sessionEnded();
  return {
    refreshed: {
      userId: result.root.user.id,
      sessionId: result.root.id,
      tenantId: result.root.tenant?.id ?? null,
      refreshToken: result.issued.refreshToken,
    },
  };
}

/**
 * Ends one of the user's sessions (all its refresh tokens, and so its access tokens); idempotent:
 * a session already ended stays as it is. A session of another user, or none, is 404.
 */
export async function revokeSession(
  em: EntityManager,
  input: { userId: string; sessionId: string; reason: SessionRevokeReason },
  origin?: RequestOrigin,
): Promise<{ revokedNow: boolean }> {
  if (!isId('session', input.sessionId)) throw notFound('session');
  return em.transactional(async (tx) => {
    const root = await lockFamily(tx, input.sessionId);
    if (!root || root.user.id !== input.userId || root.parent) throw notFound('session');
    if (root.revokedAt) return { revokedNow: false };
    await revokeFamilyRows(tx, root.id, input.reason, new Date());
    // signing out is the everyday end of a session, not a security event
    if (input.reason !== 'LOGOUT') {
      await recordSecurityEvent(tx, {
        kind: 'SESSION_REVOKED',
        severity: 'LOW',
        tenantId: root.tenant?.id ?? null,
        userId: input.userId,
        ip: origin?.ip,
        userAgent: origin?.userAgent,
        details: { session_id: root.id, reason: input.reason },
      });
    }
    return { revokedNow: true };
  });
}

/** The user's sessions that still stand (not revoked, not expired), newest first. */
export function activeSessions(em: EntityManager, userId: string): Promise<Session[]> {
  return em.find(
    Session,
    { user: userId, parent: null, revokedAt: null, expiresAt: { $gt: new Date() } },
    { orderBy: { id: 'desc' } },
  );
}

/**
 * Changes a user's password after checking the current one, and ends every other session of the
 * user (the one making the change stays signed in). Returns the sessions ended.
 */
export async function changePassword(
  em: EntityManager,
  settings: AuthSettings,
  userId: string,
  current: string,
  next: string,
  opts: { keepSessionId?: string | null; tenantId?: string | null; origin?: RequestOrigin } = {},
): Promise<{ revokedSessionIds: string[] }> {
  refusePassword(next, 'new_password');
  const user = isId('user', userId) ? await em.findOne(User, { id: userId }) : null;
  if (!user) throw notFound('user');
  if (!(await verifyPassword(user.passwordHash, current))) {
    throw forbidden('the current password is wrong');
  }
  const passwordHash = await hashPassword(next, settings.hashParams);
  return em.transactional(async (tx) => {
    const now = new Date();
    // The hash verified above must still be the stored one: two changes racing cannot both win.
    const changed = await tx.nativeUpdate(
      User,
      { id: user.id, passwordHash: user.passwordHash },
      { passwordHash, passwordChangedAt: now, updatedAt: now },
    );
    if (changed === 0) throw conflict('the password was changed meanwhile; sign in again');
    const families = await tx.find(
      Session,
      {
        user: user.id,
        parent: null,
        revokedAt: null,
        ...(opts.keepSessionId ? { id: { $ne: opts.keepSessionId } } : {}),
      },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (families.length > 0) {
      await tx.nativeUpdate(
        Session,
        { familyId: { $in: families.map((f) => f.id) }, revokedAt: null },
        { revokedAt: now, revokeReason: 'PASSWORD_CHANGED', updatedAt: now },
      );
    }
    await recordSecurityEvent(tx, {
      kind: 'PASSWORD_CHANGED',
      severity: 'MEDIUM',
      tenantId: opts.tenantId ?? null,
      userId: user.id,
      ip: opts.origin?.ip,
      userAgent: opts.origin?.userAgent,
      details: { revoked_sessions: families.length },
    });
    return { revokedSessionIds: families.map((f) => f.id) };
  });
}
