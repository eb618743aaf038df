import { Migration } from '@mikro-orm/migrations';

export class Migration20261123154002 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "ops_events" ("id" varchar(40) not null, "severity" text check ("severity" in ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')) not null, "kind" varchar(60) not null, "tenant_id" varchar(40) null, "pod_id" varchar(40) null, "job_id" varchar(40) null, "message" text not null, "details" jsonb null, "dedupe_key" varchar(200) not null, "resolved_at" timestamptz null, "created_at" timestamptz not null, constraint "ops_events_pkey" primary key ("id"));`);
    this.addSql(`alter table "ops_events" add constraint "ops_events_dedupe_key_unique" unique ("dedupe_key");`);
    this.addSql(`create index "ops_events_severity_created_at_index" on "ops_events" ("severity", "created_at");`);

    this.addSql(`create table "sim_backups" ("id" varchar(40) not null, "pod_id" varchar(40) not null, "vm_id" varchar(40) not null, "vcpu" int not null, "memory_mb" int not null, "disk_gb" int not null, "size_gb" int not null, "created_at" timestamptz not null, constraint "sim_backups_pkey" primary key ("id"));`);

    this.addSql(`alter table "idempotency_keys" add column "locked_until" timestamptz null;`);

    this.addSql(`alter table "sim_fault_rules" add column "mode" varchar(10) not null default 'fail', add column "delay_ms" int null;`);

    this.addSql(`alter table "cloud_pods" add column "restore_from_backup_id" varchar(40) null;`);

    this.addSql(`alter table "provisioning_jobs" add column "current_step" varchar(100) null, add column "step_attempt" int null, add column "last_error" text null, add column "last_error_at" timestamptz null, add column "undo_failure" text null, add column "dead_lettered_at" timestamptz null;`);

    this.addSql(`alter table "backups" add column "job_id" varchar(40) null;`);
    this.addSql(`alter table "backups" add constraint "backups_job_id_unique" unique ("job_id");`);
    this.addSql(`create index "backups_tenant_id_status_expires_at_index" on "backups" ("tenant_id", "status", "expires_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "ops_events" cascade;`);

    this.addSql(`drop table if exists "sim_backups" cascade;`);

    this.addSql(`alter table "backups" drop constraint "backups_job_id_unique";`);
    this.addSql(`drop index "backups_tenant_id_status_expires_at_index";`);
    this.addSql(`alter table "backups" drop column "job_id";`);

    this.addSql(`alter table "cloud_pods" drop column "restore_from_backup_id";`);

    this.addSql(`alter table "idempotency_keys" drop column "locked_until";`);

    this.addSql(`alter table "provisioning_jobs" drop column "current_step", drop column "step_attempt", drop column "last_error", drop column "last_error_at", drop column "undo_failure", drop column "dead_lettered_at";`);

    this.addSql(`alter table "sim_fault_rules" drop column "mode", drop column "delay_ms";`);
  }

}
