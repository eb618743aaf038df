/**
 * Subscription plan changes through HTTP, with the simulated hypervisor and payments: an upgrade
 * resizes the pod first, then invoices exactly the lines its preview showed for the same `as_of` and
 * charges them; a downgrade becomes a credit note that the next invoice spends; a resize that fails
 * bills nothing and keeps the plan; a trial is only switched; a declined upgrade leaves the invoice
 * open, the subscription PAST_DUE and dunning running; a subscribed pod's own plan route refuses
 * (409) and names the subscription's; other tenants see 404; hostile input stores nothing.
 */
import request from 'supertest';
import { planChangeQuote } from '../../src/services/subscription-plan-change';
import type { PlanChangeState } from '../../src/workflows/messages/plan-change';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/shared';
import { startTestStack, type TestStack } from '../helpers/app';
import { getPod, podTenant, registerNode, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let a: PodTenant;
let b: PodTenant;
/** a's other plans: SLIM (cheaper than PRO, same disk), HUGE (more cores than any node), YEARLY, USD */
const plans: Record<'slim' | 'huge' | 'yearly' | 'usd', string> = { slim: '', huge: '', yearly: '', usd: '' };

const http = () => request(stack.app);

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'pc-node-1', 16);
  [a, b] = await Promise.all([podTenant(stack, 'pc-a'), podTenant(stack, 'pc-b')]);
  const product = async (body: Record<string, unknown>) => {
    const res = await http()
      .post('/api/v1/products')
      .set('Authorization', a.auth)
      .send({ interval: 'MONTH', included_bandwidth_gb: 100, ...body });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  plans.slim = await product({
    code: 'SLIM',
    name: 'Slim',
    unit_amount: 1500,
    vcpu: 1,
    memory_mb: 2048,
    disk_gb: 40,
  });
  plans.huge = await product({
    code: 'HUGE',
    name: 'Huge',
    unit_amount: 99_000,
    vcpu: 17,
    memory_mb: 8192,
    disk_gb: 80,
  });
  plans.yearly = await product({
    code: 'PRO-YEAR',
    name: 'Pro yearly',
    interval: 'YEAR',
    unit_amount: 20_000,
    vcpu: 2,
    memory_mb: 4096,
    disk_gb: 40,
  });
  plans.usd = await product({
    code: 'PRO-USD',
    name: 'Pro USD',
    currency: 'USD',
    unit_amount: 2000,
    vcpu: 2,
    memory_mb: 4096,
    disk_gb: 40,
  });
});
afterAll(async () => {
  await stack?.close();
});

interface SubscriptionBody {
  id: string;
  status: string;
  product_id: string;
  unit_amount: number;
  customer_id: string;
  pod_id: string | null;
  current_period_start: string;
  current_period_end: string;
}

interface PlanChangeBody {
  id: string;
  status: string;
  as_of: string;
  period_start: string;
  period_end: string;
  settlement: string | null;
  invoice_id: string | null;
  credit_note_id: string | null;
  failure_reason: string | null;
  job_id: string | null;
  workflow_id: string;
}

async function customerWith(t: PodTenant, email: string, paymentMethod: string | null): Promise<string> {
  const created = await http()
    .post('/api/v1/customers')
    .set('Authorization', t.auth)
    .send({ email, name: email });
  expect(created.status).toBe(201);
  if (paymentMethod) await setPaymentMethod(t, created.body.id as string, paymentMethod);
  return created.body.id as string;
}

async function setPaymentMethod(t: PodTenant, customerId: string, paymentMethod: string): Promise<void> {
  const updated = await http()
    .patch(`/api/v1/customers/${customerId}`)
    .set('Authorization', t.auth)
    .send({ default_payment_method: paymentMethod });
  expect(updated.status).toBe(200);
}

async function getSubscription(t: PodTenant, id: string): Promise<SubscriptionBody> {
  const res = await http().get(`/api/v1/billing/subscriptions/${id}`).set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body as SubscriptionBody;
}

