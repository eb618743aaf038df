/**
 * The writes of `dunning-<invoiceId>`, each one transaction and repeatable (a retried activity finds
 * its work done), and `startDunning`, the one way to start it from outside a workflow.
 *
 * Every destructive step — suspension, cancellation — locks the invoice and re-reads it in the
 * transaction that changes the subscription, so a payment that committed before the lock wins and
 * one that comes after finds the subscription already moved and settles it back. Locks are taken
 * in the order the invoice services use: the invoice, then its subscription. The pod's workflow is
 * only asked for SUSPEND / UNSUSPEND / TERMINATE after that transaction has committed (no
 * transaction is held across a call to Temporal); the job row it opens is the visible work.
 *
 * No column records that billing suspended a pod: a subscription that is SUSPENDED was suspended by
 * dunning (nothing else suspends subscriptions), so settling it unsuspends its pod.
 */
import { LockMode } from '@mikro-orm/core';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Config } from '../config';
import {
  CloudPod,
  Customer,
  Invoice,
  Payment,
  ProvisioningJob,
  Subscription,
  TenantBillingSettings,
} from '../db/entities';
import { SOFT_DELETED, systemEm, type EntityManager, type MikroORM } from '../db/orm';
import { lockInvoice } from '../db/repositories/billing';
import { dunningSchedule } from '../domain/billing/dunning';
import { formatMoney } from '../domain/billing/money';
import { PAYABLE_INVOICE_STATUSES, canMoveSubscription } from '../domain/billing/states';
import { OPEN_JOB_STATUSES, type JobType } from '../domain/cloudpods';
import { AppError } from '../domain/errors';
import { DEFAULT_DUNNING_POLICY, type DunningPolicy } from '../domain/tenants';
import type { PaymentProvider } from '../providers/payments';
import type { DunningInput } from '../workflows/messages/billing';
import { dunningStartOptions, type DunningClock, type DunningTimeline } from '../workflows/messages/dunning';
import type { dunning } from '../workflows/dunning';
import { requestOperation } from './cloudpods';
import { chargeInvoice } from './collection';
import { settleInvoicePaid } from './settlement';
import { endSubscriptionNow, terminateSubscriptionPod } from './subscriptions';
import { recordNotification } from './notifications';
import { customerBillingClock } from './test-clocks';

/** What dunning needs to reach the pod's workflow (and the provider, for retries). */
export interface DunningDeps {
  orm: MikroORM;
  temporal: Client;
  config: Config;
}

/**
 * Starts `dunning-<invoiceId>` for an invoice whose charge failed. Idempotent: the id is the
 * invoice's and reuse is rejected, so a second call (a retried activity, a renewal run twice) finds
 * it started — `started: false` — and starts nothing. Call it from an activity
 * (`Context.current().client`); a workflow starts it as a child with the same options.
 */
export async function startDunning(
  client: Client,
  input: DunningInput,
): Promise<{ workflowId: string; started: boolean }> {
  const options = dunningStartOptions(input);
  try {
    await client.workflow.start<typeof dunning>('dunning', { ...options, args: [input] });
    return { workflowId: options.workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return { workflowId: options.workflowId, started: false };
    }
    throw err;
  }
}

/** Where an invoice in dunning stands: still to collect, or ended one way or another. */
export type InvoiceStanding = 'OPEN' | 'PAID' | 'VOID' | 'CANCELED';

function standingOf(invoice: Invoice, subscription: Subscription | null): InvoiceStanding {
  if (invoice.status === 'PAID') return 'PAID';
  if (!PAYABLE_INVOICE_STATUSES.includes(invoice.status)) return 'VOID';
  if (invoice.amountPaid >= invoice.amountDue) return 'PAID';
  if (subscription?.status === 'CANCELED') return 'CANCELED';
  return 'OPEN';
}

