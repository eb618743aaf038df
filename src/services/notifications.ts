/**
 * The notification outbox: its one write (`recordNotification`, a row per dedupe key, so a retried
 * activity never mails twice) and its delivery (`deliverPendingNotifications`, run by the worker's
 * delivery loop). Delivery never holds a transaction across the SMTP call: a row is claimed (its
 * attempt counted, a lease set) in one statement, sent, then its outcome recorded in another. A
 * crash between sending and recording leaves the row to be claimed again when the lease ends; the
 * resend carries the same Message-ID (made from the dedupe key), so the receiving MTA can tell.
 */
import { Notification } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { newId } from '../domain/ids';
import { mailFailure, type Mailer, type MailFailureKind } from '../providers/mail';

export interface OutboxRow {
  tenantId: string;
  /** the customer it concerns; null (or absent) for mail to the tenant itself */
  customerId?: string | null;
  template: string;
  recipient: string;
  subject: string;
  body: string;
  dedupeKey: string;
}

/** Writes the row unless one with its dedupe key exists; true when this call wrote it. */
export async function recordNotification(em: EntityManager, row: OutboxRow): Promise<boolean> {
  const now = new Date();
  const result = await em
    .createQueryBuilder(Notification)
    .insert({
      id: newId('notification'),
      tenant: row.tenantId,
      customer: row.customerId ?? null,
      template: row.template,
      recipient: row.recipient,
      subject: row.subject,
      body: row.body,
      status: 'PENDING',
      dedupeKey: row.dedupeKey,
      createdAt: now,
      updatedAt: now,
    })
    .onConflict('dedupe_key')
    .ignore()
    .execute<{ affectedRows: number }>('run');
  return result.affectedRows > 0;
}

export interface DeliveryPolicy {
  /** attempts before a notification is FAILED */
  maxAttempts: number;
  /** the wait after the first failure; doubled after each further one */
  retryInitialMs: number;
  /** the longest wait between two attempts */
  retryMaxMs: number;
  /**
   * how long a claimed row is left alone while it is being sent: longer than a batch can take
   * (the mailer bounds each message), so only a crashed sender's rows are claimed again
   */
  leaseMs: number;
}

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = {
  maxAttempts: 8,
  retryInitialMs: 60_000,
  retryMaxMs: 3_600_000,
  leaseMs: 15 * 60_000,
};

/** The wait before attempt `attempts + 1`, after `attempts` failed ones. */
export function retryDelayMs(attempts: number, policy: DeliveryPolicy): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 30);
  return Math.min(policy.retryMaxMs, policy.retryInitialMs * 2 ** exponent);
}

export interface DeliveredNotification {
  id: string;
  tenantId: string;
  kind: string;
  recipient: string;
  attempt: number;
  messageId: string;
}

export interface FailedDelivery {
  id: string;
  tenantId: string;
  kind: string;
  recipient: string;
  attempt: number;
  failure: MailFailureKind;
  error: string;
  /** FAILED: no attempt follows; PENDING: retried at `retryAt` */
  status: 'PENDING' | 'FAILED';
  retryAt: Date | null;
}

export interface DeliveryReport {
  /** rows claimed by this run */
  claimed: number;
  sent: DeliveredNotification[];
  failed: FailedDelivery[];
}

interface ClaimedRow {
  id: string;
  tenant_id: string;
  template: string;
  recipient: string;
  subject: string;
  body: string;
  dedupe_key: string;
  attempts: number;
}

/**
 * Claims up to `limit` due PENDING rows (oldest first) in one statement: `FOR UPDATE SKIP LOCKED`
 * lets concurrent workers take disjoint rows, and the attempt is counted and the lease set before
 * anything is sent.
 */
async function claimDue(em: EntityManager, limit: number, policy: DeliveryPolicy): Promise<ClaimedRow[]> {
  const rows = await em.execute<ClaimedRow[]>(
    `update notifications n
        set attempts = n.attempts + 1,
            next_attempt_at = now() + ?::int * interval '1 millisecond',
            updated_at = now()
      where n.id in (
        select id from notifications
         where status = 'PENDING' and (next_attempt_at is null or next_attempt_at <= now())
         order by created_at, id
         limit ?
         for update skip locked)
      returning n.id, n.tenant_id, n.template, n.recipient, n.subject, n.body, n.dedupe_key, n.attempts`,
    [policy.leaseMs, limit],
  );
  // ids are time-ordered: sent in the order they were written
  return rows.sort((a, b) => a.id.localeCompare(b.id));
}

