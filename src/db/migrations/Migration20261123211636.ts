import { Migration } from '@mikro-orm/migrations';

/** Usage records: metered quantities per subscription, stored once per tenant and idempotency key. */
export class Migration20261123211636 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "usage_records" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "subscription_id" varchar(40) not null, "metric" varchar(64) not null, "quantity" bigint not null, "occurred_at" timestamptz not null, "idempotency_key" varchar(200) not null, constraint "usage_records_pkey" primary key ("id"));`);
    this.addSql(`create index "usage_records_subscription_id_occurred_at_index" on "usage_records" ("subscription_id", "occurred_at");`);
    this.addSql(`alter table "usage_records" add constraint "usage_records_tenant_id_idempotency_key_unique" unique ("tenant_id", "idempotency_key");`);

    this.addSql(`alter table "usage_records" add constraint "usage_records_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "usage_records" add constraint "usage_records_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "usage_records" cascade;`);
  }

}