/** The invoice's subscription, soft-deleted or not (billing history outlives it), optionally locked. */
function subscriptionOf(
  em: EntityManager,
  invoice: Invoice,
  lockMode?: LockMode,
): Promise<Subscription | null> {
  const id = invoice.subscription?.id;
  if (!id) return Promise.resolve(null);
  return em.findOne(
    Subscription,
    { id },
    { filters: { [SOFT_DELETED]: false }, refresh: true, ...(lockMode ? { lockMode } : {}) },
  );
}

/** The invoice and its subscription as they are now (no locks: a decision to wait or to retry). */
export async function invoiceStanding(orm: MikroORM, invoiceId: string): Promise<InvoiceStanding> {
  const em = systemEm(orm);
  const invoice = await em.findOneOrFail(Invoice, { id: invoiceId });
  return standingOf(invoice, await subscriptionOf(em, invoice));
}

export interface DunningStart {
  standing: InvoiceStanding;
  invoiceNumber: string;
  timeline: DunningTimeline;
  /** the customer's test clock and its time now; null: the run waits on timers */
  clock: DunningClock | null;
}

/**
 * Dunning begins: the tenant's policy is copied onto the invoice unless an earlier call copied it
 * (so editing the tenant's policy later never changes an invoice already in dunning), and the
 * absolute timeline is computed from the invoice's due date and the failed charge. Repeatable: a
 * second call reads the copied policy and computes the same timeline. A customer on a test clock
 * gets the clock with it: the run then waits on the clock rather than on timers.
 */
export async function beginDunning(orm: MikroORM, invoiceId: string, failedAt: Date): Promise<DunningStart> {
  return systemEm(orm).transactional(async (tx) => {
    const invoice = await lockInvoice(tx, invoiceId);
    if (!invoice) throw new Error(`invoice ${invoiceId} does not exist`);
    if (!invoice.dunningPolicy) {
      const settings = await tx.findOne(TenantBillingSettings, { tenant: invoice.tenant.id });
      invoice.dunningPolicy = structuredClone(settings?.dunningPolicy ?? DEFAULT_DUNNING_POLICY);
      await tx.flush();
    }
    const schedule = dunningSchedule(
      { dueAt: invoice.dueDate ?? invoice.finalizedAt ?? failedAt, failedAt },
      invoice.dunningPolicy,
    );
    const clock = await customerBillingClock(tx, invoice.customer.id);
    return {
      standing: standingOf(invoice, await subscriptionOf(tx, invoice)),
      clock: clock.testClockId ? { testClockId: clock.testClockId, now: clock.now.toISOString() } : null,
      invoiceNumber: invoice.number ?? invoice.id,
      timeline: {
        retries: schedule.retries.map((r) => ({ attempt: r.attempt, at: r.at.toISOString() })),
        suspendAt: schedule.suspendAt?.toISOString() ?? null,
        terminateAt: schedule.terminateAt?.toISOString() ?? null,
      },
    };
  });
}

/**
 * What an automatic retry came to. HARD_DECLINED: the newest failure was a hard decline of the
 * method that is still the customer's default, so no charge was made (a new default method brings
 * the retries back). IN_FLIGHT: an earlier attempt is still PENDING at the provider, so charging
 * again could collect twice; its outcome arrives by webhook.
 */
export type RetryOutcome = InvoiceStanding | 'FAILED' | 'REQUIRES_ACTION' | 'HARD_DECLINED' | 'IN_FLIGHT';

/** The newest failed attempt was a hard decline of the method the customer still has as default. */
async function declinedForGood(em: EntityManager, invoice: Invoice): Promise<boolean> {
  const [failed] = await em.find(
    Payment,
    { invoice: invoice.id, status: 'FAILED' },
    { orderBy: { attempt: 'desc' }, limit: 1 },
  );
  if (failed?.declineKind !== 'HARD') return false;
  const customer = await em.findOneOrFail(
    Customer,
    { id: invoice.customer.id },
    { filters: { [SOFT_DELETED]: false } },
  );
  return (customer.defaultPaymentMethod ?? null) === (failed.paymentMethod ?? null);
}

