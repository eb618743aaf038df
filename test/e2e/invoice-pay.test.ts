/**
 * `POST /api/v1/billing/invoices/:id/pay` through HTTP with the simulated payment provider: a
 * subscription left PAST_DUE by a declined card is paid with a good one and is ACTIVE again; a
 * SUSPENDED one gets its pod back; a decline is 402 with the FAILED payment recorded; a card that
 * needs the customer is 202; a PAID invoice is 409; other tenants see 404; hostile bodies are 400
 * and charge nothing; the same Idempotency-Key charges once.
 */
import request from 'supertest';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let a: PodTenant;
let b: PodTenant;

const http = () => request(stack.app);

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'pay-node-1', 32);
  [a, b] = await Promise.all([podTenant(stack, 'pay-a'), podTenant(stack, 'pay-b')]);
});
afterAll(async () => {
  await stack?.close();
});

async function customerWith(email: string, paymentMethod: string | null): Promise<string> {
  const created = await http()
    .post('/api/v1/customers')
    .set('Authorization', a.auth)
    .send({ email, name: email });
  expect(created.status).toBe(201);
  if (paymentMethod) {
    const updated = await http()
      .patch(`/api/v1/customers/${created.body.id}`)
      .set('Authorization', a.auth)
      .send({ default_payment_method: paymentMethod });
    expect(updated.status).toBe(200);
  }
  return created.body.id as string;
}

function getJson(path: string, auth = a.auth) {
  return http().get(path).set('Authorization', auth);
}

function pay(invoiceId: string, body: unknown = {}, auth = a.auth, key?: string) {
  const req = http().post(`/api/v1/billing/invoices/${invoiceId}/pay`).set('Authorization', auth);
  if (key) req.set('Idempotency-Key', key);
  return req.send(body as object);
}

/** A subscription of a customer whose card is declined: activated, its first invoice left OPEN, PAST_DUE. */
async function pastDueSubscription(slug: string) {
  const customerId = await customerWith(`${slug}@pay-a.test`, 'pm_card_chargeDeclined');
  const sub = await http()
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', a.auth)
    .send({ customer_id: customerId, product_id: a.starter, pod_slug: slug });
  expect(sub.status).toBe(201);
  const activated = await http()
    .post(`/api/v1/billing/subscriptions/${sub.body.id}/activate`)
    .set('Authorization', a.auth)
    .send();
  expect(activated.status).toBe(202);
  const pastDue = await waitFor(
    async () => {
      const res = await getJson(`/api/v1/billing/subscriptions/${sub.body.id}`);
      return res.body.status === 'PAST_DUE' ? res.body : undefined;
    },
    { what: `subscription ${slug} PAST_DUE`, timeoutMs: 60_000 },
  );
  const invoices = await getJson(`/api/v1/billing/invoices?subscription_id=${sub.body.id}`);
  const [invoice] = invoices.body.data as { id: string; status: string; amount_due: number }[];
  expect(invoice).toMatchObject({ status: 'OPEN' });
  return {
    customerId,
    subscriptionId: sub.body.id as string,
    podId: pastDue.pod_id as string,
    invoiceId: invoice!.id,
    amountDue: invoice!.amount_due,
  };
}

/** A finalized one-off invoice of 2500 for `customerId`. */
async function openInvoice(customerId: string): Promise<string> {
  const created = await http()
    .post('/api/v1/billing/invoices')
    .set('Authorization', a.auth)
    .send({ customer_id: customerId, lines: [{ description: 'Migration', quantity: 1, unit_amount: 2500 }] });
  expect(created.status).toBe(201);
  const finalized = await http()
    .post(`/api/v1/billing/invoices/${created.body.id}/finalize`)
    .set('Authorization', a.auth)
    .send();
  expect(finalized.body.status).toBe('OPEN');
  return created.body.id as string;
}

const payments = (invoiceId: string) =>
  stack.db.query<Record<string, unknown>>(
    `select attempt, status, payment_method, decline_kind, failure_code
       from payments where invoice_id = $1 order by attempt`,
    [invoiceId],
  );

async function paymentCount(): Promise<number> {
  const [row] = await stack.db.query<{ n: number }>('select count(*)::int as n from payments');
  return row!.n;
}

