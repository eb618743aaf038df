/** Issuing and revoking API tokens; used by the API and by the CLI. */
import { randomBytes } from 'node:crypto';
import { ApiToken, Tenant } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { TOKEN_PREFIX, hashToken, visiblePrefix, type TokenScope } from '../domain/api-tokens';
import { conflict, notFound } from '../domain/errors';

export interface IssueTokenInput {
  /** null issues a platform-admin token */
  tenantId: string | null;
  name: string;
  scopes: TokenScope[];
  expiresInDays?: number | undefined;
  createdByTokenId?: string | null;
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
  let tenant: Tenant | null = null;
  if (input.tenantId !== null) {
    tenant = await em.findOne(Tenant, { id: input.tenantId });
    if (!tenant) throw notFound('tenant');
    if (tenant.status !== 'ACTIVE') {
      throw conflict(`the tenant is ${tenant.status}; tokens can be issued once it is ACTIVE`);
    }
  }
  const secret = generateTokenSecret();
  const token = em.create(ApiToken, {
    tenant,
    platformAdmin: input.tenantId === null,
    name: input.name,
    tokenHash: hashToken(secret),
    prefix: visiblePrefix(secret),
    scopes: input.scopes,
    createdByTokenId: input.createdByTokenId ?? null,
    expiresAt: input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null,
  });
  await em.persistAndFlush(token);
  return { token, secret };
}

export function tokenView(token: ApiToken) {
  return {
    id: token.id,
    tenant_id: token.tenant?.id ?? null,
    name: token.name,
    prefix: token.prefix,
    scopes: token.scopes,
    created_at: token.createdAt.toISOString(),
    last_used_at: token.lastUsedAt?.toISOString() ?? null,
    expires_at: token.expiresAt?.toISOString() ?? null,
    revoked_at: token.revokedAt?.toISOString() ?? null,
  };
}
