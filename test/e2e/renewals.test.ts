/**
 * Renewals through the real stack (simulated hypervisor and payments, a real worker): a
 * subscription activated through the API has its period moved into the past in the database, and
 * `billingRun` — started with the test client, as the `billing-run` schedule starts it — renews
 * it: the next period invoiced once (a run fired twice or concurrently bills nothing more), paid,
 * and the period moved exactly one anchored period forward; a subscription set to cancel at the
 * period end is canceled and its pod terminated; a declined card leaves it PAST_DUE in dunning; a
 * MANUAL customer's invoice stays OPEN while the period moves on; a trial converts with and
 * without a payment method. Cancellation through HTTP, now or at the period end, and the trial
 * reminders of `trialSweep` too.
 */
import request from 'supertest';
import { WorkflowNotFoundError } from '@temporalio/client';
import { addMonthsClamped, nextPeriod, periodAt } from '../../src/domain/billing';
import type { billingRun } from '../../src/workflows/billing-run';
import type { RenewalState } from '../../src/workflows/messages/renewals';
import type { renewSubscription } from '../../src/workflows/renewals';
import { TASK_QUEUES, workflowIds } from '../../src/workflows/shared';
import type { trialSweep } from '../../src/workflows/trial-sweep';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let t: PodTenant;
let runs = 0;

const http = () => request(stack.app);
const MINUTE = 60_000;
const DAY = 86_400_000;

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'renew-node-1', 32);
  t = await podTenant(stack, 'renew-a');
});
afterAll(async () => {
  await stack?.close();
});

interface SubscriptionBody {
  id: string;
  customer_id: string;
  status: string;
  pod_id: string | null;
  current_period_start: string | null;
  current_period_end: string | null;
  cancel_at_period_end: boolean;
  canceled_at: string | null;
  trial_end: string | null;
}

async function customer(email: string, billing: Record<string, unknown>): Promise<string> {
  const created = await http()
    .post('/api/v1/customers')
    .set('Authorization', t.auth)
    .send({ email, name: email });
  expect(created.status).toBe(201);
  if (Object.keys(billing).length > 0) {
    const updated = await http()
      .patch(`/api/v1/customers/${created.body.id}`)
      .set('Authorization', t.auth)
      .send(billing);
    expect(updated.status).toBe(200);
  }
  return created.body.id as string;
}

async function getSubscription(id: string): Promise<SubscriptionBody> {
  const res = await http().get(`/api/v1/billing/subscriptions/${id}`).set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body as SubscriptionBody;
}

function waitSubscription(id: string, status: string): Promise<SubscriptionBody> {
  return waitFor(
    async () => {
      const sub = await getSubscription(id);
      return sub.status === status ? sub : undefined;
    },
    { what: `subscription ${id} ${status}`, timeoutMs: 60_000 },
  );
}

/** A subscription created and activated through the API, waited on until it is `status`. */
async function activated(
  slug: string,
  billing: Record<string, unknown>,
  opts: { trialDays?: number; status?: string } = {},
): Promise<SubscriptionBody> {
  const customerId = await customer(`${slug}@renew-a.test`, billing);
  const created = await http()
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', t.auth)
    .send({
      customer_id: customerId,
      product_id: t.starter,
      pod_slug: slug,
      ...(opts.trialDays ? { trial_days: opts.trialDays } : {}),
    });
  expect(created.status).toBe(201);
  const started = await http()
    .post(`/api/v1/billing/subscriptions/${created.body.id}/activate`)
    .set('Authorization', t.auth)
    .send();
  expect(started.status).toBe(202);
  return waitSubscription(created.body.id as string, opts.status ?? 'ACTIVE');
}

/**
 * Moves the subscription's current period into the past: anchored a month and a minute ago, so
 * its first period ended a minute ago and the next one (the one renewal bills) ends in about a
 * month — exactly one period is due.
 */
async function endPeriod(subscriptionId: string): Promise<{ anchor: Date; start: Date; end: Date }> {
  const anchor = addMonthsClamped(new Date(Date.now() - MINUTE), -1);
  const current = periodAt(anchor, 'MONTH', 0);
  await stack.db.query(
    `update subscriptions set billing_anchor = $1, current_period_start = $1, current_period_end = $2 where id = $3`,
    [anchor, current.end, subscriptionId],
  );
  return { anchor, start: current.start, end: current.end };
}

