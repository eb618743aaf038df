/**
 * API token format, scopes and lifetime rules. Tokens are 256-bit random; only their SHA-256 is stored.
 * What a scope lets a token do is the permission table's business: `tokenPermissions` in ./permissions.
 */
import { createHash } from 'node:crypto';
import type { Permission } from './permissions';

export const TOKEN_PREFIX = 'ppt_';

/**
 * Fine scopes, each named after the one permission it grants (a `:write` scope also grants the
 * `:read` of its area: a token that changes pods can see what it changed).
 */
export const FINE_TOKEN_SCOPES = [
  'pods:read',
  'pods:write',
  'catalog:read',
  'catalog:write',
  'billing:read',
  'billing:write',
  'tokens:read',
  'tokens:write',
  'members:read',
  'members:write',
  'tenants:read',
  'security:read',
  'security:write',
  'audit:read',
] as const satisfies readonly Permission[];

/**
 * Coarse scopes: `admin`, everything a token of its owner (a tenant, or the platform) may hold;
 * `read` and `write`, the scopes tokens had before fine scopes, kept with their meaning: `read`
 * every read of the owner's area (not security events or the audit trail), `write` everything
 * (today the same as `admin`).
 */
export const COARSE_TOKEN_SCOPES = ['read', 'write', 'admin'] as const;

export const TOKEN_SCOPES = [...COARSE_TOKEN_SCOPES, ...FINE_TOKEN_SCOPES] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];
export type FineTokenScope = (typeof FINE_TOKEN_SCOPES)[number];

export function isFineScope(scope: string): scope is FineTokenScope {
  return (FINE_TOKEN_SCOPES as readonly string[]).includes(scope);
}

/** Who a token belongs to: one tenant, or the platform. */
export type TokenOwner = 'tenant' | 'platform';

/** A bearer secret is `ppt_` followed by 43 base64url characters (32 random bytes). */
export const TOKEN_SHAPE = /^ppt_[A-Za-z0-9_-]{43}$/;

/** Lifetime of a token created through the API or the CLI when none is asked for. */
export const DEFAULT_TOKEN_LIFETIME_DAYS = 90;
/** The longest lifetime a token can be given: every token is rotated at least yearly. */
export const MAX_TOKEN_LIFETIME_DAYS = 365;
const DAY_MS = 86_400_000;

/**
 * When a token asked for at `now` expires: `inDays` days later, or at `at`, or after the default
 * lifetime when neither is given. Returns why not when the request is out of bounds.
 */
export function tokenExpiry(
  now: Date,
  requested: { inDays?: number | undefined; at?: Date | undefined },
): { expiresAt: Date } | { refused: string; field: 'expires_at' | 'expires_in_days' } {
  if (requested.inDays !== undefined && requested.at !== undefined) {
    return { refused: 'give expires_in_days or expires_at, not both', field: 'expires_at' };
  }
  const latest = now.getTime() + MAX_TOKEN_LIFETIME_DAYS * DAY_MS;
  if (requested.at !== undefined) {
    const at = requested.at.getTime();
    if (!Number.isFinite(at) || at <= now.getTime()) {
      return { refused: 'expires_at must be in the future', field: 'expires_at' };
    }
    if (at > latest) {
      return {
        refused: `expires_at must be at most ${MAX_TOKEN_LIFETIME_DAYS} days ahead`,
        field: 'expires_at',
      };
    }
    return { expiresAt: new Date(at) };
  }
  const days = requested.inDays ?? DEFAULT_TOKEN_LIFETIME_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_TOKEN_LIFETIME_DAYS) {
    return {
      refused: `expires_in_days must be a whole number from 1 to ${MAX_TOKEN_LIFETIME_DAYS}`,
      field: 'expires_in_days',
    };
  }
  return { expiresAt: new Date(now.getTime() + days * DAY_MS) };
}

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The part shown in listings so people can tell tokens apart without the secret. */
export function visiblePrefix(secret: string): string {
  return secret.slice(0, TOKEN_PREFIX.length + 8);
}

/** Whether every scope asked for is one held (scopes as names; permissions are compared with `permissionsWithin`). */
export function scopesWithin(requested: readonly TokenScope[], held: readonly TokenScope[]): boolean {
  return requested.every((s) => held.includes(s));
}
