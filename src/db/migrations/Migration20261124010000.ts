import { Migration } from '@mikro-orm/migrations';

/**
 * MFA and tenant security policies: the user's sealed TOTP secret, when MFA was enabled, the last
 * TOTP step accepted and the hashes of unused recovery codes; one security policy per tenant
 * (required MFA, session lifetime, IP allowlist, lockout); the security event kinds for MFA,
 * refused sign-in addresses and policy changes.
 */
export class Migration20261124010000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "users" add column "mfa_secret" text null, add column "mfa_enabled_at" timestamptz null, add column "mfa_last_step" int null, add column "mfa_recovery_codes" text[] not null default '{}';`);

    this.addSql(`create table "tenant_security_policies" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "require_mfa" boolean not null default false, "session_lifetime_s" int null, "ip_allowlist" text[] not null default '{}', "lockout_threshold" int null, "lockout_duration_s" int null, constraint "tenant_security_policies_pkey" primary key ("id"));`);
    this.addSql(`alter table "tenant_security_policies" add constraint "tenant_security_policies_tenant_id_unique" unique ("tenant_id");`);
    this.addSql(`alter table "tenant_security_policies" add constraint "tenant_security_policies_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "security_events" drop constraint if exists "security_events_kind_check";`);
    this.addSql(`alter table "security_events" add constraint "security_events_kind_check" check ("kind" in ('LOGIN_FAILED', 'LOGIN_LOCKED', 'PERMISSION_DENIED', 'TOKEN_CREATED', 'TOKEN_REVOKED', 'SESSION_REVOKED', 'PASSWORD_CHANGED', 'REFRESH_REUSE_DETECTED', 'MFA_ENABLED', 'MFA_DISABLED', 'MFA_RECOVERY_CODES_REGENERATED', 'MFA_RECOVERY_CODE_USED', 'MFA_FAILED', 'LOGIN_IP_REFUSED', 'SECURITY_POLICY_CHANGED'));`);

    // The audit trail (Migration20261124005000): policies are audited like every business table; the
    // last accepted TOTP step moves at every MFA sign-in, like the sign-in bookkeeping it joins.
    // The sealed secret and recovery-code hashes are redacted by name (`secret`, `recovery_code`).
    this.addSql(`select audit_attach('tenant_security_policies');`);
    this.addSql(`select audit_attach('users', array['failed_login_count', 'last_login_at', 'locked_until', 'mfa_last_step']);`);
  }

  override async down(): Promise<void> {
    this.addSql(`select audit_attach('users', array['failed_login_count', 'last_login_at', 'locked_until']);`);
    this.addSql(`delete from "security_events" where "kind" in ('MFA_ENABLED', 'MFA_DISABLED', 'MFA_RECOVERY_CODES_REGENERATED', 'MFA_RECOVERY_CODE_USED', 'MFA_FAILED', 'LOGIN_IP_REFUSED', 'SECURITY_POLICY_CHANGED');`);
    this.addSql(`alter table "security_events" drop constraint if exists "security_events_kind_check";`);
    this.addSql(`alter table "security_events" add constraint "security_events_kind_check" check ("kind" in ('LOGIN_FAILED', 'LOGIN_LOCKED', 'PERMISSION_DENIED', 'TOKEN_CREATED', 'TOKEN_REVOKED', 'SESSION_REVOKED', 'PASSWORD_CHANGED', 'REFRESH_REUSE_DETECTED'));`);
    this.addSql(`drop table if exists "tenant_security_policies" cascade;`);
    this.addSql(`alter table "users" drop column "mfa_secret", drop column "mfa_enabled_at", drop column "mfa_last_step", drop column "mfa_recovery_codes";`);
  }

}
