/**
 * Usage below the API, against PostgreSQL with the migrations applied: the daily rollup is exact
 * per UTC day (records on either side of midnight land in their own day), re-runnable (the same
 * rows, late records added) and never changes a frozen day; freezing marks exactly the counted
 * records with the invoice, rolls up and freezes the days wholly before the boundary and leaves
 * the day it cuts open; ingestion refuses records of a closed period (`period_closed`) but still
 * answers a key stored before `duplicate`, and a batch racing the renewal that closes its period
 * waits for it and is refused rather than stored unbilled.
 */
import { Client } from 'pg';
import { Subscription, type Customer, type Product, type Tenant } from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import { newId } from '../../src/domain/ids';
import { freezeUsage, recordUsage, unbilledUsage, type UsageRecordInput } from '../../src/services/usage';
import { rollupUsage } from '../../src/services/usage-rollup';
import { seedCatalog } from '../helpers/catalog';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
let seeded: { tenant: Tenant; customer: Customer; product: Product };
let keys = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  seeded = await seedCatalog(db.orm, 'usage-rollup', { vcpu: 1, memoryMb: 1024, diskGb: 20 });
});
afterAll(() => db?.close());

async function subscription(slug: string): Promise<string> {
  const em = systemEm(db.orm);
  const sub = em.create(Subscription, {
    tenant: seeded.tenant,
    customer: seeded.customer,
    product: seeded.product,
    status: 'ACTIVE',
    unitAmount: 500,
    currency: 'EUR',
    interval: 'MONTH',
    podSlug: slug,
    billingAnchor: new Date('2026-10-15T09:30:00Z'),
    currentPeriodStart: new Date('2026-10-15T09:30:00Z'),
    currentPeriodEnd: new Date('2026-11-15T09:30:00Z'),
  });
  await em.flush();
  return sub.id;
}

function usage(
  subscriptionId: string,
  at: string,
  quantity: number,
  metric = 'bandwidth_gb',
): UsageRecordInput {
  keys += 1;
  return { subscriptionId, metric, quantity, occurredAt: new Date(at), idempotencyKey: `k-${keys}` };
}

const record = (records: UsageRecordInput[]) => recordUsage(systemEm(db.orm), seeded.tenant.id, records);

/** An issued renewal invoice of the period starting at `periodStart`: what closes usage before it. */
async function cycleInvoice(subscriptionId: string, periodStart: string): Promise<string> {
  const id = newId('invoice');
  await db.query(
    `insert into invoices (id, tenant_id, customer_id, subscription_id, status, billing_reason, number, currency,
        period_start, period_end)
     values ($1, $2, $3, $4, 'OPEN', 'SUBSCRIPTION_CYCLE', $5, 'EUR', $6, $6::timestamptz + interval '1 month')`,
    [id, seeded.tenant.id, seeded.customer.id, subscriptionId, `INV-T-${id.slice(-8)}`, periodStart],
  );
  return id;
}

interface DailyRow {
  subscription_id: string;
  metric: string;
  day: string;
  quantity: string;
  invoice_id: string | null;
}

const daily = (subscriptionId: string) =>
  db.query<DailyRow>(
    `select subscription_id, metric, day::text as day, quantity, invoice_id from usage_daily
      where subscription_id = $1 order by day, metric`,
    [subscriptionId],
  );

