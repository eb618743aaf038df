/** The notification outbox's one write: a row per dedupe key, so a retried activity never mails twice. */
import { Notification } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { newId } from '../domain/ids';

export interface OutboxRow {
  tenantId: string;
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
