/**
 * Every change to a subscription that is not a workflow's own step: creation (PENDING), the
 * request to activate it (which starts `activateSubscription`, once), and its cancellation (at the
 * period's end, or at once with its pod terminated). Each runs in one transaction.
 */
import { LockMode } from '@mikro-orm/core';
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { PaymentProvider } from '../providers/payments';
import { CloudPod, Customer, Product, Subscription } from '../db/entities';
import type { EntityManager, MikroORM } from '../db/orm';
import { AppError, conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import { requestOperation } from './cloudpods';
import { workflowIds } from '../workflows/shared';
import { startActivationWorkflow } from './activation-start';
import { invoicesInDunning, nudgeDunning } from './dunning-signals';
import { chargeFinalInvoice, issueFinalInvoice } from './renewals';
import { customerBillingClock } from './test-clocks';

/** A body field that names nothing of the tenant's: 422, as the pod routes answer it. */
const unknownField = (field: string, what: string) =>
  new AppError('unprocessable', `${field} does not name ${what} of this tenant`, {
    errors: [{ field, message: `unknown ${what}` }],
  });

export interface CreateSubscriptionInput {
  tenantId: string;
  customerId: string;
  productId: string;
  /** the slug of the pod activation creates */
  podSlug: string;
  /** a price per interval other than the product's, in its minor units */
  unitAmount?: number | undefined;
  /** trial days other than the product's (0: no trial) */
  trialDays?: number | undefined;
}

/** A PENDING subscription of a live customer to a live product of the tenant, priced now. */
export async function createSubscription(
  em: EntityManager,
  input: CreateSubscriptionInput,
): Promise<Subscription> {
  return em.transactional(async (tx) => {
    const customer = isId('customer', input.customerId)
      ? await tx.findOne(Customer, { id: input.customerId, tenant: input.tenantId })
      : null;
    if (!customer) throw unknownField('customer_id', 'a customer');
    const product = isId('product', input.productId)
      ? await tx.findOne(Product, { id: input.productId, tenant: input.tenantId })
      : null;
    if (!product) throw unknownField('product_id', 'an available product');
    const [taken] = await tx.execute<{ id: string }[]>(
      `select id from cloud_pods where tenant_id = ? and slug = ?
       union all
       select id from subscriptions where tenant_id = ? and pod_slug = ? and status in ('PENDING', 'TRIALING', 'ACTIVE', 'PAST_DUE', 'SUSPENDED') and pod_id is null
       limit 1`,
      [input.tenantId, input.podSlug, input.tenantId, input.podSlug],
    );
    if (taken)
      throw conflict(`the pod slug '${input.podSlug}' is already taken`, {
        errors: [{ field: 'pod_slug', message: 'is taken' }],
      });
    const subscription = tx.create(Subscription, {
      tenant: input.tenantId,
      customer,
      product,
      podSlug: input.podSlug,
      unitAmount: input.unitAmount ?? product.unitAmount,
      currency: product.currency,
      interval: product.interval,
      trialDays: input.trialDays ?? product.trialDays,
    });
    await tx.flush();
    return subscription;
  });
}

/** One of the tenant's subscriptions, or 404 (other tenants' ids included). */
export async function findSubscription(
  em: EntityManager,
  tenantId: string,
  id: string,
): Promise<Subscription> {
  const subscription = isId('subscription', id)
    ? await em.findOne(Subscription, { id, tenant: tenantId })
    : null;
  if (!subscription) throw notFound('subscription');
  return subscription;
}

/** One of the tenant's subscriptions, locked FOR UPDATE until the transaction ends; else 404. */
async function lockSubscription(tx: EntityManager, tenantId: string, id: string): Promise<Subscription> {
  const sub = isId('subscription', id)
    ? await tx.findOne(Subscription, { id, tenant: tenantId }, { lockMode: LockMode.PESSIMISTIC_WRITE })
    : null;
  if (!sub) throw notFound('subscription');
  return sub;
}

/**
 * Starts `activateSubscription` for a PENDING subscription, once: the workflow id is the
 * subscription's, and the row records it in the same transaction that checks the state, so a
 * second request (concurrent or later) is 409.
 */
export async function requestActivation(
  deps: { em: EntityManager; temporal: Client; config: Config },
  tenantId: string,
  subscriptionId: string,
): Promise<{ subscription: Subscription; workflowId: string }> {
  const workflowId = workflowIds.activateSubscription(subscriptionId);
  const subscription = await deps.em.transactional(async (tx) => {
    const sub = await lockSubscription(tx, tenantId, subscriptionId);
    if (sub.status !== 'PENDING' || sub.activationWorkflowId)
      throw conflict(
        `subscription ${sub.id} is ${sub.status}${sub.activationWorkflowId ? ' and its activation has begun' : ''}`,
      );
    sub.activationWorkflowId = workflowId;
    await tx.flush();
    return sub;
  });
  try {
    await startActivationWorkflow(deps, {
      subscriptionId,
      tenantId,
      customerId: subscription.customer.id,
      podSlug: subscription.podSlug,
    });
  } catch (err) {
    // Nothing half-written: without its workflow the activation would never happen.
    await deps.em.nativeUpdate(
      Subscription,
      { id: subscriptionId },
      { activationWorkflowId: null, updatedAt: new Date() },
    );
    throw new AppError(
      'unavailable',
      'the workflow engine could not be reached; the subscription was not activated',
      {},
      { cause: err },
    );
  }
  return { subscription, workflowId };
}

/**
 * Ends a subscription now, in its customer's billing time (a test clock's, or the wall's): its
 * usage not billed yet goes on its final invoice (issued, not charged: that is the caller's, after
 * the commit) and it is CANCELED then. In the caller's transaction, which holds its row lock; the
 * one way every immediate end — `cancel now`, its pod terminated, dunning's threshold — happens.
 */
export async function endSubscriptionNow(tx: EntityManager, sub: Subscription): Promise<void> {
  const now = (await customerBillingClock(tx, sub.customer.id)).now;
  await issueFinalInvoice(tx, sub, now, now);
  sub.status = 'CANCELED';
  sub.canceledAt = now;
}

/** When a cancellation takes effect: at the end of the period paid for, or at once. */
export type CancelAt = 'period_end' | 'now';

/**
 * The pod of a canceled subscription, terminated through its workflow (pre-termination backup,
 * VM destroyed, DNS deleted, capacity released). Repeatable: a pod already TERMINATED, being
 * terminated (the one open TERMINATE job per pod answers 409), or never created needs nothing, so
 * a retried activity or a repeated request never opens a second job.
 */
export async function terminateSubscriptionPod(
  deps: { em: EntityManager; temporal: Client; config: Config },
  subscription: Pick<Subscription, 'podId'>,
): Promise<'requested' | 'already-terminating' | 'already-terminated' | 'no-pod'> {
  if (!subscription.podId) return 'no-pod';
  const pod = await deps.em.findOne(CloudPod, { id: subscription.podId }, { refresh: true });
  if (!pod) return 'no-pod';
  if (pod.status === 'TERMINATED') return 'already-terminated';
  try {
    await requestOperation(deps, pod, 'TERMINATE');
    return 'requested';
  } catch (err) {
    // TERMINATE is refused only to a TERMINATED pod or one with an open TERMINATE job: done, or under way.
    if (err instanceof AppError && err.kind === 'conflict') return 'already-terminating';
    throw err;
  }
}

/**
 * Cancels one of the tenant's subscriptions, in one transaction with its row locked:
 * - never activated (PENDING, no activation begun): CANCELED at once, whatever `at` says;
 * - PENDING while its activation runs: 409 (the pod is being provisioned; cancel once it is up);
 * - `period_end` (the default): `cancel_at_period_end` is set and the subscription keeps running
 *   for the period paid for; the renewal at the period's end cancels it and terminates the pod;
 * - `now`: CANCELED at once and the pod terminated; usage overage not billed yet goes on a final
 *   invoice, charged after the commit (services/renewals.ts `issueFinalInvoice`). The period already invoiced is not refunded:
 *   periods are billed in advance and a cancellation stops the next one; money goes back only by
 *   an explicit, audited credit note.
 * A CANCELED subscription is returned as it is; `now` then requests its pod's termination again,
 * so a request that met an unreachable workflow engine (503) is finished by repeating it.
 */
export async function cancelSubscription(
  deps: {
    em: EntityManager;
    temporal: Client;
    config: Config;
    /** charges the final invoice of a subscription canceled now; without it that invoice is left OPEN */
    collect?: { orm: MikroORM; payments: PaymentProvider };
  },
  tenantId: string,
  subscriptionId: string,
  at: CancelAt = 'period_end',
): Promise<Subscription> {
  const subscription = await deps.em.transactional(async (tx) => {
    const sub = await lockSubscription(tx, tenantId, subscriptionId);
    if (sub.status === 'CANCELED') return sub;
    if (sub.status === 'PENDING' && sub.activationWorkflowId)
      throw conflict(
        `subscription ${sub.id} is being activated (its pod is provisioned first); cancel it once it is active`,
      );
    if (sub.status !== 'PENDING' && at === 'period_end') {
      sub.cancelAtPeriodEnd = true;
    } else {
      await endSubscriptionNow(tx, sub);
    }
    await tx.flush();
    return sub;
  });
  // The status is committed before the engine is called (no transaction held across the call).
  if (subscription.status === 'CANCELED' && at === 'now') {
    if (deps.collect) await chargeFinalInvoice(deps.collect, subscription.id);
    await nudgeDunning(
      deps.temporal,
      await invoicesInDunning(deps.em, subscription.id),
      'subscription canceled',
    );
    await terminateSubscriptionPod(deps, subscription);
  }
  return subscription;
}

/**
 * Ends the subscription that pays for a pod being terminated through the pod's own route, so a
 * terminated pod is never renewed: a live subscription is CANCELED at once, as with `cancel now`
 * (the period already invoiced is not refunded; usage overage not billed yet goes on its final
 * invoice, charged after the commit) and its dunning told; one still PENDING (its pod
 * never came up, or is being provisioned) is CANCELED with nothing billed, and its activation ends
 * when it sees the pod terminating. Repeatable; a pod without a subscription has nothing to end.
 */
export async function cancelSubscriptionOfPod(
  deps: {
    em: EntityManager;
    temporal: Client;
    /** charges the final invoice of its unbilled usage; without it that invoice is left OPEN */
    collect?: { orm: MikroORM; payments: PaymentProvider };
  },
  tenantId: string,
  podId: string,
): Promise<Subscription | null> {
  let ended = false;
  const subscription = await deps.em.transactional(async (tx) => {
    const sub = await tx.findOne(
      Subscription,
      { podId, tenant: tenantId },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (!sub || sub.status === 'CANCELED') return sub;
    await endSubscriptionNow(tx, sub);
    await tx.flush();
    ended = true;
    return sub;
  });
  if (subscription) {
    if (ended && deps.collect) await chargeFinalInvoice(deps.collect, subscription.id);
    await nudgeDunning(
      deps.temporal,
      await invoicesInDunning(deps.em, subscription.id),
      'subscription canceled',
    );
  }
  return subscription;
}
