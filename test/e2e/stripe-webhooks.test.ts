/**
 * Stripe webhooks through HTTP, with a real worker running `processStripeEvent`: a delivery is
 * verified (a bad, missing or old signature is 400 and stores nothing; no configured secret is 503),
 * stored once however often and however concurrently it arrives, and applied once; events apply by
 * Stripe's `created`, never moving a payment back; disputes flag the invoice for operators; a saved
 * card becomes the customer's default; unknown types are recorded and ignored.
 */
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { Invoice } from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import { startTestStack, type TestStack } from '../helpers/app';
import { apiCustomer, seedPayment } from '../helpers/billing';
import { expectProblem } from '../helpers/problem';
import { connectClient } from '../helpers/temporal';
import { createActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

const SECRET = 'whsec_podplane_e2e_test_secret';
const PATH = '/api/v1/billing/webhooks/stripe';

let stack: TestStack;
let tenant: { id: string; auth: string; customerId: string };
let other: { auth: string };

const http = () => request(stack.app);
const now = () => Math.floor(Date.now() / 1000);
const uid = () => randomBytes(8).toString('hex');

beforeAll(async () => {
  stack = await startTestStack({ STRIPE_WEBHOOK_SECRET: SECRET });
  const [a, b] = await Promise.all([createActiveTenant(stack, 'whk-a'), createActiveTenant(stack, 'whk-b')]);
  const auth = `Bearer ${a.token}`;
  tenant = { id: a.id, auth, customerId: await apiCustomer(stack, auth, 'payer@whk-a.test') };
  other = { auth: `Bearer ${b.token}` };
});
afterAll(async () => {
  await stack?.close();
});

function stripeEvent(type: string, object: Record<string, unknown>, created = now()) {
  return {
    id: `evt_${uid()}`,
    object: 'event',
    api_version: '2025-09-30.clover',
    created,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object },
  };
}

function sign(payload: string, opts: { secret?: string; timestamp?: number } = {}): string {
  return Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: opts.secret ?? SECRET,
    ...(opts.timestamp === undefined ? {} : { timestamp: opts.timestamp }),
  });
}

function deliver(event: object, signature?: string | null, app = stack.app) {
  const payload = JSON.stringify(event);
  const req = request(app).post(PATH).set('Content-Type', 'application/json');
  if (signature !== null) req.set('Stripe-Signature', signature ?? sign(payload));
  return req.send(payload);
}

async function webhookRows(): Promise<number> {
  const [row] = await stack.db.query<{ n: number }>('select count(*)::int as n from webhook_events');
  return row!.n;
}

function processed(eventId: string) {
  return waitFor(
    async () => {
      const [row] = await stack.db.query<{ processed_at: Date | null }>(
        'select processed_at from webhook_events where id = $1',
        [eventId],
      );
      return row?.processed_at ?? undefined;
    },
    { what: `event ${eventId} processed`, timeoutMs: 30_000 },
  );
}

/** An OPEN invoice of 5000 EUR with a PENDING attempt 1, as a charge leaves it before Stripe answers. */
async function openInvoiceWithPayment() {
  const created = await http()
    .post('/api/v1/billing/invoices')
    .set('Authorization', tenant.auth)
    .send({
      customer_id: tenant.customerId,
      lines: [{ description: 'Hosting', quantity: 1, unit_amount: 5000 }],
    });
  expect(created.status).toBe(201);
  const finalized = await http()
    .post(`/api/v1/billing/invoices/${created.body.id}/finalize`)
    .set('Authorization', tenant.auth)
    .send();
  expect(finalized.body).toMatchObject({ status: 'OPEN', amount_due: 5000 });
  const invoice = await systemEm(stack.db.orm).findOneOrFail(Invoice, { id: created.body.id as string });
  const payment = await seedPayment(stack.db.orm, invoice, 5000, 1);
  return { invoiceId: invoice.id, paymentId: payment.id };
}

function intent(invoiceId: string, overrides: Record<string, unknown> = {}) {
  return {
    id: `pi_${uid()}`,
    object: 'payment_intent',
    amount: 5000,
    amount_received: 5000,
    currency: 'eur',
    status: 'succeeded',
    metadata: { tenant_id: tenant.id, invoice_id: invoiceId, attempt: '1' },
    last_payment_error: null,
    ...overrides,
  };
}

const failure = (decline_code: string, message: string) => ({
  code: 'card_declined',
  decline_code,
  message,
  type: 'card_error',
});

