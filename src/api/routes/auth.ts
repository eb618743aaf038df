/**
 * /api/v1/auth: users sign in with email and password for a short-lived access token (JWT) and an
 * opaque refresh token, rotate the refresh token, sign out, see and end their sessions, and change
 * their password. Login and refresh are public (their body is the credential); the rest need the
 * user's own access token (`account:self`, which no API token holds). A user with MFA on signs in
 * with a TOTP or recovery code as well (./mfa.ts manages it); the tenant's security policy
 * (../../services/security-policy.ts) bounds where from, for how long, and with what permissions.
 */
import type { Request } from 'express';
import type { Config } from '../../config';
import type { Session } from '../../db/entities';
import type { MikroORM } from '../../db/orm';
import { AppError } from '../../domain/errors';
import type { Principal } from '../../domain/principal';
import { accessTokenSettings, signAccessToken, type AccessTokenSettings } from '../../services/access-tokens';
import {
  activeSessions,
  changePassword,
  login,
  refresh,
  refreshTokenReused,
  revokeSession,
  type AuthSettings,
  type RequestOrigin,
  type SignedIn,
} from '../../services/auth';
import { mfaSettings } from '../../services/mfa';
import { hashParamsOf, prepareDummyHash } from '../../services/passwords';
import { route, type Route } from '../http/route';
import { acceptAccessTokens, forgetSessions } from '../middleware/auth';
import type { z } from '../zod';
import {
  ChangePasswordBody,
  LoginBody,
  PasswordChanged,
  RefreshBody,
  SessionIdParams,
  SessionList,
  type SessionView,
  SignedInView,
} from './auth.schemas';

export function authSettings(config: Config): AuthSettings {
  return {
    hashParams: hashParamsOf(config),
    sessionTtlSeconds: config.SESSION_TTL_S,
    lockout: { threshold: config.LOGIN_LOCKOUT_THRESHOLD, durationMs: config.LOGIN_LOCKOUT_MS },
    mfa: mfaSettings(config),
  };
}

function originOf(req: Request): RequestOrigin {
  return { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null };
}

/** The signed-in user's session; the routes here are for users only (no API token holds their permission). */
function sessionOf(principal: Principal): { userId: string; sessionId: string } {
  if (principal.actorType !== 'user' || !principal.sessionId) {
    throw new AppError('forbidden', 'this route needs a user’s access token');
  }
  return { userId: principal.actorId, sessionId: principal.sessionId };
}

function sessionView(session: Session, currentId: string): z.infer<typeof SessionView> {
  return {
    id: session.id,
    current: session.id === currentId,
    tenant_id: session.tenant?.id ?? null,
    created_at: session.createdAt.toISOString(),
    last_used_at: session.lastUsedAt?.toISOString() ?? null,
    expires_at: session.expiresAt.toISOString(),
    ip: session.createdIp ?? null,
    user_agent: session.createdUserAgent ?? null,
  };
}

/** The answer of a sign-in (login, refresh, an accepted invitation): the access token it signs and the refresh token. */
export async function signedInView(
  tokens: AccessTokenSettings,
  signedIn: SignedIn,
): Promise<z.infer<typeof SignedInView>> {
  const { token, expiresIn } = await signAccessToken(tokens, {
    userId: signedIn.userId,
    sessionId: signedIn.sessionId,
    tenantId: signedIn.tenantId,
    mfaSetupRequired: signedIn.mfaSetupRequired,
  });
  return {
    access_token: token,
    token_type: 'Bearer',
    expires_in: expiresIn,
    refresh_token: signedIn.refreshToken,
    session_id: signedIn.sessionId,
    tenant_id: signedIn.tenantId,
    ...(signedIn.mfaSetupRequired ? { mfa_setup_required: true as const } : {}),
  };
}

const self = { caller: 'any', permission: 'account:self' } as const;

