/**
 * Invoices against real PostgreSQL: finalization numbers are gapless and unique under concurrency
 * (per tenant, per series, per year), a rolled-back finalization gives its number back, the credit
 * balance is spent once, and voids, write-offs, payments and credit notes keep money accounted for.
 */
import { CreditNote, type Customer, type Invoice } from '../../src/db/entities';
import { initOrm, systemEm, type MikroORM } from '../../src/db/orm';
import { AppError } from '../../src/domain/errors';
import { issueCreditNote } from '../../src/services/credit-notes';
import {
  createDraftInvoice,
  finalizeInvoice,
  markUncollectible,
  recordPayment,
  voidInvoice,
} from '../../src/services/invoices';
import {
  charge,
  draft,
  seedBillingTenant,
  seedPayment,
  seedSubscription,
  type BillingTenant,
} from '../helpers/billing';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

const NOW = new Date('2031-05-17T09:30:00.000Z');
const DAY = 86_400_000;
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const invoiceNumber = (value: number) => `INV-2031-${String(value).padStart(6, '0')}`;

let db: TestDatabase;
/** a pool of its own, wider than the test database's, so finalizations really run side by side */
let orm: MikroORM;
let tenantSeq = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initOrm({ databaseUrl: db.url, poolMax: 10 });
});
afterAll(async () => {
  await orm?.close();
  await db?.close();
});

function tenant(opts: Parameters<typeof seedBillingTenant>[2] = {}): Promise<BillingTenant> {
  tenantSeq += 1;
  return seedBillingTenant(db.orm, `billing-${tenantSeq}`, opts);
}

/** Finalizes through a fork of its own: each call is one transaction on its own connection. */
const finalize = (invoiceId: string, now = NOW) => finalizeInvoice(systemEm(orm), invoiceId, now);

async function counter(t: BillingTenant, series = 'INVOICE'): Promise<number | undefined> {
  const [row] = await db.query<{ last_value: number }>(
    'select last_value from document_counters where tenant_id = $1 and series = $2 and year = 2031',
    [t.tenant.id, series],
  );
  return row?.last_value;
}

async function balanceOf(customer: Customer): Promise<number> {
  const [row] = await db.query<{ credit_balance: string }>(
    'select credit_balance from customers where id = $1',
    [customer.id],
  );
  return Number(row?.credit_balance);
}

