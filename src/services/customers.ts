/**
 * Every change to a customer: create, update, and deletion guarded by the customer's pods. Each
 * runs in one transaction; routes and the CLI call these and never write customers themselves.
 */
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import { Customer } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import type { CollectionMethod } from '../domain/billing/states';
import { assertClockChangeable, lockAttachableTestClock } from './test-clocks';

const EMAIL_UNIQUE = 'customers_tenant_email_live_unique';

/**
 * Flushes a customer change; the partial unique index decides, not a prior lookup, so two
 * concurrent writes cannot both win. Its violation is the 409 naming the email.
 */
async function flushCustomer(tx: EntityManager): Promise<void> {
  try {
    await tx.flush();
  } catch (err) {
    if (
      err instanceof UniqueConstraintViolationException &&
      (err as { constraint?: unknown }).constraint === EMAIL_UNIQUE
    ) {
      throw conflict('another customer of this tenant already has this email', {
        errors: [{ field: 'email', message: 'is taken' }],
      });
    }
    throw err;
  }
}

/** A customer of the tenant that is not deleted, locked FOR UPDATE until the transaction ends; else 404. */
async function lockLiveCustomer(tx: EntityManager, tenantId: string, customerId: string): Promise<Customer> {
  const customer = isId('customer', customerId)
    ? await tx.findOne(
        Customer,
        { id: customerId, tenant: tenantId, deletedAt: null },
        { lockMode: LockMode.PESSIMISTIC_WRITE },
      )
    : null;
  if (!customer) throw notFound('customer');
  return customer;
}

export interface CreateCustomerInput {
  tenantId: string;
  /** already normalised (lower case) by the caller's schema */
  email: string;
  name: string;
  /** a test clock of the (sandbox) tenant to bill the customer at */
  testClockId?: string | undefined;
}

/**
 * Creates a customer; an email another live customer of the tenant has is 409. A test clock named
 * must be the tenant's own (422), READY and not full (409).
 */
export async function createCustomer(em: EntityManager, input: CreateCustomerInput): Promise<Customer> {
  return em.transactional(async (tx) => {
    const testClock =
      input.testClockId === undefined
        ? null
        : await lockAttachableTestClock(tx, input.tenantId, input.testClockId);
    const customer = tx.create(Customer, {
      tenant: input.tenantId,
      email: input.email,
      name: input.name,
      testClock,
    });
    await flushCustomer(tx);
    return customer;
  });
}

export interface UpdateCustomerInput {
  tenantId: string;
  customerId: string;
  /** undefined leaves the field as it is */
  email?: string | undefined;
  name?: string | undefined;
  collectionMethod?: CollectionMethod | undefined;
  /** null removes it */
  defaultPaymentMethod?: string | null | undefined;
  /** a test clock to attach to, null to detach: only while the customer has no subscription */
  testClockId?: string | null | undefined;
}

/**
 * Changes a live customer's email or name; a missing or deleted customer is 404, an email another
 * live customer of the tenant has is 409. The row is locked so a concurrent delete waits for it.
 */
export async function updateCustomer(em: EntityManager, input: UpdateCustomerInput): Promise<Customer> {
  return em.transactional(async (tx) => {
    const customer = await lockLiveCustomer(tx, input.tenantId, input.customerId);
    if (input.email !== undefined) customer.email = input.email;
    if (input.name !== undefined) customer.name = input.name;
    if (input.collectionMethod !== undefined) customer.collectionMethod = input.collectionMethod;
    if (input.defaultPaymentMethod !== undefined) customer.defaultPaymentMethod = input.defaultPaymentMethod;
    if (input.testClockId !== undefined && input.testClockId !== (customer.testClock?.id ?? null)) {
      await assertClockChangeable(tx, customer.id);
      customer.testClock =
        input.testClockId === null
          ? null
          : await lockAttachableTestClock(tx, input.tenantId, input.testClockId);
    }
    await flushCustomer(tx);
    return customer;
  });
}

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
    const customer = await lockLiveCustomer(tx, input.tenantId, input.customerId);
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
