/** Issuing and revoking API tokens, each in one transaction; used by the API and by the CLI. */
import { randomBytes } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import { ApiToken, Tenant } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { TOKEN_PREFIX, hashToken, tokenExpiry, visiblePrefix, type TokenScope } from '../domain/api-tokens';
import { AppError, conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import { permissionsWithin, refusedScopes, tokenPermissions, type Permission } from '../domain/permissions';
import { recordSecurityEvent } from './security-events';

/** Who made a change, for its security event: the signed-in user (if one did) and where from. */
export interface TokenActor {
  userId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
}

export interface IssueTokenInput {
  /** null issues a platform-admin token */
  tenantId: string | null;
  name: string;
  scopes: TokenScope[];
  /**
   * The lifetime asked for through the API or the CLI: bounded, and the default lifetime when
   * neither member is given (see `tokenExpiry`). Without it, `expiresInDays` or no expiry at all
   * (fixtures and tests).
   */
  lifetime?: { inDays?: number | undefined; at?: Date | undefined };
  expiresInDays?: number | undefined;
  /**
   * The permissions of the principal minting the token, when one does: the token's must be within
   * them (403). A platform administrator issuing a tenant's token, or the CLI, gives none.
   */
  mintedWithin?: ReadonlySet<Permission>;
  createdByTokenId?: string | null;
  actor?: TokenActor;
}

/** When the token expires, or why it cannot be made: 400 for scopes or a lifetime out of bounds, 403 above its minter. */
function checkedExpiry(input: IssueTokenInput, now: Date): Date | null {
  const owner = input.tenantId === null ? 'platform' : 'tenant';
  const refused = refusedScopes(owner, input.scopes);
  if (refused.length > 0) {
    throw new AppError('validation_failed', `a ${owner} token cannot hold ${refused.join(', ')}`, {
      errors: [{ field: 'scopes', message: `not for a ${owner} token: ${refused.join(', ')}` }],
    });
  }
  if (input.mintedWithin && !permissionsWithin(tokenPermissions(owner, input.scopes), input.mintedWithin)) {
    throw new AppError('forbidden', 'a token can only be given permissions its creator holds', {
      errors: [{ field: 'scopes', message: 'asks for a permission the caller does not hold' }],
    });
  }
  if (input.lifetime) {
    const expiry = tokenExpiry(now, input.lifetime);
    if ('refused' in expiry) {
      throw new AppError('validation_failed', expiry.refused, {
        errors: [{ field: expiry.field, message: expiry.refused }],
      });
    }
    return expiry.expiresAt;
  }
  return input.expiresInDays ? new Date(now.getTime() + input.expiresInDays * 86_400_000) : null;
}

export interface IssuedToken {
  token: ApiToken;
  /** shown once, never stored */
  secret: string;
}

export function generateTokenSecret(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export async function issueToken(em: EntityManager, input: IssueTokenInput): Promise<IssuedToken> {
  const expiresAt = checkedExpiry(input, new Date());
  return em.transactional(async (tx) => {
    let tenant: Tenant | null = null;
    if (input.tenantId !== null) {
      tenant = await tx.findOne(Tenant, { id: input.tenantId });
      if (!tenant) throw notFound('tenant');
      if (tenant.status !== 'ACTIVE') {
        throw conflict(`the tenant is ${tenant.status}; tokens can be issued once it is ACTIVE`);
      }
    }
    const secret = generateTokenSecret();
    const token = tx.create(ApiToken, {
      tenant,
      platformAdmin: input.tenantId === null,
      name: input.name,
      tokenHash: hashToken(secret),
      prefix: visiblePrefix(secret),
      scopes: input.scopes,
      createdByTokenId: input.createdByTokenId ?? null,
      expiresAt,
    });
    await tx.flush();
    await recordSecurityEvent(tx, {
      kind: 'TOKEN_CREATED',
      severity: input.tenantId === null ? 'MEDIUM' : 'LOW',
      tenantId: input.tenantId,
      userId: input.actor?.userId,
      ip: input.actor?.ip,
      userAgent: input.actor?.userAgent,
      details: {
        token_id: token.id,
        prefix: token.prefix,
        scopes: token.scopes,
        expires_at: expiresAt?.toISOString() ?? null,
        created_by_token_id: input.createdByTokenId ?? null,
      },
    });
    return { token, secret };
  });
}

export interface RevokedToken {
  token: ApiToken;
  /** false when the token was already revoked: it is returned unchanged */
  revokedNow: boolean;
}

/**
 * Revokes one of a tenant's tokens; idempotent: a token already revoked is returned unchanged.
 * An unknown id, or a token of another tenant (or a platform admin's), is 404.
 */
export async function revokeToken(
  em: EntityManager,
  input: { tenantId: string; tokenId: string; byTokenId?: string | null; actor?: TokenActor },
): Promise<RevokedToken> {
  return em.transactional(async (tx) => {
    const token = isId('token', input.tokenId)
      ? await tx.findOne(
          ApiToken,
          { id: input.tokenId, tenant: input.tenantId },
          { lockMode: LockMode.PESSIMISTIC_WRITE },
        )
      : null;
    if (!token) throw notFound('API token');
    if (token.revokedAt) return { token, revokedNow: false };
    token.revokedAt = new Date();
    await tx.flush();
    await recordSecurityEvent(tx, {
      kind: 'TOKEN_REVOKED',
      severity: 'LOW',
      tenantId: input.tenantId,
      userId: input.actor?.userId,
      ip: input.actor?.ip,
      userAgent: input.actor?.userAgent,
      details: { token_id: token.id, prefix: token.prefix, revoked_by_token_id: input.byTokenId ?? null },
    });
    return { token, revokedNow: true };
  });
}

/** Deletes tokens that expired or were revoked before `cutoff`; repeatable (a retry deletes what is left). */
export function purgeDeadTokens(em: EntityManager, cutoff: Date): Promise<number> {
  return em.nativeDelete(ApiToken, { $or: [{ expiresAt: { $lt: cutoff } }, { revokedAt: { $lt: cutoff } }] });
}
