/**
 * CloudPods through HTTP with a real worker and the PostgreSQL-backed simulators: golden path,
 * injected failures rolled back and dead-lettered, operator retry, plan change, suspension,
 * termination, idempotency, quotas and tenant isolation.
 */
import request from 'supertest';
import { Product, SimDnsRecord, SimVm, Tenant, TenantQuota } from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import { ProviderError } from '../../src/providers/errors';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/shared';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { waitFor } from '../helpers/wait';
import { allocatedCapacity, getPod, podTenant, waitPod, type PodTenant } from '../helpers/pods';

let stack: TestStack;
const admin = () => `Bearer ${stack.adminToken}`;

async function createPod(t: PodTenant, slug: string, key?: string) {
  const req = request(stack.app).post('/api/v1/cloudpods').set('Authorization', t.auth);
  if (key) req.set('Idempotency-Key', key);
  return req.send({ customer_id: t.customerId, product_id: t.starter, slug });
}

const vmOf = (podId: string) => systemEm(stack.db.orm).findOne(SimVm, { podId });
const dnsOf = (fqdn: string) => systemEm(stack.db.orm).findOne(SimDnsRecord, { fqdn });
const allocated = () => allocatedCapacity(stack);

let a: PodTenant;
let b: PodTenant;

beforeAll(async () => {
  stack = await startTestStack();
  for (const name of ['hv-1', 'hv-2']) {
    const res = await request(stack.app)
      .post('/api/v1/nodes')
      .set('Authorization', admin())
      .send({ name, region: 'test-1', capacity_vcpu: 16, capacity_memory_mb: 65536, capacity_disk_gb: 2000 });
    expect(res.status).toBe(201);
  }
  [a, b] = await Promise.all([
    podTenant(stack, 'pods-a', { free: true }),
    podTenant(stack, 'pods-b', { free: true }),
  ]);
});
afterAll(async () => {
  await stack?.close();
});