async function paymentRow(paymentId: string) {
  const [row] = await stack.db.query<Record<string, unknown>>(
    `select status, provider_payment_id, decline_kind, failure_code, amount::int as amount
       from payments where id = $1`,
    [paymentId],
  );
  return row;
}

async function invoiceRow(invoiceId: string) {
  const [row] = await stack.db.query<Record<string, unknown>>(
    `select status, amount_paid::int as amount_paid, paid_at, disputed_at from invoices where id = $1`,
    [invoiceId],
  );
  return row;
}

describe('payment_intent.succeeded', () => {
  it('delivered five times at once and five times more one by one, is stored once and applied once', async () => {
    const { invoiceId, paymentId } = await openInvoiceWithPayment();
    const pi = intent(invoiceId);
    const event = stripeEvent('payment_intent.succeeded', pi);
    const before = await webhookRows();

    const concurrent = await Promise.all(Array.from({ length: 5 }, () => deliver(event)));
    const sequential = [];
    for (let i = 0; i < 5; i++) sequential.push(await deliver(event));
    for (const res of [...concurrent, ...sequential]) {
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ received: true });
    }
    expect(await webhookRows()).toBe(before + 1);
    await processed(event.id);

    expect(await paymentRow(paymentId)).toMatchObject({
      status: 'SUCCEEDED',
      provider_payment_id: pi.id,
      amount: 5000,
    });
    expect(await invoiceRow(invoiceId)).toMatchObject({ status: 'PAID', amount_paid: 5000 });
    const notes = await stack.db.query('select id from credit_notes where customer_id = $1', [
      tenant.customerId,
    ]);
    expect(notes).toEqual([]);

    const state = await stack.temporal.workflow.getHandle(`stripe-event-${event.id}`).query('state');
    expect(state).toMatchObject({
      step: 'done',
      type: 'payment_intent.succeeded',
      outcome: {
        result: 'applied',
        invoiceId,
        paymentId,
        tenantId: tenant.id,
        customerId: tenant.customerId,
      },
    });
    const description = await stack.temporal.workflow.getHandle(`stripe-event-${event.id}`).describe();
    expect(description.searchAttributes).toMatchObject({
      InvoiceId: [invoiceId],
      TenantId: [tenant.id],
      PodplaneStatus: ['APPLIED'],
    });

    // the same event after it was processed: still 200, nothing started or changed
    expect((await deliver(event)).status).toBe(200);
    expect(await invoiceRow(invoiceId)).toMatchObject({ status: 'PAID', amount_paid: 5000 });
  });

  it('is not undone by a payment_failed that Stripe created before it but delivered after', async () => {
    const { invoiceId, paymentId } = await openInvoiceWithPayment();
    const pi = intent(invoiceId);
    const t = now();
    const succeeded = stripeEvent('payment_intent.succeeded', pi, t);
    const failed = stripeEvent(
      'payment_intent.payment_failed',
      {
        ...pi,
        status: 'requires_payment_method',
        amount_received: 0,
        last_payment_error: failure('insufficient_funds', 'Your card has insufficient funds.'),
      },
      t - 30,
    );
    expect((await deliver(succeeded)).status).toBe(200);
    await processed(succeeded.id);
    expect((await deliver(failed)).status).toBe(200);
    await processed(failed.id);

    expect(await paymentRow(paymentId)).toMatchObject({
      status: 'SUCCEEDED',
      decline_kind: null,
      failure_code: null,
    });
    expect(await invoiceRow(invoiceId)).toMatchObject({ status: 'PAID', amount_paid: 5000 });
    const state = await stack.temporal.workflow.getHandle(`stripe-event-${failed.id}`).query('state');
    expect(state).toMatchObject({ outcome: { result: 'stale' } });
  });
});

