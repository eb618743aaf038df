/**
 * Invoices through HTTP: a one-off draft is created, finalized (numbered, idempotently), voided and
 * listed with filters and pages; other tenants see 404; hostile input is a 4xx problem+json that
 * stores nothing; credit notes are listed per tenant.
 */
import request from 'supertest';
import { creditNoteView } from '../../src/api/routes/invoices.views';
import { systemEm } from '../../src/db/orm';
import { issueCreditNote } from '../../src/services/credit-notes';
import { startTestStack, type TestStack } from '../helpers/app';
import { apiCustomer } from '../helpers/billing';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, issueTenantToken, type ActiveTenant } from '../helpers/tenants';

let stack: TestStack;
let a: ActiveTenant & { auth: string; customerId: string; otherCustomerId: string };
let b: ActiveTenant & { auth: string; customerId: string };

const http = () => request(stack.app);
const year = new Date().getUTCFullYear();
const invoiceNumber = (value: number) => `INV-${year}-${String(value).padStart(6, '0')}`;

beforeAll(async () => {
  stack = await startTestStack();
  const [ta, tb] = await Promise.all([
    createActiveTenant(stack, 'inv-a'),
    createActiveTenant(stack, 'inv-b'),
  ]);
  a = {
    ...ta,
    auth: `Bearer ${ta.token}`,
    customerId: await apiCustomer(stack, `Bearer ${ta.token}`, 'first@inv-a.test'),
    otherCustomerId: await apiCustomer(stack, `Bearer ${ta.token}`, 'second@inv-a.test'),
  };
  b = {
    ...tb,
    auth: `Bearer ${tb.token}`,
    customerId: await apiCustomer(stack, `Bearer ${tb.token}`, 'x@inv-b.test'),
  };
  await stack.db.query(
    'update tenant_billing_settings set tax_rate_bps = 2000, net_terms_days = 30 where tenant_id = $1',
    [a.id],
  );
});
afterAll(async () => {
  await stack?.close();
});

function createInvoice(auth: string, body: unknown) {
  return http()
    .post('/api/v1/billing/invoices')
    .set('Authorization', auth)
    .send(body as object);
}

async function draftFor(
  customerId: string,
  lines = [{ description: 'Setup', quantity: 1, unit_amount: 5000 }],
) {
  const res = await createInvoice(a.auth, { customer_id: customerId, lines });
  expect(res.status).toBe(201);
  return res.body as { id: string; status: string; number: string | null };
}

async function rowCounts(): Promise<{ invoices: number; lines: number }> {
  const [row] = await stack.db.query<{ invoices: number; lines: number }>(
    `select (select count(*)::int from invoices) as invoices, (select count(*)::int from invoice_lines) as lines`,
  );
  return row!;
}

