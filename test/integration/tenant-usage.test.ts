/**
 * The per-tenant usage counters the `cloud_pods_usage` trigger keeps, against real PostgreSQL:
 * they equal a recount of the tenant's live pods after every kind of change, an insert past a
 * quota fails with the violation, the trigger's default quotas are DEFAULT_QUOTAS, and 200
 * concurrent creates against a quota of 50 make exactly 50 pods.
 */
import { TenantQuota, type Customer, type Product, type Tenant } from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import { insertPodWithJob } from '../../src/db/repositories/cloudpods';
import { newId } from '../../src/domain/ids';
import { DEFAULT_QUOTAS } from '../../src/domain/tenants';
import { seedCatalog } from '../helpers/catalog';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

let db: TestDatabase;
let seq = 0;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.close());

async function tenantWithQuota(
  maxPods?: number,
): Promise<{ tenant: Tenant; customer: Customer; product: Product }> {
  const seeded = await seedCatalog(db.orm, `usage-${++seq}`, { vcpu: 1, memoryMb: 1024, diskGb: 10 });
  if (maxPods !== undefined) {
    const em = systemEm(db.orm);
    em.create(TenantQuota, { tenant: seeded.tenant.id, maxPods });
    await em.flush();
  }
  return seeded;
}

function insert(
  t: { tenant: Tenant; customer: Customer; product: Product },
  slug = `p-${newId('pod').slice(-10)}`,
) {
  const podId = newId('pod');
  const subscriptionId = newId('subscription');
  return insertPodWithJob(db.orm.em, {
    podId,
    jobId: newId('job'),
    tenantId: t.tenant.id,
    customerId: t.customer.id,
    productId: t.product.id,
    slug,
    zone: 'pods.test',
    workflowId: `cloudpod-${podId}`,
    restoreFromBackupId: null,
    queueName: 'provisioning',
    maxAttempts: 3,
    now: new Date(),
    subscriptionId,
    activationWorkflowId: `subscription-activate-${subscriptionId}`,
  });
}

async function counters(tenantId: string) {
  const [row] = await db.query<{ pods: number; vcpu: number; memory_mb: number; disk_gb: number }>(
    'select pods, vcpu, memory_mb, disk_gb from tenant_usage where tenant_id = $1',
    [tenantId],
  );
  return row ?? { pods: 0, vcpu: 0, memory_mb: 0, disk_gb: 0 };
}

async function recount(tenantId: string) {
  const [row] = await db.query<{ pods: number; vcpu: number; memory_mb: number; disk_gb: number }>(
    `select count(*)::int as pods, coalesce(sum(vcpu), 0)::int as vcpu, coalesce(sum(memory_mb), 0)::int as memory_mb,
            coalesce(sum(disk_gb), 0)::int as disk_gb
       from cloud_pods where tenant_id = $1 and status <> 'TERMINATED' and deleted_at is null`,
    [tenantId],
  );
  return row;
}

describe('tenant usage counters', () => {
  it('equal a recount after inserts, resizes, terminations, soft deletes and deletes', async () => {
    const t = await tenantWithQuota();
    const made = [await insert(t), await insert(t), await insert(t), await insert(t)];
    const ids = made.map((m) => (m.ok ? m.pod.id : ''));
    expect(await counters(t.tenant.id)).toEqual({ pods: 4, vcpu: 4, memory_mb: 4096, disk_gb: 40 });
    await db.query(`update cloud_pods set vcpu = 2, memory_mb = 4096, disk_gb = 40 where id = $1`, [ids[0]]);
    await db.query(`update cloud_pods set status = 'TERMINATED' where id = $1`, [ids[1]]);
    await db.query(`update cloud_pods set deleted_at = now() where id = $1`, [ids[2]]);
    await db.query(`delete from provisioning_jobs where pod_id = $1`, [ids[3]]);
    await db.query(`delete from cloud_pods where id = $1`, [ids[3]]);
    // a change that moves nothing (a terminated pod terminated again, a status among live ones)
    await db.query(`update cloud_pods set status = 'TERMINATED' where id = $1`, [ids[1]]);
    await db.query(`update cloud_pods set status = 'ACTIVE' where id = $1`, [ids[0]]);
    expect(await counters(t.tenant.id)).toEqual(await recount(t.tenant.id));
    expect(await counters(t.tenant.id)).toEqual({ pods: 1, vcpu: 2, memory_mb: 4096, disk_gb: 40 });
  });

  it('refuse an insert past the quota with the violation, and hold a tenant without a quota row to DEFAULT_QUOTAS', async () => {
    const t = await tenantWithQuota(1);
    expect((await insert(t)).ok).toBe(true);
    const refused = await insert(t).catch((err: { code?: string; detail?: string }) => err);
    expect(refused).toMatchObject({ code: 'PQ001' });
    expect(JSON.parse((refused as { detail: string }).detail)).toEqual({
      quota: 'max_pods',
      limit: 1,
      used: 1,
      requested: 1,
    });
    expect(await counters(t.tenant.id)).toEqual(await recount(t.tenant.id));

    const unlimited = await tenantWithQuota();
    await db.query('delete from tenant_quotas where tenant_id = $1', [unlimited.tenant.id]);
    await db.query(
      `insert into tenant_usage (tenant_id, pods, vcpu, memory_mb, disk_gb) values ($1, $2, 0, 0, 0)
       on conflict (tenant_id) do update set pods = excluded.pods`,
      [unlimited.tenant.id, DEFAULT_QUOTAS.maxPods - 1],
    );
    expect((await insert(unlimited)).ok).toBe(true);
    const past = await insert(unlimited).catch((err: { detail?: string }) => err);
    expect(JSON.parse((past as { detail: string }).detail)).toMatchObject({
      quota: 'max_pods',
      limit: DEFAULT_QUOTAS.maxPods,
    });
    for (const [quota, limit] of [
      ['max_vcpu', DEFAULT_QUOTAS.maxVcpu],
      ['max_memory_mb', DEFAULT_QUOTAS.maxMemoryMb],
      ['max_disk_gb', DEFAULT_QUOTAS.maxDiskGb],
    ] as const) {
      const set = ['vcpu', 'memory_mb', 'disk_gb']
        .map((c) => `${c} = ${c === quota.replace('max_', '') ? '$2' : '0'}`)
        .join(', ');
      await db.query(`update tenant_usage set pods = 0, ${set} where tenant_id = $1`, [
        unlimited.tenant.id,
        limit,
      ]);
      const over = await insert(unlimited).catch((err: { detail?: string }) => err);
      expect(JSON.parse((over as { detail: string }).detail)).toMatchObject({ quota, limit });
    }
  });

  it('stay exact under 200 concurrent creates against a quota of 50', async () => {
    const t = await tenantWithQuota(50);
    const outcomes = await Promise.allSettled(Array.from({ length: 200 }, () => insert(t)));
    const made = outcomes.filter((o) => o.status === 'fulfilled' && o.value.ok).length;
    const refused = outcomes.filter(
      (o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'PQ001',
    ).length;
    expect({ made, refused }).toEqual({ made: 50, refused: 150 });
    expect(await counters(t.tenant.id)).toEqual({ pods: 50, vcpu: 50, memory_mb: 51200, disk_gb: 500 });
    expect(await counters(t.tenant.id)).toEqual(await recount(t.tenant.id));
  });
});
