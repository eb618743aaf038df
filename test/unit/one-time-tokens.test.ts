/** Single-use mailed tokens, pure: their shape, lifetimes, the status of an invitation, and redaction of mail bodies. */
import {
  generateOneTimeToken,
  invitationMail,
  invitationStatus,
  isOneTimeToken,
  oneTimeTokenExpiry,
  passwordResetMail,
  redactOneTimeTokens,
} from '../../src/domain/one-time-tokens';

describe('generateOneTimeToken and isOneTimeToken', () => {
  it.each([
    ['invitation', /^ppi_[A-Za-z0-9_-]{43}$/],
    ['passwordReset', /^ppw_[A-Za-z0-9_-]{43}$/],
  ] as const)('makes a %s token of 256 random bits behind its prefix', (kind, shape) => {
    const tokens = Array.from({ length: 50 }, () => generateOneTimeToken(kind));
    for (const token of tokens) {
      expect(token).toMatch(shape);
      expect(isOneTimeToken(kind, token)).toBe(true);
      expect(Buffer.from(token.slice(4), 'base64url')).toHaveLength(32);
    }
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it.each([
    ['invitation', `ppw_${'a'.repeat(43)}`, false],
    ['invitation', `ppi_${'a'.repeat(42)}`, false],
    ['invitation', `ppi_${'a'.repeat(44)}`, false],
    ['invitation', `ppi_${'a'.repeat(42)}=`, false],
    ['invitation', `ppi_${'a'.repeat(42)}\n`, false],
    ['invitation', `PPI_${'a'.repeat(43)}`, false],
    ['invitation', `ppi_${'a'.repeat(43)}`, true],
    ['passwordReset', `ppi_${'a'.repeat(43)}`, false],
    ['passwordReset', `ppw_${'-_'.repeat(21)}x`, true],
    ['passwordReset', '', false],
  ] as const)('isOneTimeToken(%s, %j) is %s', (kind, token, expected) => {
    expect(isOneTimeToken(kind, token)).toBe(expected);
  });
});

describe('oneTimeTokenExpiry', () => {
  const now = new Date('2026-11-24T00:00:00.000Z');
  it.each([
    ['invitation', '2026-11-27T00:00:00.000Z'],
    ['passwordReset', '2026-11-24T00:30:00.000Z'],
  ] as const)('%s tokens expire at %s', (kind, at) => {
    expect(oneTimeTokenExpiry(kind, now).toISOString()).toBe(at);
  });
});

describe('invitationStatus', () => {
  const now = new Date('2026-11-24T12:00:00.000Z');
  const later = new Date('2026-11-25T00:00:00.000Z');
  const earlier = new Date('2026-11-24T00:00:00.000Z');
  it.each([
    [{ expiresAt: later }, 'PENDING'],
    [{ expiresAt: now }, 'EXPIRED'],
    [{ expiresAt: earlier }, 'EXPIRED'],
    [{ expiresAt: later, revokedAt: earlier }, 'REVOKED'],
    [{ expiresAt: earlier, revokedAt: earlier }, 'REVOKED'],
    [{ expiresAt: later, acceptedAt: earlier }, 'ACCEPTED'],
    [{ expiresAt: earlier, acceptedAt: earlier }, 'ACCEPTED'],
    [{ expiresAt: later, acceptedAt: null, revokedAt: null }, 'PENDING'],
  ])('%j is %s', (invitation, status) => {
    expect(invitationStatus(invitation, now)).toBe(status);
  });
});

describe('redactOneTimeTokens', () => {
  const invitation = generateOneTimeToken('invitation');
  const reset = generateOneTimeToken('passwordReset');
  it.each([
    [`token:\n${invitation}\nthen`, 'token:\nppi_[redacted]\nthen'],
    [`${reset} and ${invitation}`, 'ppw_[redacted] and ppi_[redacted]'],
    [`{"token":"${invitation}"}`, '{"token":"ppi_[redacted]"}'],
    ['no token here, ppi_ alone or ppi_short', 'no token here, ppi_ alone or ppi_short'],
    // API tokens and refresh tokens are never mailed; they are left to their own rules
    [`ppt_${'a'.repeat(43)}`, `ppt_${'a'.repeat(43)}`],
  ])('%j → %j', (text, redacted) => {
    expect(redactOneTimeTokens(text)).toBe(redacted);
  });

  it('leaves nothing of the tokens in the mails they are written into', () => {
    const expiresAt = new Date('2026-11-27T00:00:00.000Z');
    const mails = [
      invitationMail({ tenantName: 'Acme', role: 'ADMIN', token: invitation, expiresAt }),
      passwordResetMail({ token: reset, expiresAt }),
    ];
    for (const mail of mails) {
      expect(mail.body).toMatch(/pp[iw]_[A-Za-z0-9_-]{43}/);
      expect(redactOneTimeTokens(mail.body)).not.toContain(invitation.slice(4));
      expect(redactOneTimeTokens(mail.body)).not.toContain(reset.slice(4));
      expect(mail.subject).not.toMatch(/pp[iw]_/);
    }
  });
});
