/** Request and response schemas for /api/v1/security/policy: a tenant's security policy. */
import { POLICY_LIMITS } from '../../domain/security-policy';
import { z } from '../zod';

const { sessionLifetimeS, lockoutThreshold, lockoutDurationS, allowlistEntries } = POLICY_LIMITS;

export const SecurityPolicyBody = z
  .strictObject({
    require_mfa: z.boolean().default(false).openapi({
      description:
        'every member must enable MFA: until they do, a sign-in only lets them set it up (other routes answer 403 `mfa-setup-required`)',
    }),
    session_lifetime_s: z
      .number()
      .int()
      .nullable()
      .default(null)
      .openapi({
        description: `how long a sign-in into the tenant lasts, ${sessionLifetimeS.min} to ${sessionLifetimeS.max} seconds, never more than the platform’s SESSION_TTL_S; null: the platform’s. Shortening it shortens the sessions already open`,
        example: 28_800,
      }),
    ip_allowlist: z
      .array(z.string().trim().max(50))
      .max(allowlistEntries)
      .default([])
      .openapi({
        description: `addresses or CIDRs (IPv4, IPv6) members may sign in and call from, at most ${allowlistEntries}; empty: any address. Must admit the address you send this from`,
        example: ['203.0.113.0/24', '2001:db8::/32'],
      }),
    lockout_threshold: z
      .number()
      .int()
      .nullable()
      .default(null)
      .openapi({
        description: `wrong sign-ins in a row (${lockoutThreshold.min} to ${lockoutThreshold.max}) that lock a member's account; null: the platform’s LOGIN_LOCKOUT_THRESHOLD. A member of several tenants gets the lowest`,
      }),
    lockout_duration_s: z
      .number()
      .int()
      .nullable()
      .default(null)
      .openapi({
        description: `how long such a lock lasts, ${lockoutDurationS.min} to ${lockoutDurationS.max} seconds; null: the platform’s LOGIN_LOCKOUT_MS. A member of several tenants gets the longest`,
      }),
  })
  .openapi('SecurityPolicyInput');

export const SecurityPolicyView = z
  .object({
    tenant_id: z.string(),
    require_mfa: z.boolean(),
    session_lifetime_s: z.number().int().nullable(),
    effective_session_lifetime_s: z
      .number()
      .int()
      .openapi({ description: 'what a new sign-in lasts: the policy’s lifetime capped by SESSION_TTL_S' }),
    ip_allowlist: z.array(z.string()),
    lockout_threshold: z.number().int().nullable(),
    lockout_duration_s: z.number().int().nullable(),
    updated_at: z.string().nullable().openapi({ description: 'null: never set; these are the defaults' }),
  })
  .openapi('SecurityPolicy');