/**
 * Retry `attempt` of an invoice in dunning: re-read first (paid, voided or canceled meanwhile ends
 * it), then charge the customer's default method under the attempt's own key — unless a hard decline
 * of that method or a charge still in flight says not to. A retried activity charges nothing twice:
 * the attempt's payment row holds its outcome.
 */
export async function retryDunningCharge(
  deps: { orm: MikroORM; payments: PaymentProvider },
  invoiceId: string,
  attempt: number,
): Promise<RetryOutcome> {
  const em = systemEm(deps.orm);
  const invoice = await em.findOneOrFail(Invoice, { id: invoiceId });
  const standing = standingOf(invoice, await subscriptionOf(em, invoice));
  if (standing !== 'OPEN') return standing;
  const tried = await em.findOne(Payment, { idempotencyKey: `${invoiceId}:attempt-${attempt}` });
  if (!tried) {
    if (await declinedForGood(em, invoice)) return 'HARD_DECLINED';
    const pending = await em.count(Payment, { invoice: invoiceId, status: 'PENDING' });
    if (pending > 0) return 'IN_FLIGHT';
  }
  const { status } = await chargeInvoice(deps, invoiceId, attempt);
  switch (status) {
    case 'SUCCEEDED':
      return 'PAID';
    case 'NOT_DUE':
      return invoiceStanding(deps.orm, invoiceId);
    case 'PENDING':
      return 'IN_FLIGHT';
    default:
      return status;
  }
}

function recipientOf(tx: EntityManager, invoice: Invoice): Promise<Customer> {
  return tx.findOneOrFail(Customer, { id: invoice.customer.id }, { filters: { [SOFT_DELETED]: false } });
}

/** What the customer is told about an attempt: it failed (and why), or — after a hard decline — a reminder. */
export type DunningNotice = 'FAILED' | 'REQUIRES_ACTION' | 'REMINDER';

const day = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

function noticeText(
  notice: DunningNotice,
  invoice: Invoice,
  failure: string | null,
  nextAt: string | null,
): { template: string; subject: string; body: string } {
  const number = invoice.number ?? invoice.id;
  const due = formatMoney(invoice.amountDue - invoice.amountPaid, invoice.currency);
  const next = nextAt
    ? `We will try again on ${day(nextAt)}.`
    : 'That was our last automatic attempt: please pay the invoice to keep your service running.';
  if (notice === 'REMINDER') {
    return {
      template: 'invoice.payment_reminder',
      subject: `Invoice ${number} is still unpaid`,
      body:
        `Invoice ${number} (${due}) is still unpaid. Your card was declined in a way that retrying ` +
        'will not fix, so we will not charge it again: please pay the invoice or add another payment method.',
    };
  }
  if (notice === 'REQUIRES_ACTION') {
    return {
      template: 'invoice.payment_action_required',
      subject: `Confirm the payment of invoice ${number}`,
      body: `Your bank asks you to confirm the payment of invoice ${number} (${due}). ${next}`,
    };
  }
  return {
    template: 'invoice.payment_failed',
    subject: `Payment of invoice ${number} failed`,
    body: `We could not collect ${due} for invoice ${number}${failure ? ` (${failure})` : ''}. ${next}`,
  };
}

/**
 * Emails the customer about attempt `attempt` (`dunning:<invoiceId>:attempt-<n>`, once). Checked at
 * send time, in the transaction that writes the outbox row, with the subscription share-locked so a
 * concurrent cancel queues behind it: nothing is sent for an invoice no longer due or a canceled
 * subscription. A policy that does not notify on every failure mails the first one only. Returns
 * whether the row was written.
 */
