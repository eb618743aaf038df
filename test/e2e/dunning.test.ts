/**
 * Dunning through HTTP with the simulated hypervisor and payments, on policies in milliseconds:
 * a soft decline is retried at the policy's offsets, then the subscription is suspended (its pod
 * suspended by its job) and at the threshold canceled (its pod terminated); a card changed during
 * dunning is collected by the next retry; `POST …/pay` after suspension brings the subscription and
 * its pod back; a hard decline is never charged again but still reminded; the policy is the one
 * copied onto the invoice when dunning began; a payment that beats the last timer or the
 * suspension's lock wins; a run continued from carried state keeps its absolute times.
 */
import request from 'supertest';
import { Invoice, Payment } from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import { dunningPolicyInMilliseconds } from '../../src/domain/billing/dunning';
import type { DunningPolicy } from '../../src/domain/tenants';
import { chargeInvoice } from '../../src/services/collection';
import { notifyDunning } from '../../src/services/dunning';
import { recordPayment } from '../../src/services/invoices';
import { paymentSucceededSignal } from '../../src/workflows/messages/billing';
import {
  dunningStateQuery,
  type DunningRunInput,
  type DunningState,
} from '../../src/workflows/messages/dunning';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../../src/workflows/shared';
import type { dunning } from '../../src/workflows/dunning';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let t: PodTenant;

const http = () => request(stack.app);

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'dun-node-1', 32);
  t = await podTenant(stack, 'dun-a');
});
afterAll(async () => {
  await stack?.close();
});

/**
 * The tenant's dunning policy, and net terms of 0 days: an automatically collected invoice is then
 * due when it is charged, so the timeline starts at the failed charge.
 */
async function setPolicy(policy: DunningPolicy): Promise<void> {
  await stack.db.query(
    'update tenant_billing_settings set dunning_policy = $1::jsonb, net_terms_days = 0 where tenant_id = $2',
    [JSON.stringify(policy), t.id],
  );
}

async function setCard(customerId: string, card: string): Promise<void> {
  const res = await http()
    .patch(`/api/v1/customers/${customerId}`)
    .set('Authorization', t.auth)
    .send({ default_payment_method: card });
  expect(res.status).toBe(200);
}

function subscriptionOf(id: string) {
  return http().get(`/api/v1/billing/subscriptions/${id}`).set('Authorization', t.auth);
}

function waitSubscription(id: string, status: string, timeoutMs = 60_000) {
  return waitFor(
    async () => {
      const res = await subscriptionOf(id);
      return res.body.status === status ? (res.body as { pod_id: string }) : undefined;
    },
    { what: `subscription ${id} ${status}`, timeoutMs },
  );
}

const dunningOf = (invoiceId: string) =>
  stack.temporal.workflow.getHandle<typeof dunning>(workflowIds.dunning(invoiceId));
const stateOf = (invoiceId: string) => dunningOf(invoiceId).query(dunningStateQuery);

interface Dunned {
  customerId: string;
  subscriptionId: string;
  invoiceId: string;
  podId: string;
}

/** A customer paying with `card` subscribes; activation's first charge fails: PAST_DUE, dunning begun. */
async function pastDue(slug: string, card: string): Promise<Dunned> {
  const customer = await http()
    .post('/api/v1/customers')
    .set('Authorization', t.auth)
    .send({ email: `${slug}@dun-a.test`, name: slug });
  expect(customer.status).toBe(201);
  const customerId = customer.body.id as string;
  await setCard(customerId, card);
  const sub = await http()
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', t.auth)
    .send({ customer_id: customerId, product_id: t.starter, pod_slug: slug });
  expect(sub.status).toBe(201);
  const subscriptionId = sub.body.id as string;
  const activated = await http()
    .post(`/api/v1/billing/subscriptions/${subscriptionId}/activate`)
    .set('Authorization', t.auth)
    .send();
  expect(activated.status).toBe(202);
  const { pod_id: podId } = await waitSubscription(subscriptionId, 'PAST_DUE');
  const invoices = await http()
    .get(`/api/v1/billing/invoices?subscription_id=${subscriptionId}`)
    .set('Authorization', t.auth);
  const invoiceId = invoices.body.data[0].id as string;
  // PAST_DUE is committed just before activation starts the dunning workflow
  await waitFor(() => dunningOf(invoiceId).describe(), { what: `dunning of ${invoiceId} started` });
  return { customerId, subscriptionId, invoiceId, podId };
}

