/**
 * Password reset by email. Asking for one answers the same whether the email has an account or
 * not, after the same work (a lookup, a token made, one transaction), so the answer tells nothing;
 * for an account, a single-use 30-minute token is mailed through the outbox. Confirming with the
 * token sets the new password (argon2id), uses up every open reset of the user, ends every session
 * of theirs and clears a lockout, in one transaction that first locks the token's row.
 */
import { LockMode, raw } from '@mikro-orm/core';
import { Membership, PasswordResetToken, User } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { hashToken } from '../domain/api-tokens';
import { AppError } from '../domain/errors';
import {
  generateOneTimeToken,
  isOneTimeToken,
  oneTimeTokenExpiry,
  passwordResetMail,
} from '../domain/one-time-tokens';
import { passwordProblem } from '../domain/passwords';
import { endSessionsForNewPassword, normalizeEmail, type AuthSettings, type RequestOrigin } from './auth';
import { recordNotification } from './notifications';
import { hashPassword } from './passwords';
import { emailFingerprint, recordSecurityEvent } from './security-events';

/**
 * Resets of one user open at once, at most: asking again mails nothing more until one is used or
 * expires, so a stranger cannot flood someone's mailbox from many addresses.
 */
export const MAX_OPEN_RESETS = 3;

const IP_MAX = 45;

/** The one answer to a token that is unknown, expired or used: which it is stays untold. */
export const invalidResetToken = () =>
  new AppError('validation_failed', 'the reset token is invalid, expired or already used', {
    errors: [{ field: 'token', message: 'is invalid, expired or already used' }],
  });

/** What asking for a reset came to; only the security event records it, never the answer. */
export type ResetRequestOutcome = 'mailed' | 'unknown_email' | 'no_mailbox' | 'throttled';

/**
 * Mails a reset token to the account with this email, if there is one that can sign in. The mail
 * goes through the outbox of the user's first tenant (the outbox is per tenant); a user with no
 * tenant (a platform administrator only) gets none. Every outcome is recorded as a security event.
 */
export async function requestPasswordReset(
  em: EntityManager,
  input: { email: string },
  origin: RequestOrigin,
): Promise<ResetRequestOutcome> {
  const email = normalizeEmail(input.email);
  const now = new Date();
  // Made whatever the outcome: the work does not depend on whether the account exists.
  const token = generateOneTimeToken('passwordReset');
  const tokenHash = hashToken(token);
  const expiresAt = oneTimeTokenExpiry('passwordReset', now);
  const user = await em.findOne(User, { [raw((alias) => `lower(${alias}.email)`)]: email });
  return em.transactional(async (tx) => {
    const event = {
      kind: 'PASSWORD_RESET_REQUESTED',
      severity: 'LOW',
      ip: origin.ip,
      userAgent: origin.userAgent,
    } as const;
    if (!user || user.disabledAt) {
      await recordSecurityEvent(tx, {
        ...event,
        details: { outcome: 'unknown_email', ...emailFingerprint(email) },
      });
      return 'unknown_email';
    }
    const [membership] = await tx.find(Membership, { user: user.id }, { orderBy: { id: 'asc' }, limit: 1 });
    const open = await tx.count(PasswordResetToken, { user: user.id, usedAt: null, expiresAt: { $gt: now } });
    const outcome: ResetRequestOutcome = !membership
      ? 'no_mailbox'
      : open >= MAX_OPEN_RESETS
        ? 'throttled'
        : 'mailed';
    if (membership && outcome === 'mailed') {
      const reset = tx.create(PasswordResetToken, {
        user: user.id,
        tokenHash,
        expiresAt,
        requestedIp: origin.ip?.slice(0, IP_MAX) ?? null,
      });
      await tx.flush();
      const mail = passwordResetMail({ token, expiresAt });
      await recordNotification(tx, {
        tenantId: membership.tenant.id,
        template: 'account.password_reset',
        recipient: user.email,
        subject: mail.subject,
        body: mail.body,
        dedupeKey: `account.password_reset:${reset.id}`,
      });
    }
    await recordSecurityEvent(tx, {
      ...event,
      tenantId: membership?.tenant.id ?? null,
      userId: user.id,
      details: { outcome, open_resets: open },
    });
    return outcome;
  });
}

/**
 * Sets a new password with a reset token: 400 for a token that is unknown, expired or used (and
 * for a password that breaks the rules, leaving the token usable). Every session of the user ends,
 * every other open reset of theirs is used up, a lockout is cleared. Returns the sessions ended.
 */
export async function confirmPasswordReset(
  em: EntityManager,
  settings: AuthSettings,
  input: { token: string; password: string },
  origin: RequestOrigin,
): Promise<{ userId: string; revokedSessions: number }> {
  if (!isOneTimeToken('passwordReset', input.token)) throw invalidResetToken();
  const tokenHash = hashToken(input.token);
  const found = await em.findOne(PasswordResetToken, { tokenHash }, { populate: ['user'] });
  if (!found || found.usedAt || found.expiresAt <= new Date() || found.user.disabledAt) {
    throw invalidResetToken();
  }
  const problem = passwordProblem(input.password);
  if (problem) {
    throw new AppError('validation_failed', `the password ${problem}`, {
      errors: [{ field: 'password', message: problem }],
    });
  }
  const passwordHash = await hashPassword(input.password, settings.hashParams);
  const userId = found.user.id;
  return em.transactional(async (tx) => {
    // Read again under its lock: a confirmation racing this one has used it by now.
    const reset = await tx.findOne(
      PasswordResetToken,
      { id: found.id },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    const now = new Date();
    if (!reset || reset.usedAt || reset.expiresAt <= now) throw invalidResetToken();
    await tx.nativeUpdate(
      PasswordResetToken,
      { user: userId, usedAt: null },
      { usedAt: now, updatedAt: now },
    );
    await tx.nativeUpdate(
      User,
      { id: userId },
      { passwordHash, passwordChangedAt: now, failedLoginCount: 0, lockedUntil: null, updatedAt: now },
    );
    const families = await endSessionsForNewPassword(tx, userId, now, null);
    await recordSecurityEvent(tx, {
      kind: 'PASSWORD_RESET',
      severity: 'MEDIUM',
      userId,
      ip: origin.ip,
      userAgent: origin.userAgent,
      details: { reset_id: reset.id, revoked_sessions: families.length },
    });
    return { userId, revokedSessions: families.length };
  });
}