describe('provisioning', () => {
  it('takes a pod to ACTIVE with a running VM, a DNS record and reserved capacity', async () => {
    const before = await allocated();
    const res = await createPod(a, 'web-1');
    expect(res.status).toBe(202);
    expect(res.body.pod).toMatchObject({
      slug: 'web-1',
      status: 'PENDING',
      hostname: 'web-1.pods-a.pods.podplane.test',
    });
    expect(res.body.job).toMatchObject({ type: 'PROVISION', status: 'QUEUED' });
    const pod = await waitPod(stack, a, res.body.pod.id, 'ACTIVE');
    expect(pod.current_job).toMatchObject({ type: 'PROVISION', status: 'COMPLETED', attempts: 1 });
    const vm = await vmOf(pod.id);
    expect(vm).toMatchObject({ status: 'running', vcpu: 1, memoryMb: 1024, diskGb: 20, locked: false });
    expect(pod.vm_id).toBe(vm?.vmId);
    expect(await dnsOf(pod.hostname)).toMatchObject({ content: pod.ip_address });
    expect(await allocated()).toEqual({
      vcpu: before.vcpu + 1,
      memoryMb: before.memoryMb + 1024,
      diskGb: before.diskGb + 20,
    });

    // The row turns ACTIVE inside the last activity; the workflow upserts its status right after.
    const handle = stack.temporal.workflow.getHandle(`cloudpod-${pod.id}`);
    const desc = await waitFor(
      async () => {
        const d = await handle.describe();
        return d.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus) === 'ACTIVE' ? d : undefined;
      },
      { what: 'PodplaneStatus ACTIVE' },
    );
    expect(desc.typedSearchAttributes.get(SEARCH_ATTRIBUTES.CloudPodId)).toBe(pod.id);
    expect(desc.typedSearchAttributes.get(SEARCH_ATTRIBUTES.TenantId)).toBe(a.id);
    expect(await desc.staticSummary()).toContain(pod.hostname);
  });

  it('rolls back an injected hypervisor failure, dead-letters the job, and an operator retry brings it to ACTIVE', async () => {
    const fault = await request(stack.app)
      .post('/api/v1/ops/simulator/faults')
      .set('Authorization', admin())
      .send({
        operation: 'createVm',
        slug_pattern: 'hvfail-*',
        times: 3,
        message: 'clone task failed: storage offline',
      });
    expect(fault.status).toBe(201);
    const before = await allocated();
    const res = await createPod(a, 'hvfail-1');
    const failed = await waitPod(stack, a, res.body.pod.id, 'FAILED');
    expect(failed.failure_reason).toMatch(/^create VM failed: .*clone task failed: storage offline/);
    expect(failed.current_job).toMatchObject({ status: 'DEAD_LETTER', attempts: 1 });
    expect(failed.current_job.failure_reason).toBe(failed.failure_reason);
    expect(await vmOf(failed.id)).toBeNull();
    expect(await dnsOf(failed.hostname)).toBeNull();
    expect(await allocated()).toEqual(before);
    expect(failed.node_id).toBeNull();

    const overview = await request(stack.app).get('/api/v1/ops/overview').set('Authorization', admin());
    expect(overview.status).toBe(200);
    expect(overview.body.dead_letters_24h.jobs.map((j: { id: string }) => j.id)).toContain(
      failed.current_job.id,
    );
    expect(overview.body.jobs_by_type.PROVISION.DEAD_LETTER).toBeGreaterThanOrEqual(1);

    expect(
      (
        await request(stack.app)
          .post(`/api/v1/ops/jobs/${failed.current_job.id}/retry`)
          .set('Authorization', a.auth)
      ).status,
    ).toBe(403);
    const retry = await request(stack.app)
      .post(`/api/v1/ops/jobs/${failed.current_job.id}/retry`)
      .set('Authorization', admin());
    expect(retry.status).toBe(202);
    const active = await waitPod(stack, a, res.body.pod.id, 'ACTIVE');
    expect(active.current_job).toMatchObject({ id: failed.current_job.id, status: 'COMPLETED', attempts: 2 });
    expect(active.failure_reason).toBeNull();
    expect(await vmOf(active.id)).not.toBeNull();
    const again = await request(stack.app)
      .post(`/api/v1/ops/jobs/${failed.current_job.id}/retry`)
      .set('Authorization', admin());
    expect(again.status).toBe(409);
  });

  it('destroys the VM and releases capacity when the DNS step fails', async () => {
    await request(stack.app)
      .post('/api/v1/ops/simulator/faults')
      .set('Authorization', admin())
      .send({ operation: 'upsertA', slug_pattern: 'dnsfail-*' });
    const before = await allocated();
    const res = await createPod(a, 'dnsfail-1');
    const failed = await waitPod(stack, a, res.body.pod.id, 'FAILED');
    expect(failed.failure_reason).toMatch(/^create DNS record failed: /);
    expect(await vmOf(failed.id)).toBeNull();
    expect(await allocated()).toEqual(before);
  });
});

