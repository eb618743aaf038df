/**
 * Subscriptions through HTTP, with the simulated hypervisor and payments: activation provisions
 * the pod first and bills only a pod that came up; a good card pays the first invoice (ACTIVE), a
 * declined one leaves it open (PAST_DUE), a pod that fails is never charged (PENDING, customer
 * told), a trial starts instead of an invoice; activation happens once; other tenants see 404;
 * hostile input stores nothing.
 */
import request from 'supertest';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let a: PodTenant;
let b: PodTenant;

const http = () => request(stack.app);

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'sub-node-1', 32);
  [a, b] = await Promise.all([podTenant(stack, 'sub-a'), podTenant(stack, 'sub-b')]);
});
afterAll(async () => {
  await stack?.close();
});

async function customerWith(t: PodTenant, email: string, paymentMethod: string | null): Promise<string> {
  const created = await http()
    .post('/api/v1/customers')
    .set('Authorization', t.auth)
    .send({ email, name: email });
  expect(created.status).toBe(201);
  if (paymentMethod) {
    const updated = await http()
      .patch(`/api/v1/customers/${created.body.id}`)
      .set('Authorization', t.auth)
      .send({ default_payment_method: paymentMethod });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      default_payment_method: paymentMethod,
      collection_method: 'AUTOMATIC',
    });
  }
  return created.body.id as string;
}

async function subscribe(t: PodTenant, body: Record<string, unknown>) {
  const res = await http().post('/api/v1/billing/subscriptions').set('Authorization', t.auth).send(body);
  expect(res.status).toBe(201);
  expect(res.body.status).toBe('PENDING');
  return res.body as { id: string; unit_amount: number; currency: string };
}

function activate(t: PodTenant, id: string) {
  return http().post(`/api/v1/billing/subscriptions/${id}/activate`).set('Authorization', t.auth).send();
}

function waitSubscription(t: PodTenant, id: string, status: string, timeoutMs = 60_000) {
  return waitFor(
    async () => {
      const res = await http().get(`/api/v1/billing/subscriptions/${id}`).set('Authorization', t.auth);
      return res.body.status === status ? res.body : undefined;
    },
    { what: `subscription ${id} ${status}`, timeoutMs },
  );
}

async function invoicesOf(t: PodTenant, subscriptionId: string) {
  const res = await http()
    .get(`/api/v1/billing/invoices?subscription_id=${subscriptionId}`)
    .set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body.data as { id: string; status: string; number: string | null; total: number }[];
}

const payments = (invoiceId: string) =>
  stack.db.query<{
    status: string;
    decline_kind: string | null;
    failure_code: string | null;
    idempotency_key: string;
  }>('select status, decline_kind, failure_code, idempotency_key from payments where invoice_id = $1', [
    invoiceId,
  ]);

it('provisions the pod first, then invoices and charges a good card: ACTIVE, invoice PAID, once', async () => {
  const customer = await customerWith(a, 'visa@sub-a.test', 'pm_card_visa');
  const sub = await subscribe(a, { customer_id: customer, product_id: a.starter, pod_slug: 'sub-visa' });
  const started = await activate(a, sub.id);
  expect(started.status).toBe(202);
  expect(started.body.workflow_id).toBe(`subscription-activate-${sub.id}`);

  const active = await waitSubscription(a, sub.id, 'ACTIVE');
  const pod = await http().get(`/api/v1/cloudpods/${active.pod_id}`).set('Authorization', a.auth);
  expect(pod.body).toMatchObject({ status: 'ACTIVE', slug: 'sub-visa' });
  expect(active.current_period_start).toBe(pod.body.activated_at);
  expect(new Date(active.current_period_end).getTime()).toBeGreaterThan(
    new Date(active.current_period_start).getTime(),
  );

  const [invoice, ...others] = await invoicesOf(a, sub.id);
  expect(others).toEqual([]);
  expect(invoice).toMatchObject({ status: 'PAID', total: 1000 });
  expect(invoice?.number).toMatch(/^INV-\d{4}-\d{6}$/);
  // charged automatically, it is due when issued (net terms are for invoices customers pay themselves)
  const full = await http().get(`/api/v1/billing/invoices/${invoice!.id}`).set('Authorization', a.auth);
  expect(full.body.due_date).toBe(full.body.finalized_at);
  expect(await payments(invoice!.id)).toEqual([
    {
      status: 'SUCCEEDED',
      decline_kind: null,
      failure_code: null,
      idempotency_key: `${invoice!.id}:attempt-1`,
    },
  ]);

  const again = await activate(a, sub.id);
  expectProblem(again, 409, 'conflict');
});

it('leaves the first invoice open and the subscription PAST_DUE when the card is declined', async () => {
  const customer = await customerWith(a, 'declined@sub-a.test', 'pm_card_chargeDeclined');
  const sub = await subscribe(a, { customer_id: customer, product_id: a.starter, pod_slug: 'sub-declined' });
  expect((await activate(a, sub.id)).status).toBe(202);
  await waitSubscription(a, sub.id, 'PAST_DUE');
  const [invoice] = await invoicesOf(a, sub.id);
  expect(invoice).toMatchObject({ status: 'OPEN' });
  expect(await payments(invoice!.id)).toEqual([
    expect.objectContaining({ status: 'FAILED', decline_kind: 'HARD' }),
  ]);
});