describe('payment_intent.payment_failed', () => {
  it('records the decline, and an older failure delivered later does not replace a newer one', async () => {
    const { invoiceId, paymentId } = await openInvoiceWithPayment();
    const pi = intent(invoiceId, { status: 'requires_payment_method', amount_received: 0 });
    const t = now();
    const newer = stripeEvent(
      'payment_intent.payment_failed',
      { ...pi, last_payment_error: failure('insufficient_funds', 'Your card has insufficient funds.') },
      t,
    );
    const older = stripeEvent(
      'payment_intent.payment_failed',
      { ...pi, last_payment_error: failure('stolen_card', 'Your card was declined.') },
      t - 60,
    );
    expect((await deliver(newer)).status).toBe(200);
    await processed(newer.id);
    expect(await paymentRow(paymentId)).toMatchObject({
      status: 'FAILED',
      provider_payment_id: pi.id,
      decline_kind: 'SOFT',
      failure_code: 'insufficient_funds',
    });
    expect((await deliver(older)).status).toBe(200);
    await processed(older.id);
    expect(await paymentRow(paymentId)).toMatchObject({
      decline_kind: 'SOFT',
      failure_code: 'insufficient_funds',
    });

    // a success still outranks the failure whenever it arrives: the customer retried the same intent
    const succeeded = stripeEvent(
      'payment_intent.succeeded',
      { ...pi, status: 'succeeded', amount_received: 5000 },
      t - 10,
    );
    expect((await deliver(succeeded)).status).toBe(200);
    await processed(succeeded.id);
    expect(await paymentRow(paymentId)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await invoiceRow(invoiceId)).toMatchObject({ status: 'PAID' });
  });
});

describe('refusals', () => {
  it('answers 400 and stores nothing for a missing, wrong, stale or mismatched signature', async () => {
    const before = await webhookRows();
    const event = stripeEvent('payment_intent.succeeded', intent('inv_00000000000000000000000000'));
    const payload = JSON.stringify(event);
    const tampered = { ...event, data: { object: { ...event.data.object, amount_received: 1 } } };
    for (const res of [
      await deliver(event, null),
      await deliver(event, sign(payload, { secret: 'whsec_someone_else' })),
      await deliver(event, sign(payload, { timestamp: now() - 600 })),
      await deliver(tampered, sign(payload)),
      await deliver(event, 'garbage'),
    ]) {
      expectProblem(res, 400, 'malformed-request');
    }
    const notJson = await http()
      .post(PATH)
      .set('Content-Type', 'text/plain')
      .set('Stripe-Signature', sign(payload))
      .send(payload);
    expectProblem(notJson, 400, 'malformed-request');
    expect(await webhookRows()).toBe(before);
    const [row] = await stack.db.query('select id from webhook_events where id = $1', [event.id]);
    expect(row).toBeUndefined();
  });

  it('answers 503 and stores nothing when no signing secret is configured', async () => {
    const unconfigured = createApp({
      config: { ...stack.config, STRIPE_WEBHOOK_SECRET: undefined },
      orm: stack.db.orm,
      temporal: stack.temporal,
      logger: stack.logger,
      version: 'test',
      commit: 'test',
    });
    const before = await webhookRows();
    const res = await deliver(
      stripeEvent('customer.created', { id: 'cus_x', object: 'customer' }),
      undefined,
      unconfigured,
    );
    expectProblem(res, 503, 'unavailable');
    expect(res.headers['retry-after']).toBeDefined();
    expect(await webhookRows()).toBe(before);
  });

  it('answers 503 when the workflow engine cannot be reached, keeping the row, so that a redelivery is processed', async () => {
    const dead = await connectClient(stack.namespace);
    await dead.close();
    const engineDown = createApp({
      config: stack.config,
      orm: stack.db.orm,
      temporal: dead.client,
      logger: stack.logger,
      version: 'test',
      commit: 'test',
    });
    const event = stripeEvent('customer.updated', { id: 'cus_down', object: 'customer' });
    expectProblem(await deliver(event, undefined, engineDown), 503, 'unavailable');
    const [stored] = await stack.db.query<{ processed_at: Date | null }>(
      'select processed_at from webhook_events where id = $1',
      [event.id],
    );
    expect(stored).toEqual({ processed_at: null });

    expect((await deliver(event)).status).toBe(200);
    await processed(event.id);
    expect(await stack.db.query('select id from webhook_events where id = $1', [event.id])).toHaveLength(1);
  });
});

it('records an event of a type it does not act on, marks it processed and changes nothing', async () => {
  const event = stripeEvent('customer.created', { id: 'cus_unknown', object: 'customer', email: 'x@y.test' });
  const res = await deliver(event);
  expect(res.status).toBe(200);
  await processed(event.id);
  const [row] = await stack.db.query<{ type: string }>('select type from webhook_events where id = $1', [
    event.id,
  ]);
  expect(row).toEqual({ type: 'customer.created' });
  const state = await stack.temporal.workflow.getHandle(`stripe-event-${event.id}`).query('state');
  expect(state).toMatchObject({ step: 'done', outcome: { result: 'ignored', invoiceId: null } });
});