/** Waits until the run waits for the retry of `attempt` (it has begun and earlier retries are done). */
function waitForRetry(invoiceId: string, attempt: number): Promise<DunningState> {
  return waitFor(
    async () => {
      const state = await stateOf(invoiceId);
      return state.nextRetry?.attempt === attempt ? state : undefined;
    },
    { what: `dunning of ${invoiceId} waiting for attempt ${attempt}`, timeoutMs: 30_000 },
  );
}

const payments = (invoiceId: string) =>
  stack.db.query<{ idempotency_key: string; status: string; decline_kind: string | null; created_at: Date }>(
    'select idempotency_key, status, decline_kind, created_at from payments where invoice_id = $1 order by attempt',
    [invoiceId],
  );

const notifications = (like: string) =>
  stack.db.query<{ template: string; dedupe_key: string; recipient: string }>(
    'select template, dedupe_key, recipient from notifications where dedupe_key like $1 order by created_at, dedupe_key',
    [like],
  );

const podJobs = (podId: string) =>
  stack.db.query<{ type: string; status: string }>(
    'select type, status from provisioning_jobs where pod_id = $1 order by created_at',
    [podId],
  );

it('retries a soft decline at the policy offsets, suspends after the last retry, then cancels and terminates', async () => {
  await setPolicy(
    dunningPolicyInMilliseconds({ retryOffsetsMs: [400, 800, 1200], terminateAfterMsOverdue: 7000 }),
  );
  const d = await pastDue('dun-soft', 'pm_card_insufficientFunds');

  await waitSubscription(d.subscriptionId, 'SUSPENDED', 30_000);
  await waitPod(stack, t, d.podId, 'SUSPENDED');
  const suspended = await stateOf(d.invoiceId);
  expect(suspended).toMatchObject({ status: 'SUSPENDED', suspended: true, nextRetry: null });

  await waitSubscription(d.subscriptionId, 'CANCELED', 30_000);
  await waitPod(stack, t, d.podId, 'TERMINATED');
  const result = await dunningOf(d.invoiceId).result();
  expect(result).toMatchObject({ status: 'CANCELED', suspended: true, lastOutcome: 'DONE' });

  const rows = await payments(d.invoiceId);
  expect(rows.map((p) => [p.idempotency_key, p.status, p.decline_kind])).toEqual(
    [1, 2, 3, 4].map((n) => [`${d.invoiceId}:attempt-${n}`, 'FAILED', 'SOFT']),
  );
  // each retry ran no earlier than its absolute time in the timeline
  const retries = result.timeline?.retries ?? [];
  expect(retries.map((r) => r.attempt)).toEqual([2, 3, 4]);
  retries.forEach((r, i) => {
    expect(rows[i + 1]!.created_at.getTime()).toBeGreaterThanOrEqual(Date.parse(r.at));
  });
  expect(Date.parse(retries[1]!.at) - Date.parse(retries[0]!.at)).toBe(400);

  expect(await notifications(`dunning:${d.invoiceId}:%`)).toEqual([
    ...[1, 2, 3, 4].map((n) => ({
      template: 'invoice.payment_failed',
      dedupe_key: `dunning:${d.invoiceId}:attempt-${n}`,
      recipient: 'dun-soft@dun-a.test',
    })),
    expect.objectContaining({
      template: 'subscription.suspended',
      dedupe_key: `dunning:${d.invoiceId}:suspended`,
    }),
    expect.objectContaining({
      template: 'subscription.canceled',
      dedupe_key: `dunning:${d.invoiceId}:canceled`,
    }),
  ]);
  expect(await podJobs(d.podId)).toEqual([
    { type: 'PROVISION', status: 'COMPLETED' },
    { type: 'SUSPEND', status: 'COMPLETED' },
    { type: 'TERMINATE', status: 'COMPLETED' },
  ]);
  const [backup] = await stack.db.query('select kind, status from backups where pod_id = $1', [d.podId]);
  expect(backup).toEqual({ kind: 'PRE_TERMINATION', status: 'COMPLETED' });
  const invoice = await http().get(`/api/v1/billing/invoices/${d.invoiceId}`).set('Authorization', t.auth);
  expect(invoice.body.status).toBe('OPEN');

  const described = await dunningOf(d.invoiceId).describe();
  expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus)).toBe('CANCELED');
  expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.InvoiceId)).toBe(d.invoiceId);
  expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.SubscriptionId)).toBe(d.subscriptionId);
  expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.TenantId)).toBe(t.id);
  expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.CustomerId)).toBe(d.customerId);
  const activation = await stack.temporal.workflow
    .getHandle(workflowIds.activateSubscription(d.subscriptionId))
    .result();
  expect(activation).toMatchObject({ status: 'PAST_DUE', invoiceId: d.invoiceId });
});