/** A subscription of a new customer to `productId`, activated: ACTIVE (or TRIALING with trial days). */
async function runningSubscription(
  t: PodTenant,
  slug: string,
  opts: { productId?: string; paymentMethod?: string | null; trialDays?: number } = {},
): Promise<SubscriptionBody> {
  const customer = await customerWith(t, `${slug}@${slug}.test`, opts.paymentMethod ?? 'pm_card_visa');
  const created = await http()
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', t.auth)
    .send({
      customer_id: customer,
      product_id: opts.productId ?? t.starter,
      pod_slug: slug,
      ...(opts.trialDays ? { trial_days: opts.trialDays } : {}),
    });
  expect(created.status).toBe(201);
  const activated = await http()
    .post(`/api/v1/billing/subscriptions/${created.body.id}/activate`)
    .set('Authorization', t.auth)
    .send();
  expect(activated.status).toBe(202);
  const wanted = opts.trialDays ? 'TRIALING' : 'ACTIVE';
  return waitFor(
    async () => {
      const sub = await getSubscription(t, created.body.id as string);
      return sub.status === wanted ? sub : undefined;
    },
    { what: `subscription ${slug} ${wanted}`, timeoutMs: 60_000 },
  );
}

function changePlan(t: PodTenant, subscriptionId: string, productId: string, key?: string) {
  const req = http()
    .post(`/api/v1/billing/subscriptions/${subscriptionId}/change-plan`)
    .set('Authorization', t.auth);
  if (key) req.set('Idempotency-Key', key);
  return req.send({ product_id: productId });
}

function preview(t: PodTenant, subscriptionId: string, query: Record<string, string>) {
  return http()
    .get(`/api/v1/billing/subscriptions/${subscriptionId}/change-plan/preview`)
    .query(query)
    .set('Authorization', t.auth);
}

async function planChanges(t: PodTenant, subscriptionId: string): Promise<PlanChangeBody[]> {
  const res = await http()
    .get(`/api/v1/billing/subscriptions/${subscriptionId}/plan-changes`)
    .set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body.data as PlanChangeBody[];
}

/** Waits for the change's workflow to finish and returns its final state and the change's row. */
async function finished(t: PodTenant, subscriptionId: string, accepted: request.Response) {
  expect(accepted.status).toBe(202);
  const handle = stack.temporal.workflow.getHandle(accepted.body.workflow_id as string);
  const state = (await handle.result()) as PlanChangeState;
  const change = (await planChanges(t, subscriptionId)).find((c) => c.id === accepted.body.plan_change.id);
  expect(change).toBeDefined();
  return { state, change: change as PlanChangeBody, handle };
}

async function invoicesOf(t: PodTenant, subscriptionId: string) {
  const res = await http()
    .get(`/api/v1/billing/invoices?subscription_id=${subscriptionId}`)
    .set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body.data as { id: string; billing_reason: string; status: string }[];
}

async function invoice(t: PodTenant, id: string) {
  const res = await http().get(`/api/v1/billing/invoices/${id}`).set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body;
}

async function creditNotesOf(t: PodTenant, customerId: string) {
  const res = await http()
    .get(`/api/v1/billing/credit-notes?customer_id=${customerId}`)
    .set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body.data as { id: string; amount: number; subscription_id: string | null }[];
}

async function creditBalance(t: PodTenant, customerId: string): Promise<number> {
  const res = await http().get(`/api/v1/customers/${customerId}`).set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body.credit_balance as number;
}

const paymentsOf = (invoiceId: string) =>
  stack.db.query<{ status: string; idempotency_key: string }>(
    'select status, idempotency_key from payments where invoice_id = $1 order by attempt',
    [invoiceId],
  );

const taxRateOf = async (tenantId: string) =>
  (
    await stack.db.query<{ tax_rate_bps: number }>(
      'select tax_rate_bps from tenant_billing_settings where tenant_id = $1',
      [tenantId],
    )
  )[0]?.tax_rate_bps ?? 0;

