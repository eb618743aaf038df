import { Migration } from '@mikro-orm/migrations';

/**
 * Usage billing: the daily rollup (`usage_daily`, one row per subscription, metric and UTC day),
 * the invoice that froze each usage record and day, a BRIN index for the rollup's day scans, and
 * the plan's price per GB of bandwidth beyond what it includes (0: no overage billed).
 */
export class Migration20261123220100 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "products" add column "bandwidth_overage_unit_amount" int not null default 0;`);

    this.addSql(`alter table "usage_records" add column "invoice_id" varchar(40) null;`);
    this.addSql(`alter table "usage_records" add constraint "usage_records_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update cascade on delete set null;`);
    this.addSql(`create index "usage_records_occurred_at_brin" on "usage_records" using brin ("occurred_at");`);

    this.addSql(`create table "usage_daily" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "subscription_id" varchar(40) not null, "metric" varchar(64) not null, "day" date not null, "quantity" bigint not null, "invoice_id" varchar(40) null, constraint "usage_daily_pkey" primary key ("id"));`);
    this.addSql(`alter table "usage_daily" add constraint "usage_daily_subscription_id_metric_day_unique" unique ("subscription_id", "metric", "day");`);

    this.addSql(`alter table "usage_daily" add constraint "usage_daily_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "usage_daily" add constraint "usage_daily_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update cascade;`);
    this.addSql(`alter table "usage_daily" add constraint "usage_daily_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update cascade on delete set null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "usage_daily" cascade;`);

    this.addSql(`drop index "usage_records_occurred_at_brin";`);
    this.addSql(`alter table "usage_records" drop constraint "usage_records_invoice_id_foreign";`);
    this.addSql(`alter table "usage_records" drop column "invoice_id";`);

    this.addSql(`alter table "products" drop column "bandwidth_overage_unit_amount";`);
  }

}