export async function notifyDunning(
  orm: MikroORM,
  invoiceId: string,
  attempt: number,
  notice: DunningNotice,
  nextAt: string | null,
): Promise<boolean> {
  return systemEm(orm).transactional(async (tx) => {
    const invoice = await tx.findOneOrFail(Invoice, { id: invoiceId }, { refresh: true });
    const subscription = await subscriptionOf(tx, invoice, LockMode.PESSIMISTIC_READ);
    if (standingOf(invoice, subscription) !== 'OPEN') return false;
    const policy: DunningPolicy = invoice.dunningPolicy ?? DEFAULT_DUNNING_POLICY;
    if (!policy.notifyOnEveryFailure && attempt > 1) return false;
    const payment = await tx.findOne(Payment, { idempotencyKey: `${invoiceId}:attempt-${attempt}` });
    const failure = payment?.failureMessage ?? payment?.failureCode ?? null;
    const customer = await recipientOf(tx, invoice);
    await recordNotification(tx, {
      tenantId: invoice.tenant.id,
      customerId: customer.id,
      recipient: customer.email,
      dedupeKey: `dunning:${invoiceId}:attempt-${attempt}`,
      ...noticeText(notice, invoice, failure, nextAt),
    });
    return true;
  });
}

/** The pod's jobs that hold its operation slot (QUEUED or RUNNING). */
async function openJobs(em: EntityManager, podId: string): Promise<JobType[]> {
  const jobs = await em.find(
    ProvisioningJob,
    { pod: podId, status: { $in: [...OPEN_JOB_STATUSES] } },
    { fields: ['type'], refresh: true },
  );
  return jobs.map((j) => j.type);
}

/**
 * The pod has an operation in progress that must finish before billing's can be asked for. A plain
 * error, so the activity retries (with backoff) until the slot is free.
 */
export class PodBusyError extends Error {
  override readonly name = 'PodBusyError';
}

/** Asks the pod's workflow for `op`; a 409 from a job opened meanwhile is "busy", retried. */
async function requestPodOperation(
  deps: DunningDeps,
  pod: CloudPod,
  op: 'SUSPEND' | 'UNSUSPEND',
): Promise<void> {
  try {
    await requestOperation({ em: systemEm(deps.orm), temporal: deps.temporal, config: deps.config }, pod, op);
  } catch (err) {
    if (err instanceof AppError && err.kind === 'conflict')
      throw new PodBusyError(`pod ${pod.id}: ${err.detail}`);
    throw err;
  }
}

/**
 * The pod of a subscription dunning has SUSPENDED is suspended through its workflow. Checked again
 * just before asking: a subscription settled back to ACTIVE meanwhile keeps its pod running.
 * Repeatable: a SUSPEND job already open, or a pod already SUSPENDED (or gone), needs nothing.
 */
async function ensurePodSuspended(deps: DunningDeps, subscriptionId: string): Promise<void> {
  const em = systemEm(deps.orm);
  const sub = await em.findOne(Subscription, { id: subscriptionId }, { filters: { [SOFT_DELETED]: false } });
  if (sub?.status !== 'SUSPENDED' || !sub.podId) return;
  const pod = await em.findOne(CloudPod, { id: sub.podId }, { refresh: true });
  if (!pod) return;
  const open = await openJobs(em, pod.id);
  if (open.includes('SUSPEND') || open.includes('TERMINATE')) return;
  if (pod.status === 'ACTIVE' || pod.status === 'UPDATING') {
    if (open.length > 0 || pod.status === 'UPDATING') {
      throw new PodBusyError(`pod ${pod.id} has a ${open.join(', ') || 'change'} in progress`);
    }
    await requestPodOperation(deps, pod, 'SUSPEND');
  }
}

/**
 * The pod dunning suspended runs again, through its workflow, once its subscription is ACTIVE.
 * A SUSPEND still open is waited for (busy, retried) and then undone; an UNSUSPEND already open, a
 * pod already ACTIVE, or one being terminated needs nothing.
 */