describe('operations on an ACTIVE pod', () => {
  let podId: string;
  beforeAll(async () => {
    const res = await createPod(a, 'ops-1');
    podId = res.body.pod.id;
    await waitPod(stack, a, podId, 'ACTIVE');
  });

  it('previews and changes the plan STARTER → PRO, resizing the VM and the reservation', async () => {
    const preview = await request(stack.app)
      .get(`/api/v1/cloudpods/${podId}/plan/preview`)
      .query({ product_id: a.pro })
      .set('Authorization', a.auth);
    expect(preview.body).toEqual({
      current: { vcpu: 1, memory_mb: 1024, disk_gb: 20 },
      target: { vcpu: 2, memory_mb: 4096, disk_gb: 40 },
      allowed: true,
      problem: null,
      restarts: true,
    });
    const before = await allocated();
    const res = await request(stack.app)
      .post(`/api/v1/cloudpods/${podId}/plan`)
      .set('Authorization', a.auth)
      .send({ product_id: a.pro });
    expect(res.status).toBe(202);
    expect(res.body.job).toMatchObject({ type: 'CHANGE_PLAN' });
    const pod = await waitPod(stack, a, podId, 'ACTIVE');
    expect(pod.limits).toEqual({ vcpu: 2, memory_mb: 4096, disk_gb: 40 });
    expect(pod.product_id).toBe(a.pro);
    expect(pod.current_job).toMatchObject({ type: 'CHANGE_PLAN', status: 'COMPLETED' });
    // Temporal UI: the current details name the plan the pod has now; the static ones name none
    const handle = stack.temporal.workflow.getHandle(`cloudpod-${podId}`);
    const metadata = await waitFor(
      async () => {
        const m = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
        return m.currentDetails?.startsWith('ACTIVE') ? m : undefined;
      },
      { what: 'the current details at rest' },
    );
    expect(metadata.currentDetails).toBe('ACTIVE — plan 2 vCPU / 4096 MB / 40 GB');
    expect(await (await handle.describe()).staticDetails()).not.toMatch(/vCPU/);
    expect(await vmOf(podId)).toMatchObject({ vcpu: 2, memoryMb: 4096, diskGb: 40 });
    expect(await allocated()).toEqual({
      vcpu: before.vcpu + 1,
      memoryMb: before.memoryMb + 3072,
      diskGb: before.diskGb + 20,
    });

    const shrink = await request(stack.app)
      .post(`/api/v1/cloudpods/${podId}/plan`)
      .set('Authorization', a.auth)
      .send({ product_id: a.starter });
    expect(shrink.status).toBe(422);
    expect(shrink.body.detail).toMatch(/disks cannot shrink/);
    const unknown = await request(stack.app)
      .post(`/api/v1/cloudpods/${podId}/plan`)
      .set('Authorization', a.auth)
      .send({ product_id: b.pro });
    expect(unknown.status).toBe(422);
  });

  it('rolls a plan change back when the node has no room: job ROLLED_BACK, pod and VM unchanged', async () => {
    const em = systemEm(stack.db.orm);
    const huge = em.create(Product, {
      tenant: em.getReference(Tenant, a.id),
      code: 'HUGE',
      name: 'Huge',
      interval: 'MONTH',
      unitAmount: 99000,
      currency: 'EUR',
      vcpu: 17,
      memoryMb: 8192,
      diskGb: 80,
      includedBandwidthGb: 100,
    });
    await em.flush();
    const before = await getPod(stack, a, podId);
    const res = await request(stack.app)
      .post(`/api/v1/cloudpods/${podId}/plan`)
      .set('Authorization', a.auth)
      .send({ product_id: huge.id });
    expect(res.status).toBe(202);
    const pod = await waitPod(stack, a, podId, 'ACTIVE');
    expect(pod.current_job).toMatchObject({ type: 'CHANGE_PLAN', status: 'ROLLED_BACK' });
    expect(pod.current_job.failure_reason).toMatch(
      /reserve capacity failed: no ONLINE node has room|reserve capacity failed: .*room/,
    );
    expect(pod.limits).toEqual(before.limits);
    expect(pod.product_id).toBe(before.product_id);
    expect(await vmOf(podId)).toMatchObject({ vcpu: before.limits.vcpu, memoryMb: before.limits.memory_mb });
  });

  it('suspends (VM stopped, neither Podplane nor the customer can start it) and unsuspends', async () => {
    const res = await request(stack.app)
      .post(`/api/v1/cloudpods/${podId}/suspend`)
      .set('Authorization', a.auth);
    expect(res.status).toBe(202);
    const busy = await request(stack.app)
      .post(`/api/v1/cloudpods/${podId}/unsuspend`)
      .set('Authorization', a.auth);
    expect([409]).toContain(busy.status);
    await waitPod(stack, a, podId, 'SUSPENDED');
    expect(await vmOf(podId)).toMatchObject({ status: 'stopped', locked: true });
    const pod = await systemEm(stack.db.orm).findOneOrFail(SimVm, { podId });
    await expect(
      stack.providers.hypervisor.startVm({ podId, podSlug: 'ops-1', node: pod.node }),
    ).rejects.toThrow(ProviderError);
    const outsideStart = (as: string) =>
      request(stack.app)
        .post(`/api/v1/ops/simulator/vms/${pod.vmId}/start`)
        .set('Authorization', admin())
        .send({ as });
    const byCustomer = await outsideStart('customer');
    expectProblem(byCustomer, 409, 'conflict');
    expect(byCustomer.body.detail).toMatch(/suspended: its customer cannot start it/);
    expect(await vmOf(podId)).toMatchObject({ status: 'stopped' });
    expect(
      (await request(stack.app).post(`/api/v1/cloudpods/${podId}/suspend`).set('Authorization', a.auth))
        .status,
    ).toBe(409);

    // one of the provider's administrators starts it anyway: the unsuspend notices and reports it
    expect((await outsideStart('administrator')).body).toMatchObject({ status: 'running', suspended: true });
    expect(
      (await request(stack.app).post(`/api/v1/cloudpods/${podId}/unsuspend`).set('Authorization', a.auth))
        .status,
    ).toBe(202);
    await waitPod(stack, a, podId, 'ACTIVE');
    expect(await vmOf(podId)).toMatchObject({ status: 'running', locked: false });
    const overview = await request(stack.app).get('/api/v1/ops/overview').set('Authorization', admin());
    expect(overview.body.ops_events).toContainEqual(
      expect.objectContaining({ kind: 'suspended_vm_running', pod_id: podId, severity: 'HIGH' }),
    );
    expectProblem(await outsideStart('nobody'), 400, 'validation-failed');
  });

  it('backs up and restores', async () => {
    const res = await request(stack.app)
      .post(`/api/v1/cloudpods/${podId}/backups`)
      .set('Authorization', a.auth);
    expect(res.status).toBe(202);
    const backupId = res.body.backup.id as string;
    await waitPod(stack, a, podId, 'ACTIVE');
    const list = await request(stack.app)
      .get(`/api/v1/cloudpods/${podId}/backups`)
      .set('Authorization', a.auth);
    expect(list.body.data).toEqual([
      expect.objectContaining({ id: backupId, kind: 'MANUAL', status: 'COMPLETED', size_gb: 40 }),
    ]);
    const restore = await request(stack.app)
      .post(`/api/v1/cloudpods/${podId}/backups/${backupId}/restore`)
      .set('Authorization', a.auth);
    expect(restore.status).toBe(202);
    const pod = await waitPod(stack, a, podId, 'ACTIVE');
    expect(pod.current_job).toMatchObject({ type: 'RESTORE', status: 'COMPLETED' });
  });

  it('is invisible to another tenant (404 everywhere)', async () => {
    for (const [method, path] of [
      ['get', `/api/v1/cloudpods/${podId}`],
      ['get', `/api/v1/cloudpods/${podId}/jobs`],
      ['post', `/api/v1/cloudpods/${podId}/suspend`],
      ['delete', `/api/v1/cloudpods/${podId}`],
    ] as const) {
      const res = await request(stack.app)[method](path).set('Authorization', b.auth);
      expect(res.status).toBe(404);
    }
    const list = await request(stack.app).get('/api/v1/cloudpods').set('Authorization', b.auth);
    expect(list.body.data.map((p: { id: string }) => p.id)).not.toContain(podId);
    const forged = Buffer.from("x' or 1=1 --").toString('base64url');
    expect(
      (await request(stack.app).get(`/api/v1/cloudpods?cursor=${forged}`).set('Authorization', b.auth))
        .status,
    ).toBe(400);
  });

  it('terminates: pre-termination backup, VM and DNS gone, capacity released, workflow completed', async () => {
    const pod = await getPod(stack, a, podId);
    const before = await allocated();
    const res = await request(stack.app).delete(`/api/v1/cloudpods/${podId}`).set('Authorization', a.auth);
    expect(res.status).toBe(202);
    const done = await waitPod(stack, a, podId, 'TERMINATED');
    expect(done.terminated_at).not.toBeNull();
    expect(await vmOf(podId)).toBeNull();
    expect(await dnsOf(pod.hostname)).toBeNull();
    expect(await allocated()).toEqual({
      vcpu: before.vcpu - 2,
      memoryMb: before.memoryMb - 4096,
      diskGb: before.diskGb - 40,
    });
    const backups = await request(stack.app)
      .get(`/api/v1/cloudpods/${podId}/backups`)
      .set('Authorization', a.auth);
    expect(backups.body.data.map((x: { kind: string; status: string }) => [x.kind, x.status])).toContainEqual(
      ['PRE_TERMINATION', 'COMPLETED'],
    );
    const result = await stack.temporal.workflow.getHandle(`cloudpod-${podId}`).result();
    expect(result.status).toBe('TERMINATED');
    expect(
      (await request(stack.app).delete(`/api/v1/cloudpods/${podId}`).set('Authorization', a.auth)).status,
    ).toBe(409);
  });
});

