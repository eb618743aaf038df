/** What presenting a refresh token leads to, and the refresh token format. */
import { REFRESH_TOKEN_SHAPE, generateRefreshToken, refreshOutcome } from '../../src/domain/sessions';
import { TOKEN_SHAPE } from '../../src/domain/api-tokens';

describe('refresh tokens', () => {
  it('are 256-bit, opaque, distinct, and never shaped like an API token', () => {
    const a = generateRefreshToken();
    const b = generateRefreshToken();
    expect(a).toMatch(REFRESH_TOKEN_SHAPE);
    expect(a).not.toBe(b);
    expect(Buffer.from(a.slice(4), 'base64url')).toHaveLength(32);
    expect(TOKEN_SHAPE.test(a)).toBe(false);
  });
});

describe('presenting a refresh token', () => {
  const now = new Date('2026-11-23T12:00:00Z');
  const later = new Date('2026-12-01T00:00:00Z');
  const earlier = new Date('2026-11-01T00:00:00Z');
  it.each([
    [
      'current, unexpired',
      { rotatedAt: null, revokedAt: null, expiresAt: later, familyRevoked: false },
      'rotate',
    ],
    [
      'already exchanged',
      { rotatedAt: earlier, revokedAt: null, expiresAt: later, familyRevoked: false },
      'reused',
    ],
    ['expired', { rotatedAt: null, revokedAt: null, expiresAt: now, familyRevoked: false }, 'ended'],
    ['revoked', { rotatedAt: null, revokedAt: earlier, expiresAt: later, familyRevoked: true }, 'ended'],
    [
      'exchanged, then its family revoked (reuse after logout revokes nothing more)',
      { rotatedAt: earlier, revokedAt: earlier, expiresAt: later, familyRevoked: true },
      'ended',
    ],
    [
      'current, but its family revoked meanwhile',
      { rotatedAt: null, revokedAt: null, expiresAt: later, familyRevoked: true },
      'ended',
    ],
    [
      'exchanged and expired',
      { rotatedAt: earlier, revokedAt: null, expiresAt: earlier, familyRevoked: false },
      'reused',
    ],
  ] as const)('%s → %s', (_label, state, outcome) => {
    expect(refreshOutcome(state, now)).toBe(outcome);
  });
});
