import { Migration } from '@mikro-orm/migrations';

/**
 * Notifications: the customer each concerns (filterable per tenant) and SMTP delivery state
 * (attempts, last error, next attempt). Existing rows get their customer from the business key in
 * their dedupe key; the tenant's own mail (welcome) keeps none.
 */
export class Migration20261123220000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "notifications" add column "customer_id" varchar(40) null, add column "attempts" int not null default 0, add column "last_error" varchar(1000) null, add column "next_attempt_at" timestamptz null;`);
    this.addSql(`alter table "notifications" add constraint "notifications_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade on delete set null;`);
    this.addSql(`create index "notifications_tenant_id_customer_id_index" on "notifications" ("tenant_id", "customer_id");`);

    this.addSql(`update "notifications" n set "customer_id" = i."customer_id" from "invoices" i where n."dedupe_key" like 'dunning:%' and i."id" = split_part(n."dedupe_key", ':', 2) and i."tenant_id" = n."tenant_id";`);
    this.addSql(`update "notifications" n set "customer_id" = s."customer_id" from "subscriptions" s where split_part(n."dedupe_key", ':', 1) in ('trial-reminder', 'subscription.activation_failed') and s."id" = split_part(n."dedupe_key", ':', 2) and s."tenant_id" = n."tenant_id";`);
    this.addSql(`update "notifications" n set "customer_id" = p."customer_id" from "provisioning_jobs" j join "cloud_pods" p on p."id" = j."pod_id" where n."dedupe_key" like 'cloudpod.active:%' and j."id" = split_part(n."dedupe_key", ':', 2) and p."tenant_id" = n."tenant_id";`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "notifications" drop constraint "notifications_customer_id_foreign";`);
    this.addSql(`drop index "notifications_tenant_id_customer_id_index";`);
    this.addSql(`alter table "notifications" drop column "customer_id", drop column "attempts", drop column "last_error", drop column "next_attempt_at";`);
  }

}