async function defaultMethod(customerId: string) {
  const res = await getJson(`/api/v1/customers/${customerId}`);
  return res.body.default_payment_method as string | null;
}

it('pays a PAST_DUE subscription’s invoice with another card: 200, invoice PAID, subscription ACTIVE', async () => {
  const s = await pastDueSubscription('pay-pastdue');
  const res = await pay(s.invoiceId, { payment_method: 'pm_card_visa' }, a.auth, 'pay-pastdue-1');
  expect(res.status).toBe(200);
  expect(res.body.invoice).toMatchObject({ id: s.invoiceId, status: 'PAID', amount_paid: s.amountDue });
  expect(res.body.invoice.lines).toHaveLength(1);
  expect(res.body.payment).toMatchObject({
    invoice_id: s.invoiceId,
    status: 'SUCCEEDED',
    attempt: 2,
    amount: s.amountDue,
    payment_method: 'pm_card_visa',
    decline_kind: null,
  });
  const sub = await getJson(`/api/v1/billing/subscriptions/${s.subscriptionId}`);
  expect(sub.body.status).toBe('ACTIVE');
  expect(await payments(s.invoiceId)).toEqual([
    expect.objectContaining({ attempt: 1, status: 'FAILED', payment_method: 'pm_card_chargeDeclined' }),
    expect.objectContaining({ attempt: 2, status: 'SUCCEEDED', payment_method: 'pm_card_visa' }),
  ]);
  // an existing default is not replaced by paying with another card
  expect(await defaultMethod(s.customerId)).toBe('pm_card_chargeDeclined');
  // the invoice's dunning was told, and ends as PAID
  const dunning = stack.temporal.workflow.getHandle(`dunning-${s.invoiceId}`);
  await waitFor(async () => (await dunning.describe()).status.name === 'COMPLETED', {
    what: `dunning-${s.invoiceId} completed`,
  });
  expect(await dunning.query('state')).toMatchObject({ status: 'PAID' });

  // the same key and body: the stored answer, no second charge
  const replay = await pay(s.invoiceId, { payment_method: 'pm_card_visa' }, a.auth, 'pay-pastdue-1');
  expect(replay.status).toBe(200);
  expect(replay.body.payment.id).toBe(res.body.payment.id);
  expect(await payments(s.invoiceId)).toHaveLength(2);

  // a PAID invoice cannot be paid again
  expectProblem(await pay(s.invoiceId, { payment_method: 'pm_card_visa' }), 409, 'conflict');
  expect(await payments(s.invoiceId)).toHaveLength(2);
});

it('brings a SUSPENDED subscription back to ACTIVE and unsuspends its pod', async () => {
  const s = await pastDueSubscription('pay-suspended');
  // what dunning does after its last retry: the pod suspended through its workflow, the subscription SUSPENDED
  const suspend = await http()
    .post(`/api/v1/cloudpods/${s.podId}/suspend`)
    .set('Authorization', a.auth)
    .send();
  expect(suspend.status).toBe(202);
  await waitPod(stack, a, s.podId, 'SUSPENDED');
  await stack.db.query(`update subscriptions set status = 'SUSPENDED' where id = $1`, [s.subscriptionId]);

  const res = await pay(s.invoiceId, { payment_method: 'pm_card_visa' });
  expect(res.status).toBe(200);
  expect(res.body.invoice.status).toBe('PAID');
  const sub = await getJson(`/api/v1/billing/subscriptions/${s.subscriptionId}`);
  expect(sub.body.status).toBe('ACTIVE');
  await waitPod(stack, a, s.podId, 'ACTIVE');
  const jobs = await stack.db.query<{ type: string; status: string }>(
    `select type, status from provisioning_jobs where pod_id = $1 and type = 'UNSUSPEND'`,
    [s.podId],
  );
  expect(jobs).toEqual([{ type: 'UNSUSPEND', status: 'COMPLETED' }]);
});

