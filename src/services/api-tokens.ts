/** Issuing and revoking API tokens, each in one transaction; used by the API and by the CLI. */
import { randomBytes } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import { ApiToken, Tenant } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { TOKEN_PREFIX, hashToken, visiblePrefix, type TokenScope } from '../domain/api-tokens';
import { conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
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
  expiresInDays?: number | undefined;
  createdByTokenId?: string | null;
  actor?: TokenActor;
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
      expiresAt: input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null,
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
