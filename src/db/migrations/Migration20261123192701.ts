import { Migration } from '@mikro-orm/migrations';

/**
 * Every entity extends `Row` (id, created_at, updated_at). Rows that had no `updated_at` start it
 * at their creation; both timestamps default to `now()` for plain SQL inserts.
 */
export class Migration20261123192701 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "core_nodes" add column "updated_at" timestamptz not null default now();`);
    this.addSql(`update "core_nodes" set "updated_at" = "created_at";`);
    this.addSql(`alter table "core_nodes" alter column "created_at" set default now();`);

    this.addSql(`alter table "idempotency_keys" add column "updated_at" timestamptz not null default now();`);
    this.addSql(`update "idempotency_keys" set "updated_at" = "created_at";`);
    this.addSql(`alter table "idempotency_keys" alter column "created_at" set default now();`);

    this.addSql(`alter table "ops_events" add column "updated_at" timestamptz not null default now();`);
    this.addSql(`update "ops_events" set "updated_at" = "created_at";`);
    this.addSql(`alter table "ops_events" alter column "created_at" set default now();`);

    this.addSql(`alter table "tenants" alter column "created_at" set default now();`);
    this.addSql(`alter table "tenants" alter column "updated_at" set default now();`);

    this.addSql(`alter table "products" alter column "created_at" set default now();`);
    this.addSql(`alter table "products" alter column "updated_at" set default now();`);

    this.addSql(`alter table "notifications" add column "updated_at" timestamptz not null default now();`);
    this.addSql(`update "notifications" set "updated_at" = "created_at";`);
    this.addSql(`alter table "notifications" alter column "created_at" set default now();`);

    this.addSql(`alter table "customers" alter column "created_at" set default now();`);
    this.addSql(`alter table "customers" alter column "updated_at" set default now();`);

    this.addSql(`alter table "cloud_pods" alter column "created_at" set default now();`);
    this.addSql(`alter table "cloud_pods" alter column "updated_at" set default now();`);

    this.addSql(`alter table "provisioning_jobs" alter column "created_at" set default now();`);
    this.addSql(`alter table "provisioning_jobs" alter column "updated_at" set default now();`);

    this.addSql(`alter table "backups" add column "updated_at" timestamptz not null default now();`);
    this.addSql(`update "backups" set "updated_at" = "created_at";`);
    this.addSql(`alter table "backups" alter column "created_at" set default now();`);

    this.addSql(`alter table "api_tokens" add column "updated_at" timestamptz not null default now();`);
    this.addSql(`update "api_tokens" set "updated_at" = "created_at";`);
    this.addSql(`alter table "api_tokens" alter column "created_at" set default now();`);

    this.addSql(`alter table "tenant_billing_settings" add column "updated_at" timestamptz not null default now();`);
    this.addSql(`update "tenant_billing_settings" set "updated_at" = "created_at";`);
    this.addSql(`alter table "tenant_billing_settings" alter column "created_at" set default now();`);

    this.addSql(`alter table "tenant_quotas" add column "updated_at" timestamptz not null default now();`);
    this.addSql(`update "tenant_quotas" set "updated_at" = "created_at";`);
    this.addSql(`alter table "tenant_quotas" alter column "created_at" set default now();`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "api_tokens" drop column "updated_at";`);

    this.addSql(`alter table "api_tokens" alter column "created_at" drop default;`);

    this.addSql(`alter table "backups" drop column "updated_at";`);

    this.addSql(`alter table "backups" alter column "created_at" drop default;`);

    this.addSql(`alter table "cloud_pods" alter column "created_at" drop default;`);
    this.addSql(`alter table "cloud_pods" alter column "updated_at" drop default;`);

    this.addSql(`alter table "core_nodes" drop column "updated_at";`);

    this.addSql(`alter table "core_nodes" alter column "created_at" drop default;`);

    this.addSql(`alter table "customers" alter column "created_at" drop default;`);
    this.addSql(`alter table "customers" alter column "updated_at" drop default;`);

    this.addSql(`alter table "idempotency_keys" drop column "updated_at";`);

    this.addSql(`alter table "idempotency_keys" alter column "created_at" drop default;`);

    this.addSql(`alter table "notifications" drop column "updated_at";`);

    this.addSql(`alter table "notifications" alter column "created_at" drop default;`);

    this.addSql(`alter table "ops_events" drop column "updated_at";`);

    this.addSql(`alter table "ops_events" alter column "created_at" drop default;`);

    this.addSql(`alter table "products" alter column "created_at" drop default;`);
    this.addSql(`alter table "products" alter column "updated_at" drop default;`);

    this.addSql(`alter table "provisioning_jobs" alter column "created_at" drop default;`);
    this.addSql(`alter table "provisioning_jobs" alter column "updated_at" drop default;`);

    this.addSql(`alter table "tenant_billing_settings" drop column "updated_at";`);

    this.addSql(`alter table "tenant_billing_settings" alter column "created_at" drop default;`);

    this.addSql(`alter table "tenant_quotas" drop column "updated_at";`);

    this.addSql(`alter table "tenant_quotas" alter column "created_at" drop default;`);

    this.addSql(`alter table "tenants" alter column "created_at" drop default;`);
    this.addSql(`alter table "tenants" alter column "updated_at" drop default;`);
  }

}
