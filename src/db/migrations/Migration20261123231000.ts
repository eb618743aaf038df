import { Migration } from '@mikro-orm/migrations';

/**
 * Final invoices: a subscription that ends (canceled at its period end, now, or by dunning) has its
 * unbilled usage overage invoiced once, on one SUBSCRIPTION_FINAL invoice — unique per subscription,
 * so a retried cancellation never issues a second.
 */
export class Migration20261123231000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "invoices" drop constraint if exists "invoices_billing_reason_check";`);
    this.addSql(`alter table "invoices" add constraint "invoices_billing_reason_check" check ("billing_reason" in ('SUBSCRIPTION_CREATE', 'SUBSCRIPTION_CYCLE', 'SUBSCRIPTION_UPDATE', 'SUBSCRIPTION_FINAL', 'MANUAL'));`);
    this.addSql(`create unique index "invoices_subscription_final_unique" on "invoices" ("subscription_id") where "billing_reason" = 'SUBSCRIPTION_FINAL';`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "invoices_subscription_final_unique";`);
    this.addSql(`alter table "invoices" drop constraint if exists "invoices_billing_reason_check";`);
    this.addSql(`alter table "invoices" add constraint "invoices_billing_reason_check" check ("billing_reason" in ('SUBSCRIPTION_CREATE', 'SUBSCRIPTION_CYCLE', 'SUBSCRIPTION_UPDATE', 'MANUAL'));`);
  }

}
