import { Migration } from '@mikro-orm/migrations';

/**
 * Invitations to join a tenant with a role (the owner's at onboarding, members invited by an
 * OWNER or ADMIN) and password resets: single-use tokens stored as SHA-256 hashes only; the
 * security event kinds for invitations, member changes and password resets (and the shield's,
 * SHIELD_BLOCKED and IP_NOT_ALLOWED, whose tables Migration20261124013000 makes).
 */
export class Migration20261124011000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "invitations" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "email" varchar(320) not null, "role" text check ("role" in ('OWNER', 'ADMIN', 'BILLING', 'SUPPORT', 'READONLY')) not null, "token_hash" varchar(64) not null, "invited_by_id" varchar(40) null, "expires_at" timestamptz not null, "accepted_at" timestamptz null, "accepted_by_id" varchar(40) null, "revoked_at" timestamptz null, constraint "invitations_pkey" primary key ("id"));`);
    this.addSql(`alter table "invitations" add constraint "invitations_token_hash_unique" unique ("token_hash");`);
    this.addSql(`create index "invitations_tenant_id_email_index" on "invitations" ("tenant_id", "email");`);
    this.addSql(`alter table "invitations" add constraint "invitations_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "invitations" add constraint "invitations_invited_by_id_foreign" foreign key ("invited_by_id") references "users" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "invitations" add constraint "invitations_accepted_by_id_foreign" foreign key ("accepted_by_id") references "users" ("id") on update cascade on delete set null;`);

    this.addSql(`create table "password_reset_tokens" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "user_id" varchar(40) not null, "token_hash" varchar(64) not null, "expires_at" timestamptz not null, "used_at" timestamptz null, "requested_ip" varchar(45) null, constraint "password_reset_tokens_pkey" primary key ("id"));`);
    this.addSql(`alter table "password_reset_tokens" add constraint "password_reset_tokens_token_hash_unique" unique ("token_hash");`);
    this.addSql(`create index "password_reset_tokens_user_id_used_at_index" on "password_reset_tokens" ("user_id", "used_at");`);
    this.addSql(`alter table "password_reset_tokens" add constraint "password_reset_tokens_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "security_events" drop constraint if exists "security_events_kind_check";`);
    this.addSql(`alter table "security_events" add constraint "security_events_kind_check" check ("kind" in ('LOGIN_FAILED', 'LOGIN_LOCKED', 'PERMISSION_DENIED', 'TOKEN_CREATED', 'TOKEN_REVOKED', 'SESSION_REVOKED', 'PASSWORD_CHANGED', 'REFRESH_REUSE_DETECTED', 'MFA_ENABLED', 'MFA_DISABLED', 'MFA_RECOVERY_CODES_REGENERATED', 'MFA_RECOVERY_CODE_USED', 'MFA_FAILED', 'LOGIN_IP_REFUSED', 'SECURITY_POLICY_CHANGED', 'SHIELD_BLOCKED', 'IP_NOT_ALLOWED', 'INVITATION_CREATED', 'INVITATION_REVOKED', 'MEMBER_ADDED', 'ROLE_CHANGED', 'MEMBER_REMOVED', 'PASSWORD_RESET_REQUESTED', 'PASSWORD_RESET'));`);
  }

  override async down(): Promise<void> {
    this.addSql(`delete from "security_events" where "kind" in ('SHIELD_BLOCKED', 'IP_NOT_ALLOWED', 'INVITATION_CREATED', 'INVITATION_REVOKED', 'MEMBER_ADDED', 'ROLE_CHANGED', 'MEMBER_REMOVED', 'PASSWORD_RESET_REQUESTED', 'PASSWORD_RESET');`);
    this.addSql(`alter table "security_events" drop constraint if exists "security_events_kind_check";`);
    this.addSql(`alter table "security_events" add constraint "security_events_kind_check" check ("kind" in ('LOGIN_FAILED', 'LOGIN_LOCKED', 'PERMISSION_DENIED', 'TOKEN_CREATED', 'TOKEN_REVOKED', 'SESSION_REVOKED', 'PASSWORD_CHANGED', 'REFRESH_REUSE_DETECTED', 'MFA_ENABLED', 'MFA_DISABLED', 'MFA_RECOVERY_CODES_REGENERATED', 'MFA_RECOVERY_CODE_USED', 'MFA_FAILED', 'LOGIN_IP_REFUSED', 'SECURITY_POLICY_CHANGED'));`);
    this.addSql(`drop table if exists "password_reset_tokens" cascade;`);
    this.addSql(`drop table if exists "invitations" cascade;`);
  }

}