it('flags the invoice of a disputed payment and raises a HIGH ops event', async () => {
  const { invoiceId } = await openInvoiceWithPayment();
  const pi = intent(invoiceId);
  const paid = stripeEvent('payment_intent.succeeded', pi);
  expect((await deliver(paid)).status).toBe(200);
  await processed(paid.id);

  const dispute = stripeEvent('charge.dispute.created', {
    id: `dp_${uid()}`,
    object: 'dispute',
    amount: 5000,
    currency: 'eur',
    charge: `ch_${uid()}`,
    payment_intent: pi.id,
    reason: 'fraudulent',
    status: 'needs_response',
  });
  expect((await deliver(dispute)).status).toBe(200);
  await processed(dispute.id);
  const invoice = await invoiceRow(invoiceId);
  expect(invoice).toMatchObject({ status: 'PAID' });
  expect(invoice?.disputed_at).toEqual(new Date(dispute.created * 1000));
  const events = await stack.db.query<Record<string, unknown>>(
    `select severity, kind, tenant_id from ops_events where dedupe_key = $1`,
    [`stripe-event:${dispute.id}`],
  );
  expect(events).toEqual([{ severity: 'HIGH', kind: 'payment_disputed', tenant_id: tenant.id }]);
});

it('moves a fully refunded payment to REFUNDED, with an ops event', async () => {
  const { invoiceId, paymentId } = await openInvoiceWithPayment();
  const pi = intent(invoiceId);
  const paid = stripeEvent('payment_intent.succeeded', pi);
  expect((await deliver(paid)).status).toBe(200);
  await processed(paid.id);
  const refunded = stripeEvent('charge.refunded', {
    id: `ch_${uid()}`,
    object: 'charge',
    amount: 5000,
    amount_refunded: 5000,
    currency: 'eur',
    payment_intent: pi.id,
    refunded: true,
  });
  expect((await deliver(refunded)).status).toBe(200);
  await processed(refunded.id);
  expect(await paymentRow(paymentId)).toMatchObject({ status: 'REFUNDED' });
  const events = await stack.db.query<Record<string, unknown>>(
    `select severity, kind from ops_events where dedupe_key = $1`,
    [`stripe-event:${refunded.id}`],
  );
  expect(events).toEqual([{ severity: 'MEDIUM', kind: 'payment_refunded' }]);
});

describe('saving a card', () => {
  it('makes a SetupIntent for the customer, whose success sets the default payment method', async () => {
    const customerId = await apiCustomer(stack, tenant.auth, 'saver@whk-a.test');
    const res = await http()
      .post(`/api/v1/customers/${customerId}/setup-intent`)
      .set('Authorization', tenant.auth)
      .send();
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.any(String),
      client_secret: expect.any(String),
      status: 'requires_payment_method',
    });
    expect(JSON.stringify(stack.logLines)).not.toContain(res.body.client_secret as string);
    const [customer] = await stack.db.query<{ provider_customer_id: string | null }>(
      'select provider_customer_id from customers where id = $1',
      [customerId],
    );
    expect(customer?.provider_customer_id).toEqual(expect.any(String));
    const providerCustomer = customer!.provider_customer_id!;

    const t = now();
    const setup = (pm: string, created: number) =>
      stripeEvent(
        'setup_intent.succeeded',
        {
          id: res.body.id,
          object: 'setup_intent',
          customer: providerCustomer,
          payment_method: pm,
          status: 'succeeded',
          usage: 'off_session',
        },
        created,
      );
    const newer = setup('pm_card_mastercard', t);
    expect((await deliver(newer)).status).toBe(200);
    await processed(newer.id);
    const older = setup('pm_card_amex', t - 120);
    expect((await deliver(older)).status).toBe(200);
    await processed(older.id);

    const view = await http().get(`/api/v1/customers/${customerId}`).set('Authorization', tenant.auth);
    expect(view.body.default_payment_method).toBe('pm_card_mastercard');
  });

  it('answers 404 for another tenant’s customer and makes nothing', async () => {
    const res = await http()
      .post(`/api/v1/customers/${tenant.customerId}/setup-intent`)
      .set('Authorization', other.auth)
      .send();
    expectProblem(res, 404, 'not-found');
    const [customer] = await stack.db.query<{ provider_customer_id: string | null }>(
      'select provider_customer_id from customers where id = $1',
      [tenant.customerId],
    );
    expect(customer?.provider_customer_id).toBeNull();
  });
});
