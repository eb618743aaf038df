/** /api/v1/tokens: a tenant token manages its own tenant's API tokens. */
import { Router } from 'express';
import { ApiToken } from '../../db/entities';
import { scopesWithin } from '../../domain/api-tokens';
import { AppError, notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { issueToken, tokenView } from '../../services/api-tokens';
import { emOf, requireTenant } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { bearerAuth, problems, registry } from '../openapi';
import { z } from '../zod';
import { CreateTokenBody, TokenCreated, TokenIdParams, TokenView } from './tokens.schemas';

const security = [{ [bearerAuth.name]: [] }];

registry.registerPath({
  method: 'post',
  path: '/api/v1/tokens',
  summary: 'Create an API token for the calling tenant; the secret is shown once',
  security,
  request: { body: { content: { 'application/json': { schema: CreateTokenBody } } } },
  responses: {
    201: { description: 'Token created', content: { 'application/json': { schema: TokenCreated } } },
    ...problems(400, 401, 403),
  },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/tokens',
  summary: "List the calling tenant's API tokens (never their secrets)",
  security,
  responses: {
    200: {
      description: 'Tokens',
      content: { 'application/json': { schema: z.object({ data: z.array(TokenView) }) } },
    },
    ...problems(401, 403),
  },
});
registry.registerPath({
  method: 'delete',
  path: '/api/v1/tokens/{id}',
  summary: 'Revoke one of the calling tenant’s API tokens',
  security,
  request: { params: TokenIdParams },
  responses: {
    200: { description: 'Revoked', content: { 'application/json': { schema: TokenView } } },
    ...problems(401, 403, 404),
  },
});

export function tokenRoutes(): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const principal = requireTenant(req, 'write');
    const body = parse(CreateTokenBody, req.body);
    if (!scopesWithin(body.scopes, principal.scopes)) {
      throw new AppError('forbidden', 'a token can only create tokens with scopes it holds itself', {
        errors: [{ field: 'scopes', message: `allowed: ${principal.scopes.join(', ')}` }],
      });
    }
    const issued = await issueToken(emOf(req), {
      tenantId: principal.tenantId,
      name: body.name,
      scopes: body.scopes,
      expiresInDays: body.expires_in_days,
      createdByTokenId: principal.tokenId,
    });
    req.log.info({ issuedTokenId: issued.token.id }, 'tenant token created');
    res.status(201).json({ token: tokenView(issued.token), secret: issued.secret });
  });

  router.get('/', async (req, res) => {
    requireTenant(req);
    const tokens = await emOf(req).find(ApiToken, {}, { orderBy: { id: 'asc' }, limit: 500 });
    res.json({ data: tokens.map(tokenView) });
  });

  router.delete('/:id', async (req, res) => {
    requireTenant(req, 'write');
    const { id } = parse(TokenIdParams, req.params, 'params');
    if (!isId('token', id)) throw notFound('API token');
    const em = emOf(req);
    const token = await em.findOne(ApiToken, { id });
    if (!token) throw notFound('API token');
    if (!token.revokedAt) {
      token.revokedAt = new Date();
      await em.flush();
      req.log.info({ revokedTokenId: id }, 'tenant token revoked');
    }
    res.json(tokenView(token));
  });

  return router;
}