describe('a one-off invoice', () => {
  let id: string;

  it('is created as a DRAFT with its lines and totals at the tenant’s tax rate', async () => {
    const res = await createInvoice(a.auth, {
      customer_id: a.customerId,
      lines: [
        { description: 'Migration of 3 sites', quantity: 3, unit_amount: 15000 },
        { description: 'Welcome discount', quantity: 1, unit_amount: -5000 },
      ],
    });
    expect(res.status).toBe(201);
    id = res.body.id;
    expect(res.headers.location).toBe(`/api/v1/billing/invoices/${id}`);
    expect(res.body).toMatchObject({
      status: 'DRAFT',
      number: null,
      customer_id: a.customerId,
      subscription_id: null,
      billing_reason: 'MANUAL',
      currency: 'EUR',
      tax_rate_bps: 2000,
      subtotal: 40000,
      tax: 8000,
      total: 48000,
      credit_applied: 0,
      amount_paid: 0,
      finalized_at: null,
      due_date: null,
    });
    expect(res.body.lines).toEqual([
      expect.objectContaining({
        kind: 'USAGE',
        description: 'Migration of 3 sites',
        quantity: 3,
        unit_amount: 15000,
        amount: 45000,
      }),
      expect.objectContaining({
        kind: 'CREDIT',
        description: 'Welcome discount',
        quantity: 1,
        unit_amount: -5000,
        amount: -5000,
      }),
    ]);
    const got = await http().get(`/api/v1/billing/invoices/${id}`).set('Authorization', a.auth);
    expect(got.status).toBe(200);
    // read by id, an invoice also lists its payments: none yet
    expect(got.body).toEqual({ ...res.body, payments: [] });
  });

  it('is finalized: numbered, OPEN, due after the net terms; finalizing again changes nothing', async () => {
    const finalize = (key?: string) => {
      const req = http().post(`/api/v1/billing/invoices/${id}/finalize`).set('Authorization', a.auth);
      return key ? req.set('Idempotency-Key', key) : req;
    };
    const first = await finalize('finalize-1');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id, status: 'OPEN', number: invoiceNumber(1), amount_due: 48000 });
    const finalizedAt = Date.parse(first.body.finalized_at as string);
    expect(Date.parse(first.body.due_date as string) - finalizedAt).toBe(30 * 86_400_000);

    const replay = await finalize('finalize-1');
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(first.body);
    for (const again of [await finalize('finalize-2'), await finalize()]) {
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ number: invoiceNumber(1), finalized_at: first.body.finalized_at });
    }
  });

  it('is voided, keeping its number; voiding again answers the same', async () => {
    const res = await http().post(`/api/v1/billing/invoices/${id}/void`).set('Authorization', a.auth);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'VOID', number: invoiceNumber(1) });
    expect(res.body.voided_at).toEqual(expect.any(String));
    const again = await http().post(`/api/v1/billing/invoices/${id}/void`).set('Authorization', a.auth);
    expect(again.body).toEqual(res.body);
    const finalize = await http()
      .post(`/api/v1/billing/invoices/${id}/finalize`)
      .set('Authorization', a.auth);
    expect(finalize.body).toMatchObject({ status: 'VOID', number: invoiceNumber(1) });
  });

  it('cannot be voided as a DRAFT: 409, and it stays a draft', async () => {
    const drafted = await draftFor(a.customerId);
    const res = await http().post(`/api/v1/billing/invoices/${drafted.id}/void`).set('Authorization', a.auth);
    expectProblem(res, 409, 'conflict');
    expect(res.body.invoice_status).toBe('DRAFT');
    const got = await http().get(`/api/v1/billing/invoices/${drafted.id}`).set('Authorization', a.auth);
    expect(got.body).toMatchObject({ status: 'DRAFT', number: null });
  });
});

describe('the invoice list', () => {
  let mine: { id: string }[];

  beforeAll(async () => {
    const extra = [
      await draftFor(a.otherCustomerId),
      await draftFor(a.otherCustomerId),
      await draftFor(a.otherCustomerId),
    ];
    const open = await http()
      .post(`/api/v1/billing/invoices/${extra[0]!.id}/finalize`)
      .set('Authorization', a.auth);
    expect(open.status).toBe(200);
    mine = extra;
  });

  async function all(query: Record<string, string | number>): Promise<{ id: string }[]> {
    const items: { id: string }[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await http()
        .get('/api/v1/billing/invoices')
        .query({ ...query, ...(cursor ? { cursor } : {}) })
        .set('Authorization', a.auth);
      expect(res.status).toBe(200);
      items.push(...(res.body.data as { id: string }[]));
      cursor = res.body.next_cursor as string | null;
    } while (cursor);
    return items;
  }

  it('pages through the tenant’s invoices oldest first, each item the invoice as read by id without lines', async () => {
    const items = await all({ limit: 2 });
    const ids = items.map((i) => i.id);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining(mine.map((m) => m.id)));
    const [rows] = await stack.db.query<{ n: number }>(
      'select count(*)::int as n from invoices where tenant_id = $1',
      [a.id],
    );
    expect(items).toHaveLength(rows!.n);
    for (const item of items) {
      const got = await http().get(`/api/v1/billing/invoices/${item.id}`).set('Authorization', a.auth);
      const { lines: _lines, payments: _payments, ...summary } = got.body as Record<string, unknown>;
      expect(JSON.stringify(item)).toBe(JSON.stringify(summary));
    }
  });

  it('filters by customer, status and subscription', async () => {
    const byCustomer = await all({ customer_id: a.otherCustomerId });
    expect(byCustomer.map((i) => i.id)).toEqual(mine.map((m) => m.id));
    const open = await all({ customer_id: a.otherCustomerId, status: 'OPEN' });
    expect(open.map((i) => i.id)).toEqual([mine[0]!.id]);
    expect(await all({ subscription_id: 'sub_01jd0000000000000000000000' })).toEqual([]);
    const bad = await http().get('/api/v1/billing/invoices?status=PENDING').set('Authorization', a.auth);
    expectProblem(bad, 400, 'validation-failed');
    const badCursor = await http()
      .get('/api/v1/billing/invoices?cursor=bm90LWFuLWlk')
      .set('Authorization', a.auth);
    expectProblem(badCursor, 400, 'validation-failed');
  });
});

