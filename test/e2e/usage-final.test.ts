/**
 * The final invoice of a subscription that ends, through the real stack (simulated providers, a
 * real worker): a plan with 100 GB of bandwidth included and 5 per GB beyond. A subscription set to
 * cancel at its period end, renewed by `billingRun`, is canceled with its ended period's overage on
 * one SUBSCRIPTION_FINAL invoice (the exact USAGE line, the usage frozen with it, charged and PAID);
 * a renewal of the same period run again issues no second one. `cancel now` bills the usage until
 * now the same way, and a repeated cancel adds nothing. Usage within the allowance bills nothing: no
 * invoice. Usage of an ended subscription reported afterwards is refused (`period_closed`).
 */
import request from 'supertest';
import { addMonthsClamped, isoDate, periodAt } from '../../src/domain/billing';
import type { billingRun } from '../../src/workflows/billing-run';
import type { RenewalState } from '../../src/workflows/messages/renewals';
import type { renewSubscription } from '../../src/workflows/renewals';
import { TASK_QUEUES, workflowIds } from '../../src/workflows/shared';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, type PodTenant } from '../helpers/pods';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let t: PodTenant;
let metered: string;
let runs = 0;

const http = () => request(stack.app);
const MINUTE = 60_000;
const HOUR = 3_600_000;

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'final-node-1', 32);
  t = await podTenant(stack, 'usage-final');
  const product = await http().post('/api/v1/products').set('Authorization', t.auth).send({
    code: 'METERED',
    name: 'Metered',
    interval: 'MONTH',
    unit_amount: 1000,
    vcpu: 1,
    memory_mb: 1024,
    disk_gb: 20,
    included_bandwidth_gb: 100,
    bandwidth_overage_unit_amount: 5,
  });
  expect(product.status).toBe(201);
  metered = product.body.id as string;
});
afterAll(async () => {
  await stack?.close();
});

async function activated(slug: string): Promise<string> {
  const customer = await http()
    .post('/api/v1/customers')
    .set('Authorization', t.auth)
    .send({ email: `${slug}@usage-final.test`, name: slug });
  expect(customer.status).toBe(201);
  const card = await http()
    .patch(`/api/v1/customers/${customer.body.id}`)
    .set('Authorization', t.auth)
    .send({ default_payment_method: 'pm_card_visa' });
  expect(card.status).toBe(200);
  const created = await http()
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', t.auth)
    .send({ customer_id: customer.body.id, product_id: metered, pod_slug: slug });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const started = await http()
    .post(`/api/v1/billing/subscriptions/${id}/activate`)
    .set('Authorization', t.auth)
    .send();
  expect(started.status).toBe(202);
  await waitFor(
    async () =>
      (await http().get(`/api/v1/billing/subscriptions/${id}`).set('Authorization', t.auth)).body.status ===
      'ACTIVE',
    { what: `subscription ${id} ACTIVE`, timeoutMs: 60_000 },
  );
  return id;
}

/** The current period anchored a month and a minute ago: it ended a minute ago. */
async function endPeriod(subscriptionId: string): Promise<{ start: Date; end: Date }> {
  const anchor = addMonthsClamped(new Date(Date.now() - MINUTE), -1);
  const current = periodAt(anchor, 'MONTH', 0);
  await stack.db.query(
    `update subscriptions set billing_anchor = $1, current_period_start = $1, current_period_end = $2 where id = $3`,
    [anchor, current.end, subscriptionId],
  );
  return { start: current.start, end: current.end };
}

function runBilling() {
  runs += 1;
  return stack.temporal.workflow.execute<typeof billingRun>('billingRun', {
    workflowId: `billing-run-final-test-${runs}`,
    taskQueue: TASK_QUEUES.billing,
    args: [{}],
  });
}

function renewal(subscriptionId: string, periodStart: Date): Promise<RenewalState> {
  return stack.temporal.workflow
    .getHandle<typeof renewSubscription>(
      workflowIds.renewSubscription(subscriptionId, periodStart.toISOString()),
    )
    .result();
}