it('answers 402 for a declined card, with the FAILED payment recorded and no default saved', async () => {
  const customerId = await customerWith('declined@pay-a.test', null);
  const invoiceId = await openInvoice(customerId);

  const res = await pay(invoiceId, { payment_method: 'pm_card_chargeDeclined' });
  expectProblem(res, 402, 'payment-declined');
  expect(res.body).toMatchObject({ decline_kind: 'HARD', failure_code: 'generic_decline' });
  expect(await payments(invoiceId)).toEqual([
    {
      attempt: 1,
      status: 'FAILED',
      payment_method: 'pm_card_chargeDeclined',
      decline_kind: 'HARD',
      failure_code: 'generic_decline',
    },
  ]);
  const [row] = await stack.db.query<{ id: string }>('select id from payments where invoice_id = $1', [
    invoiceId,
  ]);
  expect(res.body.payment_id).toBe(row?.id);
  expect(await defaultMethod(customerId)).toBeNull();
  const invoice = await getJson(`/api/v1/billing/invoices/${invoiceId}`);
  expect(invoice.body).toMatchObject({ status: 'OPEN', amount_paid: 0 });

  // no method given and none saved: 422, nothing charged
  expectProblem(await pay(invoiceId, {}), 422, 'unprocessable');
  expect(await payments(invoiceId)).toHaveLength(1);

  // a card that needs the customer's authentication: 202, REQUIRES_ACTION
  const action = await pay(invoiceId, { payment_method: 'pm_card_authenticationRequired' });
  expect(action.status).toBe(202);
  expect(action.body.payment).toMatchObject({ attempt: 2, status: 'REQUIRES_ACTION' });
  expect(action.body.invoice.status).toBe('OPEN');

  // a good card pays it, and becomes the default of a customer who had none
  const paid = await pay(invoiceId, { payment_method: 'pm_card_visa' });
  expect(paid.status).toBe(200);
  expect(paid.body.payment).toMatchObject({ attempt: 3, status: 'SUCCEEDED' });
  expect(await defaultMethod(customerId)).toBe('pm_card_visa');
});

it('charges the customer’s default when no method is given, and refuses invoices that are not payable', async () => {
  const customerId = await customerWith('default@pay-a.test', 'pm_card_mastercard');
  const invoiceId = await openInvoice(customerId);
  const paid = await pay(invoiceId);
  expect(paid.status).toBe(200);
  expect(paid.body.payment).toMatchObject({ payment_method: 'pm_card_mastercard', status: 'SUCCEEDED' });

  const draft = await http()
    .post('/api/v1/billing/invoices')
    .set('Authorization', a.auth)
    .send({ customer_id: customerId, lines: [{ description: 'Draft', quantity: 1, unit_amount: 100 }] });
  expectProblem(await pay(draft.body.id as string), 409, 'conflict');
  const voidable = await openInvoice(customerId);
  expect(
    (await http().post(`/api/v1/billing/invoices/${voidable}/void`).set('Authorization', a.auth).send())
      .status,
  ).toBe(200);
  const voided = await pay(voidable);
  expectProblem(voided, 409, 'conflict');
  expect(voided.body.invoice_status).toBe('VOID');
});

it('answers 404 for another tenant’s invoice and 400 for hostile bodies, charging nothing', async () => {
  const customerId = await customerWith('hostile@pay-a.test', 'pm_card_visa');
  const invoiceId = await openInvoice(customerId);
  const before = await paymentCount();

  expectProblem(await pay(invoiceId, { payment_method: 'pm_card_visa' }, b.auth), 404, 'not-found');
  expectProblem(await pay('inv_00000000000000000000000000', {}), 404, 'not-found');
  expectProblem(await pay('not-an-id', {}), 404, 'not-found');
  for (const body of [
    { payment_method: '4242424242424242' },
    { payment_method: 'pm_' + 'x'.repeat(300) },
    { payment_method: "pm_card_visa'; drop table payments; --" },
    { payment_method: '<script>alert(1)</script>' },
    { payment_method: 42 },
    { payment_method: null },
    { payment_method: 'pm_card_visa', amount: 1 },
    { payment_method: 'pm_card_\u0000visa' },
    ['pm_card_visa'],
  ]) {
    expectProblem(await pay(invoiceId, body), 400, 'validation-failed');
  }
  const text = await http()
    .post(`/api/v1/billing/invoices/${invoiceId}/pay`)
    .set('Authorization', a.auth)
    .set('Content-Type', 'text/plain')
    .send('pm_card_visa');
  expect(text.status).toBe(415);
  expect(await paymentCount()).toBe(before);
  const invoice = await getJson(`/api/v1/billing/invoices/${invoiceId}`);
  expect(invoice.body.status).toBe('OPEN');
});
