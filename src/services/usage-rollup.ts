/**
 * The daily usage rollup: usage records summed per subscription, metric and UTC day into
 * `usage_daily`, by one `insert … select … group by … on conflict do update`. Re-runnable: a day
 * rolled up again gets the same rows (late records added), and a day an invoice has frozen
 * (`invoice_id` set) is never changed again. Billing reads the records themselves (a period
 * boundary falls inside a day), so the rollup is what reports and quotas read, and a rollup that
 * has not run yet never changes what is billed.
 */
import type { EntityManager } from '../db/orm';
import { MS_PER_DAY, isoDate, utcDayStart } from '../domain/billing';

/**
 * Sums the records that occurred in `[from, to)` — of one subscription, of a set, or of every tenant's —
 * into their days' rows. `from` and `to` are UTC midnights, so each day is summed whole. A row's
 * id derives from its key (subscription, metric, day), so the one statement names new rows itself
 * and a row is the same row however often it is rolled up. Returns how many rows it wrote:
 * frozen days and days whose sum did not change are left as they are.
 */
export async function upsertUsageDays(
  em: EntityManager,
  q: { from: Date; to: Date; subscriptionId?: string; subscriptionIds?: readonly string[] },
): Promise<number> {
  if (q.subscriptionIds?.length === 0) return 0;
  const rows = await em.execute<{ id: string }[]>(
    `insert into usage_daily as d (id, tenant_id, subscription_id, metric, day, quantity)
     select 'usd_' || left(md5(r.subscription_id || '/' || r.metric || '/' || r.day::text), 26),
            r.tenant_id, r.subscription_id, r.metric, r.day, r.quantity
       from (select tenant_id, subscription_id, metric, (occurred_at at time zone 'UTC')::date as day,
                    sum(quantity) as quantity
               from usage_records
              where occurred_at >= ?::timestamptz and occurred_at < ?::timestamptz
                ${q.subscriptionId ? 'and subscription_id = ?' : ''}
                ${q.subscriptionIds ? 'and subscription_id = any(array[?]::varchar[])' : ''}
              group by 1, 2, 3, 4) r
     on conflict (subscription_id, metric, day) do update
        set quantity = excluded.quantity, updated_at = now()
      where d.invoice_id is null and d.quantity <> excluded.quantity
     returning d.id`,
    [
      q.from.toISOString(),
      q.to.toISOString(),
      ...(q.subscriptionId ? [q.subscriptionId] : []),
      ...(q.subscriptionIds ? [q.subscriptionIds] : []),
    ],
  );
  return rows.length;
}

export interface RollupResult {
  day: string;
  /** daily rows written (new, or a changed sum) */
  rows: number;
}

/**
 * Rolls up one UTC day (`YYYY-MM-DD`) of every tenant's usage records into `usage_daily`, in one
 * statement: idempotent, and a frozen day is never changed.
 */
export async function rollupUsage(em: EntityManager, day: string): Promise<RollupResult> {
  const from = utcDayStart(day);
  const rows = await upsertUsageDays(em, { from, to: new Date(from.getTime() + MS_PER_DAY) });
  return { day, rows };
}

/**
 * Rolls up the usage of a set of subscriptions (a test clock's customers': their days are the
 * clock's, which the global daily rollup never reaches) until the end of the UTC day of `until`:
 * every day of theirs that is not frozen is summed again, so the days a clock passed, however far
 * it jumped, are in `usage_daily`. Idempotent, like the global rollup.
 */
export async function rollupSubscriptionsUsage(
  em: EntityManager,
  q: { subscriptionIds: readonly string[]; until: Date },
): Promise<{ rows: number }> {
  const to = new Date(utcDayStart(isoDate(q.until)).getTime() + MS_PER_DAY);
  const rows = await upsertUsageDays(em, { from: new Date(0), to, subscriptionIds: q.subscriptionIds });
  return { rows };
}