describe('tenants and permissions', () => {
  it('answers 404 to another tenant for an invoice, and shows it none of them', async () => {
    const drafted = await draftFor(a.customerId);
    for (const req of [
      http().get(`/api/v1/billing/invoices/${drafted.id}`),
      http().post(`/api/v1/billing/invoices/${drafted.id}/finalize`),
      http().post(`/api/v1/billing/invoices/${drafted.id}/void`),
    ]) {
      expectProblem(await req.set('Authorization', b.auth), 404, 'not-found');
    }
    const list = await http().get('/api/v1/billing/invoices').set('Authorization', b.auth);
    expect(list.body).toEqual({ data: [], next_cursor: null });
    const got = await http().get(`/api/v1/billing/invoices/${drafted.id}`).set('Authorization', a.auth);
    expect(got.body).toMatchObject({ status: 'DRAFT', number: null });
  });

  it('lets a read-only token read but not write', async () => {
    const viewer = `Bearer ${await issueTenantToken(stack, a.id, ['read'])}`;
    expect((await http().get('/api/v1/billing/invoices').set('Authorization', viewer)).status).toBe(200);
    expect((await http().get('/api/v1/billing/credit-notes').set('Authorization', viewer)).status).toBe(200);
    const res = await createInvoice(viewer, {
      customer_id: a.customerId,
      lines: [{ description: 'x', quantity: 1, unit_amount: 1 }],
    });
    expectProblem(res, 403, 'forbidden');
  });
});