const podLimits = async (t: PodTenant, podId: string) => (await getPod(stack, t, podId)).limits;

describe('one subscription, changed STARTER → PRO → SLIM → PRO, then to a plan no node can take', () => {
  let sub: SubscriptionBody;
  beforeAll(async () => {
    sub = await runningSubscription(a, 'pc-chain');
  });

  it('upgrades: resize first, then the invoice has exactly the preview’s lines for the same as_of, paid', async () => {
    // The resize answers late, so the change is still resizing while the preview is read.
    const fault = await http()
      .post('/api/v1/ops/simulator/faults')
      .set('Authorization', `Bearer ${stack.adminToken}`)
      .send({ operation: 'resizeVm', slug_pattern: 'pc-chain', times: 1, mode: 'delay', delay_ms: 4000 });
    expect(fault.status).toBe(201);

    const accepted = await changePlan(a, sub.id, a.pro, 'pc-chain-upgrade');
    expect(accepted.status).toBe(202);
    expect(accepted.body.workflow_id).toBe(
      `subscription-change-plan-${sub.id}-${accepted.body.plan_change.id}`,
    );
    expect(accepted.body.plan_change).toMatchObject({
      status: 'REQUESTED',
      from_product_id: a.starter,
      to_product_id: a.pro,
      from_unit_amount: 1000,
      to_unit_amount: 2000,
      prorated: true,
      period_start: sub.current_period_start,
      period_end: sub.current_period_end,
    });
    const asOf = accepted.body.plan_change.as_of as string;

    const quoted = await preview(a, sub.id, { product_id: a.pro, as_of: asOf });
    expect(quoted.status).toBe(200);
    expect(quoted.body).toMatchObject({
      subscription_id: sub.id,
      as_of: asOf,
      prorated: true,
      settlement: 'INVOICE',
      from: { product_id: a.starter, unit_amount: 1000 },
      to: { product_id: a.pro, unit_amount: 2000 },
    });
    expect(quoted.body.lines).toHaveLength(2);
    expect(quoted.body.total).toBeGreaterThan(0);
    // still running: the same key replays the answer, another request is refused
    const replay = await changePlan(a, sub.id, a.pro, 'pc-chain-upgrade');
    expect(replay.status).toBe(202);
    expect(replay.body).toEqual(accepted.body);
    expectProblem(await changePlan(a, sub.id, plans.slim, 'pc-chain-other'), 409, 'conflict');

    const { state, change, handle } = await finished(a, sub.id, accepted);
    expect(state).toMatchObject({ status: 'CHANGED', settlement: 'INVOICE', failure: null });
    expect(change).toMatchObject({ status: 'SUCCEEDED', settlement: 'INVOICE', invoice_id: state.invoiceId });
    expect(change.job_id).toMatch(/^job_/);

    const billed = await invoice(a, change.invoice_id as string);
    expect(billed).toMatchObject({
      status: 'PAID',
      billing_reason: 'SUBSCRIPTION_UPDATE',
      subscription_id: sub.id,
      subtotal: quoted.body.subtotal,
      tax: quoted.body.tax,
      total: quoted.body.total,
      period_start: asOf,
    });
    expect(billed.lines.map(({ id: _id, ...line }: { id: string }) => line)).toEqual(quoted.body.lines);
    expect(await paymentsOf(billed.id)).toEqual([
      { status: 'SUCCEEDED', idempotency_key: `${billed.id}:attempt-1` },
    ]);

    expect(await getSubscription(a, sub.id)).toMatchObject({
      status: 'ACTIVE',
      product_id: a.pro,
      unit_amount: 2000,
    });
    expect(await podLimits(a, sub.pod_id as string)).toEqual({ vcpu: 2, memory_mb: 4096, disk_gb: 40 });
    // Temporal UI: filterable by the invoice, its status the outcome
    const described = await handle.describe();
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.InvoiceId)).toBe(billed.id);
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.SubscriptionId)).toBe(sub.id);
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus)).toBe('CHANGED');
    expect(await described.staticSummary()).toBe(`Change subscription ${sub.id} to PRO`);
  });

  it('downgrades PRO → SLIM: a credit note for the net to the customer’s balance, no invoice', async () => {
    const before = await invoicesOf(a, sub.id);
    const quoted = await preview(a, sub.id, { product_id: plans.slim });
    expect(quoted.status).toBe(200);
    expect(quoted.body).toMatchObject({ settlement: 'CREDIT_NOTE' });
    expect(quoted.body.total).toBeLessThan(0);
    expect(quoted.body.amount).toBe(-quoted.body.total);

    const accepted = await changePlan(a, sub.id, plans.slim);
    const { state, change } = await finished(a, sub.id, accepted);
    expect(state).toMatchObject({ status: 'CHANGED', settlement: 'CREDIT_NOTE', invoiceId: null });
    expect(change).toMatchObject({ status: 'SUCCEEDED', settlement: 'CREDIT_NOTE', invoice_id: null });

    // The note is the quote of the change's own inputs: the same function, the same as_of.
    const expected = planChangeQuote({
      from: { code: 'PRO', name: 'PRO', interval: 'MONTH', unitAmount: 2000, currency: 'EUR' },
      to: { code: 'SLIM', name: 'Slim', interval: 'MONTH', unitAmount: 1500, currency: 'EUR' },
      segments: [
        {
          period: { start: new Date(change.period_start), end: new Date(change.period_end) },
          asOf: new Date(change.as_of),
        },
      ],
      taxRateBps: await taxRateOf(a.id),
    });
    expect(expected.settlement).toBe('CREDIT_NOTE');
    const notes = await creditNotesOf(a, sub.customer_id);
    expect(notes).toEqual([
      expect.objectContaining({
        id: change.credit_note_id,
        amount: expected.amount,
        subscription_id: sub.id,
      }),
    ]);
    expect(await creditBalance(a, sub.customer_id)).toBe(expected.amount);
    expect(await invoicesOf(a, sub.id)).toEqual(before);
    expect(await getSubscription(a, sub.id)).toMatchObject({ product_id: plans.slim, unit_amount: 1500 });
    expect(await podLimits(a, sub.pod_id as string)).toEqual({ vcpu: 1, memory_mb: 2048, disk_gb: 40 });
  });

  it('spends that credit on the next invoice: upgrading SLIM → PRO again', async () => {
    const balance = await creditBalance(a, sub.customer_id);
    expect(balance).toBeGreaterThan(0);
    const { change } = await finished(a, sub.id, await changePlan(a, sub.id, a.pro));
    expect(change).toMatchObject({ status: 'SUCCEEDED', settlement: 'INVOICE' });
    const billed = await invoice(a, change.invoice_id as string);
    expect(billed.status).toBe('PAID');
    expect(billed.credit_applied).toBe(Math.min(balance, billed.total));
    expect(billed.amount_due).toBe(billed.total - billed.credit_applied);
    expect(await creditBalance(a, sub.customer_id)).toBe(balance - billed.credit_applied);
  });

  it('bills nothing when the resize fails (no node has room): plan, price and pod unchanged', async () => {
    const invoices = await invoicesOf(a, sub.id);
    const notes = await creditNotesOf(a, sub.customer_id);
    const balance = await creditBalance(a, sub.customer_id);

    const accepted = await changePlan(a, sub.id, plans.huge);
    const { state, change, handle } = await finished(a, sub.id, accepted);
    expect(state).toMatchObject({ status: 'FAILED', settlement: null, invoiceId: null, creditNoteId: null });
    expect(change).toMatchObject({
      status: 'FAILED',
      settlement: null,
      invoice_id: null,
      credit_note_id: null,
    });
    expect(change.failure_reason).toMatch(/reserve capacity failed/);
    const job = (await getPod(stack, a, sub.pod_id as string)).current_job;
    expect(job).toMatchObject({ id: change.job_id, type: 'CHANGE_PLAN', status: 'ROLLED_BACK' });

    expect(await invoicesOf(a, sub.id)).toEqual(invoices);
    expect(await creditNotesOf(a, sub.customer_id)).toEqual(notes);
    expect(await creditBalance(a, sub.customer_id)).toBe(balance);
    expect(await getSubscription(a, sub.id)).toMatchObject({
      status: 'ACTIVE',
      product_id: a.pro,
      unit_amount: 2000,
    });
    expect(await podLimits(a, sub.pod_id as string)).toEqual({ vcpu: 2, memory_mb: 4096, disk_gb: 40 });
    const described = await handle.describe();
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus)).toBe('FAILED');

    // the failed change gave its slot back
    const quoted = await preview(a, sub.id, { product_id: plans.slim });
    expect(quoted.status).toBe(200);
  });
});