it('collects with the card the customer changed to during dunning: ACTIVE, dunning ended, nothing suspended', async () => {
  await setPolicy(
    dunningPolicyInMilliseconds({ retryOffsetsMs: [1500, 3000, 4500], terminateAfterMsOverdue: 60_000 }),
  );
  const d = await pastDue('dun-change', 'pm_card_insufficientFunds');
  await setCard(d.customerId, 'pm_card_visa');

  const result = await dunningOf(d.invoiceId).result();
  expect(result).toMatchObject({ status: 'PAID', suspended: false, lastOutcome: 'PAID' });
  expect((await subscriptionOf(d.subscriptionId)).body.status).toBe('ACTIVE');
  const rows = await payments(d.invoiceId);
  expect(rows[0]).toMatchObject({ status: 'FAILED', decline_kind: 'SOFT' });
  expect(rows.at(-1)).toMatchObject({ status: 'SUCCEEDED' });
  expect(rows.filter((p) => p.status === 'SUCCEEDED')).toHaveLength(1);
  const invoice = await http().get(`/api/v1/billing/invoices/${d.invoiceId}`).set('Authorization', t.auth);
  expect(invoice.body.status).toBe('PAID');
  expect(await podJobs(d.podId)).toEqual([{ type: 'PROVISION', status: 'COMPLETED' }]);
  expect(
    (await dunningOf(d.invoiceId).describe()).typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus),
  ).toBe('PAID');
});

it('brings a suspended subscription and its pod back when the invoice is paid through POST …/pay', async () => {
  await setPolicy(
    dunningPolicyInMilliseconds({ retryOffsetsMs: [300, 600], terminateAfterMsOverdue: 120_000 }),
  );
  const d = await pastDue('dun-revive', 'pm_card_insufficientFunds');
  await waitSubscription(d.subscriptionId, 'SUSPENDED', 30_000);
  await waitPod(stack, t, d.podId, 'SUSPENDED');

  const paid = await http()
    .post(`/api/v1/billing/invoices/${d.invoiceId}/pay`)
    .set('Authorization', t.auth)
    .set('Idempotency-Key', `pay-${d.invoiceId}`)
    .send({ payment_method: 'pm_card_visa' });
  expect(paid.status).toBe(200);

  const result = await dunningOf(d.invoiceId).result();
  expect(result).toMatchObject({ status: 'PAID', suspended: true });
  await waitSubscription(d.subscriptionId, 'ACTIVE');
  await waitPod(stack, t, d.podId, 'ACTIVE');
  expect(await podJobs(d.podId)).toEqual([
    { type: 'PROVISION', status: 'COMPLETED' },
    { type: 'SUSPEND', status: 'COMPLETED' },
    { type: 'UNSUSPEND', status: 'COMPLETED' },
  ]);
  expect(await notifications(`dunning:${d.invoiceId}:canceled`)).toEqual([]);
});

