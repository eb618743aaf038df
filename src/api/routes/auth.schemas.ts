/** Request and response schemas for /api/v1/auth: sign-in, refresh, sessions and password. */
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../domain/passwords';
import { TOTP_DIGITS } from '../../domain/totp';
import { z } from '../zod';

/**
 * A password as given at login: no rules beyond a bound on its size (the rules apply when one is
 * set), so an account whose password predates a rule can still sign in. The bound keeps hashing
 * cheap to refuse: four bytes per character of the longest password there can be.
 */
const GivenPassword = z
  .string()
  .min(1)
  .max(PASSWORD_MAX_LENGTH * 4);

/** A code from an authenticator app: six digits (spaces around them are ignored). */
export const TotpCode = z
  .string()
  .trim()
  .regex(new RegExp(`^\\d{${TOTP_DIGITS}}$`), `must be ${TOTP_DIGITS} digits`)
  .openapi({ example: '123456', description: 'the current code of your authenticator app' });

/** A recovery code as handed out (`xxxx-xxxx-xxxx-xxxx`); case, dashes and spaces do not matter. */
export const RecoveryCode = z
  .string()
  .min(1)
  .max(64)
  .openapi({ example: 'abcd-efgh-ijkl-mnop', description: 'one of your recovery codes; each works once' });

/** A new password: its rules (length in characters after NFKC) are checked by the service. */
const NewPassword = z
  .string()
  .max(PASSWORD_MAX_LENGTH * 4)
  .openapi({
    description: `${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters (Unicode, compared after NFKC normalization); no composition rules`,
  });

export const LoginBody = z
  .strictObject({
    email: z.string().trim().toLowerCase().pipe(z.email().max(320)).openapi({ example: 'owner@acme.test' }),
    password: GivenPassword.openapi({ example: 'correct horse battery staple' }),
    tenant_id: z.string().max(40).optional().openapi({
      description:
        'the tenant to act in; needed by members of several tenants. A platform administrator who names none acts for the platform',
    }),
    totp_code: TotpCode.optional().openapi({
      description:
        'needed (or `recovery_code`) when the account has MFA enabled: without either, the answer is 401 `mfa-required`. Each code works once',
    }),
    recovery_code: RecoveryCode.optional().openapi({
      description: 'instead of `totp_code` when the authenticator is lost; each recovery code works once',
    }),
  })
  .refine((body) => body.totp_code === undefined || body.recovery_code === undefined, {
    message: 'send either totp_code or recovery_code, not both',
    path: ['recovery_code'],
  })
  .openapi('Login');

export const RefreshBody = z
  .strictObject({
    refresh_token: z.string().min(1).max(200).openapi({ example: 'ppr_…' }),
  })
  .openapi('Refresh');

export const ChangePasswordBody = z
  .strictObject({
    current_password: GivenPassword,
    new_password: NewPassword,
  })
  .openapi('ChangePassword');

export const SignedInView = z
  .object({
    access_token: z
      .string()
      .openapi({ description: 'a JWT to send as `Authorization: Bearer <access_token>`' }),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int().openapi({ description: 'seconds the access token is valid for' }),
    refresh_token: z.string().openapi({
      description:
        'exchanges for the next access and refresh token once (`POST /api/v1/auth/refresh`); shown once, only its hash is stored. Presenting it a second time ends the session',
    }),
    session_id: z.string(),
    tenant_id: z
      .string()
      .nullable()
      .openapi({ description: 'the tenant the session acts in; null for the platform' }),
    mfa_setup_required: z.literal(true).optional().openapi({
      description:
        'present when the tenant requires MFA and you have not enabled it: this access token only manages your own account (every other route answers 403 `mfa-setup-required`). Set MFA up and enable it, then refresh to get your role’s permissions',
    }),
  })
  .openapi('SignedIn');

export const SessionView = z
  .object({
    id: z.string(),
    current: z.boolean().openapi({ description: 'the session of the access token making this request' }),
    tenant_id: z.string().nullable(),
    created_at: z.string(),
    last_used_at: z.string().nullable(),
    expires_at: z.string(),
    ip: z.string().nullable().openapi({ description: 'where the sign-in came from' }),
    user_agent: z.string().nullable(),
  })
  .openapi('Session');

export const SessionList = z.object({ data: z.array(SessionView) });

export const SessionIdParams = z.object({ id: z.string() });

export const PasswordChanged = z
  .object({
    revoked_sessions: z.number().int().openapi({ description: 'other sessions of yours that were ended' }),
  })
  .openapi('PasswordChanged');
