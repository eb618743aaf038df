/**
 * The tenant's own billing controls through HTTP: its tax rate, net terms and dunning policy (an
 * unusable policy is 422 and nothing saved; a new tax rate prices invoices finalized after it);
 * money collected outside the provider recorded against an invoice under a reference, once; an
 * invoice written off as UNCOLLECTIBLE; a credit note by id; a customer's balance. Other tenants
 * see 404 everywhere.
 */
import request from 'supertest';
import { systemEm } from '../../src/db/orm';
import { issueCreditNote } from '../../src/services/credit-notes';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';

let stack: TestStack;
let a: PodTenant;
let b: PodTenant;

const http = () => request(stack.app);

beforeAll(async () => {
  stack = await startTestStack();
  [a, b] = await Promise.all([podTenant(stack, 'bset-a'), podTenant(stack, 'bset-b')]);
});
afterAll(async () => {
  await stack?.close();
});

const settings = (t: PodTenant) => http().get('/api/v1/billing/settings').set('Authorization', t.auth);
const patchSettings = (t: PodTenant, body: unknown) =>
  http()
    .patch('/api/v1/billing/settings')
    .set('Authorization', t.auth)
    .send(body as object);

/** A one-off invoice of `amount` for the tenant's customer, finalized: OPEN. */
async function openInvoice(t: PodTenant, amount: number) {
  const draft = await http()
    .post('/api/v1/billing/invoices')
    .set('Authorization', t.auth)
    .send({ customer_id: t.customerId, lines: [{ description: 'Setup', quantity: 1, unit_amount: amount }] });
  expect(draft.status).toBe(201);
  const open = await http()
    .post(`/api/v1/billing/invoices/${draft.body.id}/finalize`)
    .set('Authorization', t.auth)
    .send();
  expect(open.status).toBe(200);
  expect(open.body.status).toBe('OPEN');
  return open.body as { id: string; total: number; amount_due: number };
}

it('shows the defaults and saves a tax rate, net terms and a partial dunning policy', async () => {
  const before = await settings(a);
  expect(before.status).toBe(200);
  expect(before.body).toMatchObject({
    tax_rate_bps: 0,
    net_terms_days: 14,
    dunning_policy: {
      retry_offsets_days: [1, 3, 5, 7],
      suspend_after_last_retry: true,
      terminate_after_days_overdue: 30,
      notify_on_every_failure: true,
    },
  });

  const saved = await patchSettings(a, {
    tax_rate_bps: 2000,
    net_terms_days: 30,
    dunning_policy: { retry_offsets_days: [2, 4], terminate_after_days_overdue: null },
  });
  expect(saved.status).toBe(200);
  expect(saved.body).toMatchObject({
    tax_rate_bps: 2000,
    net_terms_days: 30,
    dunning_policy: {
      retry_offsets_days: [2, 4],
      suspend_after_last_retry: true,
      terminate_after_days_overdue: null,
      notify_on_every_failure: true,
    },
  });
  expect((await settings(a)).body).toEqual(saved.body);
  // the other tenant's settings are its own
  expect((await settings(b)).body).toMatchObject({ tax_rate_bps: 0, net_terms_days: 14 });

  // invoices finalized from now on are taxed at the new rate
  const invoice = await openInvoice(a, 10_000);
  expect(invoice.total).toBe(12_000);
});

it('refuses an unusable policy or hostile settings and saves nothing', async () => {
  const before = (await settings(b)).body;
  expectProblem(
    await patchSettings(b, { dunning_policy: { retry_offsets_days: [5, 3] } }),
    422,
    'unprocessable',
  );
  expectProblem(
    await patchSettings(b, {
      dunning_policy: { retry_offsets_days: [1, 3], terminate_after_days_overdue: 2 },
    }),
    422,
    'unprocessable',
  );
  expectProblem(await patchSettings(b, { tax_rate_bps: -1 }), 400, 'validation-failed');
  expectProblem(await patchSettings(b, { tax_rate_bps: 10.5 }), 400, 'validation-failed');
  expectProblem(await patchSettings(b, { net_terms_days: 10_000 }), 400, 'validation-failed');
  expectProblem(await patchSettings(b, { currency: 'EUR' }), 400, 'validation-failed');
  expectProblem(await patchSettings(b, {}), 400, 'validation-failed');
  expectProblem(
    await patchSettings(b, { dunning_policy: { retry_offsets_days: ['1'] } }),
    400,
    'validation-failed',
  );
  expect((await settings(b)).body).toEqual(before);
});

