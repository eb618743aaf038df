/**
 * Bearer API-token authentication and the authorization guards routes compose.
 * A tenant principal gets a tenant-filtered EntityManager, so its queries cannot reach
 * another tenant's rows even if a route forgets a where clause.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ApiToken } from '../../db/entities';
import { systemEm, tenantEm, type MikroORM } from '../../db/orm';
import { TOKEN_SHAPE, hashToken, type TokenScope } from '../../domain/api-tokens';
import { AppError } from '../../domain/errors';
import type { Principal } from '../types';

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

export function authenticate(orm: MikroORM): RequestHandler {
  return async (req: Request, _res: Response, next: NextFunction) => {
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
    const em = systemEm(orm);
    // Every request passes here: one plain join, no entity hydration.
    const [token] = await em.execute<TokenRow[]>(
      `select t.id, t.tenant_id, t.scopes, t.revoked_at, t.expires_at, t.last_used_at, n.status as tenant_status
         from api_tokens t left join tenants n on n.id = t.tenant_id where t.token_hash = ?`,
      [hashToken(secret)],
    );
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
      await em.nativeUpdate(ApiToken, { id: token.id }, { lastUsedAt: now });
    }
    const principal: Principal = token.tenant_id
      ? { kind: 'tenant', tokenId: token.id, tenantId: token.tenant_id, scopes: token.scopes }
      : { kind: 'platform-admin', tokenId: token.id, scopes: token.scopes };
    req.principal = principal;
    req.em = principal.kind === 'tenant' ? tenantEm(orm, principal.tenantId) : systemEm(orm);
    req.log = req.log.child(
      principal.kind === 'tenant'
        ? { tenantId: principal.tenantId, tokenId: token.id }
        : { tokenId: token.id, admin: true },
    );
    next();
  };
}

export function principalOf(req: Request): Principal {
  if (!req.principal) throw new AppError('unauthenticated', 'authentication required');
  return req.principal;
}

export function emOf(req: Request) {
  if (!req.em) throw new AppError('unauthenticated', 'authentication required');
  return req.em;
}

function requireScope(principal: Principal, scope: TokenScope): void {
  if (!principal.scopes.includes(scope)) {
    throw new AppError('forbidden', `this token lacks the '${scope}' scope`);
  }
}

/** Platform-admin only routes; a tenant token gets 403 (the route itself is not secret). */
export function requirePlatformAdmin(
  req: Request,
  scope: TokenScope = 'read',
): Principal & { kind: 'platform-admin' } {
  const principal = principalOf(req);
  if (principal.kind !== 'platform-admin')
    throw new AppError('forbidden', 'this route is for platform administrators');
  requireScope(principal, scope);
  return principal;
}

export function requireTenant(req: Request, scope: TokenScope = 'read'): Principal & { kind: 'tenant' } {
  const principal = principalOf(req);
  if (principal.kind !== 'tenant') throw new AppError('forbidden', 'this route needs a tenant API token');
  requireScope(principal, scope);
  return principal;
}

export function requireAny(req: Request, scope: TokenScope = 'read'): Principal {
  const principal = principalOf(req);
  requireScope(principal, scope);
  return principal;
}