it('switches a trial without prorating: no invoice, the plan and price changed, the pod resized', async () => {
  const sub = await runningSubscription(a, 'pc-trial', { paymentMethod: null, trialDays: 14 });
  const quoted = await preview(a, sub.id, { product_id: a.pro });
  expect(quoted.status).toBe(200);
  expect(quoted.body).toMatchObject({ prorated: false, lines: [], total: 0, settlement: 'NONE', amount: 0 });

  const { state, change } = await finished(a, sub.id, await changePlan(a, sub.id, a.pro));
  expect(state).toMatchObject({ status: 'CHANGED', settlement: 'NONE' });
  expect(change).toMatchObject({
    status: 'SUCCEEDED',
    settlement: 'NONE',
    invoice_id: null,
    credit_note_id: null,
  });
  expect(await invoicesOf(a, sub.id)).toEqual([]);
  expect(await getSubscription(a, sub.id)).toMatchObject({
    status: 'TRIALING',
    product_id: a.pro,
    unit_amount: 2000,
  });
  expect(await podLimits(a, sub.pod_id as string)).toEqual({ vcpu: 2, memory_mb: 4096, disk_gb: 40 });
});

it('leaves a declined upgrade’s invoice open: PAST_DUE, and dunning collects it', async () => {
  const sub = await runningSubscription(a, 'pc-declined');
  await setPaymentMethod(a, sub.customer_id, 'pm_card_chargeDeclined');
  const { state, change } = await finished(a, sub.id, await changePlan(a, sub.id, a.pro));
  expect(state).toMatchObject({ status: 'PAST_DUE', settlement: 'INVOICE' });
  const billed = await invoice(a, change.invoice_id as string);
  expect(billed).toMatchObject({ status: 'OPEN', billing_reason: 'SUBSCRIPTION_UPDATE' });
  expect(await paymentsOf(billed.id)).toEqual([
    { status: 'FAILED', idempotency_key: `${billed.id}:attempt-1` },
  ]);
  expect(await getSubscription(a, sub.id)).toMatchObject({ status: 'PAST_DUE', product_id: a.pro });
  const dunning = await stack.temporal.workflow.getHandle(`dunning-${billed.id}`).describe();
  expect(dunning.status.name).toBe('RUNNING');
  expect(dunning.typedSearchAttributes.get(SEARCH_ATTRIBUTES.InvoiceId)).toBe(billed.id);
});

