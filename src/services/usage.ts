/**
 * Metered usage: the write path (`recordUsage`), what a renewal bills of it (`unbilledUsage`,
 * `planAllowances`) and how the renewal invoice freezes it (`freezeUsage`).
 *
 * A batch is checked against the tenant's subscriptions with one query and stored by one
 * multi-row `insert … on conflict do nothing`, so a retried batch stores nothing twice; when a
 * subscription is not the tenant's, nothing of the batch is stored.
 *
 * Usage is frozen when its invoice finalizes: the renewal that invoices the period starting at P
 * marks every record of the subscription before P with its invoice (and freezes the days wholly
 * before P) in the transaction that finalizes that invoice. From then on a record that occurred
 * before P is refused at ingestion with the per-record status `period_closed` — never stored, so
 * never silently unbilled, and the caller is told. The subscription's row lock orders the two: a
 * batch holds a key-share lock on its subscriptions while it checks and inserts, the renewal
 * holds the row exclusively while it counts and marks, so a record either lands before the count
 * (and is billed) or after the invoice (and is refused).
 */
import type { Knex } from '@mikro-orm/postgresql';
import type { Product } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { isoDate, utcDayStart, type MeteredAllowance } from '../domain/billing';
import { AppError } from '../domain/errors';
import { newId } from '../domain/ids';
import { upsertUsageDays } from './usage-rollup';

export interface UsageRecordInput {
  subscriptionId: string;
  metric: string;
  /** a positive safe integer */
  quantity: number;
  occurredAt: Date;
  /** unique per tenant */
  idempotencyKey: string;
}

/**
 * `accepted`: stored now; `duplicate`: its key was stored before (or by an earlier record of the
 * batch); `period_closed`: it occurred in a period already invoiced, so it is not stored.
 */
export type UsageStatus = 'accepted' | 'duplicate' | 'period_closed';

export interface UsageResult {
  idempotencyKey: string;
  status: UsageStatus;
}

/** The metric whose allowance is the plan's included bandwidth, in GB. */
export const BANDWIDTH_METRIC = 'bandwidth_gb';

/**
 * What a plan includes per period of each metric it prices. Bandwidth is the only one: other
 * metrics are stored, rolled up and frozen like it, but never billed.
 */
export function planAllowances(
  product: Pick<Product, 'includedBandwidthGb' | 'bandwidthOverageUnitAmount'>,
): MeteredAllowance[] {
  return [
    {
      metric: BANDWIDTH_METRIC,
      label: 'Bandwidth',
      unit: 'GB',
      included: product.includedBandwidthGb,
      unitAmount: product.bandwidthOverageUnitAmount,
    },
  ];
}

/** Field issues listed in a 422: enough to find the records, not one line per record of a big batch. */
const MAX_LISTED_ISSUES = 20;

/** Clocks drift: usage stamped a little ahead of the billing time is accepted, anything further is a mistake. */
export const MAX_CLOCK_AHEAD_MS = 5 * 60_000;

/**
 * The batch's subscriptions that are the tenant's (not deleted), key-share locked until the
 * transaction ends so no renewal can close one of their periods meanwhile, each with its billing
 * time: its customer's test clock's time, or null for the wall clock.
 */
async function lockKnownSubscriptions(
  tx: EntityManager,
  tenantId: string,
  ids: readonly string[],
): Promise<Map<string, Date | null>> {
  const rows = await tx.execute<{ id: string; clock_time: Date | null }[]>(
    `select s.id, t.frozen_time as clock_time from subscriptions s
       join customers c on c.id = s.customer_id
       left join test_clocks t on t.id = c.test_clock_id and t.deleted_at is null
      where s.tenant_id = ? and s.deleted_at is null and s.id = any(array[?]::varchar[])
      order by s.id for key share of s`,
    [tenantId, ids],
  );
  return new Map(rows.map((r) => [r.id, r.clock_time ? new Date(r.clock_time) : null]));
}