it('charges nothing for a pod that never comes up: PENDING, no invoice, the customer told', async () => {
  const fault = await http()
    .post('/api/v1/ops/simulator/faults')
    .set('Authorization', `Bearer ${stack.adminToken}`)
    .send({ operation: 'createVm', slug_pattern: 'sub-broken-*' });
  expect(fault.status).toBe(201);
  const customer = await customerWith(a, 'broken@sub-a.test', 'pm_card_visa');
  const sub = await subscribe(a, { customer_id: customer, product_id: a.starter, pod_slug: 'sub-broken-1' });
  expect((await activate(a, sub.id)).status).toBe(202);

  const told = await waitFor(
    async () => {
      const rows = await stack.db.query<{ recipient: string }>(
        `select recipient from notifications where template = 'subscription.activation_failed' and dedupe_key like $1`,
        [`%${sub.id}%`],
      );
      return rows.length > 0 ? rows : undefined;
    },
    { what: 'the activation failure notification', timeoutMs: 60_000 },
  );
  expect(told).toEqual([{ recipient: 'broken@sub-a.test' }]);
  const now = await http().get(`/api/v1/billing/subscriptions/${sub.id}`).set('Authorization', a.auth);
  expect(now.body).toMatchObject({ status: 'PENDING' });
  const pod = await http().get(`/api/v1/cloudpods/${now.body.pod_id}`).set('Authorization', a.auth);
  expect(pod.body.status).toBe('FAILED');
  expect(await invoicesOf(a, sub.id)).toEqual([]);
  const state = await stack.temporal.workflow.getHandle(`subscription-activate-${sub.id}`).query('state');
  expect(state).toMatchObject({ step: 'pod-failed', status: 'PENDING', invoiceId: null });
});

it('starts a trial instead of invoicing when the subscription has one', async () => {
  const customer = await customerWith(a, 'trial@sub-a.test', null);
  const sub = await subscribe(a, {
    customer_id: customer,
    product_id: a.pro,
    pod_slug: 'sub-trial',
    trial_days: 14,
  });
  expect((await activate(a, sub.id)).status).toBe(202);
  const trialing = await waitSubscription(a, sub.id, 'TRIALING');
  const pod = await http().get(`/api/v1/cloudpods/${trialing.pod_id}`).set('Authorization', a.auth);
  expect(new Date(trialing.trial_end).getTime() - new Date(pod.body.activated_at).getTime()).toBe(
    14 * 86_400_000,
  );
  expect(await invoicesOf(a, sub.id)).toEqual([]);
});

it('answers 404 for another tenant’s subscription, and refuses hostile input storing nothing', async () => {
  const customer = await customerWith(a, 'iso@sub-a.test', null);
  const sub = await subscribe(a, { customer_id: customer, product_id: a.starter, pod_slug: 'sub-iso' });
  expectProblem(
    await http().get(`/api/v1/billing/subscriptions/${sub.id}`).set('Authorization', b.auth),
    404,
    'not-found',
  );
  expectProblem(await activate(b, sub.id), 404, 'not-found');
  expectProblem(
    await http().post(`/api/v1/billing/subscriptions/${sub.id}/cancel`).set('Authorization', b.auth).send(),
    404,
    'not-found',
  );

  const [before] = await stack.db.query<{ n: string }>('select count(*) as n from subscriptions');
  const post = (body: unknown) =>
    http()
      .post('/api/v1/billing/subscriptions')
      .set('Authorization', a.auth)
      .send(body as object);
  expectProblem(
    await post({ customer_id: b.customerId, product_id: a.starter, pod_slug: 'sub-x1' }),
    422,
    'unprocessable',
  );
  expectProblem(
    await post({ customer_id: customer, product_id: b.starter, pod_slug: 'sub-x2' }),
    422,
    'unprocessable',
  );
  expectProblem(
    await post({ customer_id: customer, product_id: a.starter, pod_slug: 'sub-x3', unit_amount: 9.99 }),
    400,
    'validation-failed',
  );
  expectProblem(
    await post({ customer_id: customer, product_id: a.starter, pod_slug: 'Bad Slug' }),
    400,
    'validation-failed',
  );
  expectProblem(
    await post({ customer_id: customer, product_id: a.starter, pod_slug: 'sub-x4', trial_days: -1 }),
    400,
    'validation-failed',
  );
  expectProblem(
    await post({ customer_id: customer, product_id: a.starter, pod_slug: 'sub-iso' }),
    409,
    'conflict',
  );
  expectProblem(
    await post({ customer_id: customer, product_id: a.starter, pod_slug: 'sub-x5', extra: 1 }),
    400,
    'validation-failed',
  );
  const [after] = await stack.db.query<{ n: string }>('select count(*) as n from subscriptions');
  expect(after).toEqual(before);
  for (const billing of [
    { default_payment_method: '4242424242424242' },
    { default_payment_method: 'pm_' + 'x'.repeat(300) },
    { collection_method: 'SOMETIMES' },
  ]) {
    expectProblem(
      await http().patch(`/api/v1/customers/${customer}`).set('Authorization', a.auth).send(billing),
      400,
      'validation-failed',
    );
  }
  const [unchanged] = await stack.db.query<Record<string, unknown>>(
    'select collection_method, default_payment_method from customers where id = $1',
    [customer],
  );
  expect(unchanged).toEqual({ collection_method: 'AUTOMATIC', default_payment_method: null });

  const canceled = await http()
    .post(`/api/v1/billing/subscriptions/${sub.id}/cancel`)
    .set('Authorization', a.auth)
    .send();
  expect(canceled.body).toMatchObject({ status: 'CANCELED' });
  expectProblem(await activate(a, sub.id), 409, 'conflict');
});
