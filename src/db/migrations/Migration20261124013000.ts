import { Migration } from '@mikro-orm/migrations';

/**
 * The shield: one policy per tenant (mode OFF, MONITOR or ENFORCE), its ordered allow/deny rules,
 * and its refusals aggregated per tenant, address, source, action and minute. (The security event
 * kinds SHIELD_BLOCKED and IP_NOT_ALLOWED are in the kind check as Migration20261124011000 and
 * later ones set it.)
 */
export class Migration20261124013000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "shield_policies" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "mode" text check ("mode" in ('OFF', 'MONITOR', 'ENFORCE')) not null default 'OFF', "updated_by" varchar(40) not null, constraint "shield_policies_pkey" primary key ("id"));`);
    this.addSql(`alter table "shield_policies" add constraint "shield_policies_tenant_id_unique" unique ("tenant_id");`);
    this.addSql(`alter table "shield_policies" add constraint "shield_policies_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`create table "shield_rules" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "policy_id" varchar(40) not null, "position" int not null, "action" text check ("action" in ('ALLOW', 'DENY')) not null, "cidr" varchar(43) not null, "note" varchar(200) null, "created_by" varchar(40) not null, constraint "shield_rules_pkey" primary key ("id"));`);
    this.addSql(`create index "shield_rules_policy_id_position_index" on "shield_rules" ("policy_id", "position");`);
    this.addSql(`alter table "shield_rules" add constraint "shield_rules_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "shield_rules" add constraint "shield_rules_policy_id_foreign" foreign key ("policy_id") references "shield_policies" ("id") on update cascade on delete cascade;`);

    this.addSql(`create table "shield_events" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "ip" varchar(45) not null, "source" text check ("source" in ('SHIELD', 'ALLOWLIST')) not null, "mode" text check ("mode" in ('OFF', 'MONITOR', 'ENFORCE')) not null, "action" text check ("action" in ('BLOCKED', 'WOULD_BLOCK')) not null, "rule_id" varchar(40) null, "rule_action" text check ("rule_action" in ('ALLOW', 'DENY')) null, "rule_cidr" varchar(43) null, "method" varchar(10) not null, "path" varchar(200) not null, "actor_id" varchar(40) not null, "request_id" varchar(100) not null, "window_start" timestamptz not null, "hits" int not null default 1, "last_at" timestamptz not null, constraint "shield_events_pkey" primary key ("id"));`);
    this.addSql(`create index "shield_events_tenant_id_id_index" on "shield_events" ("tenant_id", "id");`);
    this.addSql(`alter table "shield_events" add constraint "shield_events_tenant_id_ip_source_action_window_start_unique" unique ("tenant_id", "ip", "source", "action", "window_start");`);
    this.addSql(`alter table "shield_events" add constraint "shield_events_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    // The policy and its rules are changes someone made: audited. The refusals are a log of their own.
    this.addSql(`select audit_attach('shield_policies');`);
    this.addSql(`select audit_attach('shield_rules');`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "shield_events" cascade;`);
    this.addSql(`drop table if exists "shield_rules" cascade;`);
    this.addSql(`drop table if exists "shield_policies" cascade;`);
  }

}
