/**
 * Single-use tokens mailed to a person, pure: an invitation to join a tenant (72 hours) and a
 * password reset (30 minutes). Each is 256 random bits behind a prefix that says what it is; only
 * its SHA-256 is stored (`hashToken`), so the mail is the one place the token exists. Mail bodies
 * shown through the API have these tokens blanked out (`redactOneTimeTokens`).
 */
import { randomBytes } from 'node:crypto';

export const ONE_TIME_TOKEN_KINDS = {
  invitation: { prefix: 'ppi_', ttlMs: 72 * 3_600_000 },
  passwordReset: { prefix: 'ppw_', ttlMs: 30 * 60_000 },
} as const;
export type OneTimeTokenKind = keyof typeof ONE_TIME_TOKEN_KINDS;

/** 32 random bytes in base64url: 43 characters. */
const SECRET_LENGTH = 43;

export function generateOneTimeToken(kind: OneTimeTokenKind): string {
  return `${ONE_TIME_TOKEN_KINDS[kind].prefix}${randomBytes(32).toString('base64url')}`;
}

/** True when `token` has the shape of a token of `kind`; anything else is refused without a lookup. */
export function isOneTimeToken(kind: OneTimeTokenKind, token: string): boolean {
  const { prefix } = ONE_TIME_TOKEN_KINDS[kind];
  return (
    token.startsWith(prefix) &&
    /^[A-Za-z0-9_-]+$/.test(token.slice(prefix.length)) &&
    token.length === prefix.length + SECRET_LENGTH
  );
}

/** When a token of `kind` issued at `now` stops working. */
export function oneTimeTokenExpiry(kind: OneTimeTokenKind, now: Date): Date {
  return new Date(now.getTime() + ONE_TIME_TOKEN_KINDS[kind].ttlMs);
}

/** Every one-time token in a text, whatever its kind. */
const ANY_ONE_TIME_TOKEN = new RegExp(
  `(${Object.values(ONE_TIME_TOKEN_KINDS)
    .map((k) => k.prefix)
    .join('|')})[A-Za-z0-9_-]{${SECRET_LENGTH}}`,
  'g',
);

/**
 * A mail body as the API may show it: each one-time token replaced by its prefix and a mark. The
 * outbox is readable by a tenant's members (and its read tokens); the token is for the recipient.
 */
export function redactOneTimeTokens(text: string): string {
  return text.replace(ANY_ONE_TIME_TOKEN, (_token, prefix: string) => `${prefix}[redacted]`);
}

export const INVITATION_STATUSES = ['PENDING', 'ACCEPTED', 'REVOKED', 'EXPIRED'] as const;
export type InvitationStatus = (typeof INVITATION_STATUSES)[number];

/** Where an invitation stands at `now`: accepted and revoked are final; pending until it expires. */
export function invitationStatus(
  invitation: { acceptedAt?: Date | null; revokedAt?: Date | null; expiresAt: Date },
  now: Date,
): InvitationStatus {
  if (invitation.acceptedAt) return 'ACCEPTED';
  if (invitation.revokedAt) return 'REVOKED';
  return invitation.expiresAt > now ? 'PENDING' : 'EXPIRED';
}

/** The lines of a mail that carry an invitation: what it is for, the token, and how to accept it. */
export function invitationMailText(input: {
  tenantName: string;
  role: string;
  token: string;
  expiresAt: Date;
}): string {
  return (
    `You are invited to join "${input.tenantName}" on Podplane as ${input.role}.\n` +
    `Your invitation token (single use, valid until ${input.expiresAt.toISOString()}):\n` +
    `${input.token}\n` +
    'Accept it with POST /api/v1/auth/invitations/accept and the JSON body ' +
    '{"token": "<the token>", "password": "<your password>"}: choose a password of 12 to 128 ' +
    'characters, or give your current one if you already have a Podplane account with this email. ' +
    'If you did not expect this invitation, ignore this mail.'
  );
}

export function invitationMail(input: { tenantName: string; role: string; token: string; expiresAt: Date }): {
  subject: string;
  body: string;
} {
  return {
    subject: `You are invited to ${input.tenantName} on Podplane`,
    body: invitationMailText(input),
  };
}

export function passwordResetMail(input: { token: string; expiresAt: Date }): {
  subject: string;
  body: string;
} {
  return {
    subject: 'Reset your Podplane password',
    body:
      'Someone, hopefully you, asked to reset the password of your Podplane account.\n' +
      `Your reset token (single use, valid until ${input.expiresAt.toISOString()}):\n` +
      `${input.token}\n` +
      'Set a new password with POST /api/v1/auth/password-reset/confirm and the JSON body ' +
      '{"token": "<the token>", "password": "<a new password of 12 to 128 characters>"}. ' +
      'Every session of yours ends. If you did not ask for this, ignore this mail: your password stays as it is.',
  };
}
