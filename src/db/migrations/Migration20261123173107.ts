import { Migration } from '@mikro-orm/migrations';

/**
 * Per-tenant usage counters kept by a trigger on `cloud_pods`: every insert, status change,
 * resize or delete of a pod moves them in the same statement, and an insert that would pass the
 * tenant's quota fails (SQLSTATE PQ001, the violation as JSON in DETAIL). The counter row is the
 * lock that orders one tenant's creates, held only for the inserting statement.
 */
export class Migration20261123173107 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "tenant_usage" ("tenant_id" varchar(40) not null, "pods" int not null default 0, "vcpu" int not null default 0, "memory_mb" int not null default 0, "disk_gb" int not null default 0, constraint "tenant_usage_pkey" primary key ("tenant_id"));`);

    this.addSql(`alter table "tenant_usage" add constraint "tenant_usage_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    // The defaults are DEFAULT_QUOTAS (src/domain/tenants.ts) for a tenant whose quota row does not
    // exist yet; test/integration/tenant-usage.test.ts holds the two equal.
    this.addSql(`
create function "cloud_pods_usage"() returns trigger language plpgsql as $fn$
declare
  d_pods int := 0; d_vcpu int := 0; d_memory int := 0; d_disk int := 0;
  tenant varchar(40);
  now_pods int; now_vcpu int; now_memory int; now_disk int;
  lim record;
begin
  if tg_op in ('UPDATE', 'DELETE') and old.status <> 'TERMINATED' and old.deleted_at is null then
    d_pods := -1; d_vcpu := -old.vcpu; d_memory := -old.memory_mb; d_disk := -old.disk_gb;
    tenant := old.tenant_id;
  end if;
  if tg_op in ('INSERT', 'UPDATE') and new.status <> 'TERMINATED' and new.deleted_at is null then
    d_pods := d_pods + 1; d_vcpu := d_vcpu + new.vcpu; d_memory := d_memory + new.memory_mb; d_disk := d_disk + new.disk_gb;
    tenant := new.tenant_id;
  end if;
  if d_pods = 0 and d_vcpu = 0 and d_memory = 0 and d_disk = 0 then
    return null;
  end if;
  insert into tenant_usage as u (tenant_id, pods, vcpu, memory_mb, disk_gb)
    values (tenant, d_pods, d_vcpu, d_memory, d_disk)
    on conflict (tenant_id) do update set pods = u.pods + excluded.pods, vcpu = u.vcpu + excluded.vcpu,
      memory_mb = u.memory_mb + excluded.memory_mb, disk_gb = u.disk_gb + excluded.disk_gb
    returning u.pods, u.vcpu, u.memory_mb, u.disk_gb into now_pods, now_vcpu, now_memory, now_disk;
  if tg_op = 'INSERT' then
    select max_pods, max_vcpu, max_memory_mb, max_disk_gb into lim from tenant_quotas where tenant_id = tenant;
    if not found then
      select 25 as max_pods, 64 as max_vcpu, 131072 as max_memory_mb, 2000 as max_disk_gb into lim;
    end if;
    if now_pods > lim.max_pods then
      raise exception using errcode = 'PQ001', message = 'quota exceeded: max_pods',
        detail = json_build_object('quota', 'max_pods', 'limit', lim.max_pods, 'used', now_pods - d_pods, 'requested', d_pods)::text;
    elsif d_vcpu > 0 and now_vcpu > lim.max_vcpu then
      raise exception using errcode = 'PQ001', message = 'quota exceeded: max_vcpu',
        detail = json_build_object('quota', 'max_vcpu', 'limit', lim.max_vcpu, 'used', now_vcpu - d_vcpu, 'requested', d_vcpu)::text;
    elsif d_memory > 0 and now_memory > lim.max_memory_mb then
      raise exception using errcode = 'PQ001', message = 'quota exceeded: max_memory_mb',
        detail = json_build_object('quota', 'max_memory_mb', 'limit', lim.max_memory_mb, 'used', now_memory - d_memory, 'requested', d_memory)::text;
    elsif d_disk > 0 and now_disk > lim.max_disk_gb then
      raise exception using errcode = 'PQ001', message = 'quota exceeded: max_disk_gb',
        detail = json_build_object('quota', 'max_disk_gb', 'limit', lim.max_disk_gb, 'used', now_disk - d_disk, 'requested', d_disk)::text;
    end if;
  end if;
  return null;
end
$fn$;`);
    this.addSql(`create trigger "cloud_pods_usage" after insert or update of status, deleted_at, vcpu, memory_mb, disk_gb or delete on "cloud_pods" for each row execute function "cloud_pods_usage"();`);
    this.addSql(`insert into "tenant_usage" (tenant_id, pods, vcpu, memory_mb, disk_gb)
      select tenant_id, count(*), sum(vcpu), sum(memory_mb), sum(disk_gb) from cloud_pods
       where status <> 'TERMINATED' and deleted_at is null group by tenant_id;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "cloud_pods_usage" on "cloud_pods";`);
    this.addSql(`drop function if exists "cloud_pods_usage"();`);
    this.addSql(`drop table if exists "tenant_usage" cascade;`);
  }

}
