/**
 * Bearer authentication — an API token, or a user's access token (JWT) — and authorization by the
 * permission a route declares. Both credentials produce the same principal. A tenant principal
 * gets a tenant-filtered EntityManager, so its queries cannot reach another tenant's rows even if
 * a route forgets a where clause.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { hotQuery } from '../../db/hot';
import { systemEm, tenantEm, type EntityManager, type MikroORM } from '../../db/orm';
import { TOKEN_SHAPE, hashToken } from '../../domain/api-tokens';
import { AppError } from '../../domain/errors';
import {
  SELF_PERMISSIONS,
  isMembershipRole,
  tokenPermissions,
  tokenRole,
  userPermissions,
  type Permission,
  type Role,
  type UserRole,
} from '../../domain/permissions';
import { can, type Principal } from '../../domain/principal';
import { verifyAccessToken, type AccessTokenSettings } from '../../services/access-tokens';
import { recordSecurityEvent } from '../../services/security-events';

/** last_used_at is written at most this often per token, to keep reads free of writes. */
const LAST_USED_GRANULARITY_MS = 60_000;

/** Raw driver values: MikroORM's connection returns timestamps as strings. */
interface TokenRow {
  id: string;
  tenant_id: string | null;
  /** as stored: a scope this version does not know grants nothing */
  scopes: string[];
  revoked_at: string | Date | null;
  expires_at: string | Date | null;
  last_used_at: string | Date | null;
  tenant_status: string | null;
}

/**
 * Token rows by hash, kept for at most TOKEN_CACHE_MS: a busy client does not cost a lookup per
 * request. A revocation in this process forgets the token at once (`forgetToken`); one made
 * elsewhere (another API process, the CLI) takes effect here within TOKEN_CACHE_MS. Expiry is
 * checked on every request, cached or not. The permissions its scopes grant are worked out once
 * per lookup.
 */
export const TOKEN_CACHE_MS = 1000;
const TOKEN_CACHE_MAX = 10_000;
interface CachedToken {
  row: TokenRow;
  permissions: ReadonlySet<Permission>;
  role: Role;
}
type TokenCache = Map<string, CachedToken & { until: number }>;
/** One cache per `authenticate` (per app); `forgetToken` reaches them all. */
const caches = new Set<TokenCache>();

/** The token row, from the cache or the database; `queried` tells which (an answer proves the database up). */
async function lookUpToken(
  orm: MikroORM,
  tokenCache: TokenCache,
  hash: string,
): Promise<{ token: CachedToken | undefined; queried: boolean }> {
  const cached = tokenCache.get(hash);
  if (cached && cached.until > Date.now()) return { token: cached, queried: false };
  // One prepared statement, no entity hydration.
  const [row] = await hotQuery<TokenRow>(
    orm.em,
    'auth_token',
    `select t.id, t.tenant_id, t.scopes, t.revoked_at, t.expires_at, t.last_used_at, n.status as tenant_status
       from api_tokens t left join tenants n on n.id = t.tenant_id where t.token_hash = $1`,
    [hash],
  );
  // Unknown hashes are not kept: a client guessing tokens must not fill the cache.
  if (!row) {
    tokenCache.delete(hash);
    return { token: undefined, queried: true };
  }
  const token = {
    row,
    permissions: tokenPermissions(row.tenant_id ? 'tenant' : 'platform', row.scopes),
    role: tokenRole(row.tenant_id, row.scopes),
  };
  if (tokenCache.size >= TOKEN_CACHE_MAX) tokenCache.delete(tokenCache.keys().next().value as string);
  tokenCache.set(hash, { ...token, until: Date.now() + TOKEN_CACHE_MS });
  return { token, queried: true };
}

/** A token revoked (or whose tenant changed status) in this process is looked up afresh next time. */
export function forgetToken(tokenId?: string): void {
  for (const tokenCache of caches) {
    if (tokenId === undefined) tokenCache.clear();
    else for (const [hash, entry] of tokenCache) if (entry.row.id === tokenId) tokenCache.delete(hash);
  }
}

/** Raw driver values of a session's first row, its user, membership and tenant. */
interface SessionRow {
  id: string;
  user_id: string;
  tenant_id: string | null;
  revoked_at: string | Date | null;
  expires_at: string | Date;
  last_used_at: string | Date | null;
  disabled_at: string | Date | null;
  platform_admin: boolean;
  role: string | null;
  tenant_status: string | null;
}

/**
 * Session rows by id, kept like token rows for at most SESSION_CACHE_MS: a logout, a revocation
 * or a password change in this process forgets them at once (`forgetSessions`), so the access
 * tokens of an ended session stop working on the next request; one made elsewhere (another API
 * process) takes effect here within SESSION_CACHE_MS, well inside the access tokens' lifetime.
 * A role change or a removed membership is seen within the same bound.
 */
export const SESSION_CACHE_MS = 1000;
type SessionCache = Map<string, { row: SessionRow; until: number }>;
const sessionCaches = new Set<SessionCache>();

/**
 * How each app's user access tokens are verified, keyed by its ORM: registered by the auth routes
 * (`acceptAccessTokens`), which sign them. An app without them takes API tokens only.
 */