describe('hostile input', () => {
  const line = { description: 'Work', quantity: 1, unit_amount: 100 };
  const lines = (n: number) => Array.from({ length: n }, () => line);

  it.each([
    ['a float unit amount', { lines: [{ ...line, unit_amount: 12.5 }] }, 'lines.0.unit_amount'],
    ['a string unit amount', { lines: [{ ...line, unit_amount: '100' }] }, 'lines.0.unit_amount'],
    ['a string quantity', { lines: [{ ...line, quantity: '1' }] }, 'lines.0.quantity'],
    ['a negative quantity', { lines: [{ ...line, quantity: -1 }] }, 'lines.0.quantity'],
    ['a zero quantity', { lines: [{ ...line, quantity: 0 }] }, 'lines.0.quantity'],
    ['a quantity of 10001', { lines: [{ ...line, quantity: 10_001 }] }, 'lines.0.quantity'],
    [
      'a unit amount beyond the safe range',
      { lines: [{ ...line, unit_amount: 2 ** 60 }] },
      'lines.0.unit_amount',
    ],
    ['101 lines', { lines: lines(101) }, 'lines'],
    ['no lines', { lines: [] }, 'lines'],
    ['an unknown field', { lines: [line], paid: true }, 'body'],
    ['an unknown line field', { lines: [{ ...line, amount: 1 }] }, 'lines.0'],
    ['a blank description', { lines: [{ ...line, description: '  ' }] }, 'lines.0.description'],
    [
      'a description of 501 characters',
      { lines: [{ ...line, description: 'x'.repeat(501) }] },
      'lines.0.description',
    ],
    ['a currency (always the tenant’s)', { lines: [line], currency: 'USD' }, 'body'],
  ])('refuses %s: 400 naming the field, nothing stored', async (_what, body, field) => {
    const before = await rowCounts();
    const res = await createInvoice(a.auth, { customer_id: a.customerId, ...body });
    expectProblem(res, 400, 'validation-failed');
    const fields = (res.body.errors as { field: string }[]).map((e) => e.field);
    expect(fields.some((f) => f === field || f.startsWith(`${field}.`))).toBe(true);
    expect(await rowCounts()).toEqual(before);
  });

  it('refuses lines whose amounts leave the safe range: 400, nothing stored', async () => {
    const before = await rowCounts();
    const huge = { description: 'Huge', quantity: 10_000, unit_amount: Number.MAX_SAFE_INTEGER };
    const res = await createInvoice(a.auth, { customer_id: a.customerId, lines: [huge] });
    expectProblem(res, 400, 'validation-failed');
    expect(res.body.reason).toBe('amount_out_of_range');
    expect(await rowCounts()).toEqual(before);
  });

  it('refuses 10001 lines as a 4xx, nothing stored', async () => {
    const before = await rowCounts();
    const res = await createInvoice(a.auth, { customer_id: a.customerId, lines: lines(10_001) });
    expect([400, 413]).toContain(res.status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(await rowCounts()).toEqual(before);
  });

  it.each([
    ['a customer of another tenant', () => b.customerId],
    ['an id that is no customer id', () => "cus_x' or 1=1 --"],
    ['a product id', () => 'prd_01jd0000000000000000000000'],
  ])('refuses %s: 422 naming customer_id, nothing stored', async (_what, customerId) => {
    const before = await rowCounts();
    const res = await createInvoice(a.auth, { customer_id: customerId(), lines: [line] });
    expectProblem(res, 422, 'unprocessable');
    expect(res.body.errors).toEqual([{ field: 'customer_id', message: 'unknown customer' }]);
    expect(await rowCounts()).toEqual(before);
  });

  it('refuses a body that is not JSON, and malformed invoice ids', async () => {
    const text = await http()
      .post('/api/v1/billing/invoices')
      .set('Authorization', a.auth)
      .set('Content-Type', 'text/plain')
      .send('customer_id=1');
    expectProblem(text, 415, 'unsupported-media-type');
    for (const id of ['inv_x', "inv_1' or '1'='1", 'cus_01jd0000000000000000000000']) {
      const res = await http()
        .get(`/api/v1/billing/invoices/${encodeURIComponent(id)}`)
        .set('Authorization', a.auth);
      expectProblem(res, 404, 'not-found');
    }
  });
});

describe('credit notes', () => {
  it('lists a tenant’s credit notes, oldest first, by customer; other tenants see none', async () => {
    const issue = (customerId: string, sourceKey: string, amount: number) =>
      issueCreditNote(systemEm(stack.db.orm), {
        tenantId: a.id,
        customerId,
        amount,
        currency: 'EUR',
        reason: 'Downgrade',
        sourceKey,
      });
    const first = await issue(a.customerId, 'e2e:first', 700);
    const second = await issue(a.otherCustomerId, 'e2e:second', 300);
    const list = await http().get('/api/v1/billing/credit-notes?limit=1').set('Authorization', a.auth);
    expect(list.status).toBe(200);
    expect(list.body.data).toMatchObject([{ number: `CN-${year}-000001`, amount: 700, currency: 'EUR' }]);
    // the lean page writes exactly what the view makes of the same row
    expect(JSON.stringify(list.body.data)).toBe(JSON.stringify([creditNoteView(first)]));
    const next = await http()
      .get('/api/v1/billing/credit-notes')
      .query({ limit: 1, cursor: list.body.next_cursor })
      .set('Authorization', a.auth);
    expect(next.body.data.map((n: { number: string }) => n.number)).toEqual([`CN-${year}-000002`]);
    expect(next.body.next_cursor).toBeNull();
    const byCustomer = await http()
      .get(`/api/v1/billing/credit-notes?customer_id=${a.otherCustomerId}`)
      .set('Authorization', a.auth);
    expect(byCustomer.body.data.map((n: { id: string }) => n.id)).toEqual([second.id]);
    const other = await http().get('/api/v1/billing/credit-notes').set('Authorization', b.auth);
    expect(other.body).toEqual({ data: [], next_cursor: null });
  });
});
