/**
 * A user's TOTP second factor: setup (a pending secret, sealed at rest), enabling it with a valid
 * code (which hands out ten recovery codes once, stored hashed), disabling it and regenerating the
 * recovery codes (each needs a code), and checking a code at sign-in. A TOTP code is accepted
 * once: accepting it moves the user's last accepted time step forward in one conditional update,
 * so the same code (or an older one) is refused afterwards, even by a request racing this one. A
 * recovery code is removed from the stored list by the statement that accepts it.
 */
import { hkdfSync } from 'node:crypto';
import type { Config } from '../config';
import { User } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { AppError, conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import {
  hashRecoveryCode,
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  normalizeRecoveryCode,
  openSecret,
  sealSecret,
  totpUri,
} from '../domain/totp';
import { recordSecurityEvent } from './security-events';

export interface MfaSettings {
  /** the AES-256-GCM key sealing TOTP secrets */
  key: Uint8Array;
  /** the issuer authenticator apps show */
  issuer: string;
}

/**
 * The sealing key: HKDF-SHA256 of TENANT_SECRETS_ENCRYPTION_KEY, or of JWT_SECRET when that is
 * unset (a label of its own keeps the two keys apart even then).
 */
export function mfaSettings(config: Config): MfaSettings {
  const material = config.TENANT_SECRETS_ENCRYPTION_KEY ?? config.JWT_SECRET;
  return {
    key: new Uint8Array(hkdfSync('sha256', material, 'podplane', 'podplane/totp-secret/v1', 32)),
    issuer: config.MFA_ISSUER,
  };
}

/** Where a request came from and in which tenant it acts, for the events it records. */
export interface MfaActor {
  tenantId: string | null;
  ip: string | null;
  userAgent: string | null;
}

/** A second factor as given: a TOTP code or a recovery code. */
export interface SecondFactor {
  totpCode?: string | undefined;
  recoveryCode?: string | undefined;
}

/** What checking a second factor found. */
export type SecondFactorOutcome =
  | { ok: true; via: 'totp' }
  | { ok: true; via: 'recovery_code'; remaining: number }
  | { ok: false; reason: 'wrong_code' | 'code_reused_or_wrong' | 'unreadable_secret' | 'no_code' };

async function userOf(em: EntityManager, userId: string): Promise<User> {
  const user = isId('user', userId) ? await em.findOne(User, { id: userId }, { refresh: true }) : null;
  if (!user) throw notFound('user');
  return user;
}

/**
 * Checks `factor` against the user's enabled MFA and, when it is right, uses it up: the TOTP step
 * is recorded as the last accepted, the recovery code removed. Wrong, reused and unreadable are
 * all "not ok"; the caller decides what a failure costs.
 */
export async function useSecondFactor(
  em: EntityManager,
  settings: MfaSettings,
  user: User,
  factor: SecondFactor,
  now: Date = new Date(),
): Promise<SecondFactorOutcome> {
  if (factor.totpCode !== undefined) {
    const secret = user.mfaSecret ? openSecret(settings.key, user.mfaSecret, user.id) : null;
    if (secret === null) return { ok: false, reason: 'unreadable_secret' };
    const step = matchTotp(secret, factor.totpCode, now.getTime(), user.mfaLastStep ?? null);
    if (step === null) return { ok: false, reason: 'wrong_code' };
    // Moves only forward: of two requests racing with the same code, one wins.
    const taken = await em.nativeUpdate(
      User,
      {
        id: user.id,
        mfaEnabledAt: { $ne: null },
        $or: [{ mfaLastStep: null }, { mfaLastStep: { $lt: step } }],
      },
      { mfaLastStep: step },
    );
    return taken === 1 ? { ok: true, via: 'totp' } : { ok: false, reason: 'code_reused_or_wrong' };
  }
  if (factor.recoveryCode !== undefined) {
    const canonical = normalizeRecoveryCode(factor.recoveryCode);
    if (canonical === null) return { ok: false, reason: 'wrong_code' };
    const hash = hashRecoveryCode(canonical);
    const rows: { remaining: number }[] = await em.getConnection().execute(
      `update "users" set "mfa_recovery_codes" = array_remove("mfa_recovery_codes", ?), "updated_at" = now()
          where "id" = ? and "mfa_enabled_at" is not null and ? = any("mfa_recovery_codes")
          returning cardinality("mfa_recovery_codes") as remaining`,
      [hash, user.id, hash],
      'all',
      em.getTransactionContext(),
    );
    const row = rows[0];
    return row
      ? { ok: true, via: 'recovery_code', remaining: row.remaining }
      : { ok: false, reason: 'wrong_code' };
  }
  return { ok: false, reason: 'no_code' };
}

/** A recovery code was spent: the event says how many are left. */
export async function recordRecoveryCodeUsed(
  em: EntityManager,
  userId: string,
  actor: MfaActor,
  action: string,
  remaining: number,
): Promise<void> {
  await recordSecurityEvent(em, {
    kind: 'MFA_RECOVERY_CODE_USED',
    severity: remaining <= 2 ? 'HIGH' : 'MEDIUM',
    tenantId: actor.tenantId,
    userId,
    ip: actor.ip,
    userAgent: actor.userAgent,
    details: { action, remaining },
  });
}

/** Records a wrong code given to an MFA route and answers 403 (the session stays; nothing changed). */
async function refuseCode(
  em: EntityManager,
  user: User,
  actor: MfaActor,
  action: string,
  outcome: SecondFactorOutcome,
): Promise<never> {
  await recordSecurityEvent(em, {
    kind: 'MFA_FAILED',
    severity: 'MEDIUM',
    tenantId: actor.tenantId,
    userId: user.id,
    ip: actor.ip,
    userAgent: actor.userAgent,
    details: { action, reason: outcome.ok ? 'unknown' : outcome.reason },
  });
  throw new AppError('forbidden', 'the code is wrong, expired or was already used', {
    errors: [{ field: 'code', message: 'is wrong, expired or already used' }],
  });
}

/**
 * Starts (or restarts) TOTP setup: a new secret, stored sealed and pending until `enableTotp`.
 * Refused (409) while MFA is enabled: disable it first.
 */
export async function setupTotp(
  em: EntityManager,
  settings: MfaSettings,
  userId: string,
): Promise<{ secret: string; uri: string }> {
  const user = await userOf(em, userId);
  if (user.mfaEnabledAt) throw conflict('MFA is already enabled; disable it before setting it up again');
  const secret = newTotpSecret();
  const changed = await em.nativeUpdate(
    User,
    { id: user.id, mfaEnabledAt: null },
    { mfaSecret: sealSecret(settings.key, secret, user.id), mfaLastStep: null, mfaRecoveryCodes: [] },
  );
  if (changed === 0) throw conflict('MFA was enabled meanwhile');
  return { secret, uri: totpUri({ secret, issuer: settings.issuer, account: user.email }) };
}

/**
 * Turns MFA on with a code from the pending secret; returns ten recovery codes, shown this once.
 * Refused: 409 when already on or never set up, 403 when the code is wrong.
 */
export async function enableTotp(
  em: EntityManager,
  settings: MfaSettings,
  userId: string,
  code: string,
  actor: MfaActor,
): Promise<{ recoveryCodes: string[] }> {
  const user = await userOf(em, userId);
  if (user.mfaEnabledAt) throw conflict('MFA is already enabled');
  const secret = user.mfaSecret ? openSecret(settings.key, user.mfaSecret, user.id) : null;
  if (secret === null) throw conflict('set up MFA first (POST /api/v1/auth/mfa/totp/setup)');
  const step = matchTotp(secret, code, Date.now(), user.mfaLastStep ?? null);
  if (step === null) return refuseCode(em, user, actor, 'enable', { ok: false, reason: 'wrong_code' });
  const recoveryCodes = newRecoveryCodes();
  await em.transactional(async (tx) => {
    const changed = await tx.nativeUpdate(
      User,
      { id: user.id, mfaEnabledAt: null, mfaSecret: user.mfaSecret },
      {
        mfaEnabledAt: new Date(),
        mfaLastStep: step,
        mfaRecoveryCodes: recoveryCodes.map(hashRecoveryCode),
        updatedAt: new Date(),
      },
    );
    if (changed === 0) throw conflict('MFA was enabled or set up again meanwhile');
    await recordSecurityEvent(tx, {
      kind: 'MFA_ENABLED',
      severity: 'MEDIUM',
      tenantId: actor.tenantId,
      userId: user.id,
      ip: actor.ip,
      userAgent: actor.userAgent,
      details: { method: 'totp', recovery_codes: recoveryCodes.length },
    });
  });
  return { recoveryCodes };
}

async function enabledUser(em: EntityManager, userId: string): Promise<User> {
  const user = await userOf(em, userId);
  if (!user.mfaEnabledAt) throw conflict('MFA is not enabled');
  return user;
}

/** Turns MFA off with a TOTP or recovery code; its secret and recovery codes are erased. */
export async function disableTotp(
  em: EntityManager,
  settings: MfaSettings,
  userId: string,
  factor: SecondFactor,
  actor: MfaActor,
): Promise<void> {
  const user = await enabledUser(em, userId);
  const outcome = await useSecondFactor(em, settings, user, factor);
  if (!outcome.ok) return refuseCode(em, user, actor, 'disable', outcome);
  if (outcome.via === 'recovery_code') {
    await recordRecoveryCodeUsed(em, user.id, actor, 'disable', outcome.remaining);
  }
  await em.transactional(async (tx) => {
    await tx.nativeUpdate(
      User,
      { id: user.id },
      { mfaEnabledAt: null, mfaSecret: null, mfaLastStep: null, mfaRecoveryCodes: [], updatedAt: new Date() },
    );
    await recordSecurityEvent(tx, {
      kind: 'MFA_DISABLED',
      severity: 'HIGH',
      tenantId: actor.tenantId,
      userId: user.id,
      ip: actor.ip,
      userAgent: actor.userAgent,
      details: { confirmed_with: outcome.via },
    });
  });
}

/** Replaces the user's recovery codes with ten new ones (the old ones stop working), with a code. */
export async function regenerateRecoveryCodes(
  em: EntityManager,
  settings: MfaSettings,
  userId: string,
  factor: SecondFactor,
  actor: MfaActor,
): Promise<{ recoveryCodes: string[] }> {
  const user = await enabledUser(em, userId);
  const outcome = await useSecondFactor(em, settings, user, factor);
  if (!outcome.ok) return refuseCode(em, user, actor, 'regenerate_recovery_codes', outcome);
  if (outcome.via === 'recovery_code') {
    await recordRecoveryCodeUsed(em, user.id, actor, 'regenerate_recovery_codes', outcome.remaining);
  }
  const recoveryCodes = newRecoveryCodes();
  await em.transactional(async (tx) => {
    const changed = await tx.nativeUpdate(
      User,
      { id: user.id, mfaEnabledAt: { $ne: null } },
      { mfaRecoveryCodes: recoveryCodes.map(hashRecoveryCode), updatedAt: new Date() },
    );
    if (changed === 0) throw conflict('MFA was disabled meanwhile');
    await recordSecurityEvent(tx, {
      kind: 'MFA_RECOVERY_CODES_REGENERATED',
      severity: 'MEDIUM',
      tenantId: actor.tenantId,
      userId: user.id,
      ip: actor.ip,
      userAgent: actor.userAgent,
      details: { recovery_codes: recoveryCodes.length, confirmed_with: outcome.via },
    });
  });
  return { recoveryCodes };
}
