/** Request and response schemas for API tokens. */
import { TOKEN_SCOPES } from '../../domain/api-tokens';
import { z } from '../zod';
import { displayName } from './common.schemas';

export const CreateTokenBody = z
  .strictObject({
    // the same rules as customer and product names; api_tokens.name is varchar(100)
    name: displayName(100).openapi({ example: 'storefront' }),
    scopes: z
      .array(z.enum(TOKEN_SCOPES))
      .min(1)
      .max(TOKEN_SCOPES.length)
      .default(['read', 'write'])
      .transform((s) => [...new Set(s)])
      .openapi({
        description: 'what the token may do; defaults to read and write (as the CLI does)',
        example: ['read', 'write'],
      }),
    expires_in_days: z.number().int().min(1).max(3650).optional(),
  })
  .openapi('CreateToken');

export type CreateTokenBody = z.infer<typeof CreateTokenBody>;

export const TokenView = z
  .object({
    id: z.string(),
    tenant_id: z.string().nullable(),
    name: z.string(),
    prefix: z.string(),
    scopes: z.array(z.enum(TOKEN_SCOPES)),
    created_at: z.string(),
    last_used_at: z.string().nullable(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
  })
  .openapi('ApiToken');

export const TokenCreated = z.object({
  token: TokenView,
  secret: z.string().openapi({ description: 'The bearer secret. Shown once; only its hash is stored.' }),
});

export const TokenIdParams = z.object({ id: z.string() });

export const TokenList = z.object({ data: z.array(TokenView) });