describe('refusals', () => {
  let sub: SubscriptionBody;
  beforeAll(async () => {
    sub = await runningSubscription(a, 'pc-guarded');
  });

  const storedChanges = async () =>
    (
      await stack.db.query<{ n: string }>(
        'select count(*) as n from subscription_plan_changes where subscription_id = $1',
        [sub.id],
      )
    )[0]?.n;

  it('refuses the pod’s own plan route for a subscribed pod (409 naming the subscription’s route), resizing nothing', async () => {
    const jobs = async () =>
      (await http().get(`/api/v1/cloudpods/${sub.pod_id}/jobs`).set('Authorization', a.auth)).body
        .data as unknown[];
    const before = await jobs();
    const res = await http()
      .post(`/api/v1/cloudpods/${sub.pod_id}/plan`)
      .set('Authorization', a.auth)
      .send({ product_id: a.pro });
    expectProblem(res, 409, 'conflict');
    expect(res.body.change_plan).toBe(`/api/v1/billing/subscriptions/${sub.id}/change-plan`);
    expect(res.body.subscription_id).toBe(sub.id);
    expect(res.body.detail).toContain(`/api/v1/billing/subscriptions/${sub.id}/change-plan`);
    expect(await jobs()).toEqual(before);
    expect(await podLimits(a, sub.pod_id as string)).toEqual({ vcpu: 1, memory_mb: 1024, disk_gb: 20 });
  });

  it('answers 404 to another tenant on every plan change route', async () => {
    expectProblem(await changePlan(b, sub.id, b.pro), 404, 'not-found');
    expectProblem(await preview(b, sub.id, { product_id: b.pro }), 404, 'not-found');
    expectProblem(
      await http().get(`/api/v1/billing/subscriptions/${sub.id}/plan-changes`).set('Authorization', b.auth),
      404,
      'not-found',
    );
    expect(await storedChanges()).toBe('0');
  });

  it('refuses hostile and invalid input with 4xx problems, storing nothing', async () => {
    const post = (body: unknown) =>
      http()
        .post(`/api/v1/billing/subscriptions/${sub.id}/change-plan`)
        .set('Authorization', a.auth)
        .send(body as object);
    for (const body of [
      {},
      { product_id: 42 },
      { product_id: null },
      { product_id: a.pro, at: 'now' },
      { product_id: 'p'.repeat(41) },
      [a.pro],
    ]) {
      expectProblem(await post(body), 400, 'validation-failed');
    }
    const unprocessable = [
      'prd_00000000000000000000000000',
      "'; drop table subscriptions; --",
      b.pro,
      a.starter,
      plans.yearly,
      plans.usd,
    ];
    for (const productId of unprocessable) {
      const res = await post({ product_id: productId });
      expectProblem(res, 422, 'unprocessable');
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'product_id' })]);
    }
    const text = await http()
      .post(`/api/v1/billing/subscriptions/${sub.id}/change-plan`)
      .set('Authorization', a.auth)
      .set('Content-Type', 'text/plain')
      .send('product_id=x');
    expect(text.status).toBe(415);

    expectProblem(await preview(a, sub.id, {}), 400, 'validation-failed');
    expectProblem(
      await preview(a, sub.id, { product_id: a.pro, as_of: 'yesterday' }),
      400,
      'validation-failed',
    );
    expectProblem(await preview(a, sub.id, { product_id: a.pro, extra: '1' }), 400, 'validation-failed');
    const afterPeriod = new Date(new Date(sub.current_period_end).getTime() + 1000).toISOString();
    const outside = await preview(a, sub.id, { product_id: a.pro, as_of: afterPeriod });
    expectProblem(outside, 422, 'unprocessable');
    expect(outside.body.reason).toBe('as_of_outside_period');
    expectProblem(await preview(a, sub.id, { product_id: a.starter }), 422, 'unprocessable');

    expect(await storedChanges()).toBe('0');
    expect(await getSubscription(a, sub.id)).toMatchObject({
      status: 'ACTIVE',
      product_id: a.starter,
      unit_amount: 1000,
    });
  });

  it('refuses (409) a subscription that is not ACTIVE or TRIALING', async () => {
    const customer = await customerWith(a, 'pending@pc-a.test', null);
    const pending = await http()
      .post('/api/v1/billing/subscriptions')
      .set('Authorization', a.auth)
      .send({ customer_id: customer, product_id: a.starter, pod_slug: 'pc-pending' });
    expect(pending.status).toBe(201);
    expectProblem(await changePlan(a, pending.body.id as string, a.pro), 409, 'conflict');
    expectProblem(await preview(a, pending.body.id as string, { product_id: a.pro }), 409, 'conflict');
    expect(await planChanges(a, pending.body.id as string)).toEqual([]);
  });
});
