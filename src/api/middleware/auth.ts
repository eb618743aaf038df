/**
 * Bearer API-token authentication, and authorization by the permission a route declares.
 * A tenant principal gets a tenant-filtered EntityManager, so its queries cannot reach
 * another tenant's rows even if a route forgets a where clause.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ApiToken } from '../../db/entities';
import { systemEm, tenantEm, type MikroORM } from '../../db/orm';
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
    req.em = principal.tenantId ? tenantEm(orm, principal.tenantId) : systemEm(orm);
    req.log = req.log.child(
      principal.tenantId
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