describe('listing', () => {
  it('pages through the tenant’s pods by cursor and filters by status and customer', async () => {
    const all = await stack.db.query<{ id: string; status: string }>(
      'select id, status from cloud_pods where tenant_id = $1 order by id',
      [a.id],
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await request(stack.app)
        .get('/api/v1/cloudpods')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set('Authorization', a.auth);
      expect(res.status).toBe(200);
      seen.push(...res.body.data.map((p: { id: string }) => p.id));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.map((r) => r.id));

    // the list's items (built by PostgreSQL) are the pod views GET /:id answers, field for field
    const page = await request(stack.app)
      .get('/api/v1/cloudpods')
      .query({ limit: 100 })
      .set('Authorization', a.auth);
    expect(page.body.next_cursor).toBeNull();
    for (const item of page.body.data as { id: string }[]) {
      const one = await request(stack.app).get(`/api/v1/cloudpods/${item.id}`).set('Authorization', a.auth);
      const { current_job: _job, ...view } = one.body as Record<string, unknown>;
      expect(item).toEqual(view);
    }

    const failed = await request(stack.app)
      .get('/api/v1/cloudpods')
      .query({ status: 'FAILED' })
      .set('Authorization', a.auth);
    expect(failed.body.data.map((p: { id: string }) => p.id)).toEqual(
      all.filter((r) => r.status === 'FAILED').map((r) => r.id),
    );
    expect(failed.body.data[0]).toMatchObject({
      status: 'FAILED',
      customer_id: a.customerId,
      failure_reason: expect.any(String),
    });
    const byCustomer = await request(stack.app)
      .get('/api/v1/cloudpods')
      .query({ customer_id: b.customerId })
      .set('Authorization', a.auth);
    expect(byCustomer.body.data).toEqual([]);
    expect(
      (
        await request(stack.app)
          .get('/api/v1/cloudpods')
          .query({ status: 'ASLEEP' })
          .set('Authorization', a.auth)
      ).status,
    ).toBe(400);
  });
});