/**
 * Records stamped further ahead than their subscription's billing time allows: usage is reported
 * after it happened, and a customer on a test clock lives at the clock's time, so usage in the
 * clock's future (from the wall clock's view) is accepted up to the clock.
 */
function futureRecords(
  records: readonly UsageRecordInput[],
  clocks: ReadonlyMap<string, Date | null>,
): AppError | null {
  const wall = Date.now();
  const ahead = records.flatMap((r, i) => {
    const now = clocks.get(r.subscriptionId)?.getTime() ?? wall;
    return r.occurredAt.getTime() > now + MAX_CLOCK_AHEAD_MS ? [i] : [];
  });
  if (ahead.length === 0) return null;
  return new AppError(
    'validation_failed',
    `records ${ahead.slice(0, MAX_LISTED_ISSUES).join(', ')} occurred in the future: nothing was stored`,
    {
      errors: ahead.slice(0, MAX_LISTED_ISSUES).map((i) => ({
        field: `records.${i}.occurred_at`,
        message:
          'must not be more than 5 minutes after the billing time (the test clock’s, for its customers)',
      })),
    },
  );
}

/**
 * Per subscription, the instant before which its usage is frozen: the start of the latest period
 * a renewal invoiced (that invoice froze everything before it); for one that has ended, its end
 * (its final invoice billed its usage until then, or there was nothing to bill, and nothing later
 * is billed any more). Read after the lock, in a
 * statement of its own, so it sees a renewal that committed while the lock was awaited.
 */
async function closedBefore(tx: EntityManager, ids: readonly string[]): Promise<Map<string, number>> {
  const rows = await tx.execute<{ subscription_id: string; closed_before: Date | null }[]>(
    `select s.id as subscription_id,
            greatest((select max(i.period_start) from invoices i
                       where i.subscription_id = s.id and i.billing_reason = 'SUBSCRIPTION_CYCLE'),
                     (select max(i.period_end) from invoices i
                       where i.subscription_id = s.id and i.billing_reason = 'SUBSCRIPTION_FINAL'),
                     case when s.status = 'CANCELED' then s.canceled_at end) as closed_before
       from subscriptions s where s.id = any(array[?]::varchar[])`,
    [ids],
  );
  return new Map(
    rows.flatMap((r) => (r.closed_before ? [[r.subscription_id, new Date(r.closed_before).getTime()]] : [])),
  );
}

function unknownSubscriptions(unknown: number[]): AppError {
  return new AppError(
    'unprocessable',
    `records ${unknown.join(', ')} name subscriptions that are not this tenant's: nothing was stored`,
    {
      record_indexes: unknown,
      errors: unknown.slice(0, MAX_LISTED_ISSUES).map((i) => ({
        field: `records.${i}.subscription_id`,
        message: 'unknown subscription',
      })),
    },
  );
}

/**
 * Runs `sql` with bind parameters (`?`) in `tx`'s transaction. `em.execute` inlines every
 * parameter into the SQL text (escaping each in JavaScript), which for a batch of 1 000 records
 * cost more than storing it; bound, the batch travels as one JSON parameter that PostgreSQL reads
 * itself. Errors are converted as the ORM converts its own.
 */
async function executeBound<R>(tx: EntityManager, sql: string, bindings: readonly string[]): Promise<R[]> {
  const query = tx.getKnex().raw(sql, [...bindings]);
  const trx = tx.getTransactionContext<Knex.Transaction>();
  if (trx) void query.transacting(trx);
  try {
    return ((await query) as { rows: R[] }).rows;
  } catch (err) {
    throw tx.getDriver().convertException(err as Error);
  }
}

