/**
 * Time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) and recovery
 * codes, as pure functions: a code is matched to the time step it belongs to, so the caller can
 * remember the last step accepted and refuse any code whose step is not after it (a code works
 * once, even inside its own window). TOTP secrets are sealed (AES-256-GCM, bound to their user)
 * before they are stored; recovery codes are stored as SHA-256 hashes only (80 random bits each,
 * so a hash cannot be reversed by guessing).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { HOTP, Secret, TOTP } from 'otpauth';

export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;
const TOTP_ALGORITHM = 'SHA1';
/** steps either side of the current one that are accepted, for clocks that drift: ±1 (RFC 6238 §5.2) */
export const TOTP_DRIFT_STEPS = 1;
/** 160 bits, the HMAC-SHA1 block the RFC recommends */
const SECRET_BYTES = 20;

export const RECOVERY_CODE_COUNT = 10;
/** 80 bits: sixteen base32 characters */
const RECOVERY_CODE_BYTES = 10;
const RECOVERY_CODE_SHAPE = /^[a-z2-7]{16}$/;

/** A new TOTP secret, base32 as authenticator apps take it. */
export function newTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

/** The `otpauth://totp/…` URI an authenticator app scans (as a QR code) or takes by hand. */
export function totpUri(input: { secret: string; issuer: string; account: string }): string {
  return new TOTP({
    issuer: input.issuer,
    label: input.account,
    secret: Secret.fromBase32(input.secret),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_S,
  }).toString();
}

/** The RFC 6238 time step of an instant. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_S);
}

/** The code of one time step (what an authenticator app shows during it). */
export function totpCodeAt(secret: string, step: number): string {
  return HOTP.generate({
    secret: Secret.fromBase32(secret),
    counter: step,
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
  });
}

/**
 * The time step `code` belongs to, within ±TOTP_DRIFT_STEPS of `nowMs` and strictly after
 * `lastStep` (the last one accepted for this secret); null when there is none: a wrong code, one
 * too old or too new, or one already used (or older than one used).
 */
export function matchTotp(
  secret: string,
  code: string,
  nowMs: number,
  lastStep: number | null,
): number | null {
  if (!new RegExp(`^\\d{${TOTP_DIGITS}}$`).test(code)) return null;
  const current = totpStep(nowMs);
  const given = Buffer.from(code);
  let matched: number | null = null;
  // Every candidate is computed and compared, matched or not: the time taken says nothing.
  for (let step = current - TOTP_DRIFT_STEPS; step <= current + TOTP_DRIFT_STEPS; step += 1) {
    const same = timingSafeEqual(Buffer.from(totpCodeAt(secret, step)), given);
    if (same && matched === null && (lastStep === null || step > lastStep)) matched = step;
  }
  return matched;
}

/** Ten new recovery codes, shown once as `xxxx-xxxx-xxxx-xxxx`. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    const raw = new Secret({ size: RECOVERY_CODE_BYTES }).base32.toLowerCase();
    return raw.match(/.{4}/g)?.join('-') ?? raw;
  });
}

/** A recovery code as typed (any case, with or without dashes and spaces) → its canonical form; null when it cannot be one. */
export function normalizeRecoveryCode(input: string): string | null {
  const code = input.replace(/[\s-]/g, '').toLowerCase();
  return RECOVERY_CODE_SHAPE.test(code) ? code : null;
}

/** What is stored of a recovery code: hex SHA-256 of its canonical form. */
export function hashRecoveryCode(code: string): string {
  const canonical = normalizeRecoveryCode(code);
  if (canonical === null) throw new Error('not a recovery code');
  return createHash('sha256').update(canonical).digest('hex');
}

const SEAL_VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A TOTP secret sealed for storage: AES-256-GCM under `key` (32 bytes), authenticated together
 * with `owner` (the user id), so a sealed secret copied onto another user's row does not open.
 * `v1.<iv>.<ciphertext+tag>`, base64url.
 */
export function sealSecret(key: Uint8Array, plaintext: string, owner: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(owner));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${SEAL_VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`;
}

/** The secret `sealSecret` sealed, or null when it does not open (another key, another owner, altered). */
export function openSecret(key: Uint8Array, sealed: string, owner: string): string | null {
  const [version, ivText, bodyText] = sealed.split('.');
  if (version !== SEAL_VERSION || !ivText || !bodyText) return null;
  const iv = Buffer.from(ivText, 'base64url');
  const body = Buffer.from(bodyText, 'base64url');
  if (iv.length !== IV_BYTES || body.length <= TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(owner));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    return null;
  }
}
