/**
 * Sign-in sessions, pure: the refresh token format and what presenting a refresh token leads to.
 * Refresh tokens are 256-bit random and opaque; only their SHA-256 is stored (`hashToken`).
 */
import { randomBytes } from 'node:crypto';

export const REFRESH_TOKEN_PREFIX = 'ppr_';

/** `ppr_` and 43 base64url characters (32 random bytes): never mistaken for an API token (`ppt_`). */
export const REFRESH_TOKEN_SHAPE = /^ppr_[A-Za-z0-9_-]{43}$/;

export function generateRefreshToken(): string {
  return `${REFRESH_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** The parts of a refresh token's row (and its family's first row) that decide a refresh. */
export interface RefreshState {
  rotatedAt: Date | null;
  revokedAt: Date | null;
  expiresAt: Date;
  /** the family's first row was revoked: the whole sign-in has ended */
  familyRevoked: boolean;
}

/**
 * - `rotate`: the token is current; it is exchanged for the next one of its family;
 * - `reused`: the token was already exchanged, so someone else holds a copy of it (or of its
 *   successor): the whole family is revoked and the caller signs in again;
 * - `ended`: the family was revoked, or it expired; nothing changes.
 * A revoked family's tokens are `ended` even when rotated: reuse after a logout revokes nothing more.
 */
export type RefreshOutcome = 'rotate' | 'reused' | 'ended';

export function refreshOutcome(state: RefreshState, now: Date): RefreshOutcome {
  if (state.familyRevoked || state.revokedAt) return 'ended';
  if (state.rotatedAt) return 'reused';
  if (state.expiresAt.getTime() <= now.getTime()) return 'ended';
  return 'rotate';
}