/** Inserts the records by one statement; returns the keys it stored (the others existed). */
async function insertRecords(
  tx: EntityManager,
  tenantId: string,
  batch: readonly UsageRecordInput[],
): Promise<Set<string>> {
  if (batch.length === 0) return new Set();
  const rows = JSON.stringify(
    batch.map((r) => ({
      id: newId('usage'),
      subscription_id: r.subscriptionId,
      metric: r.metric,
      quantity: r.quantity,
      occurred_at: r.occurredAt.toISOString(),
      idempotency_key: r.idempotencyKey,
    })),
  );
  const inserted = await executeBound<{ idempotency_key: string }>(
    tx,
    `insert into usage_records (id, tenant_id, subscription_id, metric, quantity, occurred_at, idempotency_key)
     select r.id, ?, r.subscription_id, r.metric, r.quantity, r.occurred_at, r.idempotency_key
       from json_to_recordset(?::json)
         as r(id varchar, subscription_id varchar, metric varchar, quantity bigint, occurred_at timestamptz,
              idempotency_key varchar)
     on conflict (tenant_id, idempotency_key) do nothing
     returning idempotency_key`,
    [tenantId, rows],
  );
  return new Set(inserted.map((r) => r.idempotency_key));
}

/** Which of `keys` the tenant has stored already. */
async function storedKeys(
  tx: EntityManager,
  tenantId: string,
  keys: readonly string[],
): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const rows = await tx.execute<{ idempotency_key: string }[]>(
    'select idempotency_key from usage_records where tenant_id = ? and idempotency_key = any(array[?]::varchar[])',
    [tenantId, keys],
  );
  return new Set(rows.map((r) => r.idempotency_key));
}

/**
 * Stores a batch of usage records for `tenantId` and says, in request order, what became of each:
 * `accepted`, `duplicate` (a key stored before answers duplicate even when its period has closed
 * since, so a batch retried after a renewal reads the same), or `period_closed`. A key repeated
 * inside the batch is decided by its first record; the repeats answer `duplicate` when that one
 * was accepted, else what it answered. The batch travels as one JSON parameter, so one statement
 * carries any batch size without approaching PostgreSQL's limit of 65535 parameters.
 */
export async function recordUsage(
  em: EntityManager,
  tenantId: string,
  records: readonly UsageRecordInput[],
): Promise<UsageResult[]> {
  return em.transactional(async (tx) => {
    const ids = [...new Set(records.map((r) => r.subscriptionId))];
    const known = await lockKnownSubscriptions(tx, tenantId, ids);
    const unknown = records.flatMap((r, i) => (known.has(r.subscriptionId) ? [] : [i]));
    if (unknown.length > 0) throw unknownSubscriptions(unknown);
    const future = futureRecords(records, known);
    if (future) throw future;

    const firsts = new Map<string, UsageRecordInput>();
    for (const record of records) {
      if (!firsts.has(record.idempotencyKey)) firsts.set(record.idempotencyKey, record);
    }
    const closed = await closedBefore(tx, ids);
    const open: UsageRecordInput[] = [];
    const late: UsageRecordInput[] = [];
    for (const record of firsts.values()) {
      const bound = closed.get(record.subscriptionId);
      (bound !== undefined && record.occurredAt.getTime() < bound ? late : open).push(record);
    }
    const accepted = await insertRecords(tx, tenantId, open);
    const lateKeys = late.map((r) => r.idempotencyKey);
    const lateStored = await storedKeys(tx, tenantId, lateKeys);
    const refused = new Set(lateKeys.filter((key) => !lateStored.has(key)));

    const statusOf = (first: UsageRecordInput): UsageStatus => {
      if (accepted.has(first.idempotencyKey)) return 'accepted';
      return refused.has(first.idempotencyKey) ? 'period_closed' : 'duplicate';
    };
    const firstStatus = new Map([...firsts.values()].map((r) => [r.idempotencyKey, statusOf(r)]));
    return records.map((record) => {
      const status = firstStatus.get(record.idempotencyKey) ?? 'duplicate';
      const repeat = firsts.get(record.idempotencyKey) !== record;
      return {
        idempotencyKey: record.idempotencyKey,
        status: repeat && status === 'accepted' ? 'duplicate' : status,
      };
    });
  });
}

