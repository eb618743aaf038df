/**
 * Bearer API-token authentication, and authorization by the permission a route declares.
 * A tenant principal gets a tenant-filtered EntityManager, so its queries cannot reach
 * another tenant's rows even if a route forgets a where clause.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { hotQuery } from '../../db/hot';
import { systemEm, tenantEm, type EntityManager, type MikroORM } from '../../db/orm';
import { TOKEN_SHAPE, hashToken, type TokenScope } from '../../domain/api-tokens';
import { AppError } from '../../domain/errors';
import { ROLE_PERMISSIONS, tokenRole, type Permission } from '../../domain/permissions';
import { can, type Principal } from '../../domain/principal';

/** last_used_at is written at most this often per token, to keep reads free of writes. */
const LAST_USED_GRANULARITY_MS = 60_000;

/** Raw driver values: MikroORM's connection returns timestamps as strings. */
interface TokenRow {
  id: string;
  tenant_id: string | null;
  scopes: TokenScope[];
  revoked_at: string | Date | null;
  expires_at: string | Date | null;
  last_used_at: string | Date | null;
  tenant_status: string | null;
}

/**
 * Token rows by hash, kept for at most TOKEN_CACHE_MS: a busy client does not cost a lookup per
 * request. A revocation in this process forgets the token at once (`forgetToken`); one made
 * elsewhere (another API process, the CLI) takes effect here within TOKEN_CACHE_MS.
 */
export const TOKEN_CACHE_MS = 1000;
const TOKEN_CACHE_MAX = 10_000;
type TokenCache = Map<string, { row: TokenRow; until: number }>;
/** One cache per `authenticate` (per app); `forgetToken` reaches them all. */
const caches = new Set<TokenCache>();

/** The token row, from the cache or the database; `queried` tells which (an answer proves the database up). */
async function lookUpToken(
  orm: MikroORM,
  tokenCache: TokenCache,
  hash: string,
): Promise<{ row: TokenRow | undefined; queried: boolean }> {
  const cached = tokenCache.get(hash);
  if (cached && cached.until > Date.now()) return { row: cached.row, queried: false };
  // One prepared statement, no entity hydration.
  const [row] = await hotQuery<TokenRow>(
    orm.em,
    'auth_token',
    `select t.id, t.tenant_id, t.scopes, t.revoked_at, t.expires_at, t.last_used_at, n.status as tenant_status
       from api_tokens t left join tenants n on n.id = t.tenant_id where t.token_hash = $1`,
    [hash],
  );
  // Unknown hashes are not kept: a client guessing tokens must not fill the cache.
  if (row) {
    if (tokenCache.size >= TOKEN_CACHE_MAX) tokenCache.delete(tokenCache.keys().next().value as string);
    tokenCache.set(hash, { row, until: Date.now() + TOKEN_CACHE_MS });
  } else {
    tokenCache.delete(hash);
  }
  return { row, queried: true };
}

/** A token revoked (or whose tenant changed status) in this process is looked up afresh next time. */
export function forgetToken(tokenId?: string): void {
  for (const tokenCache of caches) {
    if (tokenId === undefined) tokenCache.clear();
    else for (const [hash, entry] of tokenCache) if (entry.row.id === tokenId) tokenCache.delete(hash);
  }
}

export function authenticate(orm: MikroORM): RequestHandler {
  const tokenCache: TokenCache = new Map();
  caches.add(tokenCache);
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization');
    if (!header)
      throw new AppError('unauthenticated', 'send an API token as `Authorization: Bearer <token>`');
    const match = /^Bearer ([^\s]+)$/i.exec(header.trim());
    const secret = match?.[1];
    if (!secret || !TOKEN_SHAPE.test(secret)) {
      throw new AppError(
        'unauthenticated',
        'the Authorization header must be `Bearer <token>` with a Podplane API token',
      );
    }
    const { row: token, queried } = await lookUpToken(orm, tokenCache, hashToken(secret));
    // the database answered this request (a cached lookup proves nothing about it)
    if (queried) res.locals.databaseAnswered = true;
    const now = new Date();
    if (!token || token.revoked_at || (token.expires_at && new Date(token.expires_at) <= now)) {
      throw new AppError('unauthenticated', 'the API token is invalid, expired or revoked');
    }
    if (token.tenant_id && token.tenant_status !== 'ACTIVE') {
      throw new AppError('forbidden', `the tenant is ${token.tenant_status}; its tokens cannot be used`);
    }
    if (
      !token.last_used_at ||
      now.getTime() - new Date(token.last_used_at).getTime() > LAST_USED_GRANULARITY_MS
    ) {
      await hotQuery(orm.em, 'auth_token_used', 'update api_tokens set last_used_at = $2 where id = $1', [
        token.id,
        now,
      ]);
      token.last_used_at = now;
    }
    const role = tokenRole(token.tenant_id, token.scopes);
    const principal: Principal = {
      actorType: 'api_token',
      actorId: token.id,
      tenantId: token.tenant_id,
      role,
      permissions: ROLE_PERMISSIONS[role],
      tokenId: token.id,
      sessionId: null,
    };
    req.principal = principal;
    // Forked on first use: routes that read through prepared statements never pay for a fork.
    let em: EntityManager | undefined;
    Object.defineProperty(req, 'em', {
      configurable: true,
      get: () => (em ??= principal.tenantId ? tenantEm(orm, principal.tenantId) : systemEm(orm)),
    });
    // req.log binds the caller from here on (the request log's child logger reads req.principal)
    next();
  };
}

export function principalOf(req: Request): Principal {
  if (!req.principal) throw new AppError('unauthenticated', 'authentication required');
  return req.principal;
}

/**
 * The route's declared access, checked before anything else runs: whose principals may call it,
 * then the permission. A tenant's token on a platform route is 403 (the route itself is no secret).
 */
export function authorize(access: {
  caller: 'tenant' | 'platform' | 'any';
  permission: Permission;
}): RequestHandler {
  return (req, _res, next) => {
    const principal = principalOf(req);
    if (access.caller === 'tenant' && !principal.tenantId) {
      throw new AppError('forbidden', 'this route needs a tenant API token');
    }
    if (access.caller === 'platform' && principal.tenantId) {
      throw new AppError('forbidden', 'this route is for platform administrators');
    }
    if (!can(principal, access.permission)) {
      throw new AppError('forbidden', `this token lacks the '${access.permission}' permission`);
    }
    next();
  };
}

/** The caller's tenant, on a route only a tenant's principal reaches. */
export function tenantOf(principal: Principal): string {
  if (!principal.tenantId) throw new AppError('forbidden', 'this route needs a tenant API token');
  return principal.tenantId;
}
