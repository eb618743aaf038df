/**
 * Telling a running dunning that what it collects changed (its subscription canceled, its invoice
 * voided), so it re-reads now instead of at its next retry, possibly days away.
 */
import type { Client } from '@temporalio/client';
import { Invoice } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { stopDunningSignal } from '../workflows/messages/dunning';
import { workflowIds } from '../workflows/shared';

/**
 * Signals `dunning-<invoiceId>` of each invoice. Only a hint, sent after the change committed: a
 * dunning that is not running (never started, already ended) or cannot be reached now re-reads the
 * invoice at its next wake-up anyway, so no failure here undoes or fails the change.
 */
export async function nudgeDunning(
  client: Client,
  invoiceIds: readonly string[],
  reason: string,
): Promise<void> {
  await Promise.allSettled(
    invoiceIds.map((id) =>
      client.workflow.getHandle(workflowIds.dunning(id)).signal(stopDunningSignal, { reason }),
    ),
  );
}

/** The subscription's invoices that dunning may be collecting: issued, unpaid, with a policy copied on. */
export async function invoicesInDunning(em: EntityManager, subscriptionId: string): Promise<string[]> {
  const invoices = await em.find(
    Invoice,
    {
      subscription: subscriptionId,
      status: { $in: ['OPEN', 'UNCOLLECTIBLE'] },
      dunningPolicy: { $ne: null },
    },
    { fields: ['id'] },
  );
  return invoices.map((i) => i.id);
}