describe('ops overview', () => {
  it('shows jobs running longer than 15 minutes and the oldest queued job', async () => {
    const res = await createPod(a, 'overview-1');
    const pod = await waitPod(stack, a, res.body.pod.id, 'ACTIVE');
    await stack.db.query(
      `insert into provisioning_jobs (id, tenant_id, pod_id, type, queue_name, status, priority, scheduled_for, attempts, max_attempts,
          workflow_id, started_at, created_at, updated_at)
       values ('job_stuck0000000000000000000', $1, $2, 'BACKUP', 'provisioning', 'RUNNING', 0, now(), 1, 3, $3,
          now() - interval '20 minutes', now() - interval '20 minutes', now())`,
      [a.id, pod.id, pod.workflow_id],
    );
    const overview = await request(stack.app).get('/api/v1/ops/overview').set('Authorization', admin());
    expect(overview.status).toBe(200);
    expect(overview.body.running_over_15_min).toContainEqual(
      expect.objectContaining({ id: 'job_stuck0000000000000000000', pod_id: pod.id, type: 'BACKUP' }),
    );
    expect(overview.body.jobs_by_status.RUNNING).toBeGreaterThanOrEqual(1);
    expect(overview.body.jobs_by_type.PROVISION.COMPLETED).toBeGreaterThanOrEqual(1);
    expect(overview.body).toHaveProperty('oldest_queued');
    await stack.db.query(
      "update provisioning_jobs set status = 'CANCELED' where id = 'job_stuck0000000000000000000'",
    );
    expect((await request(stack.app).get('/api/v1/ops/overview').set('Authorization', a.auth)).status).toBe(
      403,
    );
  });
});

