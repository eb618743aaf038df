/**
 * DELETE /api/v1/customers/:id refuses while the customer has live pods (409 naming them), checks
 * and deletes in one transaction with the customer row locked, and deletes a customer whose pods
 * are all terminated (or who never had any).
 */
import { Client } from 'pg';
import request from 'supertest';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { insertPod } from '../helpers/sql-rows';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let a: PodTenant;
let b: PodTenant;

async function newCustomer(t: PodTenant, email: string): Promise<string> {
  const res = await request(stack.app)
    .post('/api/v1/customers')
    .set('Authorization', t.auth)
    .send({ email, name: 'Delete Me' });
  expect(res.status).toBe(201);
  return res.body.id as string;
}
const del = (t: PodTenant, id: string) =>
  request(stack.app).delete(`/api/v1/customers/${id}`).set('Authorization', t.auth);
const deletedAt = async (id: string) =>
  (await stack.db.query<{ deleted_at: unknown }>('select deleted_at from customers where id = $1', [id]))[0]
    ?.deleted_at ?? null;
const pod = (t: PodTenant, customerId: string, slug: string, status = 'ACTIVE', deleted = false) =>
  insertPod(stack.db, { tenantId: t.id, customerId, productId: t.starter, slug, status, deleted });

beforeAll(async () => {
  stack = await startTestStack();
  [a, b] = await Promise.all([
    podTenant(stack, 'cus-del-a', { free: true }),
    podTenant(stack, 'cus-del-b', { free: true }),
  ]);
});
afterAll(async () => {
  await stack?.close();
});

describe('DELETE /api/v1/customers/:id', () => {
  it('refuses with 409 naming the live pods, and deletes nothing', async () => {
    const cus = await newCustomer(a, 'live@a.test');
    const active = await pod(a, cus, 'live-active');
    const failed = await pod(a, cus, 'live-failed', 'FAILED');
    await pod(a, cus, 'gone-terminated', 'TERMINATED');
    await pod(a, cus, 'gone-soft-deleted', 'ACTIVE', true);

    const res = await del(a, cus);
    expectProblem(res, 409, 'conflict');
    expect(res.body.live_pod_count).toBe(2);
    expect(res.body.live_pods).toEqual(
      expect.arrayContaining([
        { id: active.id, slug: 'live-active', status: 'ACTIVE' },
        { id: failed.id, slug: 'live-failed', status: 'FAILED' },
      ]),
    );
    expect(res.body.live_pods).toHaveLength(2);
    expect(res.body.detail).toContain(active.id);
    expect(await deletedAt(cus)).toBeNull();
    expect(
      (await request(stack.app).get(`/api/v1/customers/${cus}`).set('Authorization', a.auth)).status,
    ).toBe(200);

    // Once every pod is terminated the customer can go.
    await stack.db.query("update cloud_pods set status = 'TERMINATED' where customer_id = $1", [cus]);
    expect((await del(a, cus)).status).toBe(204);
    expect(await deletedAt(cus)).not.toBeNull();
    expectProblem(await del(a, cus), 404, 'not-found');
  });

  it('caps the list of live pods and still counts them all', async () => {
    const cus = await newCustomer(a, 'many@a.test');
    for (let i = 0; i < 23; i += 1) await pod(a, cus, `many-${i}`);
    const res = await del(a, cus);
    expectProblem(res, 409, 'conflict');
    expect(res.body.live_pod_count).toBe(23);
    expect(res.body.live_pods).toHaveLength(20);
    expect(await deletedAt(cus)).toBeNull();
  });

  it('deletes a customer who never had a pod (204) and frees the email', async () => {
    const cus = await newCustomer(a, 'nopods@a.test');
    expect((await del(a, cus)).status).toBe(204);
    expect(await deletedAt(cus)).not.toBeNull();
    await newCustomer(a, 'nopods@a.test');
  });

  it("answers 404 for another tenant's customer and leaves it alone", async () => {
    const cus = await newCustomer(a, 'mine@a.test');
    expectProblem(await del(b, cus), 404, 'not-found');
    expectProblem(await del(b, 'cus_nope'), 404, 'not-found');
    expect(await deletedAt(cus)).toBeNull();
  });

  it('waits for a pod insert in flight and then refuses, instead of deleting under it', async () => {
    const cus = await newCustomer(a, 'race@a.test');
    // A pod create of another request, inserted but not committed yet.
    const other = new Client({ connectionString: stack.db.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query(
        `insert into cloud_pods (id, tenant_id, customer_id, product_id, slug, hostname, status, vcpu, memory_mb, disk_gb,
            workflow_id, created_at, updated_at)
         values ('pod_01race0000000000000000000', $1, $2, $3, 'race-1', 'race-1.sql.test', 'PENDING', 1, 1024, 20,
            'cloudpod-pod_01race0000000000000000000', now(), now())`,
        [a.id, cus, a.starter],
      );
      const pending = del(a, cus).then((r) => r);
      // The delete must be waiting on the customer row lock before the insert commits.
      await waitFor(
        async () =>
          Number(
            (
              await stack.db.query<{ n: string }>(
                `select count(*) as n from pg_stat_activity
                  where datname = current_database() and wait_event_type = 'Lock' and query ilike '%customers%'`,
              )
            )[0]?.n ?? 0,
          ) > 0,
        { what: 'the delete to wait on the customer row', timeoutMs: 10000, intervalMs: 20 },
      );
      await other.query('commit');
      const res = await pending;
      expectProblem(res, 409, 'conflict');
      expect(res.body.live_pods).toEqual([
        { id: 'pod_01race0000000000000000000', slug: 'race-1', status: 'PENDING' },
      ]);
      expect(await deletedAt(cus)).toBeNull();
    } finally {
      await other.end();
    }
  });

  it('makes a pod create that races a delete in flight wait for it and then refuse the deleted customer (422)', async () => {
    const cus = await newCustomer(a, 'race2@a.test');
    // The delete of another request: customer row locked and soft-deleted, not committed yet.
    const other = new Client({ connectionString: stack.db.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query('select id from customers where id = $1 for update', [cus]);
      await other.query('update customers set deleted_at = now() where id = $1', [cus]);
      const pending = request(stack.app)
        .post('/api/v1/cloudpods')
        .set('Authorization', a.auth)
        .send({ customer_id: cus, product_id: a.starter, slug: 'race-2' })
        .then((r) => r);
      await waitFor(
        async () =>
          Number(
            (
              await stack.db.query<{ n: string }>(
                `select count(*) as n from pg_stat_activity
                  where datname = current_database() and wait_event_type = 'Lock'`,
              )
            )[0]?.n ?? 0,
          ) > 0,
        { what: 'the pod create to wait on the customer row', timeoutMs: 10000, intervalMs: 20 },
      );
      await other.query('commit');
      const res = await pending;
      expectProblem(res, 422, 'unprocessable');
      expect(await stack.db.query("select id from cloud_pods where slug = 'race-2'")).toHaveLength(0);
    } finally {
      await other.end();
    }
  });
});
