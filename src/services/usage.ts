/**
 * Usage ingestion: the write path of metered usage. A batch is checked against the tenant's
 * subscriptions with one query and stored by one multi-row `insert … on conflict do nothing`, so a
 * retried batch stores nothing twice and a batch is stored whole or, when a subscription is not the
 * tenant's, not at all.
 */
import type { EntityManager } from '../db/orm';
import { AppError } from '../domain/errors';
import { newId } from '../domain/ids';

export interface UsageRecordInput {
  subscriptionId: string;
  metric: string;
  /** a positive safe integer */
  quantity: number;
  occurredAt: Date;
  /** unique per tenant */
  idempotencyKey: string;
}

export type UsageStatus = 'accepted' | 'duplicate';

export interface UsageResult {
  idempotencyKey: string;
  status: UsageStatus;
}

/** Field issues listed in a 422: enough to find the records, not one line per record of a big batch. */
const MAX_LISTED_ISSUES = 20;

/**
 * The indexes of the records whose subscription is not one of the tenant's (or is deleted), found
 * by one query over the batch's distinct ids.
 */
async function unknownSubscriptions(
  em: EntityManager,
  tenantId: string,
  records: readonly UsageRecordInput[],
): Promise<number[]> {
  const ids = [...new Set(records.map((r) => r.subscriptionId))];
  const rows = await em.execute<{ id: string }[]>(
    'select id from subscriptions where tenant_id = ? and deleted_at is null and id = any(array[?]::varchar[])',
    [tenantId, ids],
  );
  const known = new Set(rows.map((r) => r.id));
  return records.flatMap((r, i) => (known.has(r.subscriptionId) ? [] : [i]));
}

/**
 * Stores a batch of usage records for `tenantId` and says, in request order, which were stored now
 * (`accepted`) and which a key stored before (`duplicate`). A key repeated inside the batch is sent
 * once, so its first record is the accepted one and the statement never meets the same key twice.
 * The arrays go through `unnest`, so one statement carries any batch size without approaching
 * PostgreSQL's limit of 65535 parameters.
 */
export async function recordUsage(
  em: EntityManager,
  tenantId: string,
  records: readonly UsageRecordInput[],
): Promise<UsageResult[]> {
  const unknown = await unknownSubscriptions(em, tenantId, records);
  if (unknown.length > 0) {
    throw new AppError(
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

  const firsts = new Map<string, UsageRecordInput>();
  for (const record of records) {
    if (!firsts.has(record.idempotencyKey)) firsts.set(record.idempotencyKey, record);
  }
  const batch = [...firsts.values()];
  const inserted = await em.execute<{ idempotency_key: string }[]>(
    `insert into usage_records (id, tenant_id, subscription_id, metric, quantity, occurred_at, idempotency_key)
     select r.id, ?, r.subscription_id, r.metric, r.quantity, r.occurred_at, r.idempotency_key
       from unnest(array[?]::varchar[], array[?]::varchar[], array[?]::varchar[], array[?]::bigint[],
                   array[?]::timestamptz[], array[?]::varchar[])
         as r(id, subscription_id, metric, quantity, occurred_at, idempotency_key)
     on conflict (tenant_id, idempotency_key) do nothing
     returning idempotency_key`,
    [
      tenantId,
      batch.map(() => newId('usage')),
      batch.map((r) => r.subscriptionId),
      batch.map((r) => r.metric),
      batch.map((r) => r.quantity),
      batch.map((r) => r.occurredAt.toISOString()),
      batch.map((r) => r.idempotencyKey),
    ],
  );

  const accepted = new Set(inserted.map((r) => r.idempotency_key));
  return records.map((record) => {
    const first = firsts.get(record.idempotencyKey) === record && accepted.has(record.idempotencyKey);
    return { idempotencyKey: record.idempotencyKey, status: first ? 'accepted' : 'duplicate' };
  });
}