export function authRoutes(deps: { orm: MikroORM; config: Config }): Route[] {
  const settings = authSettings(deps.config);
  const tokens = accessTokenSettings(deps.config);
  // This app's authentication accepts the access tokens these routes sign.
  acceptAccessTokens(deps.orm, tokens);
  prepareDummyHash(settings.hashParams);
  return [
    route({
      operationId: 'login',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/login',
      summary: 'Sign in with email and password: an access token and a refresh token',
      description:
        'A wrong email and a wrong password get the same 401 after the same work, so the answer never tells whether an account exists. ' +
        'LOGIN_LOCKOUT_THRESHOLD wrong passwords in a row (10 by default, from any address) lock the account for LOGIN_LOCKOUT_MS (15 minutes): ' +
        'during the lock every login answers the same 401 without the password being checked, and attempts do not extend it. ' +
        'A tenant’s security policy may set a stricter lockout (a member of several tenants gets the strictest). ' +
        'With MFA enabled, the password alone answers 401 `mfa-required` (no tokens; not counted as a failure): send `totp_code` or `recovery_code` too. ' +
        'A wrong, expired or already used code is 401 and counts toward the lockout like a wrong password. ' +
        'Signing in to a tenant whose IP allowlist does not admit your address is 403 `ip-not-allowed`. ' +
        'The session lasts the tenant’s session lifetime, never longer than SESSION_TTL_S. ' +
        'A member of a tenant requiring MFA who has not enabled it gets `mfa_setup_required: true` and a token that only manages their own account.',
      access: { public: 'signing in is how a user gets a credential; the body is the credential' },
      body: LoginBody,
      problems: [401, 403],
      responses: {
        200: { description: 'Signed in', content: { 'application/json': { schema: SignedInView } } },
      },
      async handle({ req, res, em, body, log }) {
        const signedIn = await login(
          em,
          settings,
          {
            email: body.email,
            password: body.password,
            tenantId: body.tenant_id,
            totpCode: body.totp_code,
            recoveryCode: body.recovery_code,
          },
          originOf(req),
        );
        log.info({ userId: signedIn.userId, sessionId: signedIn.sessionId }, 'user signed in');
        res.json(await signedInView(tokens, signedIn));
      },
    }),
    route({
      operationId: 'refreshSession',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/refresh',
      summary: 'Exchange a refresh token for a new access token and the next refresh token',
      description:
        'Each refresh token works once. Presenting one that was already exchanged ends every session of its sign-in (it was copied) and answers 401. ' +
        'The new access token carries your permissions as they are now: after enabling MFA that a tenant requires, refresh to get your role’s permissions. ' +
        'From an address outside the tenant’s IP allowlist the answer is 403 `ip-not-allowed` and nothing is rotated.',
      access: { public: 'the refresh token in the body is the credential, checked against its stored hash' },
      body: RefreshBody,
      problems: [401, 403],
      responses: {
        200: { description: 'Refreshed', content: { 'application/json': { schema: SignedInView } } },
      },
      async handle({ req, res, em, body, log }) {
        const result = await refresh(em, settings, body.refresh_token, originOf(req));
        if ('reusedSessionId' in result) {
          forgetSessions({ sessionId: result.reusedSessionId });
          log.warn({ sessionId: result.reusedSessionId }, 'refresh token reused: its session is revoked');
          throw refreshTokenReused();
        }
        res.json(await signedInView(tokens, result.refreshed));
      },
    }),
    route({
      operationId: 'logout',
      // signed in already: the caller's own budget, not the sign-in one
      rateLimit: 'caller',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/logout',
      summary: 'Sign out: end the session of this access token',
      access: self,
      responses: { 204: { description: 'Signed out' } },
      async handle({ principal, em, res, log }) {
        const { userId, sessionId } = sessionOf(principal);
        await revokeSession(em, { userId, sessionId, reason: 'LOGOUT' });
        forgetSessions({ sessionId });
        log.info({ sessionId }, 'user signed out');
        res.status(204).end();
      },
    }),
    route({
      operationId: 'listSessions',
      // signed in already: the caller's own budget, not the sign-in one
      rateLimit: 'caller',
      tag: 'Auth',
      method: 'get',
      path: '/api/v1/auth/sessions',
      summary: 'List your sessions that have not ended',
      access: self,
      responses: {
        200: { description: 'Sessions', content: { 'application/json': { schema: SessionList } } },
      },
      async handle({ principal, em, res }) {
        const { userId, sessionId } = sessionOf(principal);
        const sessions = await activeSessions(em, userId);
        res.json({ data: sessions.map((s) => sessionView(s, sessionId)) });
      },
    }),
    route({
      operationId: 'revokeSession',
      // signed in already: the caller's own budget, not the sign-in one
      rateLimit: 'caller',
      tag: 'Auth',
      method: 'delete',
      path: '/api/v1/auth/sessions/:id',
      summary: 'End one of your sessions (its refresh and access tokens stop working)',
      access: self,
      params: SessionIdParams,
      responses: { 204: { description: 'Ended' } },
      async handle({ req, principal, em, params, res, log }) {
        const { userId } = sessionOf(principal);
        const { revokedNow } = await revokeSession(
          em,
          { userId, sessionId: params.id, reason: 'REVOKED' },
          originOf(req),
        );
        forgetSessions({ sessionId: params.id });
        if (revokedNow) log.info({ revokedSessionId: params.id }, 'session revoked');
        res.status(204).end();
      },
    }),
    route({
      operationId: 'changePassword',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/password',
      summary: 'Change your password; every other session of yours ends',
      access: self,
      body: ChangePasswordBody,
      responses: {
        200: { description: 'Changed', content: { 'application/json': { schema: PasswordChanged } } },
      },
      async handle({ req, principal, em, body, res, log }) {
        const { userId, sessionId } = sessionOf(principal);
        const { revokedSessionIds } = await changePassword(
          em,
          settings,
          userId,
          body.current_password,
          body.new_password,
          { keepSessionId: sessionId, tenantId: principal.tenantId, origin: originOf(req) },
        );
        forgetSessions({ userId });
        log.info({ revokedSessions: revokedSessionIds.length }, 'password changed');
        res.json({ revoked_sessions: revokedSessionIds.length });
      },
    }),
  ];
}
