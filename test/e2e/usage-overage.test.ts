/**
 * Usage billed at renewal through the real stack (simulated providers, a real worker): a plan
 * with 100 GB of bandwidth included and 5 per GB beyond, usage reported through POST /usage, the
 * period moved into the past and `billingRun` started as the schedule starts it. The renewal
 * invoice carries the next period in advance and exactly the ended period's bandwidth beyond the
 * allowance in arrears; the usage it counted is marked with it and its whole days frozen. Usage
 * of the billed period reported afterwards is refused (`period_closed`), a key sent before is
 * still a duplicate, and the new period's usage is accepted and left open. A trial's usage is
 * frozen with the conversion invoice but not billed. `usageRollup` started by hand rolls up a day
 * without touching frozen days, a backfill longer than one run continues as new, and a malformed
 * day fails the run at once. The product's overage price: set at creation, shown, immutable,
 * hostile values refused.
 */
import request from 'supertest';
import { WorkflowFailedError } from '@temporalio/client';
import { addMonthsClamped, addUtcDays, isoDate, periodAt } from '../../src/domain/billing';
import type { billingRun } from '../../src/workflows/billing-run';
import type { RenewalState } from '../../src/workflows/messages/renewals';
import type { renewSubscription } from '../../src/workflows/renewals';
import { TASK_QUEUES, workflowIds } from '../../src/workflows/shared';
import type { usageRollup } from '../../src/workflows/usage-rollup';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let t: PodTenant;
let metered: string;
let runs = 0;

const http = () => request(stack.app);
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'usage-node-1', 32);
  t = await podTenant(stack, 'usage-bill');
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