function report(subscriptionId: string, records: { key: string; at: Date; quantity: number }[]) {
  return http()
    .post('/api/v1/usage')
    .set('Authorization', t.auth)
    .send({
      records: records.map((r) => ({
        subscription_id: subscriptionId,
        metric: 'bandwidth_gb',
        quantity: r.quantity,
        occurred_at: r.at.toISOString(),
        idempotency_key: r.key,
      })),
    });
}

const statuses = (res: request.Response) => (res.body.results as { status: string }[]).map((r) => r.status);

async function invoicesOf(subscriptionId: string) {
  return stack.db.query<{ id: string; billing_reason: string; status: string }>(
    'select id, billing_reason, status from invoices where subscription_id = $1 order by created_at',
    [subscriptionId],
  );
}

async function finalInvoice(subscriptionId: string) {
  const finals = (await invoicesOf(subscriptionId)).filter((i) => i.billing_reason === 'SUBSCRIPTION_FINAL');
  expect(finals).toHaveLength(1);
  const res = await http().get(`/api/v1/billing/invoices/${finals[0]?.id}`).set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body as Record<string, unknown> & { id: string; lines: Record<string, unknown>[] };
}

const frozenBy = async (subscriptionId: string) =>
  Object.fromEntries(
    (
      await stack.db.query<{ idempotency_key: string; invoice_id: string | null }>(
        'select idempotency_key, invoice_id from usage_records where subscription_id = $1',
        [subscriptionId],
      )
    ).map((r) => [r.idempotency_key, r.invoice_id]),
  );

const usageLine = (l: Record<string, unknown>) => ({
  kind: l.kind,
  description: l.description,
  quantity: l.quantity,
  unit_amount: l.unit_amount,
  amount: l.amount,
  period_start: l.period_start,
  period_end: l.period_end,
});

