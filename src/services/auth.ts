/**
 * Users and their sign-ins: creating a user with a membership, login (with the second factor of a
 * user who has MFA on, and the security policy of the tenant signed into: its IP allowlist, session
 * lifetime, lockout and required MFA), refresh-token rotation with reuse detection, logout, a
 * user's sessions, and password changes. Each change runs in one
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
import { ipAllowed, sessionLifetimeS, type Lockout } from '../domain/security-policy';
import { REFRESH_TOKEN_SHAPE, generateRefreshToken, refreshOutcome } from '../domain/sessions';
import { recordRecoveryCodeUsed, useSecondFactor, type MfaSettings } from './mfa';
import { hashPassword, verifyAgainstNobody, verifyPassword } from './passwords';
import { emailFingerprint, recordSecurityEvent } from './security-events';
import { lockoutFor, policyOf, type StoredPolicy } from './security-policy';

export interface AuthSettings {
  hashParams: HashParams;
  /** how long a sign-in lasts from login, refreshed or not (a tenant's policy may shorten it) */
  sessionTtlSeconds: number;
  /**
   * wrong passwords (or MFA codes) in a row that lock an account, and for how long; 10 and 15
   * minutes unless set. A tenant's policy may set its own: a member of several gets the strictest.
   */
  lockout?: { threshold: number; durationMs: number };
  /** how TOTP secrets are sealed and named */
  mfa: MfaSettings;
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
  /**
   * the tenant requires MFA and the user has not enabled it: the access token carries only
   * `account:self` until a refresh (or sign-in) after enabling it
   */
  mfaSetupRequired: boolean;
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

/** What a failed sign-in attempt was, for the events it records (an MFA failure knows its tenant). */
type SignInFailure =
  | { kind: 'LOGIN_FAILED'; details: Record<string, unknown> }
  | { kind: 'MFA_FAILED'; tenantId: string | null; details: Record<string, unknown> };

/**
 * Counts a wrong password or a wrong MFA code against the user (in its own transaction, so it
 * stands whatever happens next) and records it: HIGH from the FAILURES_HIGH'th in a row, and a
 * LOGIN_LOCKED event when this one locked the account.
 */
async function countSignInFailure(
  em: EntityManager,
  userId: string,
  lockout: Lockout,
  seen: RequestOrigin,
  failure: SignInFailure,
): Promise<void> {
  await em.transactional(async (tx) => {
    const { failures, lockedNow, lockedUntil } = await countFailure(tx, userId, lockout, new Date());
    const tenantId = failure.kind === 'MFA_FAILED' ? failure.tenantId : null;
    await recordSecurityEvent(tx, {
      kind: failure.kind,
      severity: failures >= FAILURES_HIGH ? 'HIGH' : 'LOW',
      tenantId,
      userId,
      ...seen,
      details: { ...failure.details, consecutive_failures: failures },
    });
    if (lockedNow) {
      await recordSecurityEvent(tx, {
        kind: 'LOGIN_LOCKED',
        severity: 'HIGH',
        tenantId,
        userId,
        ...seen,
        details: { consecutive_failures: failures, locked_until: lockedUntil?.toISOString() ?? null },
      });
    }
  });
}

/** What a login is given: the credentials, the tenant to act in, and the second factor when MFA is on. */
export interface LoginInput {
  email: string;
  password: string;
  tenantId?: string | undefined;
  totpCode?: string | undefined;
  recoveryCode?: string | undefined;
}

/**
 * Checks an email and password and opens a session. A wrong email, a wrong password, a disabled
 * account and a locked one are the same 401 after the same work (an unknown email, and any
 * attempt on a locked account, is checked against a dummy hash: a locked account's password is
 * never tried). Each failure is recorded as a security event (HIGH from the third in a row);
 * the lockout's threshold of wrong passwords in a row lock the account for its duration (the
 * strictest of the user's tenants' policies, else `settings.lockout`), and a successful login
 * starts the count afresh. A hash weaker than the current parameters is replaced while the
 * password is at hand.
 *
 * With the password right: a client address outside the IP allowlist of the tenant signed into
 * is 403 `ip-not-allowed` (recorded); a user with MFA on who sent no code is 401 `mfa-required`
 * (not counted as a failure); a wrong, expired or already used code is 401 and counts like a
 * wrong password. The session lasts the tenant's session lifetime (at most `sessionTtlSeconds`).
 */