describe('nodes (platform admin)', () => {
  it('lists allocation against capacity, drains a node so it gets no new pods, and refuses tenant tokens', async () => {
    const list = await request(stack.app).get('/api/v1/nodes').set('Authorization', admin());
    expect(list.status).toBe(200);
    const total = list.body.data.reduce(
      (sum: number, n: { allocated: { vcpu: number } }) => sum + n.allocated.vcpu,
      0,
    );
    expect(total).toBe((await allocated()).vcpu);
    expect(list.body.data[0]).toMatchObject({
      status: 'ONLINE',
      capacity: { vcpu: 16, memory_mb: 65536, disk_gb: 2000 },
    });
    expect((await request(stack.app).get('/api/v1/nodes').set('Authorization', a.auth)).status).toBe(403);
    expect(
      (
        await request(stack.app).post('/api/v1/nodes').set('Authorization', admin()).send({
          name: 'hv-1',
          region: 'test-1',
          capacity_vcpu: 1,
          capacity_memory_mb: 2048,
          capacity_disk_gb: 20,
        })
      ).status,
    ).toBe(409);

    const extra = await request(stack.app).post('/api/v1/nodes').set('Authorization', admin()).send({
      name: 'hv-drained',
      region: 'test-1',
      capacity_vcpu: 64,
      capacity_memory_mb: 262144,
      capacity_disk_gb: 8000,
    });
    const drained = await request(stack.app)
      .post(`/api/v1/nodes/${extra.body.id as string}/drain`)
      .set('Authorization', admin());
    expect(drained.body.status).toBe('DRAINING');
    const res = await createPod(a, 'after-drain');
    const pod = await waitPod(stack, a, res.body.pod.id, 'ACTIVE');
    expect(pod.node_id).not.toBe(extra.body.id);
  });
});

describe('create guards', () => {
  it('makes one pod for one Idempotency-Key, even for simultaneous requests', async () => {
    const [r1, r2] = await Promise.all([
      createPod(a, 'idem-1', 'key-idem-1'),
      createPod(a, 'idem-1', 'key-idem-1'),
    ]);
    const statuses = [r1.status, r2.status].sort();
    expect([
      [202, 202],
      [202, 409],
    ]).toContainEqual(statuses);
    const replay = await createPod(a, 'idem-1', 'key-idem-1');
    expect(replay.status).toBe(202);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body.pod.id).toBe((r1.status === 202 ? r1 : r2).body.pod.id);
    const other = await createPod(a, 'idem-2', 'key-idem-1');
    expect(other.status).toBe(422);
    const rows = await stack.db.query("select id from cloud_pods where slug in ('idem-1', 'idem-2')");
    expect(rows).toHaveLength(1);
  });

  it('answers 409 for a taken slug and 422 for an unknown customer or product', async () => {
    await createPod(a, 'dupe-pod');
    expect((await createPod(a, 'dupe-pod')).status).toBe(409);
    const bad = await request(stack.app)
      .post('/api/v1/cloudpods')
      .set('Authorization', a.auth)
      .send({ customer_id: b.customerId, product_id: a.starter, slug: 'cross-1' });
    expect(bad.status).toBe(422);
    const bad2 = await request(stack.app)
      .post('/api/v1/cloudpods')
      .set('Authorization', a.auth)
      .send({ customer_id: a.customerId, product_id: 'prd_nope', slug: 'cross-2' });
    expect(bad2.status).toBe(422);
    const invalid = await request(stack.app)
      .post('/api/v1/cloudpods')
      .set('Authorization', a.auth)
      .send({ customer_id: 1, slug: 'A!' });
    expect(invalid.status).toBe(400);
  });

  it('enforces tenant quotas with a 403 naming the quota and the numbers', async () => {
    const em = systemEm(stack.db.orm);
    const [{ n }] = (await stack.db.query<{ n: number }>(
      "select count(*)::int as n from cloud_pods where tenant_id = $1 and status <> 'TERMINATED'",
      [b.id],
    )) as [{ n: number }];
    await em.nativeUpdate(TenantQuota, { tenant: b.id }, { maxPods: n + 1 });
    expect((await createPod(b, 'quota-1')).status).toBe(202);
    const res = await createPod(b, 'quota-2');
    expect(res.status).toBe(403);
    expect(res.body.type).toBe('https://podplane.dev/problems/quota-exceeded');
    expect(res.body.quota).toEqual({ quota: 'max_pods', limit: n + 1, used: n + 1, requested: 1 });
    expect(await stack.db.query("select id from cloud_pods where slug = 'quota-2'")).toHaveLength(0);
  });
});