async function ensurePodUnsuspended(deps: DunningDeps, subscriptionId: string): Promise<void> {
  const em = systemEm(deps.orm);
  const sub = await em.findOne(Subscription, { id: subscriptionId }, { filters: { [SOFT_DELETED]: false } });
  if (sub?.status !== 'ACTIVE' || !sub.podId) return;
  const pod = await em.findOne(CloudPod, { id: sub.podId }, { refresh: true });
  if (!pod) return;
  const open = await openJobs(em, pod.id);
  if (open.includes('UNSUSPEND') || open.includes('TERMINATE')) return;
  if (open.includes('SUSPEND')) throw new PodBusyError(`pod ${pod.id} is still being suspended`);
  if (pod.status !== 'SUSPENDED' && pod.status !== 'UPDATING') return;
  if (open.length > 0 || pod.status === 'UPDATING') {
    throw new PodBusyError(`pod ${pod.id} has a ${open.join(', ') || 'change'} in progress`);
  }
  await requestPodOperation(deps, pod, 'UNSUSPEND');
}

/** A destructive step's outcome: done, or not done because the locked re-read found the invoice settled. */
export type DestructiveOutcome =
  'DONE' | 'PAID' | 'VOID' | 'CANCELED' | 'NOT_SUSPENDABLE' | 'NO_SUBSCRIPTION';

/**
 * After the last retry: under the invoice's lock, re-read — a payment that raced the timer wins —
 * then PAST_DUE → SUSPENDED and the customer told, in one transaction; then the pod is suspended
 * through its workflow. A subscription no longer PAST_DUE (reactivated by hand, never past due) is
 * left alone: NOT_SUSPENDABLE.
 */
export async function suspendForNonPayment(
  deps: DunningDeps,
  invoiceId: string,
): Promise<DestructiveOutcome> {
  const decided = await systemEm(deps.orm).transactional(
    async (tx): Promise<{ outcome: DestructiveOutcome; subscriptionId?: string }> => {
      const invoice = await lockInvoice(tx, invoiceId);
      if (!invoice) throw new Error(`invoice ${invoiceId} does not exist`);
      const sub = await subscriptionOf(tx, invoice, LockMode.PESSIMISTIC_WRITE);
      const standing = standingOf(invoice, sub);
      if (standing !== 'OPEN') return { outcome: standing };
      if (!sub) return { outcome: 'NO_SUBSCRIPTION' };
      if (sub.status === 'SUSPENDED') return { outcome: 'DONE', subscriptionId: sub.id };
      if (!canMoveSubscription(sub.status, 'SUSPENDED')) return { outcome: 'NOT_SUSPENDABLE' };
      sub.status = 'SUSPENDED';
      const customer = await recipientOf(tx, invoice);
      const number = invoice.number ?? invoice.id;
      await tx.flush();
      await recordNotification(tx, {
        tenantId: invoice.tenant.id,
        customerId: customer.id,
        template: 'subscription.suspended',
        recipient: customer.email,
        subject: `Your subscription is suspended: invoice ${number} is unpaid`,
        body:
          `We could not collect invoice ${number} (${formatMoney(invoice.amountDue - invoice.amountPaid, invoice.currency)}), ` +
          `so your CloudPod ${sub.podSlug} has been suspended. Pay the invoice to have it running again at once.`,
        dedupeKey: `dunning:${invoiceId}:suspended`,
      });
      return { outcome: 'DONE', subscriptionId: sub.id };
    },
  );
  if (decided.subscriptionId) await ensurePodSuspended(deps, decided.subscriptionId);
  return decided.outcome;
}

/**
 * At the termination threshold: under the invoice's lock, re-read — a payment wins even now — then
 * the subscription CANCELED and the customer told, in one transaction; then the pod is terminated
 * through its workflow, which takes the pre-termination backup itself. The invoice stays OPEN: the
 * debt is still owed, and writing it off (UNCOLLECTIBLE) is the tenant's accounting decision. A
 * subscription already CANCELED gets its pod's termination requested again (repeatable).
 */
