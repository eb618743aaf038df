/**
 * Tenant quotas for platform admins: GET /api/v1/tenants/:id/quotas shows limits and usage,
 * PATCH changes them (validated, 404 for an unknown tenant, nothing written on a bad body), a
 * raised max_pods lets the tenant create past the old limit, and the service the CLI calls does
 * the same as the route.
 */
import request from 'supertest';
import { TenantQuotasBody } from '../../src/api/routes/tenants.schemas';
import { systemEm } from '../../src/db/orm';
import { DEFAULT_QUOTAS } from '../../src/domain/tenants';
import { issueToken } from '../../src/services/api-tokens';
import { setTenantQuotas, tenantQuotas } from '../../src/services/tenants';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { insertPod } from '../helpers/sql-rows';
import { issueTenantToken } from '../helpers/tenants';

let stack: TestStack;
let t: PodTenant;
let other: PodTenant;
const admin = () => `Bearer ${stack.adminToken}`;
const getQuotas = (id: string, auth = admin()) =>
  request(stack.app).get(`/api/v1/tenants/${id}/quotas`).set('Authorization', auth);
const patchQuotas = (id: string, body: unknown, auth = admin()) =>
  request(stack.app)
    .patch(`/api/v1/tenants/${id}/quotas`)
    .set('Authorization', auth)
    .send(body as object);
const quotaRow = async (tenantId: string) =>
  (
    await stack.db.query(
      'select max_pods, max_vcpu, max_memory_mb, max_disk_gb from tenant_quotas where tenant_id = $1',
      [tenantId],
    )
  )[0];
const createPod = (slug: string) =>
  request(stack.app)
    .post('/api/v1/cloudpods')
    .set('Authorization', t.auth)
    .send({ customer_id: t.customerId, product_id: t.starter, slug });

beforeAll(async () => {
  stack = await startTestStack();
  [t, other] = await Promise.all([
    podTenant(stack, 'quota-admin', { free: true }),
    podTenant(stack, 'quota-other', { free: true }),
  ]);
});
afterAll(async () => {
  await stack?.close();
});

describe('GET /api/v1/tenants/:id/quotas', () => {
  it('shows the limits and what live pods use (not terminated or deleted ones)', async () => {
    const live = { tenantId: t.id, customerId: t.customerId, productId: t.pro };
    await insertPod(stack.db, { ...live, slug: 'use-1', resources: { vcpu: 2, memoryMb: 4096, diskGb: 40 } });
    await insertPod(stack.db, {
      ...live,
      slug: 'use-2',
      status: 'FAILED',
      resources: { vcpu: 1, memoryMb: 1024, diskGb: 20 },
    });
    await insertPod(stack.db, { ...live, slug: 'use-gone', status: 'TERMINATED' });
    await insertPod(stack.db, { ...live, slug: 'use-deleted', deleted: true });
    const res = await getQuotas(t.id);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      tenant_id: t.id,
      limits: {
        max_pods: DEFAULT_QUOTAS.maxPods,
        max_vcpu: DEFAULT_QUOTAS.maxVcpu,
        max_memory_mb: DEFAULT_QUOTAS.maxMemoryMb,
        max_disk_gb: DEFAULT_QUOTAS.maxDiskGb,
      },
      usage: { pods: 2, vcpu: 3, memory_mb: 5120, disk_gb: 60 },
    });
  });

  it('is for platform admins: a tenant token gets 403, an unknown tenant 404', async () => {
    expectProblem(await getQuotas(t.id, t.auth), 403, 'forbidden');
    expectProblem(await getQuotas(other.id, t.auth), 403, 'forbidden');
    expectProblem(await getQuotas('ten_01jd0000000000000000000000'), 404, 'not-found');
    expectProblem(await getQuotas('nope'), 404, 'not-found');
  });
});