it('never charges a hard-declined card again but keeps reminding at the retry times', async () => {
  await setPolicy(
    dunningPolicyInMilliseconds({ retryOffsetsMs: [300, 600, 900], terminateAfterMsOverdue: 2500 }),
  );
  const d = await pastDue('dun-hard', 'pm_card_chargeDeclined');

  const result = await dunningOf(d.invoiceId).result();
  expect(result).toMatchObject({ status: 'CANCELED', remindersOnly: true });
  expect((await payments(d.invoiceId)).map((p) => [p.idempotency_key, p.status, p.decline_kind])).toEqual([
    [`${d.invoiceId}:attempt-1`, 'FAILED', 'HARD'],
  ]);
  expect(
    (await notifications(`dunning:${d.invoiceId}:attempt-%`)).map((n) => [n.dedupe_key, n.template]),
  ).toEqual([
    [`dunning:${d.invoiceId}:attempt-1`, 'invoice.payment_failed'],
    [`dunning:${d.invoiceId}:attempt-2`, 'invoice.payment_reminder'],
    [`dunning:${d.invoiceId}:attempt-3`, 'invoice.payment_reminder'],
    [`dunning:${d.invoiceId}:attempt-4`, 'invoice.payment_reminder'],
  ]);
  await waitPod(stack, t, d.podId, 'TERMINATED');
});

it('keeps the policy copied onto the invoice when the tenant changes its policy during dunning', async () => {
  const copied = dunningPolicyInMilliseconds({
    retryOffsetsMs: [60_000, 120_000],
    terminateAfterMsOverdue: 600_000,
  });
  await setPolicy(copied);
  const d = await pastDue('dun-policy', 'pm_card_insufficientFunds');
  const before = await waitForRetry(d.invoiceId, 2);

  await setPolicy(dunningPolicyInMilliseconds({ retryOffsetsMs: [100], terminateAfterMsOverdue: 200 }));
  const [row] = await stack.db.query<{ dunning_policy: DunningPolicy }>(
    'select dunning_policy from invoices where id = $1',
    [d.invoiceId],
  );
  expect(row?.dunning_policy).toEqual(copied);
  const after = await stateOf(d.invoiceId);
  expect(after.timeline).toEqual(before.timeline);
  const [first, second] = before.timeline?.retries ?? [];
  expect(Date.parse(second!.at) - Date.parse(first!.at)).toBe(60_000);

  // POST …/pay settles the invoice and signals the run, which ends at once instead of at its timer
  const paid = await http()
    .post(`/api/v1/billing/invoices/${d.invoiceId}/pay`)
    .set('Authorization', t.auth)
    .set('Idempotency-Key', `pay-${d.invoiceId}`)
    .send({ payment_method: 'pm_card_visa' });
  expect(paid.status).toBe(200);
  expect(await dunningOf(d.invoiceId).result()).toMatchObject({ status: 'PAID' });
  expect((await subscriptionOf(d.subscriptionId)).body.status).toBe('ACTIVE');
  expect((await payments(d.invoiceId)).map((p) => p.status)).toEqual(['FAILED', 'SUCCEEDED']);
});

it('ends at once when the subscription is canceled, and mails nothing more for it', async () => {
  // The next retry is an hour away: only the cancel's signal can end the run within the test.
  await setPolicy(
    dunningPolicyInMilliseconds({ retryOffsetsMs: [3_600_000], terminateAfterMsOverdue: 7_200_000 }),
  );
  const d = await pastDue('dun-cancel', 'pm_card_insufficientFunds');
  await waitForRetry(d.invoiceId, 2);
  const canceled = await http()
    .post(`/api/v1/billing/subscriptions/${d.subscriptionId}/cancel`)
    .set('Authorization', t.auth)
    .send({ at: 'now' });
  expect(canceled.body.status).toBe('CANCELED');

  expect(await dunningOf(d.invoiceId).result()).toMatchObject({ status: 'CANCELED', suspended: false });
  expect((await payments(d.invoiceId)).map((p) => p.idempotency_key)).toEqual([`${d.invoiceId}:attempt-1`]);
  // an email of a retry that was already under way is checked again when it is written: not sent
  expect(await notifyDunning(stack.db.orm, d.invoiceId, 2, 'FAILED', null)).toBe(false);
  expect((await notifications(`dunning:${d.invoiceId}:%`)).map((n) => n.dedupe_key)).toEqual([
    `dunning:${d.invoiceId}:attempt-1`,
  ]);
});