/** Ends the subscription's trial a minute ago (it started `days` days before that). */
async function endTrial(subscriptionId: string, days: number): Promise<Date> {
  const end = new Date(Date.now() - MINUTE);
  const start = new Date(end.getTime() - days * DAY);
  await stack.db.query(
    `update subscriptions set billing_anchor = $1, current_period_start = $1, current_period_end = $2, trial_end = $2 where id = $3`,
    [start, end, subscriptionId],
  );
  return end;
}

/** One billing run, as the schedule starts it, to its end. */
function runBilling(input: Parameters<typeof billingRun>[0] = {}) {
  runs += 1;
  return stack.temporal.workflow.execute<typeof billingRun>('billingRun', {
    workflowId: `billing-run-test-${runs}`,
    taskQueue: TASK_QUEUES.billing,
    args: [input],
  });
}

/** The outcome of the renewal of `subscriptionId` for the period starting at `periodStart`. */
function renewal(subscriptionId: string, periodStart: Date): Promise<RenewalState> {
  return stack.temporal.workflow
    .getHandle<typeof renewSubscription>(
      workflowIds.renewSubscription(subscriptionId, periodStart.toISOString()),
    )
    .result();
}

interface InvoiceRow {
  id: string;
  status: string;
  billing_reason: string;
  period_start: Date;
  period_end: Date;
  amount_due: string;
  collection_method: string;
}

const cycleInvoices = (subscriptionId: string) =>
  stack.db.query<InvoiceRow>(
    `select id, status, billing_reason, period_start, period_end, amount_due, collection_method
       from invoices where subscription_id = $1 and billing_reason = 'SUBSCRIPTION_CYCLE' order by period_start`,
    [subscriptionId],
  );

const payments = (invoiceId: string) =>
  stack.db.query<{
    status: string;
    failure_code: string | null;
    decline_kind: string | null;
    idempotency_key: string;
  }>(
    'select status, failure_code, decline_kind, idempotency_key from payments where invoice_id = $1 order by attempt',
    [invoiceId],
  );