async function invoiceRow(id: string) {
  const [row] = await db.query<{ status: string; number: string | null }>(
    'select status, number from invoices where id = $1',
    [id],
  );
  return row;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('finalization numbers', () => {
  it('gives 50 drafts finalized concurrently exactly INV-<year>-000001..000050', async () => {
    const t = await tenant({ customers: 5 });
    const drafts = await Promise.all(range(50).map((i) => draft(db.orm, t, t.customers[i % 5])));
    const finalized = await Promise.all(drafts.map((d) => finalize(d.invoice.id)));
    const numbers = finalized.map((f) => f.invoice.number).sort();
    expect(numbers).toEqual(range(50).map(invoiceNumber));
    const stored = await db.query<{ number: string; status: string }>(
      'select number, status from invoices where tenant_id = $1 order by number',
      [t.tenant.id],
    );
    expect(stored.map((r) => r.number)).toEqual(range(50).map(invoiceNumber));
    expect(new Set(stored.map((r) => r.status))).toEqual(new Set(['OPEN']));
    expect(await counter(t)).toBe(50);
  });

  it('numbers each tenant from 000001 when two tenants finalize at the same time', async () => {
    const [a, b] = await Promise.all([tenant(), tenant()]);
    const draftsA = await Promise.all(range(20).map(() => draft(db.orm, a)));
    const draftsB = await Promise.all(range(20).map(() => draft(db.orm, b)));
    const interleaved = draftsA.flatMap((d, i) => [d, draftsB[i]!]);
    const finalized = await Promise.all(interleaved.map((d) => finalize(d.invoice.id)));
    const numbersOf = (t: BillingTenant) =>
      finalized
        .filter((f) => f.invoice.tenant.id === t.tenant.id)
        .map((f) => f.invoice.number)
        .sort();
    expect(numbersOf(a)).toEqual(range(20).map(invoiceNumber));
    expect(numbersOf(b)).toEqual(range(20).map(invoiceNumber));
  });

  it('gives one number, and spends the credit once, when one invoice is finalized 10 times at once', async () => {
    const t = await tenant({ creditBalance: 1500 });
    const { invoice } = await draft(db.orm, t);
    const results = await Promise.all(range(10).map(() => finalize(invoice.id)));
    expect(new Set(results.map((r) => r.invoice.number))).toEqual(new Set([invoiceNumber(1)]));
    expect(await counter(t)).toBe(1);
    // 1000 of the 1500 were spent once: applying it twice would leave nothing
    expect(await balanceOf(t.customers[0]!)).toBe(500);
    expect(await invoiceRow(invoice.id)).toEqual({ status: 'PAID', number: invoiceNumber(1) });
  });

  it('returns an already finalized invoice unchanged, with its number and times', async () => {
    const t = await tenant();
    const { invoice } = await draft(db.orm, t);
    const first = await finalize(invoice.id);
    const again = await finalize(invoice.id, new Date(NOW.getTime() + DAY));
    expect(again.invoice.number).toBe(first.invoice.number);
    expect(again.invoice.finalizedAt).toEqual(NOW);
    expect(again.lines.map((l) => l.id)).toEqual(first.lines.map((l) => l.id));
    expect(await counter(t)).toBe(1);
  });

  it('starts a new series each year', async () => {
    const t = await tenant();
    const [a, b] = await Promise.all([draft(db.orm, t), draft(db.orm, t)]);
    expect((await finalize(a.invoice.id)).invoice.number).toBe('INV-2031-000001');
    const nextYear = await finalize(b.invoice.id, new Date('2032-01-01T00:00:00.000Z'));
    expect(nextYear.invoice.number).toBe('INV-2032-000001');
  });

  describe('a finalization whose transaction rolls back after taking its number', () => {
    let t: BillingTenant;
    let refused: Invoice;

    beforeAll(async () => {
      t = await tenant({ creditBalance: 200 });
      refused = (await draft(db.orm, t)).invoice;
      // The database refuses to store this one invoice's number: the failure comes after the
      // counter statement, inside the same transaction, exactly like any late error would.
      await db.query(`create function refuse_finalization() returns trigger language plpgsql as $$
        begin raise exception 'finalization refused by the test'; end $$`);
      await db.query(`create trigger refuse_finalization before update on invoices for each row
        when (new.id = '${refused.id}' and new.number is not null) execute function refuse_finalization()`);
    });
    afterAll(async () => {
      await db.query('drop trigger if exists refuse_finalization on invoices');
      await db.query('drop function if exists refuse_finalization()');
    });

    it('gives the number back and leaves the draft and the credit balance as they were', async () => {
      const first = await draft(db.orm, t);
      expect((await finalize(first.invoice.id)).invoice.number).toBe(invoiceNumber(1));
      expect(await balanceOf(t.customers[0]!)).toBe(0);
      await db.query('update customers set credit_balance = 200 where id = $1', [t.customers[0]!.id]);

      // P0001: raise_exception, from the trigger
      expect(await rejection(finalize(refused.id))).toMatchObject({ code: 'P0001' });
      expect(await counter(t)).toBe(1);
      expect(await invoiceRow(refused.id)).toEqual({ status: 'DRAFT', number: null });
      expect(await balanceOf(t.customers[0]!)).toBe(200);

      const next = await draft(db.orm, t);
      expect((await finalize(next.invoice.id)).invoice.number).toBe(invoiceNumber(2));
    });
  });
});

describe('credit balance at finalization', () => {
  it('spends part of the balance: OPEN for the rest, due after the net terms', async () => {
    const t = await tenant({ taxRateBps: 2000, netTermsDays: 30, creditBalance: 300 });
    const drafted = await draft(db.orm, t, undefined, [charge(400, 2), charge(200)]);
    expect(drafted.invoice).toMatchObject({ status: 'DRAFT', subtotal: 1000, tax: 200, total: 1200 });
    const { invoice } = await finalize(drafted.invoice.id);
    expect(invoice).toMatchObject({
      status: 'OPEN',
      creditApplied: 300,
      amountDue: 900,
      amountPaid: 0,
      finalizedAt: NOW,
      dueDate: new Date(NOW.getTime() + 30 * DAY),
      paidAt: null,
    });
    expect(await balanceOf(t.customers[0]!)).toBe(0);
  });

  it('makes an invoice the balance covers PAID at once', async () => {
    const t = await tenant({ taxRateBps: 2000, creditBalance: 5000 });
    const { invoice } = await finalize((await draft(db.orm, t)).invoice.id);
    expect(invoice).toMatchObject({ status: 'PAID', creditApplied: 1200, amountDue: 0, paidAt: NOW });
    expect(invoice.number).toBe(invoiceNumber(1));
    expect(await balanceOf(t.customers[0]!)).toBe(3800);
  });

  it('adds what an invoice gives back to the balance, and nothing is due', async () => {
    const t = await tenant({ taxRateBps: 2000, creditBalance: 100 });
    const credit = { kind: 'CREDIT' as const, description: 'Goodwill', quantity: 1, unitAmount: -500 };
    const { invoice } = await finalize((await draft(db.orm, t, undefined, [credit])).invoice.id);
    expect(invoice).toMatchObject({ status: 'PAID', total: -600, creditApplied: 0, amountDue: 0 });
    expect(await balanceOf(t.customers[0]!)).toBe(700);
  });
});

describe('period invoices', () => {
  it('drafts one invoice per subscription and period start, even when asked concurrently', async () => {
    const t = await tenant();
    const customer = t.customers[0]!;
    const subscription = await seedSubscription(db.orm, t, customer);
    const period = {
      periodStart: new Date('2031-05-01T00:00:00Z'),
      periodEnd: new Date('2031-06-01T00:00:00Z'),
    };
    const create = () =>
      createDraftInvoice(systemEm(orm), {
        tenantId: t.tenant.id,
        customerId: customer.id,
        subscriptionId: subscription.id,
        billingReason: 'SUBSCRIPTION_CYCLE',
        lines: [{ kind: 'SUBSCRIPTION', description: 'Plan, May 2031', quantity: 1, unitAmount: 1000 }],
        ...period,
      });
    const results = await Promise.all(range(5).map(create));
    expect(new Set(results.map((r) => r.invoice.id)).size).toBe(1);
    expect(results.every((r) => r.lines.length === 1)).toBe(true);
    const again = await create();
    expect(again.invoice.id).toBe(results[0]!.invoice.id);
    const [count] = await db.query<{ n: number }>(
      'select count(*)::int as n from invoices where subscription_id = $1',
      [subscription.id],
    );
    expect(count?.n).toBe(1);
  });

  it('refuses a period invoice without its period, and a customer of another tenant', async () => {
    const [t, other] = await Promise.all([tenant(), tenant()]);
    const subscription = await seedSubscription(db.orm, t, t.customers[0]!);
    const base = {
      tenantId: t.tenant.id,
      customerId: t.customers[0]!.id,
      lines: [charge(1000)],
    };
    await expect(
      createDraftInvoice(systemEm(orm), {
        ...base,
        subscriptionId: subscription.id,
        billingReason: 'SUBSCRIPTION_CYCLE',
      }),
    ).rejects.toMatchObject({ kind: 'validation_failed' });
    await expect(
      createDraftInvoice(systemEm(orm), {
        ...base,
        customerId: other.customers[0]!.id,
        billingReason: 'MANUAL',
      }),
    ).rejects.toMatchObject({ kind: 'unprocessable', extras: { errors: [{ field: 'customer_id' }] } });
    await expect(
      createDraftInvoice(systemEm(orm), { ...base, currency: 'USD', billingReason: 'MANUAL' }),
    ).rejects.toMatchObject({ kind: 'unprocessable', extras: { reason: 'currency_mismatch' } });
  });
});

describe('void and write-off', () => {
  it('voids an OPEN invoice, keeping its number and giving back the credit it spent', async () => {
    const t = await tenant({ creditBalance: 300 });
    const { invoice } = await finalize((await draft(db.orm, t)).invoice.id);
    expect(await balanceOf(t.customers[0]!)).toBe(0);
    const voided = await voidInvoice(systemEm(orm), invoice.id, NOW);
    expect(voided.invoice).toMatchObject({ status: 'VOID', number: invoiceNumber(1), voidedAt: NOW });
    expect(await balanceOf(t.customers[0]!)).toBe(300);
    // again: unchanged, the credit not given back twice
    expect((await voidInvoice(systemEm(orm), invoice.id, NOW)).invoice.status).toBe('VOID');
    expect(await balanceOf(t.customers[0]!)).toBe(300);
  });

  it('refuses to void a DRAFT (it has no number) or a PAID invoice: 409', async () => {
    const t = await tenant({ creditBalance: 1000 });
    const drafted = await draft(db.orm, t);
    const refusal = await rejection(voidInvoice(systemEm(orm), drafted.invoice.id));
    expect(refusal).toBeInstanceOf(AppError);
    expect(refusal).toMatchObject({ kind: 'conflict', extras: { invoice_status: 'DRAFT' } });
    const paid = await finalize(drafted.invoice.id);
    expect(paid.invoice.status).toBe('PAID');
    await expect(voidInvoice(systemEm(orm), paid.invoice.id)).rejects.toMatchObject({
      kind: 'conflict',
      extras: { invoice_status: 'PAID' },
    });
  });

  it('writes an OPEN invoice off, which can then be voided', async () => {
    const t = await tenant();
    const { invoice } = await finalize((await draft(db.orm, t)).invoice.id);
    expect((await markUncollectible(systemEm(orm), invoice.id)).invoice.status).toBe('UNCOLLECTIBLE');
    expect((await markUncollectible(systemEm(orm), invoice.id)).invoice.status).toBe('UNCOLLECTIBLE');
    expect((await voidInvoice(systemEm(orm), invoice.id)).invoice.status).toBe('VOID');
    await expect(markUncollectible(systemEm(orm), invoice.id)).rejects.toMatchObject({ kind: 'conflict' });
  });
});

describe('payments', () => {
  it('applies each payment once, PAID when fully paid, even when recorded concurrently', async () => {
    const t = await tenant();
    const { invoice } = await finalize((await draft(db.orm, t)).invoice.id);
    const first = await seedPayment(db.orm, invoice, 400, 1);
    const records = await Promise.all(
      range(5).map(() =>
        recordPayment(systemEm(orm), invoice.id, { paymentId: first.id, amount: 400, at: NOW }),
      ),
    );
    expect(records.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(records.map((r) => r.applied).sort()).toEqual([0, 0, 0, 0, 400]);
    const partly = records.at(-1)!.invoice;
    expect(partly).toMatchObject({ status: 'OPEN', amountPaid: 400 });
    const second = await seedPayment(db.orm, invoice, 600, 2);
    const paid = await recordPayment(systemEm(orm), invoice.id, {
      paymentId: second.id,
      amount: 600,
      at: NOW,
    });
    expect(paid).toMatchObject({ applied: 600, duplicate: false, creditNote: null });
    expect(paid.invoice).toMatchObject({ status: 'PAID', amountPaid: 1000, paidAt: NOW });
    expect(paid.payment.status).toBe('SUCCEEDED');
  });

  it('turns what an invoice cannot take into a numbered credit note, once', async () => {
    const t = await tenant();
    const { invoice } = await finalize((await draft(db.orm, t)).invoice.id);
    const payment = await seedPayment(db.orm, invoice, 1250);
    const record = () =>
      recordPayment(systemEm(orm), invoice.id, { paymentId: payment.id, amount: 1250, at: NOW });
    const paid = await record();
    expect(paid.invoice).toMatchObject({ status: 'PAID', amountPaid: 1000 });
    expect(paid.creditNote).toMatchObject({ number: 'CN-2031-000001', amount: 250, currency: 'EUR' });
    expect((await record()).duplicate).toBe(true);
    expect(await balanceOf(t.customers[0]!)).toBe(250);
    expect(await counter(t, 'CREDIT_NOTE')).toBe(1);
  });

  it('refuses a payment of a draft, or of another invoice', async () => {
    const t = await tenant();
    const [a, b] = await Promise.all([draft(db.orm, t), draft(db.orm, t)]);
    const payment = await seedPayment(db.orm, a.invoice, 1000);
    await expect(
      recordPayment(systemEm(orm), a.invoice.id, { paymentId: payment.id, amount: 1000 }),
    ).rejects.toMatchObject({ kind: 'conflict' });
    await expect(
      recordPayment(systemEm(orm), b.invoice.id, { paymentId: payment.id, amount: 1000 }),
    ).rejects.toMatchObject({ kind: 'not_found' });
  });
});

describe('credit notes', () => {
  it('numbers them in their own series and raises the balance once per source, even concurrently', async () => {
    const t = await tenant();
    const customer = t.customers[0]!;
    const issue = (sourceKey: string, amount = 700) =>
      issueCreditNote(systemEm(orm), {
        tenantId: t.tenant.id,
        customerId: customer.id,
        amount,
        currency: 'EUR',
        reason: 'Downgrade to SMALL',
        sourceKey,
        issuedAt: NOW,
      });
    const key = `plan-change:${t.tenant.id}`;
    const notes = await Promise.all(range(5).map(() => issue(key)));
    expect(new Set(notes.map((n) => n.id)).size).toBe(1);
    expect(notes[0]).toMatchObject({ number: 'CN-2031-000001', amount: 700, status: 'ISSUED' });
    expect((await issue(`${key}:second`, 50)).number).toBe('CN-2031-000002');
    expect(await balanceOf(customer)).toBe(750);
    expect(await systemEm(orm).count(CreditNote, { tenant: t.tenant.id })).toBe(2);

    // the invoice series is untouched, and the balance is spent by the next invoice
    const { invoice } = await finalize((await draft(db.orm, t)).invoice.id);
    expect(invoice).toMatchObject({
      number: invoiceNumber(1),
      status: 'OPEN',
      creditApplied: 750,
      amountDue: 250,
    });
  });

  it('refuses a source key already used for another customer, and amounts that are not positive', async () => {
    const t = await tenant({ customers: 2 });
    const base = {
      tenantId: t.tenant.id,
      amount: 100,
      currency: 'EUR',
      reason: 'Goodwill',
      sourceKey: `goodwill:${t.tenant.id}`,
    };
    await issueCreditNote(systemEm(orm), { ...base, customerId: t.customers[0]!.id });
    await expect(
      issueCreditNote(systemEm(orm), { ...base, customerId: t.customers[1]!.id }),
    ).rejects.toMatchObject({ kind: 'conflict' });
    await expect(
      issueCreditNote(systemEm(orm), {
        ...base,
        customerId: t.customers[1]!.id,
        sourceKey: 'zero',
        amount: 0,
      }),
    ).rejects.toMatchObject({ kind: 'validation_failed' });
    expect(await balanceOf(t.customers[1]!)).toBe(0);
  });
});