/**
 * The subscription's usage not frozen yet that occurred before `before`, summed per metric: what
 * the renewal invoicing the period starting at `before` bills. Records from before the
 * subscription's first period count with its first period. The caller holds the subscription's
 * row lock, so no batch adds to it until the transaction ends.
 */
export async function unbilledUsage(
  tx: EntityManager,
  subscriptionId: string,
  before: Date,
): Promise<Map<string, bigint>> {
  const rows = await tx.execute<{ metric: string; quantity: string }[]>(
    `select metric, sum(quantity)::text as quantity from usage_records
      where subscription_id = ? and invoice_id is null and occurred_at < ?::timestamptz
      group by metric`,
    [subscriptionId, before.toISOString()],
  );
  return new Map(rows.map((r) => [r.metric, BigInt(r.quantity)]));
}

function sameTotals(a: ReadonlyMap<string, bigint>, b: ReadonlyMap<string, bigint>): boolean {
  return a.size === b.size && [...a].every(([metric, quantity]) => b.get(metric) === quantity);
}

/**
 * Freezes the subscription's usage before `before` with `invoiceId`, in the transaction that
 * finalizes that invoice and holds the subscription's row lock: every record not frozen yet is
 * marked with it, and the days wholly before `before` are rolled up from the records once more and
 * frozen (a day cut by `before` stays open: its later part belongs to the next period). `billed`
 * is what the invoice counted (`unbilledUsage`); marking anything else would bill one amount and
 * freeze another, so it fails and the transaction rolls back. Usage-free subscriptions, the
 * common case, cost one statement.
 */
export async function freezeUsage(
  tx: EntityManager,
  q: { subscriptionId: string; before: Date; invoiceId: string; billed: ReadonlyMap<string, bigint> },
): Promise<void> {
  const lastDay = isoDate(q.before);
  const [marked] = await tx.execute<
    {
      totals: { metric: string; quantity: string }[] | null;
      first_at: Date | null;
      open_day: string | null;
    }[]
  >(
    `with marked as (
       update usage_records set invoice_id = ?, updated_at = now()
        where subscription_id = ? and invoice_id is null and occurred_at < ?::timestamptz
       returning metric, quantity, occurred_at)
     select (select json_agg(json_build_object('metric', metric, 'quantity', quantity::text))
               from (select metric, sum(quantity) as quantity from marked group by metric) m) as totals,
            (select min(occurred_at) from marked) as first_at,
            (select min(day)::text from usage_daily
              where subscription_id = ? and invoice_id is null and day < ?::date) as open_day`,
    [q.invoiceId, q.subscriptionId, q.before.toISOString(), q.subscriptionId, lastDay],
  );
  const totals = new Map((marked?.totals ?? []).map((r) => [r.metric, BigInt(r.quantity)]));
  if (!sameTotals(totals, q.billed)) {
    throw new Error(
      `usage of subscription ${q.subscriptionId} changed between counting and freezing it: invoice ${q.invoiceId} not finalized`,
    );
  }

  const starts = [
    ...(marked?.open_day ? [utcDayStart(marked.open_day).getTime()] : []),
    ...(marked?.first_at ? [utcDayStart(isoDate(new Date(marked.first_at))).getTime()] : []),
  ];
  const to = utcDayStart(lastDay);
  if (starts.length === 0 || Math.min(...starts) >= to.getTime()) return;
  await upsertUsageDays(tx, { from: new Date(Math.min(...starts)), to, subscriptionId: q.subscriptionId });
  await tx.execute(
    `update usage_daily set invoice_id = ?, updated_at = now()
      where subscription_id = ? and invoice_id is null and day < ?::date`,
    [q.invoiceId, q.subscriptionId, lastDay],
  );
}