describe('PATCH /api/v1/tenants/:id/quotas', () => {
  it('raises max_pods so the tenant can create past the old limit; other limits stay', async () => {
    const used = (await getQuotas(t.id)).body.usage.pods as number;
    const lowered = await patchQuotas(t.id, { max_pods: used });
    expect(lowered.status).toBe(200);
    expect(lowered.body.limits.max_pods).toBe(used);
    const refused = await createPod('past-limit');
    expectProblem(refused, 403, 'quota-exceeded');
    expect(refused.body.quota).toMatchObject({ quota: 'max_pods', limit: used });

    const raised = await patchQuotas(t.id, { max_pods: used + 10, max_vcpu: 128 });
    expect(raised.status).toBe(200);
    expect(raised.body).toMatchObject({
      tenant_id: t.id,
      limits: {
        max_pods: used + 10,
        max_vcpu: 128,
        max_memory_mb: DEFAULT_QUOTAS.maxMemoryMb,
        max_disk_gb: DEFAULT_QUOTAS.maxDiskGb,
      },
      usage: { pods: used },
    });
    expect(await quotaRow(t.id)).toEqual({
      max_pods: used + 10,
      max_vcpu: 128,
      max_memory_mb: DEFAULT_QUOTAS.maxMemoryMb,
      max_disk_gb: DEFAULT_QUOTAS.maxDiskGb,
    });
    expect((await createPod('past-limit')).status).toBe(202);
    expect((await getQuotas(t.id)).body.usage.pods).toBe(used + 1);
    // The other tenant's quotas are untouched.
    expect((await quotaRow(other.id))?.max_pods).toBe(DEFAULT_QUOTAS.maxPods);
  });

  it.each<[string, unknown]>([
    ['an empty body', {}],
    ['zero', { max_pods: 0 }],
    ['a negative number', { max_vcpu: -4 }],
    ['a fraction', { max_memory_mb: 1024.5 }],
    ['a numeric string', { max_disk_gb: '100' }],
    ['null', { max_pods: null }],
    ['a number past the upper bound', { max_pods: 10_000_000 }],
    ['a memory limit past the upper bound', { max_memory_mb: 2 ** 31 }],
    ['an unknown field', { max_pods: 10, max_gpus: 1 }],
    ['an array', [1, 2]],
    ['a hostile string', { max_pods: '1; drop table tenant_quotas; --' }],
  ])('refuses %s with 400 and writes nothing', async (_name, body) => {
    const before = await quotaRow(t.id);
    const res = await patchQuotas(t.id, body);
    expectProblem(res, 400, 'validation-failed');
    expect(Array.isArray(res.body.errors)).toBe(true);
    expect(await quotaRow(t.id)).toEqual(before);
  });

  it('answers 404 for an unknown tenant and 403 for tenant tokens, writing nothing', async () => {
    const before = await quotaRow(t.id);
    expectProblem(await patchQuotas('ten_01jd0000000000000000000000', { max_pods: 50 }), 404, 'not-found');
    expectProblem(await patchQuotas(t.id, { max_pods: 50 }, t.auth), 403, 'forbidden');
    expectProblem(await patchQuotas(other.id, { max_pods: 50 }, t.auth), 403, 'forbidden');
    expect(await quotaRow(t.id)).toEqual(before);
    expect(
      await stack.db.query('select 1 from tenant_quotas where tenant_id = $1', [
        'ten_01jd0000000000000000000000',
      ]),
    ).toEqual([]);
  });

  it('needs the write scope: a read-only admin token reads but cannot change', async () => {
    const { secret } = await issueToken(systemEm(stack.db.orm), {
      tenantId: null,
      name: 'read-only admin',
      scopes: ['read'],
    });
    const before = await quotaRow(t.id);
    expect((await getQuotas(t.id, `Bearer ${secret}`)).status).toBe(200);
    expectProblem(await patchQuotas(t.id, { max_pods: 50 }, `Bearer ${secret}`), 403, 'forbidden');
    const ro = await issueTenantToken(stack, t.id, ['read']);
    expectProblem(await patchQuotas(t.id, { max_pods: 50 }, `Bearer ${ro}`), 403, 'forbidden');
    expect(await quotaRow(t.id)).toEqual(before);
  });

  it('is in the OpenAPI document', async () => {
    const doc = await request(stack.app).get('/openapi.json');
    const path = doc.body.paths['/api/v1/tenants/{id}/quotas'];
    expect(path.get.responses['200']).toBeDefined();
    expect(path.patch.responses['200']).toBeDefined();
    expect(path.patch.responses['400']).toBeDefined();
    expect(path.patch.responses['404']).toBeDefined();
  });
});

describe('the service behind the route and `podplane tenant:quotas`', () => {
  it('changes only the given limits, validated by the same schema, and reports usage', async () => {
    // What the CLI does with `--max-disk-gb 5000`: the route's schema, then the service.
    const input = TenantQuotasBody.parse({ max_disk_gb: 5000 });
    const { report, previous } = await setTenantQuotas(systemEm(stack.db.orm), other.id, {
      maxDiskGb: input.max_disk_gb,
    });
    expect(previous.max_disk_gb).toBe(DEFAULT_QUOTAS.maxDiskGb);
    expect(report).toEqual({
      tenant_id: other.id,
      limits: {
        max_pods: DEFAULT_QUOTAS.maxPods,
        max_vcpu: DEFAULT_QUOTAS.maxVcpu,
        max_memory_mb: DEFAULT_QUOTAS.maxMemoryMb,
        max_disk_gb: 5000,
      },
      usage: { pods: 0, vcpu: 0, memory_mb: 0, disk_gb: 0 },
    });
    expect(await tenantQuotas(systemEm(stack.db.orm), other.id)).toEqual(report);
    expect(TenantQuotasBody.safeParse({ max_pods: 0 }).success).toBe(false);
    await expect(
      setTenantQuotas(systemEm(stack.db.orm), 'ten_01jd0000000000000000000000', { maxPods: 5 }),
    ).rejects.toMatchObject({ kind: 'not_found' });
  });
});