it('ends at once when its invoice is voided, and the subscription is active again', async () => {
  await setPolicy(
    dunningPolicyInMilliseconds({ retryOffsetsMs: [3_600_000], terminateAfterMsOverdue: 7_200_000 }),
  );
  const d = await pastDue('dun-void', 'pm_card_insufficientFunds');
  await waitForRetry(d.invoiceId, 2);
  const voided = await http()
    .post(`/api/v1/billing/invoices/${d.invoiceId}/void`)
    .set('Authorization', t.auth)
    .send();
  expect(voided.body.status).toBe('VOID');
  expect(await dunningOf(d.invoiceId).result()).toMatchObject({ status: 'VOID' });
  expect((await payments(d.invoiceId)).map((p) => p.idempotency_key)).toEqual([`${d.invoiceId}:attempt-1`]);
});

/** A payment recorded through the invoice service, as a manual payment is: a row, then its application. */
async function recordManualPayment(invoiceId: string, em = systemEm(stack.db.orm)): Promise<string> {
  const invoice = await em.findOneOrFail(Invoice, { id: invoiceId });
  const payment = em.create(Payment, {
    tenant: invoice.tenant.id,
    invoice: invoice.id,
    provider: 'manual',
    idempotencyKey: `${invoiceId}:manual-1`,
    attempt: 99,
    amount: invoice.amountDue - invoice.amountPaid,
    currency: invoice.currency,
  });
  await em.flush();
  await recordPayment(em, invoiceId, { paymentId: payment.id, amount: payment.amount });
  return payment.id;
}

it('lets a payment signalled while the last retry is pending win: no last charge, no suspension', async () => {
  await setPolicy(
    dunningPolicyInMilliseconds({ retryOffsetsMs: [300, 20_000], terminateAfterMsOverdue: 60_000 }),
  );
  const d = await pastDue('dun-signal', 'pm_card_insufficientFunds');
  await waitForRetry(d.invoiceId, 3);

  const paymentId = await recordManualPayment(d.invoiceId);
  await dunningOf(d.invoiceId).signal(paymentSucceededSignal, { invoiceId: d.invoiceId, paymentId });

  expect(await dunningOf(d.invoiceId).result()).toMatchObject({ status: 'PAID', suspended: false });
  expect((await subscriptionOf(d.subscriptionId)).body.status).toBe('ACTIVE');
  expect((await payments(d.invoiceId)).map((p) => p.idempotency_key)).toEqual([
    `${d.invoiceId}:attempt-1`,
    `${d.invoiceId}:attempt-2`,
    `${d.invoiceId}:manual-1`,
  ]);
  expect(await podJobs(d.podId)).toEqual([{ type: 'PROVISION', status: 'COMPLETED' }]);
});

