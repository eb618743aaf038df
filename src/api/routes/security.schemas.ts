/** Request and response schemas for /api/v1/security: security events and a user's own security profile. */
import { MEMBERSHIP_ROLES } from '../../domain/permissions';
import { SECURITY_EVENT_KINDS, SECURITY_SEVERITIES } from '../../db/entities';
import { isId } from '../../domain/ids';
import { z } from '../zod';
import { PaginationQuery, idCursor } from './common.schemas';

export const SecurityEventView = z
  .object({
    id: z.string().openapi({ example: 'sev_01jd0000000000000000000000' }),
    tenant_id: z
      .string()
      .nullable()
      .openapi({ description: 'null: not tied to a tenant (an unknown email)' }),
    user_id: z.string().nullable(),
    kind: z.enum(SECURITY_EVENT_KINDS),
    severity: z.enum(SECURITY_SEVERITIES),
    ip: z.string().nullable(),
    user_agent: z.string().nullable(),
    details: z
      .record(z.string(), z.unknown())
      .openapi({ description: 'what the event concerns; never a password, token or unknown email in clear' }),
    created_at: z.string(),
  })
  .openapi('SecurityEvent');

export type SecurityEventView = z.infer<typeof SecurityEventView>;

export const SecurityEventList = z.object({
  data: z.array(SecurityEventView),
  next_cursor: z.string().nullable(),
});

export const ListSecurityEventsQuery = PaginationQuery.extend({
  cursor: idCursor('securityEvent'),
  kind: z.enum(SECURITY_EVENT_KINDS).optional(),
  severity: z.enum(SECURITY_SEVERITIES).optional(),
  tenant_id: z
    .string()
    .max(40)
    .refine((id) => isId('tenant', id), 'is not a tenant id')
    .optional()
    .openapi({ description: 'platform administrators only: one tenant’s events' }),
});

export const SecurityProfile = z
  .object({
    user_id: z.string(),
    email: z.string(),
    memberships: z.array(
      z.object({ tenant_id: z.string(), tenant_name: z.string(), role: z.enum(MEMBERSHIP_ROLES) }),
    ),
    platform_admin: z.boolean(),
    active_sessions: z.number().int(),
    mfa_enabled: z
      .boolean()
      .openapi({ description: 'TOTP is enabled: every sign-in needs a code (setup alone does not count)' }),
    last_login_at: z.string().nullable(),
    password_changed_at: z.string(),
    recent_events: z
      .array(SecurityEventView)
      .openapi({ description: 'your own latest 20 events, newest first' }),
  })
  .openapi('SecurityProfile');
