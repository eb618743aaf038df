import { Migration } from '@mikro-orm/migrations';

export class Migration20261121220725 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "tenants" ("id" varchar(40) not null, "slug" varchar(40) not null, "name" varchar(200) not null, "currency" char(3) not null, "status" text check ("status" in ('PENDING', 'ACTIVE', 'SUSPENDED', 'CLOSED')) not null default 'PENDING', "owner_email" varchar(320) not null, "onboarding_workflow_id" varchar(200) null, "activated_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "tenants_pkey" primary key ("id"));`);
    this.addSql(`alter table "tenants" add constraint "tenants_slug_unique" unique ("slug");`);
    this.addSql(`create index "tenants_status_index" on "tenants" ("status");`);

    this.addSql(`create table "notifications" ("id" varchar(40) not null, "tenant_id" varchar(40) not null, "template" varchar(100) not null, "recipient" varchar(320) not null, "subject" varchar(300) not null, "body" text not null, "status" text check ("status" in ('PENDING', 'SENT', 'FAILED')) not null default 'PENDING', "dedupe_key" varchar(200) not null, "created_at" timestamptz not null, "sent_at" timestamptz null, constraint "notifications_pkey" primary key ("id"));`);
    this.addSql(`create index "notifications_tenant_id_index" on "notifications" ("tenant_id");`);
    this.addSql(`alter table "notifications" add constraint "notifications_dedupe_key_unique" unique ("dedupe_key");`);
    this.addSql(`create index "notifications_status_created_at_index" on "notifications" ("status", "created_at");`);

    this.addSql(`create table "api_tokens" ("id" varchar(40) not null, "tenant_id" varchar(40) null, "platform_admin" boolean not null default false, "name" varchar(100) not null, "token_hash" varchar(64) not null, "prefix" varchar(20) not null, "scopes" text[] not null, "created_by_token_id" varchar(40) null, "last_used_at" timestamptz null, "expires_at" timestamptz null, "revoked_at" timestamptz null, "created_at" timestamptz not null, constraint "api_tokens_pkey" primary key ("id"), constraint api_tokens_owner_check check ((tenant_id is not null) <> platform_admin));`);
    this.addSql(`create index "api_tokens_tenant_id_index" on "api_tokens" ("tenant_id");`);
    this.addSql(`alter table "api_tokens" add constraint "api_tokens_token_hash_unique" unique ("token_hash");`);

    this.addSql(`create table "tenant_billing_settings" ("id" varchar(40) not null, "tenant_id" varchar(40) not null, "tax_rate_bps" int not null, "net_terms_days" int not null, "dunning_policy" jsonb not null, "created_at" timestamptz not null, constraint "tenant_billing_settings_pkey" primary key ("id"));`);
    this.addSql(`alter table "tenant_billing_settings" add constraint "tenant_billing_settings_tenant_id_unique" unique ("tenant_id");`);

    this.addSql(`create table "tenant_quotas" ("id" varchar(40) not null, "tenant_id" varchar(40) not null, "max_pods" int not null default 25, "max_vcpu" int not null default 64, "max_memory_mb" int not null default 131072, "max_disk_gb" int not null default 2000, "api_requests_per_day" int not null default 100000, "created_at" timestamptz not null, constraint "tenant_quotas_pkey" primary key ("id"));`);
    this.addSql(`alter table "tenant_quotas" add constraint "tenant_quotas_tenant_id_unique" unique ("tenant_id");`);

    this.addSql(`alter table "notifications" add constraint "notifications_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "api_tokens" add constraint "api_tokens_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "tenant_billing_settings" add constraint "tenant_billing_settings_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "tenant_quotas" add constraint "tenant_quotas_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "notifications" drop constraint "notifications_tenant_id_foreign";`);

    this.addSql(`alter table "api_tokens" drop constraint "api_tokens_tenant_id_foreign";`);

    this.addSql(`alter table "tenant_billing_settings" drop constraint "tenant_billing_settings_tenant_id_foreign";`);

    this.addSql(`alter table "tenant_quotas" drop constraint "tenant_quotas_tenant_id_foreign";`);

    this.addSql(`drop table if exists "tenants" cascade;`);

    this.addSql(`drop table if exists "notifications" cascade;`);

    this.addSql(`drop table if exists "api_tokens" cascade;`);

    this.addSql(`drop table if exists "tenant_billing_settings" cascade;`);

    this.addSql(`drop table if exists "tenant_quotas" cascade;`);
  }

}
