/** Request and response schemas for /api/v1/security/shield: a tenant's IP rules and what they refused. */
import { SHIELD_EVENT_ACTIONS, SHIELD_EVENT_SOURCES } from '../../db/entities';
import { isId } from '../../domain/ids';
import { MAX_SHIELD_RULES, SHIELD_MODES, SHIELD_RULE_ACTIONS, parseCidr, parseIp } from '../../domain/shield';
import { z } from '../zod';
import { PaginationQuery, idCursor } from './common.schemas';

/** Control characters never belong in a note. */
const CONTROL_CHARACTER = /\p{Cc}/u;

export const ShieldRuleBody = z.strictObject({
  action: z.enum(SHIELD_RULE_ACTIONS),
  cidr: z
    .string()
    .max(100)
    .refine((cidr) => parseCidr(cidr) !== null, 'is not an IPv4 or IPv6 address or CIDR')
    .openapi({
      description:
        'an IPv4 or IPv6 CIDR, or a single address; stored normalised (host bits cleared, IPv6 in ' +
        'RFC 5952 form, an IPv4-mapped IPv6 network as IPv4)',
      example: '203.0.113.0/24',
    }),
  note: z
    .string()
    .trim()
    .max(200)
    .refine((note) => !CONTROL_CHARACTER.test(note), 'must not contain control characters')
    .nullable()
    .optional(),
});

export const PutShieldBody = z
  .strictObject({
    mode: z.enum(SHIELD_MODES).openapi({
      description:
        'OFF: rules kept, nothing checked; MONITOR: refusals recorded as WOULD_BLOCK, requests go on; ' +
        'ENFORCE: refused requests answer 403 `ip-blocked` and are recorded as BLOCKED',
    }),
    rules: z
      .array(ShieldRuleBody)
      .max(MAX_SHIELD_RULES)
      .openapi({
        description:
          'the whole list, in evaluation order: the first rule holding the address decides; when any ALLOW ' +
          'rule exists, an address no rule holds is refused',
      }),
  })
  .openapi('ShieldPolicyInput');

export const ShieldRuleView = z
  .object({
    id: z.string().openapi({ example: 'shr_01jd0000000000000000000000' }),
    position: z.number().int(),
    action: z.enum(SHIELD_RULE_ACTIONS),
    cidr: z.string(),
    note: z.string().nullable(),
    created_by: z.string().openapi({ description: 'the user or token that added the rule' }),
    created_at: z.string(),
  })
  .openapi('ShieldRule');

export const ShieldPolicyView = z
  .object({
    tenant_id: z.string(),
    mode: z.enum(SHIELD_MODES),
    rules: z.array(ShieldRuleView),
    updated_at: z.string().nullable().openapi({ description: 'null: never set (OFF, no rules)' }),
    updated_by: z.string().nullable(),
  })
  .openapi('ShieldPolicy');

export type ShieldPolicyView = z.infer<typeof ShieldPolicyView>;

export const ShieldEventView = z
  .object({
    id: z.string().openapi({ example: 'she_01jd0000000000000000000000' }),
    tenant_id: z.string(),
    ip: z.string(),
    source: z.enum(SHIELD_EVENT_SOURCES).openapi({
      description: 'SHIELD: the shield rules; ALLOWLIST: the security policy’s IP allowlist',
    }),
    mode: z.enum(SHIELD_MODES),
    action: z.enum(SHIELD_EVENT_ACTIONS),
    rule_id: z
      .string()
      .nullable()
      .openapi({ description: 'null: no rule matched (outside every ALLOW rule)' }),
    rule_action: z.enum(SHIELD_RULE_ACTIONS).nullable(),
    rule_cidr: z.string().nullable(),
    method: z.string(),
    path: z.string().openapi({ description: 'without the query string' }),
    actor_id: z.string().openapi({ description: 'the user or token that made the first request' }),
    request_id: z.string().openapi({ description: 'the first request of the minute' }),
    window_start: z.string().openapi({ description: 'the minute this row counts' }),
    hits: z.number().int().openapi({ description: 'refused requests of that minute' }),
    created_at: z.string().openapi({ description: 'the first refusal of the minute' }),
    last_at: z.string().openapi({ description: 'the latest refusal of the minute' }),
  })
  .openapi('ShieldEvent');

export const ShieldEventList = z.object({
  data: z.array(ShieldEventView),
  next_cursor: z.string().nullable(),
});

export const ListShieldEventsQuery = PaginationQuery.extend({
  cursor: idCursor('shieldEvent'),
  ip: z
    .string()
    .max(100)
    .transform((ip, ctx) => {
      const parsed = parseIp(ip);
      if (!parsed) {
        ctx.addIssue({ code: 'custom', message: 'is not an IPv4 or IPv6 address' });
        return z.NEVER;
      }
      return parsed.address;
    })
    .optional()
    .openapi({ description: 'one client address (IPv4 or IPv6, any spelling)' }),
  action: z.enum(SHIELD_EVENT_ACTIONS).optional(),
  tenant_id: z
    .string()
    .max(40)
    .refine((id) => isId('tenant', id), 'is not a tenant id')
    .optional()
    .openapi({ description: 'platform administrators only: one tenant’s events' }),
});
