import { Migration } from '@mikro-orm/migrations';

/**
 * Security events (sign-in failures, lockouts, denials, credential changes) and the per-account
 * lockout: failed logins in a row, the lock's end, and the last successful login, on the user.
 */
export class Migration20261123234500 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "security_events" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) null, "user_id" varchar(40) null, "kind" text check ("kind" in ('LOGIN_FAILED', 'LOGIN_LOCKED', 'PERMISSION_DENIED', 'TOKEN_CREATED', 'TOKEN_REVOKED', 'SESSION_REVOKED', 'PASSWORD_CHANGED', 'REFRESH_REUSE_DETECTED')) not null, "severity" text check ("severity" in ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')) not null, "ip" varchar(45) null, "user_agent" varchar(500) null, "details" jsonb not null, constraint "security_events_pkey" primary key ("id"));`);
    this.addSql(`create index "security_events_tenant_id_created_at_index" on "security_events" ("tenant_id", "created_at");`);
    this.addSql(`create index "security_events_user_id_created_at_index" on "security_events" ("user_id", "created_at");`);
    this.addSql(`alter table "security_events" add constraint "security_events_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "security_events" add constraint "security_events_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "users" add column "failed_login_count" int not null default 0, add column "locked_until" timestamptz null, add column "last_login_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "security_events" cascade;`);
    this.addSql(`alter table "users" drop column "failed_login_count", drop column "locked_until", drop column "last_login_at";`);
  }

}
