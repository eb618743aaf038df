/** API token format and scope rules. Tokens are 256-bit random; only their SHA-256 is stored. */
import { createHash } from 'node:crypto';

export const TOKEN_PREFIX = 'ppt_';
export const TOKEN_SCOPES = ['read', 'write'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** A bearer secret is `ppt_` followed by 43 base64url characters (32 random bytes). */
export const TOKEN_SHAPE = /^ppt_[A-Za-z0-9_-]{43}$/;

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The part shown in listings so people can tell tokens apart without the secret. */
export function visiblePrefix(secret: string): string {
  return secret.slice(0, TOKEN_PREFIX.length + 8);
}

/** A token may only mint tokens with scopes it holds itself. */
export function scopesWithin(requested: readonly TokenScope[], held: readonly TokenScope[]): boolean {
  return requested.every((s) => held.includes(s));
}
