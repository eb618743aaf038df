/** /api/v1/tokens: a tenant's principal (a token with tokens:*, or an OWNER or ADMIN) manages its tenant's API tokens. */
import type { Request } from 'express';
import type { ApiToken } from '../../db/entities';
import { dataBody } from '../../db/repositories/pages';
import { tokenPage } from '../../db/repositories/tenancy';
import { DEFAULT_TOKEN_LIFETIME_DAYS, MAX_TOKEN_LIFETIME_DAYS } from '../../domain/api-tokens';
import type { Principal } from '../../domain/principal';
import { issueToken, revokeToken, type TokenActor } from '../../services/api-tokens';
import { route, type Route } from '../http/route';
import { forgetToken, tenantOf } from '../middleware/auth';
import type { z } from '../zod';
import {
  CreateTokenBody,
  TokenCreated,
  TokenIdParams,
  TokenList,
  TokenView,
  lifetimeOf,
} from './tokens.schemas';

/** An API token as the API shows it: never its secret or hash. */
export function tokenView(token: ApiToken): z.infer<typeof TokenView> {
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

const read = { caller: 'tenant', permission: 'tokens:read' } as const;
const write = { caller: 'tenant', permission: 'tokens:write' } as const;

/** Who is acting, for the security event of a token created or revoked. */
function actorOf(principal: Principal, req: Request): TokenActor {
  return {
    userId: principal.actorType === 'user' ? principal.actorId : null,
    ip: req.ip ?? null,
    userAgent: req.get('user-agent') ?? null,
  };
}

export function tokenRoutes(): Route[] {
  return [
    route({
      operationId: 'createToken',
      tag: 'Tokens',
      method: 'post',
      path: '/api/v1/tokens',
      summary: 'Create an API token for the calling tenant; the secret is shown once',
      description:
        'The token holds the permissions its scopes grant, never more than the caller holds (a user ' +
        'mints within their role, a token within its scopes: 403 otherwise). It expires after ' +
        `\`expires_in_days\` or at \`expires_at\` (at most ${MAX_TOKEN_LIFETIME_DAYS} days ahead; ` +
        `${DEFAULT_TOKEN_LIFETIME_DAYS} days when neither is given).`,
      access: write,
      body: CreateTokenBody,
      responses: {
        201: { description: 'Token created', content: { 'application/json': { schema: TokenCreated } } },
      },
      async handle({ req, principal, em, body, res, log }) {
        const issued = await issueToken(em, {
          tenantId: tenantOf(principal),
          name: body.name,
          scopes: body.scopes,
          lifetime: lifetimeOf(body),
          mintedWithin: principal.permissions,
          createdByTokenId: principal.tokenId,
          actor: actorOf(principal, req),
        });
        log.info({ issuedTokenId: issued.token.id }, 'tenant token created');
        res.status(201).json({ token: tokenView(issued.token), secret: issued.secret });
      },
    }),
    route({
      operationId: 'listTokens',
      tag: 'Tokens',
      method: 'get',
      path: '/api/v1/tokens',
      summary: "List the calling tenant's API tokens (never their secrets)",
      access: read,
      responses: {
        200: { description: 'Tokens', content: { 'application/json': { schema: TokenList } } },
      },
      async handle({ principal, em, res }) {
        res.type('application/json').send(dataBody(await tokenPage(em, tenantOf(principal))));
      },
    }),
    route({
      operationId: 'revokeToken',
      tag: 'Tokens',
      method: 'delete',
      path: '/api/v1/tokens/:id',
      summary: 'Revoke one of the calling tenant’s API tokens',
      access: write,
      params: TokenIdParams,
      responses: {
        200: { description: 'Revoked', content: { 'application/json': { schema: TokenView } } },
      },
      async handle({ req, principal, em, params, res, log }) {
        const { id } = params;
        const { token, revokedNow } = await revokeToken(em, {
          tenantId: tenantOf(principal),
          tokenId: id,
          byTokenId: principal.tokenId,
          actor: actorOf(principal, req),
        });
        forgetToken(token.id);
        if (revokedNow) log.info({ revokedTokenId: id }, 'tenant token revoked');
        res.json(tokenView(token));
      },
    }),
  ];
}