export async function cancelForNonPayment(deps: DunningDeps, invoiceId: string): Promise<DestructiveOutcome> {
  const decided = await systemEm(deps.orm).transactional(
    async (tx): Promise<{ outcome: DestructiveOutcome; sub?: Subscription }> => {
      const invoice = await lockInvoice(tx, invoiceId);
      if (!invoice) throw new Error(`invoice ${invoiceId} does not exist`);
      const sub = await subscriptionOf(tx, invoice, LockMode.PESSIMISTIC_WRITE);
      const standing = standingOf(invoice, sub);
      if (standing === 'PAID' || standing === 'VOID') return { outcome: standing };
      if (!sub) return { outcome: 'NO_SUBSCRIPTION' };
      if (sub.status !== 'CANCELED') {
        // Its final invoice is left OPEN, not charged: the card has just failed every retry, and
        // there is nothing left to suspend for not paying it.
        await endSubscriptionNow(tx, sub);
        const customer = await recipientOf(tx, invoice);
        const number = invoice.number ?? invoice.id;
        await tx.flush();
        await recordNotification(tx, {
          tenantId: invoice.tenant.id,
          customerId: customer.id,
          template: 'subscription.canceled',
          recipient: customer.email,
          subject: `Your subscription is canceled: invoice ${number} is unpaid`,
          body:
            `Invoice ${number} is still unpaid, so your subscription has been canceled and your CloudPod ` +
            `${sub.podSlug} deleted. A backup was taken before it was deleted; the invoice remains due.`,
          dedupeKey: `dunning:${invoiceId}:canceled`,
        });
      }
      return { outcome: 'DONE', sub };
    },
  );
  if (decided.sub) {
    await terminateSubscriptionPod(
      { em: systemEm(deps.orm), temporal: deps.temporal, config: deps.config },
      decided.sub,
    );
  }
  return decided.outcome;
}

/**
 * A voided invoice is nothing left to collect: like a paid one, it brings back a subscription
 * dunning moved away from ACTIVE — unless another of its invoices is still in dunning.
 */
async function reactivateAfterVoid(orm: MikroORM, invoiceId: string): Promise<void> {
  await systemEm(orm).transactional(async (tx) => {
    const invoice = await lockInvoice(tx, invoiceId);
    if (invoice?.status !== 'VOID') return;
    const sub = await subscriptionOf(tx, invoice, LockMode.PESSIMISTIC_WRITE);
    if (!sub || (sub.status !== 'PAST_DUE' && sub.status !== 'SUSPENDED')) return;
    const othersDue = await tx.count(Invoice, {
      subscription: sub.id,
      id: { $ne: invoiceId },
      status: { $in: [...PAYABLE_INVOICE_STATUSES] },
      dunningPolicy: { $ne: null },
    });
    if (othersDue > 0) return;
    sub.status = 'ACTIVE';
    await tx.flush();
  });
}

/**
 * Dunning ends with nothing left to collect: a paid invoice is settled by `settleInvoicePaid` (the
 * settlement every payment path runs; repeating it after the payer did changes nothing), a voided one
 * reactivates like it. Then the pod dunning suspended is brought back — waiting, with retries, for
 * a SUSPEND still in progress, which settlement alone leaves to an operator.
 */
export async function settleDunnedInvoice(
  deps: DunningDeps,
  invoiceId: string,
  podSuspendedByDunning: boolean,
): Promise<InvoiceStanding> {
  const standing = await invoiceStanding(deps.orm, invoiceId);
  if (standing === 'PAID') await settleInvoicePaid(deps, invoiceId);
  else if (standing === 'VOID') await reactivateAfterVoid(deps.orm, invoiceId);
  else return standing;
  const invoice = await systemEm(deps.orm).findOneOrFail(Invoice, { id: invoiceId });
  if (podSuspendedByDunning && invoice.subscription)
    await ensurePodUnsuspended(deps, invoice.subscription.id);
  return standing;
}
