import { Migration } from '@mikro-orm/migrations';

/** Billing: subscriptions, invoices and lines, payments, credit notes, gapless document counters, Stripe events; customers gain billing fields. */
export class Migration20261123194415 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "document_counters" ("tenant_id" varchar(40) not null, "series" text check ("series" in ('INVOICE', 'CREDIT_NOTE')) not null, "year" int not null, "last_value" int not null, constraint "document_counters_pkey" primary key ("tenant_id", "series", "year"));`);

    this.addSql(`create table "subscriptions" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "customer_id" varchar(40) not null, "product_id" varchar(40) not null, "status" text check ("status" in ('PENDING', 'TRIALING', 'ACTIVE', 'PAST_DUE', 'SUSPENDED', 'CANCELED')) not null default 'PENDING', "unit_amount" bigint not null, "currency" char(3) not null, "interval" varchar(10) not null, "trial_days" int not null default 0, "billing_anchor" timestamptz null, "current_period_start" timestamptz null, "current_period_end" timestamptz null, "trial_end" timestamptz null, "cancel_at_period_end" boolean not null default false, "canceled_at" timestamptz null, "pod_slug" varchar(40) not null, "pod_id" varchar(40) null, "activation_workflow_id" varchar(200) null, "deleted_at" timestamptz null, constraint "subscriptions_pkey" primary key ("id"));`);
    this.addSql(`alter table "subscriptions" add constraint "subscriptions_pod_id_unique" unique ("pod_id");`);
    this.addSql(`create index "subscriptions_status_current_period_end_index" on "subscriptions" ("status", "current_period_end");`);
    this.addSql(`create index "subscriptions_tenant_id_status_index" on "subscriptions" ("tenant_id", "status");`);
    this.addSql(`create index "subscriptions_customer_id_status_index" on "subscriptions" ("customer_id", "status");`);

    this.addSql(`create table "invoices" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "customer_id" varchar(40) not null, "subscription_id" varchar(40) null, "status" text check ("status" in ('DRAFT', 'OPEN', 'PAID', 'VOID', 'UNCOLLECTIBLE')) not null default 'DRAFT', "billing_reason" text check ("billing_reason" in ('SUBSCRIPTION_CREATE', 'SUBSCRIPTION_CYCLE', 'SUBSCRIPTION_UPDATE', 'MANUAL')) not null, "collection_method" text check ("collection_method" in ('AUTOMATIC', 'MANUAL')) not null default 'AUTOMATIC', "number" varchar(40) null, "currency" char(3) not null, "tax_rate_bps" int not null default 0, "subtotal" bigint not null default 0, "tax" bigint not null default 0, "total" bigint not null default 0, "credit_applied" bigint not null default 0, "amount_due" bigint not null default 0, "amount_paid" bigint not null default 0, "period_start" timestamptz null, "period_end" timestamptz null, "due_date" timestamptz null, "finalized_at" timestamptz null, "paid_at" timestamptz null, "voided_at" timestamptz null, "dunning_policy" jsonb null, "disputed_at" timestamptz null, constraint "invoices_pkey" primary key ("id"), constraint invoices_number_check check (((status = 'DRAFT') = (number IS NULL))));`);
    this.addSql(`create index "invoices_tenant_id_customer_id_index" on "invoices" ("tenant_id", "customer_id");`);
    this.addSql(`create index "invoices_status_due_date_index" on "invoices" ("status", "due_date");`);
    this.addSql(`create unique index "invoices_subscription_period_unique" on "invoices" ("subscription_id", "period_start") where "billing_reason" in ('SUBSCRIPTION_CREATE', 'SUBSCRIPTION_CYCLE');`);
    this.addSql(`alter table "invoices" add constraint "invoices_tenant_id_number_unique" unique ("tenant_id", "number");`);

    this.addSql(`create table "payments" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "invoice_id" varchar(40) not null, "provider" varchar(20) not null, "provider_payment_id" varchar(255) null, "idempotency_key" varchar(200) not null, "attempt" int not null, "status" text check ("status" in ('PENDING', 'REQUIRES_ACTION', 'FAILED', 'SUCCEEDED', 'REFUNDED')) not null default 'PENDING', "amount" bigint not null, "currency" char(3) not null, "payment_method" varchar(255) null, "decline_kind" text check ("decline_kind" in ('HARD', 'SOFT')) null, "failure_code" varchar(100) null, "failure_message" varchar(500) null, "provider_updated_at" timestamptz null, constraint "payments_pkey" primary key ("id"));`);
    this.addSql(`alter table "payments" add constraint "payments_provider_payment_id_unique" unique ("provider_payment_id");`);
    this.addSql(`alter table "payments" add constraint "payments_idempotency_key_unique" unique ("idempotency_key");`);
    this.addSql(`create index "payments_invoice_id_index" on "payments" ("invoice_id");`);

    this.addSql(`create table "invoice_lines" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "invoice_id" varchar(40) not null, "kind" text check ("kind" in ('SUBSCRIPTION', 'PRORATION', 'USAGE', 'CREDIT')) not null, "description" varchar(500) not null, "quantity" int not null, "unit_amount" bigint not null, "amount" bigint not null, "period_start" timestamptz null, "period_end" timestamptz null, "position" int not null, constraint "invoice_lines_pkey" primary key ("id"));`);
    this.addSql(`create index "invoice_lines_invoice_id_index" on "invoice_lines" ("invoice_id");`);

    this.addSql(`create table "credit_notes" ("id" varchar(40) not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "tenant_id" varchar(40) not null, "customer_id" varchar(40) not null, "subscription_id" varchar(40) null, "number" varchar(40) not null, "amount" bigint not null, "currency" char(3) not null, "reason" varchar(500) not null, "status" text check ("status" in ('ISSUED', 'VOID')) not null default 'ISSUED', "source_key" varchar(200) not null, constraint "credit_notes_pkey" primary key ("id"));`);
    this.addSql(`alter table "credit_notes" add constraint "credit_notes_source_key_unique" unique ("source_key");`);
    this.addSql(`alter table "credit_notes" add constraint "credit_notes_tenant_id_number_unique" unique ("tenant_id", "number");`);

    this.addSql(`create table "webhook_events" ("id" varchar(255) not null, "provider" varchar(20) not null, "type" varchar(100) not null, "occurred_at" timestamptz not null, "payload" jsonb not null, "received_at" timestamptz not null default now(), "processed_at" timestamptz null, constraint "webhook_events_pkey" primary key ("id"));`);
    this.addSql(`create index "webhook_events_processed_at_index" on "webhook_events" ("processed_at");`);

    this.addSql(`alter table "document_counters" add constraint "document_counters_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "subscriptions" add constraint "subscriptions_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "subscriptions" add constraint "subscriptions_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade;`);
    this.addSql(`alter table "subscriptions" add constraint "subscriptions_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade;`);

    this.addSql(`alter table "invoices" add constraint "invoices_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "invoices" add constraint "invoices_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade;`);
    this.addSql(`alter table "invoices" add constraint "invoices_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "payments" add constraint "payments_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "payments" add constraint "payments_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "invoice_lines" add constraint "invoice_lines_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "invoice_lines" add constraint "invoice_lines_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "credit_notes" add constraint "credit_notes_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "credit_notes" add constraint "credit_notes_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade;`);
    this.addSql(`alter table "credit_notes" add constraint "credit_notes_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "customers" add column "collection_method" text check ("collection_method" in ('AUTOMATIC', 'MANUAL')) not null default 'AUTOMATIC', add column "default_payment_method" varchar(255) null, add column "provider_customer_id" varchar(255) null, add column "credit_balance" bigint not null default 0;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "invoices" drop constraint "invoices_subscription_id_foreign";`);

    this.addSql(`alter table "credit_notes" drop constraint "credit_notes_subscription_id_foreign";`);

    this.addSql(`alter table "payments" drop constraint "payments_invoice_id_foreign";`);

    this.addSql(`alter table "invoice_lines" drop constraint "invoice_lines_invoice_id_foreign";`);

    this.addSql(`drop table if exists "document_counters" cascade;`);

    this.addSql(`drop table if exists "subscriptions" cascade;`);

    this.addSql(`drop table if exists "invoices" cascade;`);

    this.addSql(`drop table if exists "payments" cascade;`);

    this.addSql(`drop table if exists "invoice_lines" cascade;`);

    this.addSql(`drop table if exists "credit_notes" cascade;`);

    this.addSql(`drop table if exists "webhook_events" cascade;`);

    this.addSql(`alter table "customers" drop column "collection_method", drop column "default_payment_method", drop column "provider_customer_id", drop column "credit_balance";`);
  }

}
