/**
 * The writes `activateSubscription` makes through its activities, each one transaction and
 * repeatable: a retried activity finds its work done. The pod is claimed by the subscription
 * (`subscriptions.pod_id` is unique), a trial or a first period starts at the moment the pod
 * became ACTIVE, and the customer is told, once, when the pod could not be provisioned.
 */
import { LockMode } from '@mikro-orm/core';
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import { CloudPod, ProvisioningJob, Subscription } from '../db/entities';
import { systemEm, type EntityManager, type MikroORM } from '../db/orm';
import { notFound } from '../domain/errors';
import { periodAt, trialEnd } from '../domain/billing';
import { createPod, startPodWorkflow } from './cloudpods';
import { recordNotification } from './notifications';
import { subscriptionBillingClock } from './test-clocks';

/**
 * The subscription's pod: the one it has, the one an earlier attempt created before it could
 * record it (same tenant, slug, customer and product, claimed by no other subscription), or a new
 * one through `createPod` (its row, job and `cloudPod` workflow, or nothing). A pod created with
 * its subscription (`POST /cloudpods` of a priced product) waits for this activation to start its
 * workflow, so a PENDING pod's provisioning is started here, idempotently.
 */
export async function claimSubscriptionPod(
  deps: { orm: MikroORM; temporal: Client; config: Config },
  subscriptionId: string,
): Promise<string> {
  const em = systemEm(deps.orm);
  const sub = await em.findOne(Subscription, { id: subscriptionId });
  // A create that failed to start this workflow removed its subscription: nothing to activate.
  if (!sub) throw notFound('subscription');
  if (sub.podId) {
    await startPendingPod(deps, em, sub.podId);
    return sub.podId;
  }
  const adoptable = await em.execute<{ id: string }[]>(
    `select p.id from cloud_pods p
      where p.tenant_id = ? and p.slug = ? and p.customer_id = ? and p.product_id = ? and p.deleted_at is null
        and not exists (select 1 from subscriptions s where s.pod_id = p.id)
      limit 1`,
    [sub.tenant.id, sub.podSlug, sub.customer.id, sub.product.id],
  );
  const podId =
    adoptable[0]?.id ??
    (
      await createPod(
        { em: em.fork(), temporal: deps.temporal, config: deps.config },
        {
          tenantId: sub.tenant.id,
          customerId: sub.customer.id,
          productId: sub.product.id,
          slug: sub.podSlug,
          forSubscription: sub.id,
        },
      )
    ).pod.id;
  await em.nativeUpdate(Subscription, { id: subscriptionId, podId: null }, { podId, updatedAt: new Date() });
  return podId;
}

/** Starts the provisioning of a PENDING pod whose workflow may not run yet (a no-op for one that does). */
async function startPendingPod(
  deps: { temporal: Client; config: Config },
  em: EntityManager,
  podId: string,
): Promise<void> {
  const pod = await em.findOne(CloudPod, { id: podId }, { populate: ['tenant', 'customer'] });
  if (pod?.status !== 'PENDING') return;
  const job = await em.findOne(
    ProvisioningJob,
    { pod: podId, type: 'PROVISION' },
    { orderBy: { createdAt: 'desc', id: 'desc' } },
  );
  if (job) await startPodWorkflow(deps, pod, job.id);
}

/** The pod's status and failure reason, as activation watches them. */
export async function podState(
  orm: MikroORM,
  podId: string,
): Promise<{ status: string; failureReason: string | null }> {
  const pod = await systemEm(orm).findOneOrFail(
    CloudPod,
    { id: podId },
    { fields: ['status', 'failureReason'] },
  );
  return { status: pod.status, failureReason: pod.failureReason ?? null };
}

/**
 * Tells the customer their pod could not be provisioned and nothing was charged; once per failed
 * provisioning attempt (the job's attempt count keys it).
 */
export async function notifyActivationFailed(
  orm: MikroORM,
  subscriptionId: string,
  podId: string,
  reason: string,
): Promise<void> {
  const em = systemEm(orm);
  const sub = await em.findOneOrFail(Subscription, { id: subscriptionId }, { populate: ['customer'] });
  const [job] = await em.execute<{ id: string; attempts: number }[]>(
    `select id, attempts from provisioning_jobs where pod_id = ? and type = 'PROVISION' order by created_at desc limit 1`,
    [podId],
  );
  await recordNotification(em, {
    tenantId: sub.tenant.id,
    customerId: sub.customer.id,
    template: 'subscription.activation_failed',
    recipient: sub.customer.email,
    subject: 'Your CloudPod could not be set up yet',
    body:
      `We could not set up the CloudPod ${sub.podSlug} of your subscription (${reason}). ` +
      'You have not been charged; our operators have been alerted.',
    dedupeKey: `subscription.activation_failed:${subscriptionId}:${job?.id ?? podId}:${job?.attempts ?? 0}`,
  });
}

/**
 * Where the subscription's periods (or trial) are anchored: when its pod became ACTIVE, or, for a
 * customer on a test clock, the clock's time at that point (the clock, not the wall, is the
 * customer's time, so its renewals fall due as the clock advances).
 */
async function periodAnchor(orm: MikroORM, sub: Pick<Subscription, 'id' | 'podId'>): Promise<Date> {
  const em = systemEm(orm);
  const clock = await subscriptionBillingClock(em, sub.id);
  if (clock.testClockId) return clock.now;
  const pod = await em.findOneOrFail(CloudPod, { id: sub.podId ?? '' }, { fields: ['activatedAt'] });
  if (!pod.activatedAt) throw new Error(`pod ${sub.podId} has no activation time`);
  return pod.activatedAt;
}

/**
 * Starts the trial of a subscription that has one: TRIALING from the pod's activation until the
 * trial's end. Returns the trial's end, or null when the subscription has no trial.
 */
export async function startTrialIfAny(
  orm: MikroORM,
  subscriptionId: string,
): Promise<{ trialEnd: string } | null> {
  return systemEm(orm).transactional(async (em) => {
    const sub = await em.findOneOrFail(
      Subscription,
      { id: subscriptionId },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (sub.trialDays <= 0) return null;
    if (sub.status === 'PENDING') {
      const start = await periodAnchor(orm, sub);
      const end = trialEnd(start, sub.trialDays);
      sub.status = 'TRIALING';
      sub.billingAnchor = start;
      sub.currentPeriodStart = start;
      sub.currentPeriodEnd = end;
      sub.trialEnd = end;
    }
    return { trialEnd: (sub.trialEnd ?? new Date(0)).toISOString() };
  });
}

/** The first period of a subscription whose pod is ACTIVE: from the pod's activation, anchored there. */
export async function firstPeriod(orm: MikroORM, sub: Subscription): Promise<{ start: Date; end: Date }> {
  const anchor = sub.billingAnchor ?? (await periodAnchor(orm, sub));
  const period = periodAt(anchor, sub.interval, 0);
  return { start: period.start, end: period.end };
}