describe('rollupUsage', () => {
  it('sums each UTC day exactly, records either side of midnight in their own day', async () => {
    const [a, b] = [await subscription('roll-a'), await subscription('roll-b')];
    expect(
      (
        await record([
          usage(a, '2026-11-20T23:59:59.999Z', 1),
          usage(a, '2026-11-21T00:00:00.000Z', 10),
          usage(a, '2026-11-21T12:00:00+05:00', 20),
          usage(a, '2026-11-21T23:59:59.999Z', 30),
          usage(a, '2026-11-22T00:00:00.000Z', 1000),
          usage(a, '2026-11-21T23:00:00-02:00', 2000),
          usage(a, '2026-11-21T08:00:00Z', 4, 'ipv4'),
          usage(b, '2026-11-21T08:00:00Z', 7),
        ])
      ).map((r) => r.status),
    ).toEqual(Array(8).fill('accepted'));

    expect(await rollupUsage(systemEm(db.orm), '2026-11-21')).toEqual({ day: '2026-11-21', rows: 3 });
    expect(await daily(a)).toEqual([
      { subscription_id: a, metric: 'bandwidth_gb', day: '2026-11-21', quantity: '60', invoice_id: null },
      { subscription_id: a, metric: 'ipv4', day: '2026-11-21', quantity: '4', invoice_id: null },
    ]);
    expect(await daily(b)).toEqual([
      { subscription_id: b, metric: 'bandwidth_gb', day: '2026-11-21', quantity: '7', invoice_id: null },
    ]);

    await rollupUsage(systemEm(db.orm), '2026-11-20');
    await rollupUsage(systemEm(db.orm), '2026-11-22');
    expect((await daily(a)).map((r) => [r.day, r.metric, r.quantity])).toEqual([
      ['2026-11-20', 'bandwidth_gb', '1'],
      ['2026-11-21', 'bandwidth_gb', '60'],
      ['2026-11-21', 'ipv4', '4'],
      ['2026-11-22', 'bandwidth_gb', '3000'],
    ]);
    const ids = await db.query<{ id: string }>('select id from usage_daily where subscription_id = $1', [a]);
    for (const { id } of ids) expect(id).toMatch(/^usd_[0-9a-hjkmnp-tv-z]{26}$/);
  });

  it('is re-runnable: the same rows again, then late records added to their day', async () => {
    const a = await subscription('rerun-a');
    await record([usage(a, '2026-11-10T05:00:00Z', 5), usage(a, '2026-11-10T06:00:00Z', 6)]);
    expect(await rollupUsage(systemEm(db.orm), '2026-11-10')).toEqual({ day: '2026-11-10', rows: 1 });
    const first = await db.query('select * from usage_daily where subscription_id = $1', [a]);

    // Nothing new: nothing written, the row exactly as it was (id, timestamps and all).
    expect(await rollupUsage(systemEm(db.orm), '2026-11-10')).toEqual({ day: '2026-11-10', rows: 0 });
    expect(await db.query('select * from usage_daily where subscription_id = $1', [a])).toEqual(first);

    await record([usage(a, '2026-11-10T23:30:00Z', 100)]);
    expect(await rollupUsage(systemEm(db.orm), '2026-11-10')).toEqual({ day: '2026-11-10', rows: 1 });
    const [row] = await db.query<{ id: string; quantity: string }>(
      'select id, quantity from usage_daily where subscription_id = $1',
      [a],
    );
    expect(row).toEqual({ id: (first[0] as { id: string }).id, quantity: '111' });
  });

  it('refuses a malformed day', async () => {
    await expect(rollupUsage(systemEm(db.orm), '2026-02-30')).rejects.toMatchObject({
      kind: 'validation_failed',
    });
  });
});

describe('freezeUsage', () => {
  const boundary = new Date('2026-11-15T09:30:00Z');

  async function freezeIn(subscriptionId: string, invoiceId: string, billed?: Map<string, bigint>) {
    await systemEm(db.orm).transactional(async (tx) => {
      const counted = billed ?? (await unbilledUsage(tx, subscriptionId, boundary));
      await freezeUsage(tx, { subscriptionId, before: boundary, invoiceId, billed: counted });
    });
  }

  it('marks the counted records, freezes the days wholly before the boundary and leaves the cut day open', async () => {
    const a = await subscription('freeze-a');
    await record([
      // before the subscription's first period: counts with the first invoice
      usage(a, '2026-10-01T10:00:00Z', 2),
      usage(a, '2026-10-15T09:30:00Z', 3),
      usage(a, '2026-11-14T23:59:59.999Z', 5),
      usage(a, '2026-11-15T09:29:59.999Z', 7),
      usage(a, '2026-11-15T09:30:00Z', 11),
      usage(a, '2026-11-15T10:00:00Z', 13, 'ipv4'),
    ]);
    // A stale rollup of a day before the boundary: freezing sums it again from the records.
    await db.query(
      `insert into usage_daily (id, tenant_id, subscription_id, metric, day, quantity)
       values ('usd_stale000000000000000000000', $1, $2, 'bandwidth_gb', '2026-11-14', 1)`,
      [seeded.tenant.id, a],
    );

    await systemEm(db.orm).transactional(async (tx) => {
      expect(await unbilledUsage(tx, a, boundary)).toEqual(new Map([['bandwidth_gb', 17n]]));
    });
    const invoiceId = await cycleInvoice(a, boundary.toISOString());
    await freezeIn(a, invoiceId);

    const records = await db.query<{ occurred_at: Date; invoice_id: string | null }>(
      'select occurred_at, invoice_id from usage_records where subscription_id = $1 order by occurred_at',
      [a],
    );
    expect(records.map((r) => r.invoice_id)).toEqual([
      invoiceId,
      invoiceId,
      invoiceId,
      invoiceId,
      null,
      null,
    ]);
    expect((await daily(a)).map((r) => [r.day, r.metric, r.quantity, r.invoice_id])).toEqual([
      ['2026-10-01', 'bandwidth_gb', '2', invoiceId],
      ['2026-10-15', 'bandwidth_gb', '3', invoiceId],
      ['2026-11-14', 'bandwidth_gb', '5', invoiceId],
    ]);

    // The day the boundary cuts is rolled up with its later part, and stays open.
    await rollupUsage(systemEm(db.orm), '2026-11-15');
    expect((await daily(a)).filter((r) => r.day === '2026-11-15')).toEqual([
      { subscription_id: a, metric: 'bandwidth_gb', day: '2026-11-15', quantity: '18', invoice_id: null },
      { subscription_id: a, metric: 'ipv4', day: '2026-11-15', quantity: '13', invoice_id: null },
    ]);
    // Counted once: nothing before the boundary is left to bill.
    await systemEm(db.orm).transactional(async (tx) => {
      expect(await unbilledUsage(tx, a, boundary)).toEqual(new Map());
    });
  });

  it('never changes a frozen day, even when a record reaches it behind ingestion’s back', async () => {
    const a = await subscription('frozen-a');
    await record([usage(a, '2026-11-01T12:00:00Z', 40), usage(a, '2026-11-16T12:00:00Z', 1)]);
    await freezeIn(a, await cycleInvoice(a, boundary.toISOString()));
    const all = `select id, day::text as day, quantity, invoice_id, updated_at from usage_daily
                  where subscription_id = $1 order by 2`;
    const frozen = await db.query(all, [a]);
    expect(frozen).toEqual([expect.objectContaining({ day: '2026-11-01', quantity: '40' })]);

    await db.query(
      `insert into usage_records (id, tenant_id, subscription_id, metric, quantity, occurred_at, idempotency_key)
       values ($1, $2, $3, 'bandwidth_gb', 1000, '2026-11-01T13:00:00Z', 'behind-the-back')`,
      [newId('usage'), seeded.tenant.id, a],
    );
    expect(await rollupUsage(systemEm(db.orm), '2026-11-01')).toMatchObject({ rows: 0 });
    expect(await rollupUsage(systemEm(db.orm), '2026-11-16')).toMatchObject({ rows: 1 });
    const rows = await db.query(all, [a]);
    expect(rows[0]).toEqual(frozen[0]);
    expect(rows[1]).toMatchObject({ quantity: '1', invoice_id: null });
  });

  it('fails, marking nothing, when the usage differs from what the invoice counted', async () => {
    const a = await subscription('mismatch-a');
    await record([usage(a, '2026-11-02T12:00:00Z', 9)]);
    const invoiceId = await cycleInvoice(a, boundary.toISOString());
    await expect(freezeIn(a, invoiceId, new Map([['bandwidth_gb', 8n]]))).rejects.toThrow(/changed between/);
    const [row] = await db.query<{ n: number }>(
      'select count(*)::int as n from usage_records where subscription_id = $1 and invoice_id is not null',
      [a],
    );
    expect(row?.n).toBe(0);
  });
});

