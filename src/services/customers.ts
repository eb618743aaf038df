/** Customer operations behind the routes that need more than one row: deletion guarded by the customer's pods. */
import { LockMode } from '@mikro-orm/core';
import { Customer } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { conflict, notFound } from '../domain/errors';

/** how many live pods a refused delete names (the count covers them all) */
export const LIVE_PODS_LISTED = 20;

interface LivePodRow {
  id: string;
  slug: string;
  status: string;
  total: number;
}

/**
 * Soft-deletes a customer that has no live pod (any pod not TERMINATED and not soft-deleted);
 * otherwise 409 naming them. The check and the delete run in one transaction with the customer
 * row locked FOR UPDATE: a pod insert for this customer holds a KEY SHARE lock on the row through
 * its foreign key, so the delete waits for it to commit and then sees the new pod.
 */
export async function deleteCustomer(
  em: EntityManager,
  input: { tenantId: string; customerId: string },
): Promise<Customer> {
  return em.transactional(async (tx) => {
    const customer = await tx.findOne(
      Customer,
      { id: input.customerId, tenant: input.tenantId, deletedAt: null },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (!customer) throw notFound('customer');
    // tx.execute runs inside the transaction (after the lock), so it sees every committed pod.
    const live = await tx.execute<LivePodRow[]>(
      `select id, slug, status, count(*) over ()::int as total from cloud_pods
        where tenant_id = ? and customer_id = ? and status <> 'TERMINATED' and deleted_at is null
        order by created_at, id limit ?`,
      [input.tenantId, customer.id, LIVE_PODS_LISTED],
    );
    const total = live[0]?.total ?? 0;
    if (total > 0) {
      const named = live.map((p) => `${p.id} (${p.slug}, ${p.status})`).join(', ');
      throw conflict(
        `customer ${customer.id} still has ${total} live pod${total === 1 ? '' : 's'}: ${named}` +
          `${total > live.length ? ', …' : ''}; terminate them first`,
        {
          live_pod_count: total,
          live_pods: live.map((p) => ({ id: p.id, slug: p.slug, status: p.status })),
        },
      );
    }
    customer.deletedAt = new Date();
    await tx.flush();
    return customer;
  });
}
