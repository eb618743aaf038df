/**
 * The writes of the scheduled billing workflows: finding the subscriptions whose period ended and
 * starting their renewals (`billingRun`), renewing one period (`renewSubscription`), and the trial
 * reminders (`trialSweep`). Each step is one transaction and repeatable, so a retried activity
 * finds its work done:
 * - a period is invoiced once: the invoice's unique `(subscription, period_start)` index, and the
 *   subscription row locked while the invoice is drafted and finalized;
 * - the subscription's current period only moves forward: each write first checks that the period
 *   it was started for is still the one that just ended, so a stale or repeated renewal changes
 *   nothing;
 * - a renewal whose charge failed leaves the period where it is (PAST_DUE, dunning begins); once
 *   the invoice is paid and the subscription is ACTIVE again, the next billing run renews the same
 *   period again, finds its invoice paid, and only advances the period.
 *
 * Lock order: the subscription first; then drafting locks the customer and the new invoice, and
 * finalizing that draft the document counter (as invoices.ts orders them). An issued invoice is
 * never locked here, so this never waits on dunning or a payment, which lock the invoice first.
 */
import { LockMode } from '@mikro-orm/core';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { Invoice, Notification, Payment, Product, Subscription } from '../db/entities';
import { SOFT_DELETED, systemEm, type EntityManager, type MikroORM } from '../db/orm';
import {
  TRIAL_REMINDER_DAYS,
  assertValidDate,
  daysToMs,
  dueTrialReminder,
  isoDate,
  nextPeriod,
  overageLines,
  periodAt,
  type BillingPeriod,
  type IndexedPeriod,
  type InvoiceLineInput,
} from '../domain/billing';
import { PAYABLE_INVOICE_STATUSES, type SubscriptionStatus } from '../domain/billing/states';
import type { renewSubscription } from '../workflows/renewals';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../workflows/shared';
import type { PaymentProvider } from '../providers/payments';
import { chargeInvoice, type ChargeOutcome } from './collection';
import { createDraftInvoice, finalizeInvoice } from './invoices';
import { recordNotification } from './notifications';
import { freezeUsage, planAllowances, unbilledUsage } from './usage';

/** Subscriptions a renewal bills: running, or in a trial that converts at its end. */
const RENEWABLE: readonly SubscriptionStatus[] = ['ACTIVE', 'TRIALING'];

/** A subscription whose current period has ended, as the billing run finds it. */
export interface DueSubscription {
  id: string;
  tenantId: string;
  customerId: string;
  /** the end of the period that ended: the start of the one to bill */
  periodStart: Date;
}

/**
 * One page of subscriptions due for renewal as of `asOf` — ACTIVE or TRIALING, not deleted, their
 * current period ended — keyset by id after `after`. A trial's period ends with the trial, so
 * trials due for conversion are in it too. Customers on a test clock are left out: their time is
 * the clock's, and its advance renews them (services/test-clocks.ts).
 */
export async function dueSubscriptionsPage(
  em: EntityManager,
  q: { asOf: Date; after: string | null; limit: number },
): Promise<DueSubscription[]> {
  const rows = await em.execute<
    { id: string; tenant_id: string; customer_id: string; current_period_end: Date }[]
  >(
    `select id, tenant_id, customer_id, current_period_end from subscriptions s
      where status in ('ACTIVE', 'TRIALING') and deleted_at is null and current_period_end <= ?
        and not exists (select 1 from customers c where c.id = s.customer_id and c.test_clock_id is not null)
        ${q.after ? 'and id > ?' : ''}
      order by id limit ?`,
    q.after ? [q.asOf, q.after, q.limit] : [q.asOf, q.limit],
  );
  return rows.map((r) => ({
    id: r.id,
    tenantId: r.tenant_id,
    customerId: r.customer_id,
    periodStart: new Date(r.current_period_end),
  }));
}

/**
 * Starts the renewal of one due subscription for the period that begins where its current one
 * ended. The workflow id is the subscription and that period: a renewal still running for it is
 * left alone, and one started again after it finished finds the period already renewed.
 */