async function activated(slug: string, opts: { trialDays?: number } = {}): Promise<string> {
  const customer = await http()
    .post('/api/v1/customers')
    .set('Authorization', t.auth)
    .send({ email: `${slug}@usage-bill.test`, name: slug });
  expect(customer.status).toBe(201);
  const card = await http()
    .patch(`/api/v1/customers/${customer.body.id}`)
    .set('Authorization', t.auth)
    .send({ default_payment_method: 'pm_card_visa' });
  expect(card.status).toBe(200);
  const created = await http()
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', t.auth)
    .send({
      customer_id: customer.body.id,
      product_id: metered,
      pod_slug: slug,
      ...(opts.trialDays ? { trial_days: opts.trialDays } : {}),
    });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const started = await http()
    .post(`/api/v1/billing/subscriptions/${id}/activate`)
    .set('Authorization', t.auth)
    .send();
  expect(started.status).toBe(202);
  const status = opts.trialDays ? 'TRIALING' : 'ACTIVE';
  await waitFor(
    async () => {
      const res = await http().get(`/api/v1/billing/subscriptions/${id}`).set('Authorization', t.auth);
      return res.body.status === status;
    },
    { what: `subscription ${id} ${status}`, timeoutMs: 60_000 },
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
    workflowId: `billing-run-usage-test-${runs}`,
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

interface UsageInput {
  key: string;
  at: Date;
  quantity: number;
  metric?: string;
}

function report(subscriptionId: string, records: UsageInput[]) {
  return http()
    .post('/api/v1/usage')
    .set('Authorization', t.auth)
    .send({
      records: records.map((r) => ({
        subscription_id: subscriptionId,
        metric: r.metric ?? 'bandwidth_gb',
        quantity: r.quantity,
        occurred_at: r.at.toISOString(),
        idempotency_key: r.key,
      })),
    });
}

const statuses = (res: request.Response) => (res.body.results as { status: string }[]).map((r) => r.status);

const frozenBy = async (subscriptionId: string) =>
  Object.fromEntries(
    (
      await stack.db.query<{ idempotency_key: string; invoice_id: string | null }>(
        'select idempotency_key, invoice_id from usage_records where subscription_id = $1',
        [subscriptionId],
      )
    ).map((r) => [r.idempotency_key, r.invoice_id]),
  );

describe('overage at renewal', () => {
  it('invoices the ended period’s bandwidth beyond the allowance, freezes it and refuses late usage', async () => {
    const subId = await activated('metered-a');
    const ended = await endPeriod(subId);
    const records: UsageInput[] = [
      { key: 'a-1', at: new Date(ended.start.getTime() + HOUR), quantity: 60 },
      { key: 'a-2', at: new Date(ended.end.getTime() - 1), quantity: 50 },
      { key: 'a-3', at: new Date(ended.start.getTime() + 2 * HOUR), quantity: 3, metric: 'ipv4' },
      { key: 'a-4', at: ended.end, quantity: 7 },
    ];
    const reported = await report(subId, records);
    expect(reported.status).toBe(200);
    expect(statuses(reported)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);

    expect(await runBilling()).toMatchObject({ done: true, started: 1 });
    const outcome = await renewal(subId, ended.end);
    expect(outcome).toMatchObject({ outcome: 'RENEWED', status: 'ACTIVE' });
    const invoice = await http()
      .get(`/api/v1/billing/invoices/${outcome.invoiceId}`)
      .set('Authorization', t.auth);
    expect(invoice.status).toBe(200);
    expect(invoice.body).toMatchObject({ status: 'PAID', subtotal: 1050, total: 1050, amount_paid: 1050 });
    expect(
      (invoice.body.lines as Record<string, unknown>[]).map(
        ({ kind, description, quantity, unit_amount, amount, period_start, period_end }) => ({
          kind,
          description,
          quantity,
          unit_amount,
          amount,
          period_start,
          period_end,
        }),
      ),
    ).toEqual([
      expect.objectContaining({ kind: 'SUBSCRIPTION', quantity: 1, unit_amount: 1000, amount: 1000 }),
      {
        kind: 'USAGE',
        description:
          `Bandwidth beyond the 100 GB included (110 GB used), ` +
          `${isoDate(ended.start)} – ${isoDate(ended.end)}`,
        quantity: 10,
        unit_amount: 5,
        amount: 50,
        period_start: ended.start.toISOString(),
        period_end: ended.end.toISOString(),
      },
    ]);

    // Frozen with the invoice: what it counted, every metric; the new period's usage stays open.
    expect(await frozenBy(subId)).toEqual({
      'a-1': outcome.invoiceId,
      'a-2': outcome.invoiceId,
      'a-3': outcome.invoiceId,
      'a-4': null,
    });
    const days = await stack.db.query<{
      day: string;
      metric: string;
      quantity: string;
      invoice_id: string | null;
    }>(
      `select day::text as day, metric, quantity, invoice_id from usage_daily where subscription_id = $1
        order by day, metric`,
      [subId],
    );
    const endDay = isoDate(ended.end);
    const expectedDays = new Map<string, bigint>();
    for (const r of records.filter((r) => isoDate(r.at) < endDay)) {
      const key = `${isoDate(r.at)}/${r.metric ?? 'bandwidth_gb'}`;
      expectedDays.set(key, (expectedDays.get(key) ?? 0n) + BigInt(r.quantity));
    }
    expect(days).toEqual(
      [...expectedDays].sort().map(([key, quantity]) => ({
        day: key.split('/')[0],
        metric: key.split('/')[1],
        quantity: String(quantity),
        invoice_id: outcome.invoiceId,
      })),
    );

    // Late usage of the billed period is refused; a key sent before is still a duplicate.
    const late = await report(subId, [
      { key: 'a-5', at: new Date(ended.start.getTime() + 3 * HOUR), quantity: 1000 },
      { key: 'a-1', at: new Date(ended.start.getTime() + HOUR), quantity: 60 },
      { key: 'a-6', at: new Date(ended.end.getTime() + 1), quantity: 2 },
    ]);
    expect(late.status).toBe(200);
    expect(late.body.results).toEqual([
      { idempotency_key: 'a-5', status: 'period_closed' },
      { idempotency_key: 'a-1', status: 'duplicate' },
      { idempotency_key: 'a-6', status: 'accepted' },
    ]);
    expect(await frozenBy(subId)).toEqual({
      'a-1': outcome.invoiceId,
      'a-2': outcome.invoiceId,
      'a-3': outcome.invoiceId,
      'a-4': null,
      'a-6': null,
    });

    // A rollup of the day the boundary cut, started by hand: the new period's part is added, open.
    const rollup = await stack.temporal.workflow.execute<typeof usageRollup>('usageRollup', {
      workflowId: workflowIds.usageRollup(endDay),
      taskQueue: TASK_QUEUES.billing,
      args: [{ days: [endDay] }],
    });
    expect(rollup).toMatchObject({ done: true, days: [endDay], rolledUp: [{ day: endDay }] });
    const cut = await stack.db.query<{ quantity: string; invoice_id: string | null }>(
      `select quantity, invoice_id from usage_daily where subscription_id = $1 and day = $2::date and metric = 'bandwidth_gb'`,
      [subId, endDay],
    );
    const sameDay = [...records, { key: 'a-6', at: new Date(ended.end.getTime() + 1), quantity: 2 }].filter(
      (r) => isoDate(r.at) === endDay && (r.metric ?? 'bandwidth_gb') === 'bandwidth_gb',
    );
    expect(cut).toEqual([
      { quantity: String(sameDay.reduce((sum, r) => sum + r.quantity, 0)), invoice_id: null },
    ]);
    const frozenDays = await stack.db.query<{ n: number }>(
      'select count(*)::int as n from usage_daily where subscription_id = $1 and invoice_id is not null',
      [subId],
    );
    expect(frozenDays[0]?.n).toBe(expectedDays.size);
  });

  it('bills no overage within the allowance', async () => {
    const subId = await activated('metered-b');
    const ended = await endPeriod(subId);
    expect(
      statuses(
        await report(subId, [{ key: 'b-1', at: new Date(ended.end.getTime() - HOUR), quantity: 100 }]),
      ),
    ).toEqual(['accepted']);
    await runBilling();
    const outcome = await renewal(subId, ended.end);
    const invoice = await http()
      .get(`/api/v1/billing/invoices/${outcome.invoiceId}`)
      .set('Authorization', t.auth);
    expect((invoice.body.lines as { kind: string }[]).map((l) => l.kind)).toEqual(['SUBSCRIPTION']);
    expect(await frozenBy(subId)).toEqual({ 'b-1': outcome.invoiceId });
  });

  it('freezes a trial’s usage with the conversion invoice without billing it', async () => {
    const subId = await activated('metered-trial', { trialDays: 7 });
    const trialEnd = new Date(Date.now() - MINUTE);
    await stack.db.query(
      `update subscriptions set billing_anchor = $1, current_period_start = $1, current_period_end = $2, trial_end = $2 where id = $3`,
      [new Date(trialEnd.getTime() - 7 * DAY), trialEnd, subId],
    );
    expect(
      statuses(await report(subId, [{ key: 't-1', at: new Date(trialEnd.getTime() - DAY), quantity: 500 }])),
    ).toEqual(['accepted']);
    await runBilling();
    const outcome = await renewal(subId, trialEnd);
    expect(outcome).toMatchObject({ outcome: 'RENEWED', status: 'ACTIVE' });
    const invoice = await http()
      .get(`/api/v1/billing/invoices/${outcome.invoiceId}`)
      .set('Authorization', t.auth);
    expect(invoice.body).toMatchObject({ total: 1000 });
    expect((invoice.body.lines as { kind: string }[]).map((l) => l.kind)).toEqual(['SUBSCRIPTION']);
    expect(await frozenBy(subId)).toEqual({ 't-1': outcome.invoiceId });
    expect(
      statuses(await report(subId, [{ key: 't-2', at: new Date(trialEnd.getTime() - HOUR), quantity: 1 }])),
    ).toEqual(['period_closed']);
  });
});

describe('usageRollup started by hand', () => {
  const rollup = (id: string, days: string[]) =>
    stack.temporal.workflow.execute<typeof usageRollup>('usageRollup', {
      workflowId: id,
      taskQueue: TASK_QUEUES.billing,
      args: [{ days }],
    });

  it('rolls up a backfill longer than one run, continuing as new, every day once', async () => {
    const days = Array.from({ length: 33 }, (_, i) => addUtcDays('2025-01-01', i));
    const result = await rollup('usage-rollup-backfill-2025-01', days);
    expect(result).toMatchObject({ done: true, days: days.slice(31) });
    expect(result.rolledUp.map((d) => d.day)).toEqual(days);
    // Visibility catches up a moment after the runs close.
    await waitFor(
      async () =>
        (await stack.temporal.workflow.count('WorkflowId = "usage-rollup-backfill-2025-01"')).count === 2,
      { what: 'two runs of the backfill', timeoutMs: 10_000 },
    );
  });

  it('fails at once, non-retryable, on a malformed day', async () => {
    const failed = await rollup(workflowIds.usageRollup('2026-02-30'), ['2026-02-29', '2026-02-30']).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    expect((failed as WorkflowFailedError).cause).toMatchObject({
      type: 'billing.validation_failed',
      nonRetryable: true,
    });
  });
});

describe('the product’s overage price', () => {
  it('is set at creation, shown in get and list, and immutable', async () => {
    const got = await http().get(`/api/v1/products/${metered}`).set('Authorization', t.auth);
    expect(got.body).toMatchObject({ included_bandwidth_gb: 100, bandwidth_overage_unit_amount: 5 });
    const list = await http().get('/api/v1/products').set('Authorization', t.auth);
    expect(list.body.data).toContainEqual(got.body);
    const starter = await http().get(`/api/v1/products/${t.starter}`).set('Authorization', t.auth);
    expect(starter.body.bandwidth_overage_unit_amount).toBe(0);

    const patched = await http()
      .patch(`/api/v1/products/${metered}`)
      .set('Authorization', t.auth)
      .send({ bandwidth_overage_unit_amount: 1 });
    expectProblem(patched, 422, 'unprocessable');
    const [row] = await stack.db.query<{ bandwidth_overage_unit_amount: number }>(
      'select bandwidth_overage_unit_amount from products where id = $1',
      [metered],
    );
    expect(row?.bandwidth_overage_unit_amount).toBe(5);
  });

  it.each([-1, 1.5, '5', 2 ** 31, null])('refuses %j with 400, storing nothing', async (value) => {
    const res = await http().post('/api/v1/products').set('Authorization', t.auth).send({
      code: 'HOSTILE',
      name: 'Hostile',
      interval: 'MONTH',
      unit_amount: 1000,
      vcpu: 1,
      memory_mb: 1024,
      disk_gb: 20,
      included_bandwidth_gb: 100,
      bandwidth_overage_unit_amount: value,
    });
    expectProblem(res, 400, 'validation-failed');
    const [row] = await stack.db.query<{ n: number }>(
      "select count(*)::int as n from products where code = 'HOSTILE'",
    );
    expect(row?.n).toBe(0);
  });
});
