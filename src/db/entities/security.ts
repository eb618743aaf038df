/** Security events: sign-in failures, lockouts, denials and credential changes, for tenants and the platform to review. */
import { Entity, Enum, Index, ManyToOne, Property } from '@mikro-orm/core';
import { Row } from './base';
import { User } from './identity';
import { Tenant } from './tenancy';

/** What happened; new kinds are added at the end (the column's check lists them). */
export const SECURITY_EVENT_KINDS = [
  'LOGIN_FAILED',
  'LOGIN_LOCKED',
  'PERMISSION_DENIED',
  'TOKEN_CREATED',
  'TOKEN_REVOKED',
  'SESSION_REVOKED',
  'PASSWORD_CHANGED',
  'REFRESH_REUSE_DETECTED',
  'MFA_ENABLED',
  'MFA_DISABLED',
  'MFA_RECOVERY_CODES_REGENERATED',
  'MFA_RECOVERY_CODE_USED',
  'MFA_FAILED',
  'LOGIN_IP_REFUSED',
  'SECURITY_POLICY_CHANGED',
  'SHIELD_BLOCKED',
  'IP_NOT_ALLOWED',
  'INVITATION_CREATED',
  'INVITATION_REVOKED',
  'MEMBER_ADDED',
  'ROLE_CHANGED',
  'MEMBER_REMOVED',
  'PASSWORD_RESET_REQUESTED',
  'PASSWORD_RESET',
  'AUDIT_CHAIN_BROKEN',
] as const;
export type SecurityEventKind = (typeof SECURITY_EVENT_KINDS)[number];

export const SECURITY_SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type SecuritySeverity = (typeof SECURITY_SEVERITIES)[number];

/**
 * One security event. Both the tenant and the user may be unknown (a failed login for an email
 * nobody has, a platform token denied). `details` never holds a secret: no password, no token,
 * no raw unknown email (its hash instead). Not tenant-filtered (the tenant is nullable): every
 * read names the tenant it lists.
 */
@Entity({ tableName: 'security_events' })
@Index({ properties: ['tenant', 'createdAt'] })
@Index({ properties: ['user', 'createdAt'] })
export class SecurityEvent extends Row {
  static override readonly idKind = 'securityEvent' as const;

  @ManyToOne({ entity: () => Tenant, nullable: true, deleteRule: 'cascade' })
  tenant?: Tenant | null;

  @ManyToOne({ entity: () => User, nullable: true, deleteRule: 'set null' })
  user?: User | null;

  @Enum({ items: () => SECURITY_EVENT_KINDS, type: 'string' })
  kind!: SecurityEventKind;

  @Enum({ items: () => SECURITY_SEVERITIES, type: 'string' })
  severity!: SecuritySeverity;

  @Property({ type: 'string', length: 45, nullable: true })
  ip?: string | null;

  @Property({ type: 'string', length: 500, nullable: true })
  userAgent?: string | null;

  @Property({ type: 'json', columnType: 'jsonb' })
  details!: Record<string, unknown>;
}
