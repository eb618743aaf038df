import { Migration } from '@mikro-orm/migrations';

export class Migration20261121222410 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "core_nodes" ("id" varchar(40) not null, "name" varchar(100) not null, "region" varchar(50) not null, "status" text check ("status" in ('ONLINE', 'DRAINING', 'OFFLINE')) not null default 'ONLINE', "capacity_vcpu" int not null, "capacity_memory_mb" int not null, "capacity_disk_gb" int not null, "allocated_vcpu" int not null default 0, "allocated_memory_mb" int not null default 0, "allocated_disk_gb" int not null default 0, "version" int not null default 1, "created_at" timestamptz not null, constraint "core_nodes_pkey" primary key ("id"), constraint core_nodes_allocation_check check (((allocated_vcpu >= 0) AND (allocated_vcpu <= capacity_vcpu)) AND ((allocated_memory_mb >= 0) AND (allocated_memory_mb <= capacity_memory_mb)) AND ((allocated_disk_gb >= 0) AND (allocated_disk_gb <= capacity_disk_gb))));`);
    this.addSql(`alter table "core_nodes" add constraint "core_nodes_name_unique" unique ("name");`);

    this.addSql(`create table "idempotency_keys" ("id" varchar(40) not null, "scope" varchar(40) not null, "principal_id" varchar(40) not null, "method" varchar(10) not null, "path" varchar(500) not null, "key_hash" varchar(64) not null, "fingerprint" varchar(64) not null, "state" text check ("state" in ('IN_PROGRESS', 'COMPLETED')) not null default 'IN_PROGRESS', "response_status" int null, "response_body" jsonb null, "response_headers" jsonb null, "expires_at" timestamptz not null, "created_at" timestamptz not null, constraint "idempotency_keys_pkey" primary key ("id"));`);
    this.addSql(`create index "idempotency_keys_expires_at_index" on "idempotency_keys" ("expires_at");`);
    this.addSql(`alter table "idempotency_keys" add constraint "idempotency_keys_scope_principal_id_method_path_key_hash_unique" unique ("scope", "principal_id", "method", "path", "key_hash");`);

    this.addSql(`create table "sim_dns_records" ("fqdn" varchar(253) not null, "type" varchar(10) not null default 'A', "content" varchar(45) not null, "ttl" int not null default 300, constraint "sim_dns_records_pkey" primary key ("fqdn"));`);

    this.addSql(`create table "sim_fault_rules" ("id" varchar(40) not null, "operation" varchar(50) not null, "slug_pattern" varchar(100) not null, "remaining" int null, "message" varchar(300) not null, "created_at" timestamptz not null, constraint "sim_fault_rules_pkey" primary key ("id"));`);

    this.addSql(`create table "sim_vms" ("vm_id" varchar(40) not null, "pod_id" varchar(40) not null, "node" varchar(100) not null, "name" varchar(253) not null, "status" varchar(20) not null default 'stopped', "locked" boolean not null default false, "vcpu" int not null, "memory_mb" int not null, "disk_gb" int not null, "ip_address" varchar(45) not null, "snapshots" jsonb not null, "created_at" timestamptz not null, constraint "sim_vms_pkey" primary key ("vm_id"));`);
    this.addSql(`alter table "sim_vms" add constraint "sim_vms_pod_id_unique" unique ("pod_id");`);

    this.addSql(`create table "products" ("id" varchar(40) not null, "tenant_id" varchar(40) not null, "code" varchar(64) not null, "name" varchar(200) not null, "kind" varchar(20) not null default 'CLOUDPOD', "interval" text check ("interval" in ('MONTH', 'YEAR')) not null, "unit_amount" int not null, "currency" char(3) not null, "vcpu" int not null, "memory_mb" int not null, "disk_gb" int not null, "included_bandwidth_gb" int not null, "trial_days" int not null default 0, "backups_included" int not null default 0, "deleted_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "products_pkey" primary key ("id"));`);
    this.addSql(`alter table "products" add constraint "products_tenant_id_code_unique" unique ("tenant_id", "code");`);

    this.addSql(`create table "customers" ("id" varchar(40) not null, "tenant_id" varchar(40) not null, "email" varchar(320) not null, "name" varchar(200) not null, "deleted_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "customers_pkey" primary key ("id"));`);
    this.addSql(`create index "customers_tenant_id_created_at_index" on "customers" ("tenant_id", "created_at");`);
    this.addSql(`create unique index "customers_tenant_email_live_unique" on "customers" ("tenant_id", "email") where "deleted_at" is null;`);

    this.addSql(`create table "cloud_pods" ("id" varchar(40) not null, "tenant_id" varchar(40) not null, "customer_id" varchar(40) not null, "product_id" varchar(40) not null, "slug" varchar(40) not null, "hostname" varchar(253) not null, "status" text check ("status" in ('PENDING', 'PROVISIONING', 'ACTIVE', 'UPDATING', 'SUSPENDED', 'TERMINATING', 'TERMINATED', 'FAILED')) not null default 'PENDING', "node_id" varchar(40) null, "vm_id" varchar(100) null, "ip_address" varchar(45) null, "vcpu" int not null, "memory_mb" int not null, "disk_gb" int not null, "reserved_vcpu" int not null default 0, "reserved_memory_mb" int not null default 0, "reserved_disk_gb" int not null default 0, "failure_reason" text null, "workflow_id" varchar(200) not null, "activated_at" timestamptz null, "terminated_at" timestamptz null, "deleted_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "cloud_pods_pkey" primary key ("id"));`);
    this.addSql(`create index "cloud_pods_node_id_index" on "cloud_pods" ("node_id");`);
    this.addSql(`create index "cloud_pods_customer_id_index" on "cloud_pods" ("customer_id");`);
    this.addSql(`create index "cloud_pods_tenant_id_status_index" on "cloud_pods" ("tenant_id", "status");`);
    this.addSql(`alter table "cloud_pods" add constraint "cloud_pods_tenant_id_slug_unique" unique ("tenant_id", "slug");`);

    this.addSql(`create table "provisioning_jobs" ("id" varchar(40) not null, "tenant_id" varchar(40) not null, "pod_id" varchar(40) not null, "type" text check ("type" in ('PROVISION', 'CHANGE_PLAN', 'SUSPEND', 'UNSUSPEND', 'TERMINATE', 'BACKUP', 'RESTORE')) not null, "queue_name" varchar(50) not null default 'provisioning', "status" text check ("status" in ('QUEUED', 'RUNNING', 'COMPLETED', 'ROLLED_BACK', 'DEAD_LETTER', 'CANCELED')) not null default 'QUEUED', "priority" int not null default 0, "scheduled_for" timestamptz not null, "attempts" int not null default 0, "max_attempts" int not null default 3, "input" jsonb null, "failure_reason" text null, "workflow_id" varchar(200) not null, "run_id" varchar(100) null, "started_at" timestamptz null, "finished_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "provisioning_jobs_pkey" primary key ("id"));`);
    this.addSql(`create index "provisioning_jobs_pod_id_created_at_index" on "provisioning_jobs" ("pod_id", "created_at");`);
    this.addSql(`create index "provisioning_jobs_tenant_id_status_index" on "provisioning_jobs" ("tenant_id", "status");`);
    this.addSql(`create index "provisioning_jobs_status_scheduled_for_index" on "provisioning_jobs" ("status", "scheduled_for");`);
    this.addSql(`create index "provisioning_jobs_queue_name_status_priority_index" on "provisioning_jobs" ("queue_name", "status", "priority");`);
    this.addSql(`create unique index "provisioning_jobs_one_open_per_pod" on "provisioning_jobs" ("pod_id") where "status" in ('QUEUED', 'RUNNING');`);

    this.addSql(`create table "backups" ("id" varchar(40) not null, "tenant_id" varchar(40) not null, "pod_id" varchar(40) not null, "provider_snapshot_id" varchar(200) null, "kind" text check ("kind" in ('SCHEDULED', 'MANUAL', 'PRE_TERMINATION')) not null, "status" text check ("status" in ('PENDING', 'COMPLETED', 'FAILED', 'DELETED')) not null default 'PENDING', "size_gb" int null, "expires_at" timestamptz null, "created_at" timestamptz not null, constraint "backups_pkey" primary key ("id"));`);
    this.addSql(`create index "backups_pod_id_created_at_index" on "backups" ("pod_id", "created_at");`);

    this.addSql(`alter table "products" add constraint "products_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "customers" add constraint "customers_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "cloud_pods" add constraint "cloud_pods_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "cloud_pods" add constraint "cloud_pods_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update cascade;`);
    this.addSql(`alter table "cloud_pods" add constraint "cloud_pods_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade;`);
    this.addSql(`alter table "cloud_pods" add constraint "cloud_pods_node_id_foreign" foreign key ("node_id") references "core_nodes" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "provisioning_jobs" add constraint "provisioning_jobs_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "provisioning_jobs" add constraint "provisioning_jobs_pod_id_foreign" foreign key ("pod_id") references "cloud_pods" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "backups" add constraint "backups_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "backups" add constraint "backups_pod_id_foreign" foreign key ("pod_id") references "cloud_pods" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "cloud_pods" drop constraint "cloud_pods_node_id_foreign";`);

    this.addSql(`alter table "cloud_pods" drop constraint "cloud_pods_product_id_foreign";`);

    this.addSql(`alter table "cloud_pods" drop constraint "cloud_pods_customer_id_foreign";`);

    this.addSql(`alter table "provisioning_jobs" drop constraint "provisioning_jobs_pod_id_foreign";`);

    this.addSql(`alter table "backups" drop constraint "backups_pod_id_foreign";`);

    this.addSql(`drop table if exists "core_nodes" cascade;`);

    this.addSql(`drop table if exists "idempotency_keys" cascade;`);

    this.addSql(`drop table if exists "sim_dns_records" cascade;`);

    this.addSql(`drop table if exists "sim_fault_rules" cascade;`);

    this.addSql(`drop table if exists "sim_vms" cascade;`);

    this.addSql(`drop table if exists "products" cascade;`);

    this.addSql(`drop table if exists "customers" cascade;`);

    this.addSql(`drop table if exists "cloud_pods" cascade;`);

    this.addSql(`drop table if exists "provisioning_jobs" cascade;`);

    this.addSql(`drop table if exists "backups" cascade;`);
  }

}
