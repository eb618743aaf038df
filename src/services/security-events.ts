/**
 * Recording security events: the one way they are written, inside the caller's transaction when
 * there is one, so an event stands or falls with the change it records. What goes in `details`
 * is the caller's choice and must never be a secret.
 */
import { createHash } from 'node:crypto';
import { SecurityEvent, type SecurityEventKind, type SecuritySeverity } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { newId } from '../domain/ids';

const IP_MAX = 45;
const USER_AGENT_MAX = 500;

export interface SecurityEventInput {
  kind: SecurityEventKind;
  severity: SecuritySeverity;
  tenantId?: string | null | undefined;
  userId?: string | null | undefined;
  ip?: string | null | undefined;
  userAgent?: string | null | undefined;
  details?: Record<string, unknown>;
}

/** Inserts the event at once, as a plain row: nothing else the caller holds is flushed with it. */
export async function recordSecurityEvent(em: EntityManager, input: SecurityEventInput): Promise<void> {
  await em.insert(SecurityEvent, {
    id: newId('securityEvent'),
    tenant: input.tenantId ?? null,
    user: input.userId ?? null,
    kind: input.kind,
    severity: input.severity,
    ip: input.ip?.slice(0, IP_MAX) ?? null,
    userAgent: input.userAgent?.slice(0, USER_AGENT_MAX) ?? null,
    details: input.details ?? {},
  });
}

/**
 * An email nobody has, as an event may show it: a short hash (the same address always gives the
 * same one, so repeated guesses group) and its domain, never the address itself.
 */
export function emailFingerprint(normalizedEmail: string): { email_sha256: string; email_domain: string } {
  const at = normalizedEmail.lastIndexOf('@');
  return {
    email_sha256: createHash('sha256').update(normalizedEmail).digest('hex').slice(0, 16),
    email_domain: at >= 0 ? normalizedEmail.slice(at + 1, at + 1 + 100) : '',
  };
}