async function dunningStarted(invoiceId: string): Promise<boolean> {
  try {
    await stack.temporal.workflow.getHandle(workflowIds.dunning(invoiceId)).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

describe('billingRun renews subscriptions whose period ended', () => {
  it('invoices the next period once, charges it and moves the period exactly one anchored period', async () => {
    const sub = await activated('renew-visa', { default_payment_method: 'pm_card_visa' });
    const ended = await endPeriod(sub.id);
    const expected = nextPeriod(ended.anchor, 'MONTH', ended);

    const run = await runBilling();
    expect(run).toMatchObject({ done: true, found: 1, started: 1, alreadyRunning: 0 });
    const outcome = await renewal(sub.id, ended.end);
    expect(outcome).toMatchObject({ outcome: 'RENEWED', status: 'ACTIVE', step: 'done' });

    const [invoice, ...more] = await cycleInvoices(sub.id);
    expect(more).toEqual([]);
    expect(invoice).toMatchObject({ id: outcome.invoiceId, status: 'PAID', amount_due: '1000' });
    expect(invoice?.period_start).toEqual(expected.start);
    expect(invoice?.period_end).toEqual(expected.end);
    expect(await payments(invoice!.id)).toEqual([
      expect.objectContaining({ status: 'SUCCEEDED', idempotency_key: `${invoice!.id}:attempt-1` }),
    ]);
    const renewed = await getSubscription(sub.id);
    expect(renewed).toMatchObject({
      status: 'ACTIVE',
      current_period_start: expected.start.toISOString(),
      current_period_end: expected.end.toISOString(),
    });
    // The period moved by one: nothing is due any more.
    expect(await runBilling()).toMatchObject({ done: true, found: 0, started: 0 });
  });

  it('bills a period once when billing runs fire concurrently and again, and a repeated renewal moves nothing', async () => {
    const sub = await activated('renew-twice', { default_payment_method: 'pm_card_visa' });
    const ended = await endPeriod(sub.id);
    const [first, second] = await Promise.all([runBilling(), runBilling()]);
    expect(first.found + second.found).toBeGreaterThanOrEqual(1);
    const outcome = await renewal(sub.id, ended.end);
    expect(outcome.outcome).toBe('RENEWED');
    await runBilling();
    const after = await getSubscription(sub.id);

    // The same renewal once more (its id reused after it closed): the period is renewed already.
    const again = await stack.temporal.workflow.execute<typeof renewSubscription>('renewSubscription', {
      workflowId: workflowIds.renewSubscription(sub.id, ended.end.toISOString()),
      taskQueue: TASK_QUEUES.billing,
      args: [
        {
          subscriptionId: sub.id,
          tenantId: t.id,
          customerId: 'ignored',
          periodStart: ended.end.toISOString(),
        },
      ],
    });
    expect(again).toMatchObject({ outcome: 'SKIPPED', invoiceId: null });

    const invoices = await cycleInvoices(sub.id);
    expect(invoices).toHaveLength(1);
    expect(invoices[0]?.status).toBe('PAID');
    expect(await payments(invoices[0]!.id)).toHaveLength(1);
    expect(await getSubscription(sub.id)).toEqual(after);
    expect(after.current_period_start).toBe(ended.end.toISOString());
  });

  it('pages through due subscriptions with continueAsNew, starting each renewal once', async () => {
    const subs = await Promise.all(
      ['renew-page-1', 'renew-page-2', 'renew-page-3'].map((slug) =>
        activated(slug, { default_payment_method: 'pm_card_visa' }),
      ),
    );
    const ended: Awaited<ReturnType<typeof endPeriod>>[] = [];
    for (const s of subs) ended.push(await endPeriod(s.id));
    const run = await runBilling({ pageSize: 1, pagesPerRun: 1 });
    expect(run).toMatchObject({ done: true, found: 3, started: 3, pages: 4 });
    const outcomes = await Promise.all(subs.map((s, i) => renewal(s.id, ended[i]!.end)));
    expect(outcomes.map((o) => o.outcome)).toEqual(['RENEWED', 'RENEWED', 'RENEWED']);
    for (const s of subs) expect(await cycleInvoices(s.id)).toHaveLength(1);
  });

  it('cancels a subscription set to cancel at the period end and terminates its pod, invoicing nothing', async () => {
    const sub = await activated('renew-cancel-end', { default_payment_method: 'pm_card_visa' });
    const asked = await http()
      .post(`/api/v1/billing/subscriptions/${sub.id}/cancel`)
      .set('Authorization', t.auth)
      .send({ at: 'period_end' });
    expect(asked.status).toBe(200);
    expect(asked.body).toMatchObject({ status: 'ACTIVE', cancel_at_period_end: true, canceled_at: null });

    const ended = await endPeriod(sub.id);
    await runBilling();
    expect(await renewal(sub.id, ended.end)).toMatchObject({ outcome: 'CANCELED', status: 'CANCELED' });
    const canceled = await getSubscription(sub.id);
    expect(canceled.status).toBe('CANCELED');
    expect(canceled.canceled_at).not.toBeNull();
    await waitPod(stack, t, sub.pod_id!, 'TERMINATED', 60_000);
    expect(await cycleInvoices(sub.id)).toEqual([]);
  });

  it('leaves a declined renewal PAST_DUE with its period unchanged, and starts dunning', async () => {
    const sub = await activated('renew-declined', { default_payment_method: 'pm_card_visa' });
    const changed = await http()
      .patch(`/api/v1/customers/${sub.customer_id}`)
      .set('Authorization', t.auth)
      .send({ default_payment_method: 'pm_card_chargeDeclined' });
    expect(changed.status).toBe(200);
    const ended = await endPeriod(sub.id);
    await runBilling();
    const outcome = await renewal(sub.id, ended.end);
    expect(outcome).toMatchObject({ outcome: 'PAST_DUE', status: 'PAST_DUE' });

    const [invoice] = await cycleInvoices(sub.id);
    expect(invoice).toMatchObject({ id: outcome.invoiceId, status: 'OPEN' });
    expect(await payments(invoice!.id)).toEqual([
      expect.objectContaining({ status: 'FAILED', decline_kind: 'HARD' }),
    ]);
    expect(await getSubscription(sub.id)).toMatchObject({
      status: 'PAST_DUE',
      current_period_end: ended.end.toISOString(),
    });
    expect(await dunningStarted(invoice!.id)).toBe(true);
    // Not ACTIVE, so not due again: the next run leaves it to dunning.
    expect(await runBilling()).toMatchObject({ found: 0 });

    // Paid later (ACTIVE again, the period still ended): the next run renews the same period once
    // more, finds its invoice paid, and only moves the period on.
    const paid = await http()
      .post(`/api/v1/billing/invoices/${invoice!.id}/pay`)
      .set('Authorization', t.auth)
      .send({ payment_method: 'pm_card_visa' });
    expect(paid.status).toBe(200);
    await waitSubscription(sub.id, 'ACTIVE');
    expect(await runBilling()).toMatchObject({ found: 1, started: 1 });
    expect(await renewal(sub.id, ended.end)).toMatchObject({ outcome: 'RENEWED', invoiceId: invoice!.id });
    expect(await cycleInvoices(sub.id)).toEqual([
      expect.objectContaining({ id: invoice!.id, status: 'PAID' }),
    ]);
    expect(await getSubscription(sub.id)).toMatchObject({
      status: 'ACTIVE',
      current_period_end: nextPeriod(ended.anchor, 'MONTH', ended).end.toISOString(),
    });
  });

  it('leaves a MANUAL customer’s invoice OPEN and moves the period on', async () => {
    const sub = await activated('renew-manual', { collection_method: 'MANUAL' });
    const ended = await endPeriod(sub.id);
    const expected = nextPeriod(ended.anchor, 'MONTH', ended);
    await runBilling();
    expect(await renewal(sub.id, ended.end)).toMatchObject({ outcome: 'RENEWED', status: 'ACTIVE' });
    const [invoice] = await cycleInvoices(sub.id);
    expect(invoice).toMatchObject({ status: 'OPEN', collection_method: 'MANUAL' });
    expect(await payments(invoice!.id)).toEqual([]);
    expect(await getSubscription(sub.id)).toMatchObject({
      status: 'ACTIVE',
      current_period_end: expected.end.toISOString(),
    });
  });
});

describe('trials', () => {
  it('converts a trial that ended: the first paid period from the trial end, charged, ACTIVE', async () => {
    const sub = await activated(
      'trial-visa',
      { default_payment_method: 'pm_card_visa' },
      {
        trialDays: 14,
        status: 'TRIALING',
      },
    );
    const trialEnd = await endTrial(sub.id, 14);
    const first = periodAt(trialEnd, 'MONTH', 0);
    await runBilling();
    expect(await renewal(sub.id, trialEnd)).toMatchObject({ outcome: 'RENEWED', status: 'ACTIVE' });
    const [invoice, ...more] = await cycleInvoices(sub.id);
    expect(more).toEqual([]);
    expect(invoice).toMatchObject({ status: 'PAID' });
    expect(invoice?.period_start).toEqual(first.start);
    expect(invoice?.period_end).toEqual(first.end);
    expect(await getSubscription(sub.id)).toMatchObject({
      status: 'ACTIVE',
      current_period_start: first.start.toISOString(),
      current_period_end: first.end.toISOString(),
    });
    const [anchor] = await stack.db.query<{ billing_anchor: Date }>(
      'select billing_anchor from subscriptions where id = $1',
      [sub.id],
    );
    expect(anchor?.billing_anchor).toEqual(trialEnd);
  });

  it('makes a trial without a payment method PAST_DUE at its end: a failed attempt and dunning', async () => {
    const sub = await activated('trial-no-card', {}, { trialDays: 7, status: 'TRIALING' });
    const trialEnd = await endTrial(sub.id, 7);
    await runBilling();
    const outcome = await renewal(sub.id, trialEnd);
    expect(outcome).toMatchObject({ outcome: 'PAST_DUE', status: 'PAST_DUE' });
    const [invoice] = await cycleInvoices(sub.id);
    expect(invoice).toMatchObject({ status: 'OPEN' });
    expect(await payments(invoice!.id)).toEqual([
      expect.objectContaining({ status: 'FAILED', failure_code: 'payment_method_missing' }),
    ]);
    expect(await getSubscription(sub.id)).toMatchObject({
      status: 'PAST_DUE',
      current_period_end: trialEnd.toISOString(),
    });
    expect(await dunningStarted(invoice!.id)).toBe(true);
  });

  it('records the reminder due before a trial ends, once however often the sweep runs', async () => {
    const sub = await activated('trial-remind', {}, { trialDays: 14, status: 'TRIALING' });
    // 2.5 days left: the 7- and 3-day reminders are past (only the latest is sent), the 1-day one is not due.
    const end = new Date(Date.now() + 2.5 * DAY);
    await stack.db.query(
      `update subscriptions set current_period_start = $1, billing_anchor = $1, current_period_end = $2, trial_end = $2 where id = $3`,
      [new Date(end.getTime() - 14 * DAY), end, sub.id],
    );
    const sweep = (n: number) =>
      stack.temporal.workflow.execute<typeof trialSweep>('trialSweep', {
        workflowId: `trial-sweep-test-${n}`,
        taskQueue: TASK_QUEUES.billing,
        args: [{}],
      });
    expect(await sweep(1)).toMatchObject({ done: true, reminded: 1 });
    await Promise.all([sweep(2), sweep(3)]);
    const reminders = await stack.db.query<{ dedupe_key: string; template: string; recipient: string }>(
      `select dedupe_key, template, recipient from notifications where dedupe_key like $1`,
      [`trial-reminder:${sub.id}:%`],
    );
    expect(reminders).toEqual([
      {
        dedupe_key: `trial-reminder:${sub.id}:3`,
        template: 'subscription.trial_ending',
        recipient: 'trial-remind@renew-a.test',
      },
    ]);
  });
});

describe('POST /billing/subscriptions/:id/cancel', () => {
  const cancel = (id: string, body?: Record<string, unknown>) =>
    http().post(`/api/v1/billing/subscriptions/${id}/cancel`).set('Authorization', t.auth).send(body);

  it('cancels now: CANCELED at once and the pod terminated; repeating it changes nothing', async () => {
    const sub = await activated('cancel-now', { default_payment_method: 'pm_card_visa' });
    const res = await cancel(sub.id, { at: 'now' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'CANCELED' });
    expect(res.body.canceled_at).not.toBeNull();
    await waitPod(stack, t, sub.pod_id!, 'TERMINATED', 60_000);

    const again = await cancel(sub.id, { at: 'now' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'CANCELED', canceled_at: res.body.canceled_at });
    expect((await cancel(sub.id)).body).toMatchObject({ status: 'CANCELED', cancel_at_period_end: false });
    const jobs = await stack.db.query<{ n: number }>(
      `select count(*)::int as n from provisioning_jobs where pod_id = $1 and type = 'TERMINATE'`,
      [sub.pod_id],
    );
    expect(jobs).toEqual([{ n: 1 }]);
  });

  it('cancels at the period end by default, keeping the subscription and its pod running', async () => {
    const sub = await activated('cancel-default', { default_payment_method: 'pm_card_visa' });
    const res = await cancel(sub.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ACTIVE', cancel_at_period_end: true, canceled_at: null });
    const pod = await http().get(`/api/v1/cloudpods/${sub.pod_id}`).set('Authorization', t.auth);
    expect(pod.body.status).toBe('ACTIVE');
  });

  it('cancels a subscription never activated at once, whatever `at` says, and refuses bad bodies', async () => {
    const customerId = await customer('cancel-pending@renew-a.test', {});
    const created = await http()
      .post('/api/v1/billing/subscriptions')
      .set('Authorization', t.auth)
      .send({ customer_id: customerId, product_id: t.starter, pod_slug: 'cancel-pending' });
    expect(created.status).toBe(201);
    expectProblem(await cancel(created.body.id, { at: 'later' }), 400, 'validation-failed');
    expectProblem(await cancel(created.body.id, { at: 'now', refund: true }), 400, 'validation-failed');
    expect((await getSubscription(created.body.id)).status).toBe('PENDING');
    const res = await cancel(created.body.id, { at: 'period_end' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'CANCELED', cancel_at_period_end: false });
  });
});
