import { Migration } from '@mikro-orm/migrations';

/** Subscription plan changes: one row per requested change, at most one running per subscription. */
export class Migration20261123220300 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "subscription_plan_changes" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "subscription_id" varchar(40) not null, "from_product_id" varchar(40) not null, "to_product_id" varchar(40) not null, "from_unit_amount" bigint not null, "to_unit_amount" bigint not null, "currency" char(3) not null, "interval" varchar(10) not null, "as_of" timestamptz not null, "period_start" timestamptz not null, "period_end" timestamptz not null, "prorated" boolean not null, "status" text check ("status" in ('REQUESTED', 'RESIZING', 'SUCCEEDED', 'FAILED')) not null default 'REQUESTED', "pod_id" varchar(40) not null, "job_id" varchar(40) null, "settlement" text check ("settlement" in ('INVOICE', 'CREDIT_NOTE', 'NONE')) null, "invoice_id" varchar(40) null, "credit_note_id" varchar(40) null, "failure_reason" text null, "workflow_id" varchar(200) not null, "finished_at" timestamptz null, constraint "subscription_plan_changes_pkey" primary key ("id"));`);
    this.addSql(`create index "subscription_plan_changes_subscription_id_created_at_index" on "subscription_plan_changes" ("subscription_id", "created_at");`);
    this.addSql(`create unique index "subscription_plan_changes_one_running" on "subscription_plan_changes" ("subscription_id") where "status" in ('REQUESTED', 'RESIZING');`);

    this.addSql(`alter table "subscription_plan_changes" add constraint "subscription_plan_changes_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "subscription_plan_changes" add constraint "subscription_plan_changes_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update cascade;`);
    this.addSql(`alter table "subscription_plan_changes" add constraint "subscription_plan_changes_from_product_id_foreign" foreign key ("from_product_id") references "products" ("id") on update cascade;`);
    this.addSql(`alter table "subscription_plan_changes" add constraint "subscription_plan_changes_to_product_id_foreign" foreign key ("to_product_id") references "products" ("id") on update cascade;`);
    this.addSql(`alter table "subscription_plan_changes" add constraint "subscription_plan_changes_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "subscription_plan_changes" add constraint "subscription_plan_changes_credit_note_id_foreign" foreign key ("credit_note_id") references "credit_notes" ("id") on update cascade on delete set null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "subscription_plan_changes" cascade;`);
  }

}