export async function login(
  em: EntityManager,
  settings: AuthSettings,
  input: LoginInput,
  origin: RequestOrigin,
): Promise<SignedIn> {
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
    const lockout = await lockoutFor(em, user.id, settings.lockout ?? DEFAULT_LOCKOUT);
    await countSignInFailure(em, user.id, lockout, seen, {
      kind: 'LOGIN_FAILED',
      details: { reason: 'wrong_password' },
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
  const policy = tenant ? await policyOf(em, tenant.id) : null;
  if (policy && !ipAllowed(policy.ipAllowlist, origin.ip)) {
    await recordSecurityEvent(em, {
      kind: 'LOGIN_IP_REFUSED',
      severity: 'HIGH',
      tenantId: policy.tenantId,
      userId: user.id,
      ...seen,
      details: { step: 'login' },
    });
    throw ipNotAllowed();
  }
  if (user.mfaEnabledAt) await checkLoginSecondFactor(em, settings, user, input, tenant?.id ?? null, seen);
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
    return createSession(tx, settings, { user, tenantId: tenant?.id ?? null, policy }, origin);
  });
}

const ipNotAllowed = () =>
  new AppError('ip_not_allowed', 'your address is not in the IP allowlist of the tenant you sign in to');

/**
 * The second factor of a login whose password was right, for a user with MFA on: none is 401
 * `mfa-required` (not a failure); a wrong one counts as a failed sign-in. A recovery code used is
 * recorded with how many are left.
 */
async function checkLoginSecondFactor(
  em: EntityManager,
  settings: AuthSettings,
  user: User,
  input: LoginInput,
  tenantId: string | null,
  seen: RequestOrigin,
): Promise<void> {
  if (input.totpCode === undefined && input.recoveryCode === undefined) {
    throw new AppError(
      'mfa_required',
      'this account has MFA enabled: send `totp_code` (from your authenticator app) or `recovery_code` with your email and password',
    );
  }
  const outcome = await useSecondFactor(em, settings.mfa, user, {
    totpCode: input.totpCode,
    recoveryCode: input.totpCode === undefined ? input.recoveryCode : undefined,
  });
  if (!outcome.ok) {
    const lockout = await lockoutFor(em, user.id, settings.lockout ?? DEFAULT_LOCKOUT);
    await countSignInFailure(em, user.id, lockout, seen, {
      kind: 'MFA_FAILED',
      tenantId,
      details: {
        action: 'login',
        reason: outcome.reason,
        factor: input.totpCode === undefined ? 'recovery_code' : 'totp',
      },
    });
    throw new AppError('unauthenticated', 'the MFA code is wrong, expired or was already used');
  }
  if (outcome.via === 'recovery_code') {
    await recordRecoveryCodeUsed(em, user.id, { tenantId, ...seen }, 'login', outcome.remaining);
  }
}

/**
 * The first row of a new session family, in the caller's transaction: it lasts the tenant's
 * session lifetime, and is marked for MFA setup when the tenant requires MFA the user lacks.
 */
async function createSession(
  tx: EntityManager,
  settings: AuthSettings,
  input: { user: User; tenantId: string | null; policy: StoredPolicy | null },
  origin: RequestOrigin,
): Promise<SignedIn> {
  const id = newId('session');
  const refreshToken = generateRefreshToken();
  tx.create(Session, {
    id,
    familyId: id,
    user: input.user.id,
    tenant: input.tenantId,
    refreshTokenHash: hashToken(refreshToken),
    expiresAt: new Date(Date.now() + sessionLifetimeS(input.policy, settings.sessionTtlSeconds) * 1000),
    createdIp: clip(origin.ip, IP_MAX),
    createdUserAgent: clip(origin.userAgent, USER_AGENT_MAX),
    lastUsedAt: new Date(),
  });
  await tx.flush();
  return {
    userId: input.user.id,
    sessionId: id,
    tenantId: input.tenantId,
    refreshToken,
    mfaSetupRequired: mfaSetupRequired(input.policy, input.user),
  };
}

