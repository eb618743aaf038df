/**
 * Usage ingestion through HTTP: each record answered accepted or duplicate in request order, a
 * batch sent again stores nothing twice, a key repeated inside a batch is stored once, a full batch
 * of 1000 fits one request, another tenant's subscription is a 422 that stores nothing, hostile
 * input is a 400 problem+json that stores nothing, and a read-only token may not report usage.
 */
import request from 'supertest';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { issueTenantToken } from '../helpers/tenants';

let stack: TestStack;
let a: PodTenant & { subscriptionId: string };
let b: PodTenant & { subscriptionId: string };

const http = () => request(stack.app);

async function pendingSubscription(t: PodTenant, slug: string): Promise<string> {
  const res = await http()
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', t.auth)
    .send({ customer_id: t.customerId, product_id: t.starter, pod_slug: slug });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

beforeAll(async () => {
  stack = await startTestStack();
  const [ta, tb] = await Promise.all([podTenant(stack, 'use-a'), podTenant(stack, 'use-b')]);
  a = { ...ta, subscriptionId: await pendingSubscription(ta, 'use-a-pod') };
  b = { ...tb, subscriptionId: await pendingSubscription(tb, 'use-b-pod') };
});
afterAll(async () => {
  await stack?.close();
});

const at = new Date(Date.now() - 60_000).toISOString();

function record(key: string, overrides: Record<string, unknown> = {}) {
  return {
    subscription_id: a.subscriptionId,
    metric: 'bandwidth_gb',
    quantity: 3,
    occurred_at: at,
    idempotency_key: key,
    ...overrides,
  };
}

function report(body: unknown, auth = a.auth) {
  return http()
    .post('/api/v1/usage')
    .set('Authorization', auth)
    .send(body as object);
}

async function usageRows(tenantId: string): Promise<number> {
  const [row] = await stack.db.query<{ n: number }>(
    'select count(*)::int as n from usage_records where tenant_id = $1',
    [tenantId],
  );
  return row!.n;
}

it('answers accepted or duplicate per record, in request order, and stores each key once', async () => {
  const first = await report({ records: [record('order-1'), record('order-2', { quantity: 7 })] });
  expect(first.status).toBe(200);
  expect(first.body).toEqual({
    results: [
      { idempotency_key: 'order-1', status: 'accepted' },
      { idempotency_key: 'order-2', status: 'accepted' },
    ],
  });

  const mixed = await report({ records: [record('order-3'), record('order-1'), record('order-4')] });
  expect(mixed.status).toBe(200);
  expect(mixed.body.results).toEqual([
    { idempotency_key: 'order-3', status: 'accepted' },
    { idempotency_key: 'order-1', status: 'duplicate' },
    { idempotency_key: 'order-4', status: 'accepted' },
  ]);

  const rows = await stack.db.query<{
    subscription_id: string;
    metric: string;
    quantity: string;
    occurred_at: Date;
  }>(
    `select subscription_id, metric, quantity, occurred_at from usage_records
      where tenant_id = $1 and idempotency_key = 'order-2'`,
    [a.id],
  );
  expect(rows).toEqual([
    { subscription_id: a.subscriptionId, metric: 'bandwidth_gb', quantity: '7', occurred_at: new Date(at) },
  ]);
});

it('stores keys with quotes, backslashes and placeholders exactly as sent', async () => {
  const keys = ["it's", 'back\\slash', 'what?', '$1 and ?', '"quoted"'];
  const res = await report({ records: keys.map((key) => record(key)) });
  expect(res.status).toBe(200);
  expect(res.body.results).toEqual(keys.map((key) => ({ idempotency_key: key, status: 'accepted' })));
  const rows = await stack.db.query<{ idempotency_key: string }>(
    'select idempotency_key from usage_records where tenant_id = $1 and idempotency_key = any($2)',
    [a.id, keys],
  );
  expect(rows.map((r) => r.idempotency_key).sort()).toEqual([...keys].sort());
});

it('answers a batch sent twice with all duplicates the second time and stores nothing more', async () => {
  const batch = { records: [record('twice-1'), record('twice-2'), record('twice-3')] };
  const first = await report(batch);
  expect(first.status).toBe(200);
  expect(first.body.results.map((r: { status: string }) => r.status)).toEqual([
    'accepted',
    'accepted',
    'accepted',
  ]);
  const before = await usageRows(a.id);

  const again = await report(batch);
  expect(again.status).toBe(200);
  expect(again.body.results).toEqual([
    { idempotency_key: 'twice-1', status: 'duplicate' },
    { idempotency_key: 'twice-2', status: 'duplicate' },
    { idempotency_key: 'twice-3', status: 'duplicate' },
  ]);
  expect(await usageRows(a.id)).toBe(before);
});

it('accepts the first record of a key repeated inside one batch and answers the rest duplicate', async () => {
  const res = await report({
    records: [
      record('repeat', { quantity: 1 }),
      record('repeat-other'),
      record('repeat', { quantity: 2 }),
      record('repeat', { quantity: 3 }),
    ],
  });
  expect(res.status).toBe(200);
  expect(res.body.results).toEqual([
    { idempotency_key: 'repeat', status: 'accepted' },
    { idempotency_key: 'repeat-other', status: 'accepted' },
    { idempotency_key: 'repeat', status: 'duplicate' },
    { idempotency_key: 'repeat', status: 'duplicate' },
  ]);
  const rows = await stack.db.query<{ quantity: string }>(
    `select quantity from usage_records where tenant_id = $1 and idempotency_key = 'repeat'`,
    [a.id],
  );
  expect(rows).toEqual([{ quantity: '1' }]);
});

it('takes 1000 records in one request, with long keys, and refuses 1001', async () => {
  const before = await usageRows(a.id);
  const keys = Array.from(
    { length: 1000 },
    (_, i) => `bulk-${String(i).padStart(4, '0')}-${'k'.repeat(180)}`,
  );
  const full = await report({ records: keys.map((key) => record(key)) });
  expect(full.status).toBe(200);
  expect(full.body.results).toHaveLength(1000);
  expect(full.body.results.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
  expect(full.body.results[999].idempotency_key).toBe(keys[999]);
  expect(await usageRows(a.id)).toBe(before + 1000);

  const tooMany = await report({
    records: Array.from({ length: 1001 }, (_, i) => record(`over-${i}`)),
  });
  expectProblem(tooMany, 400, 'validation-failed');
  expect(await usageRows(a.id)).toBe(before + 1000);
});

it("answers 422 naming the records that name another tenant's subscription, and stores nothing", async () => {
  const before = await usageRows(a.id);
  const res = await report({
    records: [
      record('cross-1'),
      record('cross-2', { subscription_id: b.subscriptionId }),
      record('cross-3'),
      record('cross-4', { subscription_id: 'sub_01jd0000000000000000000000' }),
    ],
  });
  expectProblem(res, 422, 'unprocessable');
  expect(res.body.record_indexes).toEqual([1, 3]);
  expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual([
    'records.1.subscription_id',
    'records.3.subscription_id',
  ]);
  expect(await usageRows(a.id)).toBe(before);
  expect(await usageRows(b.id)).toBe(0);
});

it('refuses hostile values with a 400 problem+json and stores nothing', async () => {
  const before = await usageRows(a.id);
  const far = new Date(Date.now() + 10 * 60_000).toISOString();
  const bad: [string, unknown][] = [
    ['float quantity', { records: [record('h-1', { quantity: 1.5 })] }],
    ['negative quantity', { records: [record('h-2', { quantity: -1 })] }],
    ['zero quantity', { records: [record('h-3', { quantity: 0 })] }],
    ['unsafe quantity', { records: [record('h-4', { quantity: 2 ** 60 })] }],
    ['quantity as a string', { records: [record('h-5', { quantity: '3' })] }],
    ['bad metric', { records: [record('h-6', { metric: 'Bandwidth GB' })] }],
    ['metric too long', { records: [record('h-7', { metric: `m${'x'.repeat(64)}` })] }],
    ['far-future occurred_at', { records: [record('h-8', { occurred_at: far })] }],
    ['not a date-time', { records: [record('h-9', { occurred_at: 'yesterday' })] }],
    ['unknown field', { records: [record('h-10', { note: 'x' })] }],
    ['unknown top-level field', { records: [record('h-11')], extra: true }],
    ['records not an array', { records: record('h-12') }],
    ['no records', { records: [] }],
    ['empty key', { records: [record('')] }],
    ['key too long', { records: [record('k'.repeat(201))] }],
    ['non-printable key', { records: [record('tab\there')] }],
    ['non-ASCII key', { records: [record('clé')] }],
    ['one bad record among good ones', { records: [record('h-13'), record('h-14', { quantity: -5 })] }],
  ];
  for (const [what, body] of bad) {
    const res = await report(body);
    try {
      expectProblem(res, 400, 'validation-failed');
    } catch (err) {
      throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`, { cause: err });
    }
  }
  expect(await usageRows(a.id)).toBe(before);
});

it('refuses a read-only token with 403 and stores nothing', async () => {
  const before = await usageRows(a.id);
  const readOnly = `Bearer ${await issueTenantToken(stack, a.id, ['read'])}`;
  const res = await report({ records: [record('ro-1')] }, readOnly);
  expectProblem(res, 403, 'forbidden');
  expect(await usageRows(a.id)).toBe(before);
});