describe('recordUsage after a period closed', () => {
  const periodStart = '2026-11-15T09:30:00.000Z';

  it('refuses records of the closed period, still answers stored keys duplicate, and stores the rest', async () => {
    const a = await subscription('closed-a');
    const stored = usage(a, '2026-11-10T00:00:00Z', 3);
    expect(await record([stored])).toEqual([{ idempotencyKey: stored.idempotencyKey, status: 'accepted' }]);
    await cycleInvoice(a, periodStart);

    const late = usage(a, '2026-11-15T09:29:59.999Z', 4);
    const open = usage(a, periodStart, 5);
    const results = await record([late, stored, open, { ...late, quantity: 99 }, { ...open, quantity: 99 }]);
    expect(results.map((r) => r.status)).toEqual([
      'period_closed',
      'duplicate',
      'accepted',
      'period_closed',
      'duplicate',
    ]);
    const rows = await db.query<{ idempotency_key: string; quantity: string }>(
      'select idempotency_key, quantity from usage_records where subscription_id = $1 order by occurred_at',
      [a],
    );
    expect(rows).toEqual([
      { idempotency_key: stored.idempotencyKey, quantity: '3' },
      { idempotency_key: open.idempotencyKey, quantity: '5' },
    ]);
  });

  it('makes a batch racing the renewal wait for it, then refuses the closed period', async () => {
    const a = await subscription('race-a');
    const renewal = new Client({ connectionString: db.url });
    await renewal.connect();
    try {
      // What issueRenewalInvoice holds while it counts, invoices and freezes: the subscription's row lock.
      await renewal.query('begin');
      await renewal.query('select id from subscriptions where id = $1 for update', [a]);
      const late = usage(a, '2026-11-14T00:00:00Z', 6);
      const racing = record([late, usage(a, '2026-11-16T00:00:00Z', 1)]);
      await waitFor(
        async () =>
          (
            await db.query<{ n: number }>(
              `select count(*)::int as n from pg_stat_activity
                where datname = current_database() and wait_event_type = 'Lock' and query like '%for key share%'`,
            )
          )[0]?.n === 1,
        { what: 'the batch waiting on the subscription lock', timeoutMs: 10_000, intervalMs: 20 },
      );
      const id = newId('invoice');
      await renewal.query(
        `insert into invoices (id, tenant_id, customer_id, subscription_id, status, billing_reason, number, currency,
            period_start, period_end)
         values ($1, $2, $3, $4, 'OPEN', 'SUBSCRIPTION_CYCLE', $5, 'EUR', $6, $6::timestamptz + interval '1 month')`,
        [id, seeded.tenant.id, seeded.customer.id, a, `INV-R-${id.slice(-8)}`, periodStart],
      );
      await renewal.query('commit');
      expect((await racing).map((r) => r.status)).toEqual(['period_closed', 'accepted']);
    } finally {
      await renewal.end();
    }
    const [row] = await db.query<{ n: number }>(
      `select count(*)::int as n from usage_records where subscription_id = $1 and occurred_at < $2`,
      [a, periodStart],
    );
    expect(row?.n).toBe(0);
  });
});
