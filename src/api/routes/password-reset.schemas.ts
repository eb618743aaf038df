/** Request and response schemas for password reset by email. */
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../domain/passwords';
import { z } from '../zod';

export const PasswordResetBody = z
  .strictObject({
    email: z.string().trim().toLowerCase().pipe(z.email().max(320)).openapi({ example: 'owner@acme.test' }),
  })
  .openapi('PasswordResetRequest');

export const PasswordResetAccepted = z
  .object({
    status: z.literal('accepted'),
    detail: z.string(),
  })
  .openapi('PasswordResetAccepted', {
    description: 'the same answer whether the email has an account or not',
  });

export const PasswordResetConfirmBody = z
  .strictObject({
    token: z
      .string()
      .min(1)
      .max(200)
      .openapi({ description: 'the token from the reset mail', example: 'ppw_…' }),
    password: z
      .string()
      .max(PASSWORD_MAX_LENGTH * 4)
      .openapi({
        description: `the new password: ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters, no composition rules`,
      }),
  })
  .openapi('PasswordResetConfirm');

export const PasswordResetDone = z
  .object({
    revoked_sessions: z.number().int().openapi({ description: 'the sessions of yours that were ended' }),
  })
  .openapi('PasswordResetDone');