async function markSent(em: EntityManager, id: string): Promise<void> {
  await em.execute(
    `update notifications
        set status = 'SENT', sent_at = now(), last_error = null, next_attempt_at = null, updated_at = now()
      where id = ? and status = 'PENDING'`,
    [id],
  );
}

/** Records a failed attempt: retried after the backoff, or FAILED when it was the last. */
async function markFailed(
  em: EntityManager,
  row: ClaimedRow,
  error: string,
  policy: DeliveryPolicy,
): Promise<{ status: 'PENDING' | 'FAILED'; retryAt: Date | null }> {
  const last = row.attempts >= policy.maxAttempts;
  const [updated] = await em.execute<
    { status: 'PENDING' | 'FAILED'; next_attempt_at: Date | string | null }[]
  >(
    `update notifications
        set last_error = ?,
            status = ?,
            next_attempt_at = case when ? then null else now() + ?::int * interval '1 millisecond' end,
            updated_at = now()
      where id = ? and status = 'PENDING'
      returning status, next_attempt_at`,
    [error.slice(0, 1000), last ? 'FAILED' : 'PENDING', last, retryDelayMs(row.attempts, policy), row.id],
  );
  // Not PENDING any more: another sender, past our lease, already delivered it.
  const retryAt = updated?.next_attempt_at;
  return { status: updated?.status ?? 'PENDING', retryAt: retryAt ? new Date(retryAt) : null };
}

/**
 * Sends up to `limit` due notifications with `mailer`, one after another, and records each outcome:
 * SENT with `sent_at`, or the failure (attempts, `last_error`) to be retried with backoff until
 * `policy.maxAttempts`, then FAILED. Without a mailer nothing is claimed: the rows stay PENDING in
 * the outbox. `em` must be unfiltered (the worker's system EntityManager): it reads every tenant's
 * rows.
 */
export async function deliverPendingNotifications(
  em: EntityManager,
  mailer: Mailer | null,
  limit: number,
  policy: DeliveryPolicy = DEFAULT_DELIVERY_POLICY,
): Promise<DeliveryReport> {
  const report: DeliveryReport = { claimed: 0, sent: [], failed: [] };
  if (!mailer) return report;
  const rows = await claimDue(em, limit, policy);
  report.claimed = rows.length;
  for (const row of rows) {
    const about = {
      id: row.id,
      tenantId: row.tenant_id,
      kind: row.template,
      recipient: row.recipient,
      attempt: row.attempts,
    };
    let messageId: string;
    try {
      ({ messageId } = await mailer.send({
        to: row.recipient,
        subject: row.subject,
        text: row.body,
        key: row.dedupe_key,
      }));
    } catch (err) {
      const failure = mailFailure(err);
      const outcome = await markFailed(em, row, failure.message, policy);
      report.failed.push({ ...about, failure: failure.kind, error: failure.message, ...outcome });
      continue;
    }
    await markSent(em, row.id);
    report.sent.push({ ...about, messageId });
  }
  return report;
}

export interface OutboxEntry {
  id: string;
  tenantId: string;
  kind: string;
  recipient: string;
}

/** PENDING notifications after `afterId` (id order): what an outbox without a mailer holds, for the log. */
export async function undeliveredAfter(
  em: EntityManager,
  afterId: string | null,
  limit: number,
): Promise<OutboxEntry[]> {
  const rows = await em.execute<{ id: string; tenant_id: string; template: string; recipient: string }[]>(
    `select id, tenant_id, template, recipient from notifications
      where status = 'PENDING' ${afterId ? 'and id > ?' : ''}
      order by id limit ?`,
    afterId ? [afterId, limit] : [limit],
  );
  return rows.map((r) => ({ id: r.id, tenantId: r.tenant_id, kind: r.template, recipient: r.recipient }));
}