/** The tenant requires MFA and the user has not enabled it. */
function mfaSetupRequired(policy: Pick<StoredPolicy, 'requireMfa'> | null, user: User): boolean {
  return (policy?.requireMfa ?? false) && !user.mfaEnabledAt;
}

/**
 * Opens a session as a login does (the first row of a new family), in the caller's transaction:
 * for a sign-in that another proof stands for, such as an accepted invitation. The caller has
 * checked that the user may act in `tenantId`.
 */
export async function openSession(
  tx: EntityManager,
  settings: AuthSettings,
  input: { userId: string; tenantId: string | null },
  origin: RequestOrigin,
): Promise<SignedIn> {
  const user = await tx.findOne(User, { id: input.userId });
  if (!user) throw notFound('user');
  const policy = input.tenantId ? await policyOf(tx, input.tenantId) : null;
  return createSession(tx, settings, { user, tenantId: input.tenantId, policy }, origin);
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

type RefreshStep =
  | { kind: 'rotated'; issued: IssuedRefresh; root: Session; mfaSetupRequired: boolean }
  | { kind: 'refused' }
  | { kind: 'address_refused'; tenantId: string; userId: string };

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
 * From an address outside the tenant's IP allowlist it is 403 `ip-not-allowed` (nothing rotated).
 * The new access token reflects the user's MFA now: a user who enabled MFA since signing in to a
 * tenant requiring it gets their role's permissions back from here on.
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
    const policy = root.tenant ? await policyOf(tx, root.tenant.id) : null;
    if (policy && !ipAllowed(policy.ipAllowlist, origin.ip)) {
      return { kind: 'address_refused', tenantId: policy.tenantId, userId: row.user.id };
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
    return {
      kind: 'rotated',
      issued: { session, refreshToken: next },
      root,
      mfaSetupRequired: mfaSetupRequired(policy, row.user),
    };
  });
  if (familyRevoked) return { reusedSessionId: found.familyId };
  if (result.kind === 'refused') throw sessionEnded();
  if (result.kind === 'address_refused') {
    await recordSecurityEvent(em, {
      kind: 'LOGIN_IP_REFUSED',
      severity: 'HIGH',
      tenantId: result.tenantId,
      userId: result.userId,
      ip: origin.ip,
      userAgent: origin.userAgent,
      details: { step: 'refresh', session_id: found.familyId },
    });
    throw ipNotAllowed();
  }
  return {
    refreshed: {
      userId: result.root.user.id,
      sessionId: result.root.id,
      tenantId: result.root.tenant?.id ?? null,
      refreshToken: result.issued.refreshToken,
      mfaSetupRequired: result.mfaSetupRequired,
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
 * Ends every session of a user whose password was just changed or reset (but `keepSessionId`,
 * the one that changed it), inside the caller's transaction: the families' first rows are locked,
 * then every row of them is revoked. Returns the families ended.
 */
export async function endSessionsForNewPassword(
  tx: EntityManager,
  userId: string,
  now: Date,
  keepSessionId: string | null,
): Promise<Session[]> {
  const families = await tx.find(
    Session,
    { user: userId, parent: null, revokedAt: null, ...(keepSessionId ? { id: { $ne: keepSessionId } } : {}) },
    { lockMode: LockMode.PESSIMISTIC_WRITE },
  );
  if (families.length > 0) {
    await tx.nativeUpdate(
      Session,
      { familyId: { $in: families.map((f) => f.id) }, revokedAt: null },
      { revokedAt: now, revokeReason: 'PASSWORD_CHANGED', updatedAt: now },
    );
  }
  return families;
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
    const families = await endSessionsForNewPassword(tx, user.id, now, opts.keepSessionId ?? null);
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
