/** Request and response schemas for /api/v1/auth/mfa: TOTP setup, enabling, disabling, recovery codes. */
import { RECOVERY_CODE_COUNT, TOTP_DIGITS, TOTP_PERIOD_S } from '../../domain/totp';
import { z } from '../zod';
import { RecoveryCode, TotpCode } from './auth.schemas';

export const TotpSetupView = z
  .object({
    secret: z.string().openapi({
      description: 'the TOTP secret (base32) to type into an authenticator app; shown once, stored encrypted',
      example: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
    }),
    otpauth_uri: z.string().openapi({
      description: 'the same secret as an `otpauth://totp/…` URI, to show as a QR code',
      example:
        'otpauth://totp/Podplane:owner%40acme.test?issuer=Podplane&secret=…&algorithm=SHA1&digits=6&period=30',
    }),
    algorithm: z.literal('SHA1'),
    digits: z.literal(TOTP_DIGITS),
    period: z.literal(TOTP_PERIOD_S),
    status: z.literal('pending').openapi({
      description: 'MFA is not on until `POST /api/v1/auth/mfa/totp/enable` with a code from this secret',
    }),
  })
  .openapi('TotpSetup');

export const EnableTotpBody = z.strictObject({ code: TotpCode }).openapi('EnableTotp');

export const RecoveryCodesView = z
  .object({
    recovery_codes: z.array(z.string()).openapi({
      description: `${RECOVERY_CODE_COUNT} single-use codes that stand in for a TOTP code (sign-in, disabling MFA). Shown this once; only their hashes are stored`,
      example: ['abcd-efgh-ijkl-mnop'],
    }),
  })
  .openapi('RecoveryCodes');

/** A TOTP code or a recovery code, exactly one: what disabling MFA or regenerating the codes needs. */
export const SecondFactorBody = z
  .strictObject({
    code: TotpCode.optional(),
    recovery_code: RecoveryCode.optional(),
  })
  .refine((body) => (body.code === undefined) !== (body.recovery_code === undefined), {
    message: 'send either code (from your authenticator app) or recovery_code',
    path: ['code'],
  })
  .openapi('SecondFactor');