export async function startRenewal(
  client: Client,
  due: DueSubscription,
): Promise<'started' | 'already-running'> {
  const periodStart = due.periodStart.toISOString();
  try {
    await client.workflow.start<typeof renewSubscription>('renewSubscription', {
      workflowId: workflowIds.renewSubscription(due.id, periodStart),
      taskQueue: TASK_QUEUES.billing,
      args: [{ subscriptionId: due.id, tenantId: due.tenantId, customerId: due.customerId, periodStart }],
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.TenantId, value: due.tenantId },
        { key: SEARCH_ATTRIBUTES.CustomerId, value: due.customerId },
        { key: SEARCH_ATTRIBUTES.SubscriptionId, value: due.id },
        { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'RENEWING' },
      ],
      staticSummary: `Renew subscription ${due.id} for the period from ${periodStart}`,
      staticDetails:
        'Invoices the next period in advance, applies the credit balance, finalizes and charges; success moves ' +
        'the period forward, a failed charge makes the subscription PAST_DUE and starts dunning. A subscription ' +
        'set to cancel at the period end is canceled here and its pod terminated.',
    });
    return 'started';
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'already-running';
    throw err;
  }
}

/**
 * The period after the subscription's current one and the anchor it is counted from. After a
 * trial, the first paid period starts at the trial's end and anchors every later one there (a
 * trial's length is not a whole period, so its end is no boundary of the trial-start anchor).
 */
export function periodAfter(
  sub: Pick<
    Subscription,
    'interval' | 'billingAnchor' | 'currentPeriodStart' | 'currentPeriodEnd' | 'trialEnd'
  >,
): { anchor: Date; period: IndexedPeriod } {
  const start = sub.currentPeriodStart;
  const end = sub.currentPeriodEnd;
  if (!start || !end) throw new Error('the subscription has no current period');
  if (sub.trialEnd && sub.trialEnd.getTime() === end.getTime()) {
    return { anchor: end, period: periodAt(end, sub.interval, 0) };
  }
  const anchor = sub.billingAnchor ?? start;
  return { anchor, period: nextPeriod(anchor, sub.interval, { start, end }) };
}

/** Why the subscription is not renewed for the period starting at `periodStart`, or null when it is. */
function notRenewable(sub: Subscription | null, periodStart: Date, now: Date): string | null {
  if (!sub) return 'the subscription does not exist';
  if (!RENEWABLE.includes(sub.status)) return `the subscription is ${sub.status}`;
  if (sub.currentPeriodEnd?.getTime() !== periodStart.getTime()) {
    return (
      `its current period ends at ${sub.currentPeriodEnd?.toISOString() ?? 'no time'}, so the period from ` +
      `${periodStart.toISOString()} is not the next one (renewed already, or a stale start)`
    );
  }
  if (periodStart.getTime() > now.getTime())
    return `the period from ${periodStart.toISOString()} has not begun`;
  return null;
}