const accessTokenSettings = new WeakMap<MikroORM, AccessTokenSettings>();

export function acceptAccessTokens(orm: MikroORM, settings: AccessTokenSettings): void {
  accessTokenSettings.set(orm, settings);
}

/** Sessions ended in this process (or all of a user's) are looked up afresh next time. */
export function forgetSessions(which: { sessionId?: string; userId?: string }): void {
  for (const cache of sessionCaches) {
    for (const [id, entry] of cache) {
      if (id === which.sessionId || entry.row.user_id === which.userId) cache.delete(id);
    }
  }
}

async function lookUpSession(
  orm: MikroORM,
  cache: SessionCache,
  sessionId: string,
): Promise<{ row: SessionRow | undefined; queried: boolean }> {
  const cached = cache.get(sessionId);
  if (cached && cached.until > Date.now()) return { row: cached.row, queried: false };
  const [row] = await hotQuery<SessionRow>(
    orm.em,
    'auth_session',
    `select s.id, s.user_id, s.tenant_id, s.revoked_at, s.expires_at, s.last_used_at,
            u.disabled_at, u.platform_admin, m.role, n.status as tenant_status
       from sessions s
       join users u on u.id = s.user_id
       left join memberships m on m.user_id = s.user_id and m.tenant_id = s.tenant_id
       left join tenants n on n.id = s.tenant_id
      where s.id = $1 and s.parent_id is null`,
    [sessionId],
  );
  // Only signed tokens reach this lookup, so its ids cannot be made up to fill the cache.
  if (row) {
    if (cache.size >= TOKEN_CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(sessionId, { row, until: Date.now() + SESSION_CACHE_MS });
  } else {
    cache.delete(sessionId);
  }
  return { row, queried: true };
}

const sessionEnded = () =>
  new AppError('unauthenticated', 'the access token is invalid or expired, or its session has ended');

/** The principal of a user's access token: its session must stand and its user still belong where it acts. */
async function userPrincipal(
  orm: MikroORM,
  cache: SessionCache,
  jwt: string,
  res: Response,
): Promise<Principal> {
  const settings = accessTokenSettings.get(orm);
  const claims = settings ? await verifyAccessToken(settings, jwt) : null;
  if (!claims) throw sessionEnded();
  const { row: session, queried } = await lookUpSession(orm, cache, claims.sessionId);
  if (queried) res.locals.databaseAnswered = true;
  const now = new Date();
  if (
    !session ||
    session.user_id !== claims.userId ||
    session.tenant_id !== claims.tenantId ||
    session.revoked_at ||
    new Date(session.expires_at) <= now ||
    session.disabled_at
  ) {
    throw sessionEnded();
  }
  let role: UserRole;
  if (session.tenant_id) {
    // the membership was removed since the sign-in
    if (!session.role || !isMembershipRole(session.role)) throw sessionEnded();
    if (session.tenant_status !== 'ACTIVE') {
      throw new AppError('forbidden', `the tenant is ${session.tenant_status}; its members cannot act in it`);
    }
    role = session.role;
  } else {
    if (!session.platform_admin) throw sessionEnded();
    role = 'platform_admin';
  }
  if (
    !session.last_used_at ||
    now.getTime() - new Date(session.last_used_at).getTime() > LAST_USED_GRANULARITY_MS
  ) {
    await hotQuery(orm.em, 'auth_session_used', 'update sessions set last_used_at = $2 where id = $1', [
      session.id,
      now,
    ]);
    session.last_used_at = now;
  }
  return {
    actorType: 'user',
    actorId: session.user_id,
    tenantId: session.tenant_id,
    role,
    // A tenant requiring MFA the user has not enabled: only their own account until they do (and refresh).
    permissions: claims.mfaSetupRequired ? MFA_SETUP_PERMISSIONS : userPermissions(role),
    tokenId: null,
    sessionId: session.id,
    ...(claims.mfaSetupRequired ? { mfaSetupRequired: true } : {}),
  };
}

/** What a user who must set up MFA holds: their own account (MFA setup, sessions, password). */
const MFA_SETUP_PERMISSIONS: ReadonlySet<Permission> = new Set(SELF_PERMISSIONS);

/** The request's EntityManager, forked on first use: routes that read through prepared statements never pay for a fork. */
function bindEm(req: Request, orm: MikroORM, principal: Principal): void {
  let em: EntityManager | undefined;
  Object.defineProperty(req, 'em', {
    configurable: true,
    get: () => (em ??= principal.tenantId ? tenantEm(orm, principal.tenantId) : systemEm(orm)),
  });
}

/** Three base64url segments: a compact JWS. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function authenticate(orm: MikroORM): RequestHandler {
  const tokenCache: TokenCache = new Map();
  caches.add(tokenCache);
  const sessionCache: SessionCache = new Map();
  sessionCaches.add(sessionCache);
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization');
    if (!header)
      throw new AppError(
        'unauthenticated',
        'send an API token or an access token as `Authorization: Bearer <token>`',
      );
    const match = /^Bearer ([^\s]+)$/i.exec(header.trim());
    const secret = match?.[1];
    if (!secret || !TOKEN_SHAPE.test(secret)) {
      // Anything not shaped like an API token is tried as a user's access token; API tokens pay nothing for it.
      if (!secret || !JWT_SHAPE.test(secret)) {
        throw new AppError(
          'unauthenticated',
          'the Authorization header must be `Bearer <token>` with a Podplane API token or access token',
        );
      }
      const principal = await userPrincipal(orm, sessionCache, secret, res);
      req.principal = principal;
      bindEm(req, orm, principal);
      next();
      return;
    }
    const { token: found, queried } = await lookUpToken(orm, tokenCache, hashToken(secret));
    // the database answered this request (a cached lookup proves nothing about it)
    if (queried) res.locals.databaseAnswered = true;
    const now = new Date();
    // Unknown, revoked and expired tokens get the one answer: it tells a guesser nothing.
    if (!found || found.row.revoked_at || (found.row.expires_at && new Date(found.row.expires_at) <= now)) {
      throw new AppError('unauthenticated', 'the API token is invalid, expired or revoked');
    }
    const token = found.row;
    if (token.tenant_id && token.tenant_status !== 'ACTIVE') {
      throw new AppError('forbidden', `the tenant is ${token.tenant_status}; its tokens cannot be used`);
    }
    if (
      !token.last_used_at ||
      now.getTime() - new Date(token.last_used_at).getTime() > LAST_USED_GRANULARITY_MS
    ) {
      // Conditional: concurrent requests, or other processes, with a stale row write it once a minute.
      await hotQuery(
        orm.em,
        'auth_token_used',
        `update api_tokens set last_used_at = $2
          where id = $1 and (last_used_at is null or last_used_at <= $2::timestamptz - interval '1 minute')`,
        [token.id, now],
      );
      token.last_used_at = now;
    }
    const principal: Principal = {
      actorType: 'api_token',
      actorId: token.id,
      tenantId: token.tenant_id,
      role: found.role,
      permissions: found.permissions,
      tokenId: token.id,
      sessionId: null,
    };
    req.principal = principal;
    bindEm(req, orm, principal);
    // req.log binds the caller from here on (the request log's child logger reads req.principal)
    next();
  };
}

export function principalOf(req: Request): Principal {
  if (!req.principal) throw new AppError('unauthenticated', 'authentication required');
  return req.principal;
}

type Access = { caller: 'tenant' | 'platform' | 'any'; permission: Permission };

/** Why the principal may not call the route, or null when it may. */
function refusal(access: Access, principal: Principal): AppError | null {
  if (principal.mfaSetupRequired && !can(principal, access.permission)) {
    return new AppError(
      'mfa_setup_required',
      'your tenant requires MFA: set it up (POST /api/v1/auth/mfa/totp/setup, then …/enable), then refresh your session',
    );
  }
  if (access.caller === 'tenant' && !principal.tenantId) {
    return new AppError('forbidden', 'this route needs a tenant API token or a user signed in to a tenant');
  }
  if (access.caller === 'platform' && principal.tenantId) {
    return new AppError('forbidden', 'this route is for platform administrators');
  }
  if (!can(principal, access.permission)) {
    const who = principal.actorType === 'user' ? `your role (${principal.role})` : 'this token';
    return new AppError('forbidden', `${who} lacks the '${access.permission}' permission`);
  }
  return null;
}

/**
 * A 403 on a platform route is someone reaching for the platform: it is recorded (MEDIUM) before
 * it is answered. A failure to record is logged, never a reason to answer differently.
 */
async function refusePlatform(
  req: Request,
  principal: Principal,
  access: Access,
  denial: AppError,
): Promise<never> {
  try {
    if (req.em) {
      await recordSecurityEvent(req.em, {
        kind: 'PERMISSION_DENIED',
        severity: 'MEDIUM',
        tenantId: principal.tenantId,
        userId: principal.actorType === 'user' ? principal.actorId : null,
        ip: req.ip ?? null,
        userAgent: req.get('user-agent') ?? null,
        details: {
          method: req.method,
          path: req.path.slice(0, 200),
          permission: access.permission,
          role: principal.role,
          token_id: principal.tokenId,
        },
      });
    }
  } catch (err) {
    req.log?.error({ err }, 'could not record a permission denial');
  }
  throw denial;
}

/**
 * The route's declared access, checked before anything else runs: whose principals may call it,
 * then the permission. A tenant's token on a platform route is 403 (the route itself is no secret).
 * The allowed path does no more than the checks; only a refusal on a platform route writes.
 */
export function authorize(access: Access): RequestHandler {
  return (req, _res, next) => {
    const principal = principalOf(req);
    const denial = refusal(access, principal);
    if (!denial) {
      next();
      return;
    }
    if (access.caller === 'platform') return refusePlatform(req, principal, access, denial);
    throw denial;
  };
}

/** The caller's tenant, on a route only a tenant's principal reaches. */
export function tenantOf(principal: Principal): string {
  if (!principal.tenantId) throw new AppError('forbidden', 'this route needs a tenant API token');
  return principal.tenantId;
}