describe('final invoice', () => {
  it('bills the last period’s overage when a cancel-at-period-end subscription is canceled, once', async () => {
    const subId = await activated('final-a');
    const cancel = await http()
      .post(`/api/v1/billing/subscriptions/${subId}/cancel`)
      .set('Authorization', t.auth)
      .send({ at: 'period_end' });
    expect(cancel.status).toBe(200);
    const ended = await endPeriod(subId);
    const reported = await report(subId, [
      { key: 'fa-1', at: new Date(ended.start.getTime() + HOUR), quantity: 90 },
      { key: 'fa-2', at: new Date(ended.end.getTime() - 1), quantity: 30 },
    ]);
    expect(statuses(reported)).toEqual(['accepted', 'accepted']);

    expect(await runBilling()).toMatchObject({ done: true, started: 1 });
    expect(await renewal(subId, ended.end)).toMatchObject({ outcome: 'CANCELED', status: 'CANCELED' });
    const invoice = await finalInvoice(subId);
    expect(invoice).toMatchObject({
      billing_reason: 'SUBSCRIPTION_FINAL',
      status: 'PAID',
      subtotal: 100,
      total: 100,
      amount_paid: 100,
    });
    expect(invoice.lines.map(usageLine)).toEqual([
      {
        kind: 'USAGE',
        description: `Bandwidth beyond the 100 GB included (120 GB used), ${isoDate(ended.start)} – ${isoDate(ended.end)}`,
        quantity: 20,
        unit_amount: 5,
        amount: 100,
        period_start: ended.start.toISOString(),
        period_end: ended.end.toISOString(),
      },
    ]);
    expect(await frozenBy(subId)).toEqual({ 'fa-1': invoice.id, 'fa-2': invoice.id });

    // The same period's renewal run again (a retried start): it finds the subscription canceled.
    const again = await stack.temporal.workflow.execute<typeof renewSubscription>('renewSubscription', {
      workflowId: `${workflowIds.renewSubscription(subId, ended.end.toISOString())}-again`,
      taskQueue: TASK_QUEUES.billing,
      args: [{ subscriptionId: subId, tenantId: t.id, customerId: '', periodStart: ended.end.toISOString() }],
    });
    expect(again.outcome).not.toBe('RENEWED');
    expect((await invoicesOf(subId)).filter((i) => i.billing_reason === 'SUBSCRIPTION_FINAL')).toHaveLength(
      1,
    );

    // Its usage is settled: a late record of the last period is refused, not left unbilled.
    const late = await report(subId, [{ key: 'fa-3', at: new Date(ended.end.getTime() - 2), quantity: 5 }]);
    expect(statuses(late)).toEqual(['period_closed']);
  });

  it('bills the usage until now on `cancel now`, once', async () => {
    const subId = await activated('final-b');
    const sub = await http().get(`/api/v1/billing/subscriptions/${subId}`).set('Authorization', t.auth);
    const start = new Date(sub.body.current_period_start as string);
    const reported = await report(subId, [{ key: 'fb-1', at: new Date(Date.now() - 1000), quantity: 107 }]);
    expect(statuses(reported)).toEqual(['accepted']);
    const before = Date.now();
    const cancel = await http()
      .post(`/api/v1/billing/subscriptions/${subId}/cancel`)
      .set('Authorization', t.auth)
      .send({ at: 'now' });
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('CANCELED');
    const invoice = await finalInvoice(subId);
    expect(invoice).toMatchObject({ status: 'PAID', subtotal: 35, total: 35, amount_paid: 35 });
    const [line] = invoice.lines.map(usageLine);
    expect(line).toMatchObject({ kind: 'USAGE', quantity: 7, unit_amount: 5, amount: 35 });
    expect(line?.period_start).toBe(start.toISOString());
    const end = Date.parse(line?.period_end as string);
    expect(end).toBeGreaterThanOrEqual(before);
    expect(end).toBeLessThanOrEqual(Date.now());
    expect(await frozenBy(subId)).toEqual({ 'fb-1': invoice.id });

    const repeated = await http()
      .post(`/api/v1/billing/subscriptions/${subId}/cancel`)
      .set('Authorization', t.auth)
      .send({ at: 'now' });
    expect(repeated.status).toBe(200);
    expect((await invoicesOf(subId)).filter((i) => i.billing_reason === 'SUBSCRIPTION_FINAL')).toHaveLength(
      1,
    );
  });

  it('issues no invoice when the last usage is within the allowance', async () => {
    const subId = await activated('final-c');
    const reported = await report(subId, [{ key: 'fc-1', at: new Date(Date.now() - 1000), quantity: 100 }]);
    expect(statuses(reported)).toEqual(['accepted']);
    const cancel = await http()
      .post(`/api/v1/billing/subscriptions/${subId}/cancel`)
      .set('Authorization', t.auth)
      .send({ at: 'now' });
    expect(cancel.body.status).toBe('CANCELED');
    expect((await invoicesOf(subId)).map((i) => i.billing_reason)).toEqual(['SUBSCRIPTION_CREATE']);
    expect(await frozenBy(subId)).toEqual({ 'fc-1': null });
  });

  it('bills the usage until now when the subscribed pod is terminated through the pod route', async () => {
    const subId = await activated('final-d');
    const sub = await http().get(`/api/v1/billing/subscriptions/${subId}`).set('Authorization', t.auth);
    const reported = await report(subId, [{ key: 'fd-1', at: new Date(Date.now() - 1000), quantity: 112 }]);
    expect(statuses(reported)).toEqual(['accepted']);
    const gone = await http().delete(`/api/v1/cloudpods/${sub.body.pod_id}`).set('Authorization', t.auth);
    expect(gone.status).toBe(202);
    const canceled = await http().get(`/api/v1/billing/subscriptions/${subId}`).set('Authorization', t.auth);
    expect(canceled.body.status).toBe('CANCELED');
    const invoice = await finalInvoice(subId);
    expect(invoice).toMatchObject({ status: 'PAID', subtotal: 60, total: 60, amount_paid: 60 });
    expect(invoice.lines.map(usageLine)).toEqual([
      expect.objectContaining({ kind: 'USAGE', quantity: 12, unit_amount: 5, amount: 60 }),
    ]);
    expect(await frozenBy(subId)).toEqual({ 'fd-1': invoice.id });
  });
});
