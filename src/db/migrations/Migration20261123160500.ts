import { Migration } from '@mikro-orm/migrations';

/** A terminate gets its own open-job slot, so DELETE queues behind a running operation instead of 409. */
export class Migration20261123160500 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`drop index "provisioning_jobs_one_open_per_pod";`);
    this.addSql(`create unique index "provisioning_jobs_one_open_per_pod" on "provisioning_jobs" ("pod_id") where "status" in ('QUEUED', 'RUNNING') and "type" <> 'TERMINATE';`);
    this.addSql(`create unique index "provisioning_jobs_one_open_terminate_per_pod" on "provisioning_jobs" ("pod_id") where "status" in ('QUEUED', 'RUNNING') and "type" = 'TERMINATE';`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "provisioning_jobs_one_open_terminate_per_pod";`);
    this.addSql(`drop index "provisioning_jobs_one_open_per_pod";`);
    this.addSql(`create unique index "provisioning_jobs_one_open_per_pod" on "provisioning_jobs" ("pod_id") where "status" in ('QUEUED', 'RUNNING');`);
  }

}
