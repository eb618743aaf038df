import { Migration } from '@mikro-orm/migrations';

/**
 * A broken audit chain is a security event (the weekly `audit-verify` raises it, CRITICAL); and the
 * identity and security tables made since the audit trail are audited too (shield_events, counters
 * of blocks, and password_reset_tokens, single-use secrets, are bookkeeping: not audited).
 */
export class Migration20261124024500 extends Migration {
  override async up(): Promise<void> {
    for (const table of AUDITED) this.addSql(`select audit_attach('${table}');`);
    this.addSql(`alter table "security_events" drop constraint if exists "security_events_kind_check";`);
    this.addSql(`alter table "security_events" add constraint "security_events_kind_check" check ("kind" in ('LOGIN_FAILED', 'LOGIN_LOCKED', 'PERMISSION_DENIED', 'TOKEN_CREATED', 'TOKEN_REVOKED', 'SESSION_REVOKED', 'PASSWORD_CHANGED', 'REFRESH_REUSE_DETECTED', 'MFA_ENABLED', 'MFA_DISABLED', 'MFA_RECOVERY_CODES_REGENERATED', 'MFA_RECOVERY_CODE_USED', 'MFA_FAILED', 'LOGIN_IP_REFUSED', 'SECURITY_POLICY_CHANGED', 'SHIELD_BLOCKED', 'IP_NOT_ALLOWED', 'INVITATION_CREATED', 'INVITATION_REVOKED', 'MEMBER_ADDED', 'ROLE_CHANGED', 'MEMBER_REMOVED', 'PASSWORD_RESET_REQUESTED', 'PASSWORD_RESET', 'AUDIT_CHAIN_BROKEN'));`);
  }

  override async down(): Promise<void> {
    for (const table of AUDITED) this.addSql(`drop trigger if exists audit_row on "${table}";`);
    this.addSql(`delete from "security_events" where "kind" = 'AUDIT_CHAIN_BROKEN';`);
    this.addSql(`alter table "security_events" drop constraint if exists "security_events_kind_check";`);
    this.addSql(`alter table "security_events" add constraint "security_events_kind_check" check ("kind" in ('LOGIN_FAILED', 'LOGIN_LOCKED', 'PERMISSION_DENIED', 'TOKEN_CREATED', 'TOKEN_REVOKED', 'SESSION_REVOKED', 'PASSWORD_CHANGED', 'REFRESH_REUSE_DETECTED', 'MFA_ENABLED', 'MFA_DISABLED', 'MFA_RECOVERY_CODES_REGENERATED', 'MFA_RECOVERY_CODE_USED', 'MFA_FAILED', 'LOGIN_IP_REFUSED', 'SECURITY_POLICY_CHANGED', 'SHIELD_BLOCKED', 'IP_NOT_ALLOWED', 'INVITATION_CREATED', 'INVITATION_REVOKED', 'MEMBER_ADDED', 'ROLE_CHANGED', 'MEMBER_REMOVED', 'PASSWORD_RESET_REQUESTED', 'PASSWORD_RESET'));`);
  }
}

const AUDITED = ['tenant_security_policies', 'shield_policies', 'shield_rules', 'invitations'];