function lockSubscription(tx: EntityManager, subscriptionId: string): Promise<Subscription | null> {
  return tx.findOne(
    Subscription,
    { id: subscriptionId },
    { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
  );
}

/** What a renewal will do, decided from the subscription as it is now (nothing is written). */
export type RenewalPlan =
  | { action: 'skip'; reason: string; status: SubscriptionStatus | null }
  | { action: 'cancel'; status: SubscriptionStatus }
  | {
      action: 'invoice';
      status: SubscriptionStatus;
      /** the period ending is a trial: this renewal converts it */
      trial: boolean;
      period: { start: string; end: string };
    };

export async function planRenewal(
  orm: MikroORM,
  subscriptionId: string,
  periodStart: Date,
  now: Date,
): Promise<RenewalPlan> {
  const sub = await systemEm(orm).findOne(Subscription, { id: subscriptionId });
  const reason = notRenewable(sub, assertValidDate(periodStart, 'period start'), now);
  if (!sub || reason) return { action: 'skip', reason: reason ?? 'unknown', status: sub?.status ?? null };
  if (sub.cancelAtPeriodEnd) return { action: 'cancel', status: sub.status };
  const { period } = periodAfter(sub);
  return {
    action: 'invoice',
    status: sub.status,
    trial: sub.status === 'TRIALING',
    period: { start: period.start.toISOString(), end: period.end.toISOString() },
  };
}

/**
 * Cancels a subscription set to cancel at the end of the period that just ended: CANCELED as of
 * `now`, its usage overage up to the period's end on its final invoice in the same transaction
 * (`issueFinalInvoice`; the caller charges it after the commit). Repeatable: one already CANCELED (by an earlier attempt, or by `cancel now`) answers
 * canceled; one no longer due (renewed, un-set) is left alone.
 */
export async function cancelEndedSubscription(
  orm: MikroORM,
  subscriptionId: string,
  periodStart: Date,
  now: Date,
): Promise<{ canceled: boolean; reason: string | null }> {
  return systemEm(orm).transactional(async (tx) => {
    const sub = await lockSubscription(tx, subscriptionId);
    if (sub?.status === 'CANCELED') return { canceled: true, reason: null };
    const reason =
      notRenewable(sub, periodStart, now) ?? (sub?.cancelAtPeriodEnd ? null : 'it is not set to cancel');
    if (!sub || reason) return { canceled: false, reason };
    // The subscription ends with the period: its usage up to the period's end is billed with it.
    await issueFinalInvoice(tx, sub, periodStart, now);
    sub.status = 'CANCELED';
    sub.canceledAt = now;
    await tx.flush();
    return { canceled: true, reason: null };
  });
}

/** The period's charge for the plan, at the subscription's own price. */
function subscriptionLine(sub: Subscription, product: Product, period: BillingPeriod): InvoiceLineInput {
  return {
    kind: 'SUBSCRIPTION',
    description: `${product.name} (${sub.podSlug}), ${isoDate(period.start)} – ${isoDate(period.end)}`,
    quantity: 1,
    unitAmount: sub.unitAmount,
    period: { start: period.start, end: period.end },
  };
}

/**
 * Usage of the period that ended beyond the plan's included amount, billed in arrears on the
 * renewal invoice next to the period billed in advance: `used` is the subscription's usage not
 * billed yet from before the new period (services/usage.ts `unbilledUsage`), and the plan is the
 * one the subscription is on when the period ends. A trial's usage is frozen with the conversion
 * invoice but not billed: a trial costs nothing.
 */
function usageOverageLines(
  sub: Pick<Subscription, 'status'>,
  product: Product,
  ended: BillingPeriod,
  used: ReadonlyMap<string, bigint>,
): InvoiceLineInput[] {
  if (sub.status === 'TRIALING') return [];
  return overageLines(planAllowances(product), used, ended);
}

/** Subscriptions whose end bills their usage: ones that ran (a trial's usage costs nothing). */
const FINAL_BILLED: readonly SubscriptionStatus[] = ['ACTIVE', 'PAST_DUE', 'SUSPENDED'];

/** An issued invoice of a subscription — a renewal's or its final one — as its collection sees it. */
export interface InvoiceToCollect {
  invoiceId: string;
  number: string;
  amountDue: number;
  /** charge it now: collected automatically and something is left due after the credit balance */
  charge: boolean;
}

export type FinalInvoice = InvoiceToCollect;

/** An issued invoice as its collection sees it: what is left due, and whether to charge it now. */
function invoiceToCollect(invoice: Invoice): InvoiceToCollect {
  return {
    invoiceId: invoice.id,
    number: invoice.number ?? invoice.id,
    amountDue: invoice.amountDue - invoice.amountPaid,
    charge:
      invoice.collectionMethod === 'AUTOMATIC' &&
      PAYABLE_INVOICE_STATUSES.includes(invoice.status) &&
      invoice.amountDue > invoice.amountPaid,
  };
}

/**
 * The final invoice of a subscription that ends at `end` — canceled at its period's end, now, or
 * by dunning: the overage of its usage not billed yet from before `end`, by the same rule as a
 * renewal bills the ended period (`usageOverageLines`, the plan it is on, its current period's
 * allowance), frozen with the invoice and finalized as of `now`, in the caller's transaction,
 * which holds the subscription's row lock and marks it CANCELED. Null when nothing is to be billed
 * (no usage beyond the allowance, a trial, never activated): no invoice then. Repeatable: one
 * SUBSCRIPTION_FINAL invoice per subscription (a unique index backs it), so a retried
 * cancellation finds the one it issued. Charging it is the caller's, after the commit
 * (`chargeFinalInvoice`); a charge that fails leaves it OPEN and due — a canceled subscription has
 * nothing left to suspend, so it is not dunned; the tenant collects it (`POST …/pay`) or writes it off.
 */
export async function issueFinalInvoice(
  tx: EntityManager,
  sub: Subscription,
  end: Date,
  now: Date,
): Promise<FinalInvoice | null> {
  const existing = await tx.findOne(
    Invoice,
    { subscription: sub.id, billingReason: 'SUBSCRIPTION_FINAL' },
    { refresh: true },
  );
  if (existing) return invoiceToCollect(existing);
  if (!FINAL_BILLED.includes(sub.status)) return null;
  const product = await tx.findOneOrFail(
    Product,
    { id: sub.product.id },
    { filters: { [SOFT_DELETED]: false } },
  );
  // The period it was in: a PAST_DUE one never moved past the period its unpaid renewal invoiced,
  // whose usage that invoice froze, so its usage since runs from that period's end.
  const periodEnd = sub.currentPeriodEnd;
  const start = periodEnd && periodEnd < end ? periodEnd : (sub.currentPeriodStart ?? end);
  const ended = { start: start < end ? start : end, end };
  const used = await unbilledUsage(tx, sub.id, end);
  const lines = usageOverageLines(sub, product, ended, used);
  if (lines.length === 0) return null;
  const { invoice: draft } = await createDraftInvoice(tx, {
    tenantId: sub.tenant.id,
    customerId: sub.customer.id,
    subscriptionId: sub.id,
    billingReason: 'SUBSCRIPTION_FINAL',
    currency: sub.currency,
    periodStart: ended.start,
    periodEnd: ended.end,
    lines,
  });
  await freezeUsage(tx, { subscriptionId: sub.id, before: end, invoiceId: draft.id, billed: used });
  return invoiceToCollect((await finalizeInvoice(tx, draft.id, now)).invoice);
}

/**
 * Charges the subscription's final invoice once (attempt 1, its idempotency key the provider's
 * dedupe), when it is collected automatically and something is due; a decline is recorded on the
 * invoice, which stays OPEN. `none`: there is no final invoice, or nothing to charge.
 */
export async function chargeFinalInvoice(
  deps: { orm: MikroORM; payments: PaymentProvider },
  subscriptionId: string,
): Promise<{ invoiceId: string | null; status: ChargeOutcome | 'none' }> {
  const invoice = await systemEm(deps.orm).findOne(
    Invoice,
    { subscription: subscriptionId, billingReason: 'SUBSCRIPTION_FINAL' },
    { refresh: true },
  );
  if (!invoice || !invoiceToCollect(invoice).charge)
    return { invoiceId: invoice?.id ?? null, status: 'none' };
  return { invoiceId: invoice.id, ...(await chargeInvoice(deps, invoice.id, 1)) };
}

export type RenewalInvoice = InvoiceToCollect;

/**
 * Drafts and finalizes the invoice of the period starting at `periodStart` — the plan's line for
 * the new period, usage overage of the ended one, the customer's credit balance applied — in one
 * transaction holding the subscription's row lock, so a concurrent `cancel now` either comes
 * first (nothing is invoiced) or after (the period began while the subscription ran, and its
 * invoice stands). Repeatable: the period's invoice is drafted once and finalized once. Null when
 * the subscription is no longer to be invoiced for that period.
 */
export async function issueRenewalInvoice(
  orm: MikroORM,
  subscriptionId: string,
  periodStart: Date,
  now: Date,
): Promise<RenewalInvoice | { invoiceId: null; reason: string }> {
  return systemEm(orm).transactional(async (tx) => {
    const sub = await lockSubscription(tx, subscriptionId);
    const reason =
      notRenewable(sub, periodStart, now) ?? (sub?.cancelAtPeriodEnd ? 'it cancels at the period end' : null);
    if (!sub || reason) return { invoiceId: null, reason: reason ?? 'unknown' };
    const product = await tx.findOneOrFail(
      Product,
      { id: sub.product.id },
      { filters: { [SOFT_DELETED]: false } },
    );
    const { period } = periodAfter(sub);
    const ended = { start: sub.currentPeriodStart ?? period.start, end: periodStart };
    const used = await unbilledUsage(tx, sub.id, ended.end);
    const { invoice: draft } = await createDraftInvoice(tx, {
      tenantId: sub.tenant.id,
      customerId: sub.customer.id,
      subscriptionId: sub.id,
      billingReason: 'SUBSCRIPTION_CYCLE',
      currency: sub.currency,
      periodStart: period.start,
      periodEnd: period.end,
      lines: [subscriptionLine(sub, product, period), ...usageOverageLines(sub, product, ended, used)],
    });
    // A draft is this call's own invoice: it freezes the usage it counted. An issued one froze
    // its usage when it was finalized.
    if (draft.status === 'DRAFT') {
      await freezeUsage(tx, { subscriptionId: sub.id, before: ended.end, invoiceId: draft.id, billed: used });
    }
    // Only a draft is finalized (and locked): an issued invoice of this period, found by a repeated
    // renewal, is read as it is, so this never takes an issued invoice's lock after the subscription's.
    const invoice = draft.status === 'DRAFT' ? (await finalizeInvoice(tx, draft.id, now)).invoice : draft;
    return invoiceToCollect(invoice);
  });
}

export interface RenewalSettlement {
  status: SubscriptionStatus | null;
  /** the current period moved to the renewed one */
  advanced: boolean;
  /** the period's invoice is unpaid and the subscription PAST_DUE: dunning collects it */
  dunning: boolean;
  /** when the charge failed (ISO), as dunning schedules its retries from it */
  failedAt: string | null;
}

/** When the invoice's last unsuccessful charge was recorded; `fallback` when it has none. */
async function lastFailureAt(tx: EntityManager, invoiceId: string, fallback: Date): Promise<Date> {
  const payment = await tx.findOne(
    Payment,
    { invoice: invoiceId, status: { $in: ['FAILED', 'REQUIRES_ACTION', 'PENDING'] } },
    { orderBy: { attempt: 'desc' } },
  );
  return payment?.updatedAt ?? fallback;
}

/**
 * After the period's invoice was charged (or left to the customer): paid, nothing due, or
 * collected manually (MANUAL customers pay by their due date) → the current period moves to the
 * renewed one and the subscription is ACTIVE (a converted trial included, re-anchored on its
 * end); otherwise PAST_DUE, the period unchanged, for dunning to collect. Only ever forward: a
 * subscription whose current period no longer ends at `periodStart` is left as it is. On a test
 * clock the charge failed at the clock's `now`, whatever the payment row's wall time says.
 */
export async function settleRenewal(
  orm: MikroORM,
  subscriptionId: string,
  periodStart: Date,
  invoiceId: string,
  now: Date,
  opts: { onTestClock?: boolean } = {},
): Promise<RenewalSettlement> {
  return systemEm(orm).transactional(async (tx) => {
    const sub = await lockSubscription(tx, subscriptionId);
    const invoice = await tx.findOneOrFail(Invoice, { id: invoiceId }, { refresh: true });
    const unchanged = { advanced: false, dunning: false, failedAt: null };
    if (!sub || sub.currentPeriodEnd?.getTime() !== periodStart.getTime()) {
      return { status: sub?.status ?? null, ...unchanged };
    }
    const unpaid =
      PAYABLE_INVOICE_STATUSES.includes(invoice.status) && invoice.amountPaid < invoice.amountDue;
    if (RENEWABLE.includes(sub.status) && (!unpaid || invoice.collectionMethod === 'MANUAL')) {
      const { anchor, period } = periodAfter(sub);
      sub.billingAnchor = anchor;
      sub.currentPeriodStart = period.start;
      sub.currentPeriodEnd = period.end;
      sub.status = 'ACTIVE';
      await tx.flush();
      return { status: sub.status, advanced: true, dunning: false, failedAt: null };
    }
    if (RENEWABLE.includes(sub.status)) {
      sub.status = 'PAST_DUE';
      await tx.flush();
    }
    if (sub.status !== 'PAST_DUE' || !unpaid) return { status: sub.status, ...unchanged };
    const failedAt = opts.onTestClock ? now : await lastFailureAt(tx, invoice.id, now);
    return { status: sub.status, advanced: false, dunning: true, failedAt: failedAt.toISOString() };
  });
}

/** Reminders go out this long before a trial's end at most: only trials ending sooner are read. */
const REMINDER_HORIZON_MS = daysToMs(Math.max(...TRIAL_REMINDER_DAYS));

export const trialReminderKey = (subscriptionId: string, daysBefore: number) =>
  `trial-reminder:${subscriptionId}:${daysBefore}`;

interface EndingTrialRow {
  id: string;
  tenant_id: string;
  customer_id: string;
  current_period_start: Date | null;
  trial_end: Date;
  pod_slug: string;
  email: string;
  default_payment_method: string | null;
}

/**
 * One page (keyset by id after `after`) of the trials ending within the reminder horizon of
 * `asOf`: each gets the reminder `dueTrialReminder` says is due, once — the notification's dedupe
 * key `trial-reminder:<subId>:<daysBefore>` makes a repeated sweep or a retried page a no-op.
 * Without `testClockId` (the hourly sweep) customers on a test clock are left out; with it, only
 * that clock's customers are read, `asOf` being the clock's time.
 */
export async function remindEndingTrials(
  orm: MikroORM,
  q: { asOf: Date; after: string | null; limit: number; testClockId?: string | null },
): Promise<{ checked: number; reminded: number; lastId: string | null }> {
  const em = systemEm(orm);
  const horizon = new Date(q.asOf.getTime() + REMINDER_HORIZON_MS);
  const clock = q.testClockId ?? null;
  const rows = await em.execute<EndingTrialRow[]>(
    `select s.id, s.tenant_id, s.customer_id, s.current_period_start, s.trial_end, s.pod_slug, c.email, c.default_payment_method
       from subscriptions s join customers c on c.id = s.customer_id
      where s.status = 'TRIALING' and s.deleted_at is null and s.trial_end > ? and s.trial_end <= ?
        and ${clock ? 'c.test_clock_id = ?' : 'c.test_clock_id is null'}
        ${q.after ? 'and s.id > ?' : ''}
      order by s.id limit ?`,
    [q.asOf, horizon, ...(clock ? [clock] : []), ...(q.after ? [q.after] : []), q.limit],
  );
  const keys = rows.flatMap((r) => TRIAL_REMINDER_DAYS.map((days) => trialReminderKey(r.id, days)));
  const sent = new Set(
    keys.length === 0
      ? []
      : (await em.find(Notification, { dedupeKey: { $in: keys } }, { fields: ['dedupeKey'] })).map(
          (n) => n.dedupeKey,
        ),
  );
  let reminded = 0;
  for (const row of rows) {
    if (!row.current_period_start) continue;
    const trialEnd = new Date(row.trial_end);
    const reminder = dueTrialReminder({
      trialStart: new Date(row.current_period_start),
      trialEnd,
      now: q.asOf,
      sentDaysBefore: TRIAL_REMINDER_DAYS.filter((days) => sent.has(trialReminderKey(row.id, days))),
    });
    if (!reminder) continue;
    const days = reminder.daysBefore;
    const inserted = await recordNotification(em, {
      tenantId: row.tenant_id,
      customerId: row.customer_id,
      template: 'subscription.trial_ending',
      recipient: row.email,
      subject: `Your trial ends in ${days} day${days === 1 ? '' : 's'}`,
      body:
        `The trial of your CloudPod ${row.pod_slug} ends on ${isoDate(trialEnd)}. ` +
        (row.default_payment_method
          ? 'Its first period is then invoiced and charged to your saved payment method.'
          : 'Add a payment method before then: its first period is invoiced and charged at the end of the trial.'),
      dedupeKey: trialReminderKey(row.id, days),
    });
    if (inserted) reminded += 1;
  }
  return { checked: rows.length, reminded, lastId: rows.at(-1)?.id ?? null };
}