it('lets a payment that commits while the suspension waits for the invoice lock win', async () => {
  await setPolicy(
    dunningPolicyInMilliseconds({ retryOffsetsMs: [300, 2500], terminateAfterMsOverdue: 60_000 }),
  );
  const d = await pastDue('dun-race', 'pm_card_insufficientFunds');
  await waitForRetry(d.invoiceId, 3);

  // Hold the invoice row across the last retry: the retry only reads it (and its payment row's
  // foreign key takes a KEY SHARE lock, which NO KEY UPDATE allows), but the suspension locks it
  // FOR UPDATE, so it queues behind this transaction. The payment is applied in this transaction
  // through the invoice service and committed only once the suspension is seen waiting.
  await systemEm(stack.db.orm).transactional(async (tx) => {
    await tx.execute('select id from invoices where id = ? for no key update', [d.invoiceId]);
    await waitFor(
      async () => {
        const waiting = await stack.db.query(
          `select 1 from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and query ilike '%from "invoices"%for update%'`,
        );
        return waiting.length > 0;
      },
      { what: 'the suspension waiting for the invoice lock', timeoutMs: 30_000 },
    );
    await recordManualPayment(d.invoiceId, tx);
  });

  const result = await dunningOf(d.invoiceId).result();
  expect(result).toMatchObject({ status: 'PAID', suspended: false, lastOutcome: 'PAID' });
  expect((await subscriptionOf(d.subscriptionId)).body.status).toBe('ACTIVE');
  // the last retry was charged (and failed); the suspension found the invoice paid
  expect((await payments(d.invoiceId)).map((p) => [p.idempotency_key, p.status])).toEqual([
    [`${d.invoiceId}:attempt-1`, 'FAILED'],
    [`${d.invoiceId}:attempt-2`, 'FAILED'],
    [`${d.invoiceId}:attempt-3`, 'FAILED'],
    [`${d.invoiceId}:manual-1`, 'SUCCEEDED'],
  ]);
  expect(await podJobs(d.podId)).toEqual([{ type: 'PROVISION', status: 'COMPLETED' }]);
  expect(await notifications(`dunning:${d.invoiceId}:suspended`)).toEqual([]);
});

it('continues from a carried timeline at its absolute times (what continueAsNew hands over)', async () => {
  const customer = await http()
    .post('/api/v1/customers')
    .set('Authorization', t.auth)
    .send({ email: 'carried@dun-a.test', name: 'carried' });
  await setCard(customer.body.id as string, 'pm_card_insufficientFunds');
  const draft = await http()
    .post('/api/v1/billing/invoices')
    .set('Authorization', t.auth)
    .set('Idempotency-Key', 'carried-draft')
    .send({
      customer_id: customer.body.id,
      lines: [{ description: 'Setup', quantity: 1, unit_amount: 2500 }],
    });
  expect(draft.status).toBe(201);
  const invoiceId = draft.body.id as string;
  const finalized = await http()
    .post(`/api/v1/billing/invoices/${invoiceId}/finalize`)
    .set('Authorization', t.auth)
    .set('Idempotency-Key', 'carried-finalize');
  expect(finalized.status).toBe(200);
  const deps = { orm: stack.db.orm, payments: stack.providers.payments };
  expect(await chargeInvoice(deps, invoiceId, 1)).toEqual({ status: 'FAILED' });

  // As a run that had done attempt 2 hands over: attempt 3 at an absolute time in the near future.
  const third = new Date(Date.now() + 800).toISOString();
  const input: DunningRunInput = {
    invoiceId,
    subscriptionId: null,
    tenantId: t.id,
    customerId: customer.body.id as string,
    failedAt: new Date(Date.now() - 10_000).toISOString(),
    carried: {
      invoiceNumber: finalized.body.number as string,
      timeline: {
        retries: [
          { attempt: 2, at: new Date(Date.now() - 5_000).toISOString() },
          { attempt: 3, at: third },
        ],
        suspendAt: null,
        terminateAt: null,
      },
      next: 1,
      suspended: false,
      remindersOnly: false,
      paid: false,
      stopRequested: false,
    },
  };
  const handle = await stack.temporal.workflow.start<typeof dunning>('dunning', {
    workflowId: workflowIds.dunning(invoiceId),
    taskQueue: TASK_QUEUES.billing,
    args: [input],
  });
  expect(await handle.result()).toMatchObject({ status: 'UNPAID', invoiceNumber: finalized.body.number });
  const rows = await payments(invoiceId);
  expect(rows.map((p) => p.idempotency_key)).toEqual([`${invoiceId}:attempt-1`, `${invoiceId}:attempt-3`]);
  expect(rows[1]!.created_at.getTime()).toBeGreaterThanOrEqual(Date.parse(third));
  expect((await notifications(`dunning:${invoiceId}:%`)).map((n) => n.dedupe_key)).toEqual([
    `dunning:${invoiceId}:attempt-3`,
  ]);
});
