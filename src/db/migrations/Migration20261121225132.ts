import { Migration } from '@mikro-orm/migrations';

export class Migration20261121225132 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create index "products_tenant_id_id_index" on "products" ("tenant_id", "id");`);

    this.addSql(`drop index "customers_tenant_id_created_at_index";`);

    this.addSql(`create index "customers_tenant_id_id_index" on "customers" ("tenant_id", "id");`);

    this.addSql(`drop index "cloud_pods_tenant_id_status_index";`);

    this.addSql(`create index "cloud_pods_tenant_id_id_index" on "cloud_pods" ("tenant_id", "id");`);
    this.addSql(`create index "cloud_pods_tenant_id_status_id_index" on "cloud_pods" ("tenant_id", "status", "id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "cloud_pods_tenant_id_id_index";`);
    this.addSql(`drop index "cloud_pods_tenant_id_status_id_index";`);

    this.addSql(`create index "cloud_pods_tenant_id_status_index" on "cloud_pods" ("tenant_id", "status");`);

    this.addSql(`drop index "customers_tenant_id_id_index";`);

    this.addSql(`create index "customers_tenant_id_created_at_index" on "customers" ("tenant_id", "created_at");`);

    this.addSql(`drop index "products_tenant_id_id_index";`);
  }

}
