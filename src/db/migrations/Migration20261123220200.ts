import { Migration } from '@mikro-orm/migrations';

/**
 * Test clocks: tenants get a mode (LIVE, the default for every existing tenant, or SANDBOX), sandbox
 * tenants get clocks, and a customer may be attached to one of its tenant's clocks.
 */
export class Migration20261123220200 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "tenants" add column "mode" text check ("mode" in ('LIVE', 'SANDBOX')) not null default 'LIVE';`);

    this.addSql(`create table "test_clocks" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "name" varchar(200) not null, "frozen_time" timestamptz not null, "status" text check ("status" in ('READY', 'ADVANCING', 'INTERNAL_FAILURE')) not null default 'READY', "advancing_to" timestamptz null, "advances" int not null default 0, "failure_reason" varchar(1000) null, "deleted_at" timestamptz null, constraint "test_clocks_pkey" primary key ("id"));`);
    this.addSql(`create index "test_clocks_tenant_id_id_index" on "test_clocks" ("tenant_id", "id");`);
    this.addSql(`alter table "test_clocks" add constraint "test_clocks_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "customers" add column "test_clock_id" varchar(40) null;`);
    this.addSql(`alter table "customers" add constraint "customers_test_clock_id_foreign" foreign key ("test_clock_id") references "test_clocks" ("id") on update cascade on delete set null;`);
    this.addSql(`create index "customers_test_clock_id_index" on "customers" ("test_clock_id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "customers" drop constraint "customers_test_clock_id_foreign";`);
    this.addSql(`drop index "customers_test_clock_id_index";`);
    this.addSql(`alter table "customers" drop column "test_clock_id";`);
    this.addSql(`drop table if exists "test_clocks" cascade;`);
    this.addSql(`alter table "tenants" drop column "mode";`);
  }

}
