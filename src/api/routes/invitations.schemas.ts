/** Request and response schemas for invitations: issuing, listing and revoking them, and accepting one. */
import { INVITATION_STATUSES } from '../../domain/one-time-tokens';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../domain/passwords';
import { MEMBERSHIP_ROLES } from '../../domain/permissions';
import { z } from '../zod';
import { SignedInView } from './auth.schemas';

export const InvitationView = z
  .object({
    id: z.string().openapi({ example: 'ivt_01jd0000000000000000000000' }),
    tenant_id: z.string(),
    email: z.string(),
    role: z.enum(MEMBERSHIP_ROLES),
    status: z.enum(INVITATION_STATUSES),
    invited_by: z
      .string()
      .nullable()
      .openapi({ description: 'the user who invited; null for the owner’s invitation made at onboarding' }),
    created_at: z.string(),
    expires_at: z.string(),
    accepted_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
  })
  .openapi('Invitation', {
    description:
      'An invitation as the API shows it: never its token, which only the mail to the invitee holds.',
  });

export type InvitationView = z.infer<typeof InvitationView>;

export const InvitationList = z.object({ data: z.array(InvitationView) });

export const InvitationIdParams = z.object({ id: z.string() });

const Email = z.string().trim().toLowerCase().pipe(z.email().max(320));

export const CreateInvitationBody = z
  .strictObject({
    email: Email.openapi({ example: 'colleague@acme.test' }),
    role: z.enum(MEMBERSHIP_ROLES).openapi({ example: 'ADMIN' }),
  })
  .openapi('CreateInvitation');

export const AcceptInvitationBody = z
  .strictObject({
    token: z
      .string()
      .min(1)
      .max(200)
      .openapi({ description: 'the token from the invitation mail', example: 'ppi_…' }),
    password: z
      .string()
      .min(1)
      .max(PASSWORD_MAX_LENGTH * 4)
      .openapi({
        description:
          `a new account’s password (${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters, no composition rules), ` +
          'or the current password of the existing account with the invited email',
      }),
  })
  .openapi('AcceptInvitation');

export const InvitationAccepted = z
  .object({
    tenant_id: z.string(),
    user_id: z.string(),
    membership_id: z.string(),
    role: z.enum(MEMBERSHIP_ROLES),
    new_user: z.boolean().openapi({ description: 'the account was created by this acceptance' }),
    session: SignedInView.nullable().openapi({
      description:
        'a sign-in to the tenant, as `POST /api/v1/auth/login` gives one; null when the existing account has MFA ' +
        'on: sign in with its code then',
    }),
  })
  .openapi('InvitationAccepted');