it('records a payment made outside the provider once per reference, and settles the invoice', async () => {
  const invoice = await openInvoice(b, 5_000);
  const pay = (body: unknown, t = b) =>
    http()
      .post(`/api/v1/billing/invoices/${invoice.id}/pay`)
      .set('Authorization', t.auth)
      .send(body as object);

  expectProblem(await pay({ manual_reference: 'TRF-1' }, a), 404, 'not-found');
  expectProblem(
    await pay({ manual_reference: 'TRF-1', payment_method: 'pm_card_visa' }),
    400,
    'validation-failed',
  );
  expectProblem(await pay({ manual_reference: '' }), 400, 'validation-failed');
  expectProblem(await pay({ manual_reference: 'x'.repeat(101) }), 400, 'validation-failed');

  const paid = await pay({ manual_reference: 'TRF-1' });
  expect(paid.status).toBe(200);
  expect(paid.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 5_000 });
  expect(paid.body.payment).toMatchObject({
    status: 'SUCCEEDED',
    amount: 5_000,
    attempt: 1,
    payment_method: null,
  });

  const again = await pay({ manual_reference: 'TRF-1' });
  expect(again.status).toBe(200);
  expect(again.body.payment.id).toBe(paid.body.payment.id);
  expectProblem(await pay({ manual_reference: 'TRF-2' }), 409, 'conflict');
  const detail = await http().get(`/api/v1/billing/invoices/${invoice.id}`).set('Authorization', b.auth);
  expect(detail.status).toBe(200);
  expect(detail.body).toMatchObject({ status: 'PAID', lines: [expect.objectContaining({ amount: 5_000 })] });
  expect(detail.body.payments).toEqual([paid.body.payment]);
  const rows = await stack.db.query<{ status: string; provider: string }>(
    'select status, provider from payments where invoice_id = $1',
    [invoice.id],
  );
  expect(rows).toEqual([{ status: 'SUCCEEDED', provider: 'manual' }]);
});

it('writes an invoice off as UNCOLLECTIBLE, idempotently, and it stays payable', async () => {
  const invoice = await openInvoice(b, 3_000);
  const mark = (t = b) =>
    http()
      .post(`/api/v1/billing/invoices/${invoice.id}/mark-uncollectible`)
      .set('Authorization', t.auth)
      .send();
  expectProblem(await mark(a), 404, 'not-found');
  const written = await mark();
  expect(written.status).toBe(200);
  expect(written.body).toMatchObject({ status: 'UNCOLLECTIBLE', number: expect.any(String) });
  expect((await mark()).body.status).toBe('UNCOLLECTIBLE');

  const paid = await http()
    .post(`/api/v1/billing/invoices/${invoice.id}/pay`)
    .set('Authorization', b.auth)
    .send({ manual_reference: 'CHQ-77' });
  expect(paid.status).toBe(200);
  expect(paid.body.invoice.status).toBe('PAID');
  expectProblem(await mark(), 409, 'conflict');
});

it('reads a credit note by id and a customer’s balance, and neither across tenants', async () => {
  const note = await issueCreditNote(systemEm(stack.db.orm), {
    tenantId: b.id,
    customerId: b.customerId,
    subscriptionId: null,
    amount: 700,
    currency: 'EUR',
    reason: 'Goodwill',
    sourceKey: 'test:goodwill',
    issuedAt: new Date(),
  });
  const got = await http().get(`/api/v1/billing/credit-notes/${note.id}`).set('Authorization', b.auth);
  expect(got.status).toBe(200);
  expect(got.body).toMatchObject({ id: note.id, amount: 700, customer_id: b.customerId, reason: 'Goodwill' });
  expectProblem(
    await http().get(`/api/v1/billing/credit-notes/${note.id}`).set('Authorization', a.auth),
    404,
    'not-found',
  );
  expectProblem(
    await http().get('/api/v1/billing/credit-notes/not-an-id').set('Authorization', b.auth),
    404,
    'not-found',
  );

  const open = await openInvoice(b, 1_000);
  const balance = await http()
    .get(`/api/v1/billing/customers/${b.customerId}/balance`)
    .set('Authorization', b.auth);
  expect(balance.status).toBe(200);
  // the credit note's 700 went onto the finalized invoice: 300 left due, no credit left
  expect(balance.body).toEqual({
    customer_id: b.customerId,
    credit_balance: 0,
    currency: 'EUR',
    open_invoices: 1,
    amount_due: open.amount_due,
  });
  expect(open.amount_due).toBe(300);
  expectProblem(
    await http().get(`/api/v1/billing/customers/${b.customerId}/balance`).set('Authorization', a.auth),
    404,
    'not-found',
  );
});
