import { Migration } from '@mikro-orm/migrations';

/** Identity: users (emails unique however spelled), their memberships of tenants, and their sign-in sessions. */
export class Migration20261123221000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "users" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "email" varchar(320) not null, "password_hash" varchar(255) not null, "password_changed_at" timestamptz not null, "platform_admin" boolean not null default false, "disabled_at" timestamptz null, constraint "users_pkey" primary key ("id"));`);
    this.addSql(`create unique index "users_email_lower_unique" on "users" (lower("email"));`);

    this.addSql(`create table "memberships" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "user_id" varchar(40) not null, "tenant_id" varchar(40) not null, "role" text check ("role" in ('OWNER', 'ADMIN', 'BILLING', 'SUPPORT', 'READONLY')) not null, constraint "memberships_pkey" primary key ("id"));`);
    this.addSql(`create index "memberships_tenant_id_index" on "memberships" ("tenant_id");`);
    this.addSql(`alter table "memberships" add constraint "memberships_user_id_tenant_id_unique" unique ("user_id", "tenant_id");`);

    this.addSql(`create table "sessions" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "user_id" varchar(40) not null, "tenant_id" varchar(40) null, "family_id" varchar(40) not null, "parent_id" varchar(40) null, "refresh_token_hash" varchar(64) not null, "rotated_at" timestamptz null, "revoked_at" timestamptz null, "revoke_reason" text check ("revoke_reason" in ('LOGOUT', 'REVOKED', 'PASSWORD_CHANGED', 'REFRESH_TOKEN_REUSED')) null, "expires_at" timestamptz not null, "created_ip" varchar(45) null, "created_user_agent" varchar(500) null, "last_used_at" timestamptz null, constraint "sessions_pkey" primary key ("id"));`);
    this.addSql(`create index "sessions_family_id_index" on "sessions" ("family_id");`);
    this.addSql(`alter table "sessions" add constraint "sessions_refresh_token_hash_unique" unique ("refresh_token_hash");`);
    this.addSql(`create index "sessions_expires_at_index" on "sessions" ("expires_at");`);
    this.addSql(`create index "sessions_user_id_revoked_at_index" on "sessions" ("user_id", "revoked_at");`);

    this.addSql(`alter table "memberships" add constraint "memberships_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "memberships" add constraint "memberships_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "sessions" add constraint "sessions_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "sessions" add constraint "sessions_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "sessions" add constraint "sessions_parent_id_foreign" foreign key ("parent_id") references "sessions" ("id") on update cascade on delete set null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "sessions" cascade;`);
    this.addSql(`drop table if exists "memberships" cascade;`);
    this.addSql(`drop table if exists "users" cascade;`);
  }

}
