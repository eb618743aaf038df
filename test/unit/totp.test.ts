/** TOTP codes (RFC 6238 vectors, drift, replay), recovery codes and sealed secrets. */
import { randomBytes } from 'node:crypto';
import { Secret, TOTP, URI } from 'otpauth';
import {
  RECOVERY_CODE_COUNT,
  hashRecoveryCode,
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  normalizeRecoveryCode,
  openSecret,
  sealSecret,
  totpCodeAt,
  totpStep,
  totpUri,
} from '../../src/domain/totp';

/** RFC 6238 appendix B: the SHA-1 seed `12345678901234567890`, in base32. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('TOTP codes', () => {
  it.each([
    // [unix seconds, the RFC's 8-digit code] — a 6-digit code is its last six digits
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
  ])('at %i s the code is the RFC 6238 vector %s (last six digits)', (seconds, rfc) => {
    const code = totpCodeAt(RFC_SECRET, totpStep(seconds * 1000));
    expect(code).toBe(rfc.slice(-6));
    expect(matchTotp(RFC_SECRET, code, seconds * 1000, null)).toBe(totpStep(seconds * 1000));
  });

  const secret = newTotpSecret();
  const now = Date.UTC(2026, 10, 24, 1, 0, 15);
  const step = totpStep(now);
  /** what an authenticator app (otpauth's own TOTP) shows `offset` steps from now */
  const appCode = (offset: number) =>
    new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: now + offset * 30_000 });

  it.each([
    ['the current step', 0, step],
    ['one step behind (a slow clock)', -1, step - 1],
    ['one step ahead (a fast clock)', 1, step + 1],
    ['two steps behind', -2, null],
    ['two steps ahead', 2, null],
  ])('a code of %s matches %p', (_what, offset, expected) => {
    expect(matchTotp(secret, appCode(offset), now, null)).toBe(expected);
  });

  it.each([
    ['never used', null, step],
    ['an earlier step was used', step - 1, step],
    ['this very step was used (replay)', step, null],
    ['a later step was used', step + 1, null],
  ])('the current code when %s → %p', (_what, lastStep, expected) => {
    expect(matchTotp(secret, appCode(0), now, lastStep)).toBe(expected);
  });

  it('a code one step behind is refused once the current one was accepted (no going back)', () => {
    const accepted = matchTotp(secret, appCode(0), now, null);
    expect(accepted).toBe(step);
    expect(matchTotp(secret, appCode(-1), now, accepted)).toBeNull();
  });

  it.each([[''], ['12345'], ['1234567'], ['abcdef'], [' 123456'], ['12345６']])(
    'refuses the malformed code %p',
    (code) => {
      expect(matchTotp(secret, code, now, null)).toBeNull();
    },
  );

  it('refuses a code of another secret', () => {
    // two fixed secrets whose codes differ at every step around `now`
    const at = 1234567890_000;
    const code = totpCodeAt(RFC_SECRET, totpStep(at));
    expect(matchTotp(RFC_SECRET, code, at, null)).toBe(totpStep(at));
    expect(matchTotp('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', code, at, null)).toBeNull();
  });

  it('new secrets are 160-bit base32', () => {
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(Secret.fromBase32(secret).bytes).toHaveLength(20);
  });

  it('the otpauth URI names the issuer and account and carries the secret and parameters', () => {
    const uri = totpUri({ secret, issuer: 'Podplane', account: 'owner@acme.test' });
    expect(uri).toMatch(/^otpauth:\/\/totp\//);
    const parsed = URI.parse(uri) as TOTP;
    expect(parsed).toBeInstanceOf(TOTP);
    expect(parsed.issuer).toBe('Podplane');
    expect(parsed.label).toBe('owner@acme.test');
    expect(parsed.secret.base32).toBe(secret);
    expect([parsed.algorithm, parsed.digits, parsed.period]).toEqual(['SHA1', 6, 30]);
  });
});

describe('recovery codes', () => {
  const codes = newRecoveryCodes();

  it('are ten distinct 80-bit codes shaped xxxx-xxxx-xxxx-xxxx', () => {
    expect(codes).toHaveLength(RECOVERY_CODE_COUNT);
    expect(new Set(codes).size).toBe(RECOVERY_CODE_COUNT);
    for (const code of codes) expect(code).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
  });

  it.each([
    ['as handed out', (c: string) => c, true],
    ['in upper case', (c: string) => c.toUpperCase(), true],
    ['without dashes', (c: string) => c.replace(/-/g, ''), true],
    ['with spaces', (c: string) => c.replace(/-/g, ' '), true],
    ['one character short', (c: string) => c.slice(0, -1), false],
    ['with a character outside base32', (c: string) => `${c.slice(0, -1)}1`, false],
  ])('typed %s: %p', (_what, typed, accepted) => {
    const code = codes[0] as string;
    const normalized = normalizeRecoveryCode(typed(code));
    if (accepted) {
      expect(normalized).toBe(code.replace(/-/g, ''));
      expect(hashRecoveryCode(typed(code))).toBe(hashRecoveryCode(code));
    } else {
      expect(normalized).toBeNull();
    }
  });

  it('are stored as a SHA-256 hash that does not contain the code', () => {
    const code = codes[1] as string;
    const hash = hashRecoveryCode(code);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(code.replace(/-/g, ''));
    expect(hashRecoveryCode(codes[2] as string)).not.toBe(hash);
  });
});

describe('sealed TOTP secrets', () => {
  const key = randomBytes(32);
  const secret = newTotpSecret();

  it('open with the key and owner they were sealed for, and never show the secret', () => {
    const sealed = sealSecret(key, secret, 'usr_a');
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain(secret);
    expect(openSecret(key, sealed, 'usr_a')).toBe(secret);
    // a fresh IV every time
    expect(sealSecret(key, secret, 'usr_a')).not.toBe(sealed);
  });

  it.each([
    ['another key', (s: string) => ({ key: randomBytes(32), sealed: s, owner: 'usr_a' })],
    ['another owner (copied onto another user)', (s: string) => ({ key, sealed: s, owner: 'usr_b' })],
    [
      'an altered ciphertext',
      (s: string) => {
        const [v, iv, body] = s.split('.') as [string, string, string];
        const bytes = Buffer.from(body, 'base64url');
        bytes[0] = (bytes[0] as number) ^ 1;
        return { key, sealed: `${v}.${iv}.${bytes.toString('base64url')}`, owner: 'usr_a' };
      },
    ],
    ['another version', (s: string) => ({ key, sealed: s.replace(/^v1/, 'v2'), owner: 'usr_a' })],
    ['garbage', () => ({ key, sealed: 'not sealed', owner: 'usr_a' })],
  ])('do not open with %s', (_what, tamper) => {
    const t = tamper(sealSecret(key, secret, 'usr_a'));
    expect(openSecret(t.key, t.sealed, t.owner)).toBeNull();
  });
});
