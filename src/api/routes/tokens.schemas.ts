/** Request and response schemas for API tokens. */
import {
  DEFAULT_TOKEN_LIFETIME_DAYS,
  FINE_TOKEN_SCOPES,
  MAX_TOKEN_LIFETIME_DAYS,
  TOKEN_SCOPES,
} from '../../domain/api-tokens';
import { z } from '../zod';
import { displayName } from './common.schemas';

const SCOPES_DESCRIPTION =
  'What the token may do. Fine scopes are named after the permission they grant (' +
  `${FINE_TOKEN_SCOPES.map((s) => `\`${s}\``).join(', ')}); a \`:write\` scope grants the \`:read\` ` +
  'of its area too. `admin` grants everything a token of its owner may hold; `read` (every read of ' +
  'the tenant, not security events or the audit trail) and `write` (everything, as `admin`) are the ' +
  'scopes tokens had before. A token is only given permissions its creator holds. A platform token ' +
  'takes `read`, `write`, `admin`, `tenants:read`, `security:read`, `security:write` and `audit:read`.';

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
      .openapi({ description: `${SCOPES_DESCRIPTION} Defaults to read and write.`, example: ['pods:read'] }),
    expires_in_days: z
      .number()
      .int()
      .min(1)
      .max(MAX_TOKEN_LIFETIME_DAYS)
      .optional()
      .openapi({
        description: `days until the token expires (at most ${MAX_TOKEN_LIFETIME_DAYS}); without it or expires_at, ${DEFAULT_TOKEN_LIFETIME_DAYS}`,
        example: 30,
      }),
    expires_at: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({
        description: `when the token expires: in the future, at most ${MAX_TOKEN_LIFETIME_DAYS} days ahead; instead of expires_in_days`,
        example: '2027-01-31T00:00:00Z',
      }),
  })
  .openapi('CreateToken');

export type CreateTokenBody = z.infer<typeof CreateTokenBody>;

/** The lifetime a creation body asks for, as `issueToken` takes it. */
export function lifetimeOf(body: CreateTokenBody): { inDays?: number; at?: Date } {
  return {
    ...(body.expires_in_days !== undefined ? { inDays: body.expires_in_days } : {}),
    ...(body.expires_at !== undefined ? { at: new Date(body.expires_at) } : {}),
  };
}

export const TokenView = z
  .object({
    id: z.string(),
    tenant_id: z.string().nullable(),
    name: z.string(),
    prefix: z.string(),
    scopes: z.array(z.enum(TOKEN_SCOPES)),
    created_at: z.string(),
    last_used_at: z.string().nullable().openapi({
      description: 'when the token was last used, to the minute (it is written at most once a minute)',
    }),
    expires_at: z
      .string()
      .nullable()
      .openapi({ description: 'past it the token is refused like an unknown one' }),
    revoked_at: z.string().nullable(),
  })
  .openapi('ApiToken');

export const TokenCreated = z.object({
  token: TokenView,
  secret: z.string().openapi({ description: 'The bearer secret. Shown once; only its hash is stored.' }),
});

export const TokenIdParams = z.object({ id: z.string() });

export const TokenList = z.object({ data: z.array(TokenView) });
