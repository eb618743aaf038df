/**
 * Changing a subscription's plan: the preview, the request (one `subscription_plan_changes` row and
 * its `changeSubscriptionPlan` workflow), and the writes that workflow makes through its activities.
 *
 * The pod is resized first, through its own workflow; only a resize that succeeded switches the
 * subscription's product and price and settles the proration, in one transaction: an upgrade (net
 * positive) is invoiced now and charged, a downgrade (net negative) is a credit note to the
 * customer's balance, which finalization spends on their next invoice. A resize that fails bills
 * nothing. During a trial nothing is prorated (nothing has been paid): the plan is switched and the
 * pod resized, and the trial converts at the new price.
 *
 * The preview and the invoice are one function (`planChangeQuote`) called with the same inputs — the
 * prices, the period and the moment the change was requested — so the invoice has exactly the lines
 * the preview showed for that `as_of`.
 *
 * Lock order, as renewals take it: the subscription, then its change row; then drafting and
 * finalizing lock the customer, the new invoice and the document counter (see invoices.ts).
 */
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Config } from '../config';
import {
  CloudPod,
  CreditNote,
  Invoice,
  Payment,
  Product,
  ProvisioningJob,
  RUNNING_PLAN_CHANGE_STATUSES,
  Subscription,
  SubscriptionPlanChange,
  TenantBillingSettings,
} from '../db/entities';
import { SOFT_DELETED, systemEm, type EntityManager, type MikroORM } from '../db/orm';
import {
  assertValidDate,
  billingError,
  invoiceTotals,
  planChangeProration,
  settlementOf,
  type BillingPeriod,
  type InvoiceLineDraft,
  type MinorUnits,
  type PlanPrice,
  type ProrationSettlement,
} from '../domain/billing';
import {
  PAYABLE_INVOICE_STATUSES,
  canMoveSubscription,
  type SubscriptionStatus,
} from '../domain/billing/states';
import { planChangeProblem, type JobStatus } from '../domain/cloudpods';
import { AppError, conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import type { changeSubscriptionPlan } from '../workflows/subscription-plan-change';
import { planChangeStartOptions, type ChangeSubscriptionPlanInput } from '../workflows/messages/plan-change';
import { workflowIds } from '../workflows/shared';
import { requestPlanChange, resourcesOf } from './cloudpods';
import { issueCreditNoteIn } from './credit-notes';
import { createDraftInvoice, finalizeInvoice } from './invoices';

/** Subscriptions whose plan can change: running (prorated) or in a trial (switched only). */
const CHANGEABLE: readonly SubscriptionStatus[] = ['ACTIVE', 'TRIALING'];

/** Subscriptions that pay for their pod: the pod's plan changes only through them. */
const LIVE: readonly SubscriptionStatus[] = ['PENDING', 'TRIALING', 'ACTIVE', 'PAST_DUE', 'SUSPENDED'];

const ONE_RUNNING = 'subscription_plan_changes_one_running';

/** Where a subscription's plan is changed, as problem details name it. */
export const changePlanPath = (subscriptionId: string) =>
  `/api/v1/billing/subscriptions/${subscriptionId}/change-plan`;

/** A stretch of service time repriced from the old plan to the new one: `[asOf, period.end)`. */
export interface PlanChangeSegment {
  period: BillingPeriod;
  asOf: Date;
}

export interface PlanChangeQuoteInput {
  from: PlanPrice;
  to: PlanPrice;
  /** none during a trial (nothing to prorate); one for a change within the current period */
  segments: readonly PlanChangeSegment[];
  taxRateBps: number;
}

export interface PlanChangeQuote {
  /** per segment: the credit for unused time on the old plan, then the charge for the new one */
  lines: InvoiceLineDraft[];
  subtotal: MinorUnits;
  tax: MinorUnits;
  total: MinorUnits;
  /** INVOICE: charged now; CREDIT_NOTE: credited to the customer's balance; NONE: nothing to settle */
  settlement: ProrationSettlement;
  /** what is invoiced (the total) or credited (minus the total): never negative */
  amount: MinorUnits;
}

/**
 * The lines and totals of a plan change: each segment prorated by `planChangeProration` (second-based,
 * half-even), taxed at the tenant's rate as an invoice is. The sign of the subtotal decides the
 * settlement; a credit note gives back the taxed total, as a negative invoice would.
 */
export function planChangeQuote(input: PlanChangeQuoteInput): PlanChangeQuote {
  const lines = input.segments.flatMap(
    (segment) =>
      planChangeProration({ period: segment.period, asOf: segment.asOf, from: input.from, to: input.to })
        .lines,
  );
  const totals = invoiceTotals(lines, input.taxRateBps);
  const settlement = settlementOf(totals.subtotal);
  return { lines, ...totals, settlement, amount: Math.abs(totals.total) };
}

function unprocessableProduct(detail: string, message: string): AppError {
  return new AppError('unprocessable', detail, { errors: [{ field: 'product_id', message }] });
}

/** The target: a live product of the tenant, other than the current one, in the same currency and interval. */
async function targetProduct(em: EntityManager, sub: Subscription, productId: string): Promise<Product> {
  const product = isId('product', productId)
    ? await em.findOne(Product, { id: productId, tenant: sub.tenant.id })
    : null;
  if (!product) {
    throw unprocessableProduct(
      'product_id does not name an available product of this tenant',
      'unknown or retired product',
    );
  }
  if (product.id === sub.product.id) {
    throw unprocessableProduct('the subscription is already on this product', 'is the current product');
  }
  if (product.currency !== sub.currency) {
    throw unprocessableProduct(
      `the product is priced in ${product.currency}; the subscription bills in ${sub.currency}`,
      'another currency',
    );
  }
  if (product.interval !== sub.interval) {
    throw unprocessableProduct(
      `the product is billed per ${product.interval}; the subscription per ${sub.interval}`,
      'another billing interval',
    );
  }
  return product;
}

function ensureChangeable(sub: Subscription): void {
  if (!CHANGEABLE.includes(sub.status)) {
    throw conflict(
      `subscription ${sub.id} is ${sub.status}; plans change only on ACTIVE or TRIALING subscriptions`,
      { subscription_status: sub.status },
    );
  }
}

function currentPeriod(sub: Subscription): BillingPeriod {
  if (!sub.currentPeriodStart || !sub.currentPeriodEnd) {
    throw conflict(`subscription ${sub.id} has no current period`);
  }
  return { start: sub.currentPeriodStart, end: sub.currentPeriodEnd };
}

function within(period: BillingPeriod, at: Date): boolean {
  return at.getTime() >= period.start.getTime() && at.getTime() < period.end.getTime();
}

function price(
  product: Product,
  unitAmount: number,
  sub: Pick<Subscription, 'currency' | 'interval'>,
): PlanPrice {
  return {
    code: product.code,
    name: product.name,
    interval: sub.interval,
    unitAmount,
    currency: sub.currency,
  };
}

/** The product a subscription is on, retired or not: what it pays for now. */
function productOf(em: EntityManager, productId: string): Promise<Product> {
  return em.findOneOrFail(Product, { id: productId }, { filters: { [SOFT_DELETED]: false } });
}

async function taxRateOf(em: EntityManager, tenantId: string): Promise<number> {
  const settings = await em.findOne(TenantBillingSettings, { tenant: tenantId });
  if (!settings) throw conflict('the tenant has no billing settings yet: its onboarding has not finished');
  return settings.taxRateBps;
}

/** A resize the pod's workflow would refuse, as a 422 naming the product. */
function checkResize(pod: CloudPod, product: Product): void {
  if (pod.status !== 'ACTIVE') return;
  const problem = planChangeProblem(pod.status, resourcesOf(pod), resourcesOf(product));
  if (problem) throw unprocessableProduct(`the pod cannot take this plan: ${problem}`, problem);
}

export interface PlanChangePreview {
  subscription: Subscription;
  fromProduct: Product;
  toProduct: Product;
  from: PlanPrice;
  to: PlanPrice;
  asOf: Date;
  period: BillingPeriod;
  /** false during a trial: nothing is prorated */
  prorated: boolean;
  quote: PlanChangeQuote;
}

/**
 * What changing the tenant's subscription to `productId` at `asOf` would invoice or credit, computed
 * exactly as the change's settlement computes it. 404 for another tenant's subscription, 409 unless it
 * is ACTIVE or TRIALING, 422 for a product it cannot change to or an `asOf` outside its current period.
 */
export async function previewSubscriptionPlanChange(
  em: EntityManager,
  tenantId: string,
  subscriptionId: string,
  productId: string,
  asOf: Date,
): Promise<PlanChangePreview> {
  assertValidDate(asOf, 'as_of');
  const sub = isId('subscription', subscriptionId)
    ? await em.findOne(Subscription, { id: subscriptionId, tenant: tenantId })
    : null;
  if (!sub) throw notFound('subscription');
  ensureChangeable(sub);
  const toProduct = await targetProduct(em, sub, productId);
  const pod = sub.podId ? await em.findOne(CloudPod, { id: sub.podId, tenant: tenantId }) : null;
  if (pod) checkResize(pod, toProduct);
  const period = currentPeriod(sub);
  if (!within(period, asOf)) {
    throw billingError(
      'unprocessable',
      'as_of_outside_period',
      `as_of must lie in the current period [${period.start.toISOString()}, ${period.end.toISOString()})`,
    );
  }
  const fromProduct = await productOf(em, sub.product.id);
  const from = price(fromProduct, sub.unitAmount, sub);
  const to = price(toProduct, toProduct.unitAmount, sub);
  const prorated = sub.status === 'ACTIVE';
  const quote = planChangeQuote({
    from,
    to,
    segments: prorated ? [{ period, asOf }] : [],
    taxRateBps: await taxRateOf(em, tenantId),
  });
  return { subscription: sub, fromProduct, toProduct, from, to, asOf, period, prorated, quote };
}

export interface PlanChangeRequest {
  subscription: Subscription;
  change: SubscriptionPlanChange;
  workflowId: string;
}

function lockSubscription(tx: EntityManager, tenantId: string, id: string): Promise<Subscription | null> {
  if (!isId('subscription', id)) return Promise.resolve(null);
  return tx.findOne(
    Subscription,
    { id, tenant: tenantId },
    { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
  );
}

async function runningChange(tx: EntityManager, subscriptionId: string) {
  return tx.findOne(SubscriptionPlanChange, {
    subscription: subscriptionId,
    status: { $in: [...RUNNING_PLAN_CHANGE_STATUSES] },
  });
}

/** What recording found: the new change, or the change of the subscription that is still running. */
type Recorded =
  | { sub: Subscription; change: SubscriptionPlanChange; toProduct: Product; running?: undefined }
  | { sub: Subscription; running: SubscriptionPlanChange };

/** The change row, written with the subscription locked; every refusal happens here, before anything runs. */
async function recordChange(
  em: EntityManager,
  tenantId: string,
  subscriptionId: string,
  productId: string,
  now: Date,
): Promise<Recorded> {
  try {
    return await em.transactional(async (tx): Promise<Recorded> => {
      const sub = await lockSubscription(tx, tenantId, subscriptionId);
      if (!sub) throw notFound('subscription');
      ensureChangeable(sub);
      const toProduct = await targetProduct(tx, sub, productId);
      const running = await runningChange(tx, sub.id);
      if (running) return { sub, running };
      const pod = sub.podId ? await tx.findOne(CloudPod, { id: sub.podId, tenant: tenantId }) : null;
      if (!pod) throw conflict(`subscription ${sub.id} has no pod to resize`);
      if (pod.status !== 'ACTIVE') {
        throw conflict(`pod ${pod.id} is ${pod.status}; its plan changes once it is ACTIVE`, {
          pod_status: pod.status,
        });
      }
      checkResize(pod, toProduct);
      const period = currentPeriod(sub);
      if (!within(period, now)) {
        throw conflict(
          `the current period [${period.start.toISOString()}, ${period.end.toISOString()}) does not hold the present moment; change the plan once its renewal has run`,
        );
      }
      const fromProduct = await productOf(tx, sub.product.id);
      const prorated = sub.status === 'ACTIVE';
      // The quote the settlement will make, made now: whatever it would refuse is refused before the pod is touched.
      planChangeQuote({
        from: price(fromProduct, sub.unitAmount, sub),
        to: price(toProduct, toProduct.unitAmount, sub),
        segments: prorated ? [{ period, asOf: now }] : [],
        taxRateBps: await taxRateOf(tx, tenantId),
      });
      const change = tx.create(SubscriptionPlanChange, {
        tenant: sub.tenant,
        subscription: sub,
        fromProduct,
        toProduct,
        fromUnitAmount: sub.unitAmount,
        toUnitAmount: toProduct.unitAmount,
        currency: sub.currency,
        interval: sub.interval,
        asOf: now,
        periodStart: period.start,
        periodEnd: period.end,
        prorated,
        podId: pod.id,
        workflowId: '',
      });
      change.workflowId = workflowIds.changeSubscriptionPlan(sub.id, change.id);
      await tx.flush();
      return { sub, change, toProduct };
    });
  } catch (err) {
    if (
      err instanceof UniqueConstraintViolationException &&
      (err as { constraint?: unknown }).constraint === ONE_RUNNING
    ) {
      throw conflict('another plan change of this subscription is running');
    }
    throw err;
  }
}

/** The change's workflow input, from its row: every start of it (first or repeated) carries the same. */
function workflowInput(
  change: SubscriptionPlanChange,
  sub: Subscription,
  config: Config,
): ChangeSubscriptionPlanInput {
  return {
    changeId: change.id,
    subscriptionId: sub.id,
    tenantId: sub.tenant.id,
    customerId: sub.customer.id,
    podId: change.podId,
    productId: change.toProduct.id,
    asOf: change.asOf.toISOString(),
    deadLetterWaitMs: config.PROVISION_RETRY_WINDOW_MS,
  };
}

/** Starts the change's workflow: started (now, or found started before), or why it could not be. */
async function startChangeWorkflow(
  deps: { em: EntityManager; temporal: Client; config: Config },
  change: SubscriptionPlanChange,
  sub: Subscription,
): Promise<{ started: true } | { started: false; cause: unknown }> {
  const input = workflowInput(change, sub, deps.config);
  const toProduct = await productOf(deps.em, change.toProduct.id);
  try {
    await deps.temporal.withDeadline(Date.now() + deps.config.TEMPORAL_CALL_TIMEOUT_MS, () =>
      deps.temporal.workflow.start<typeof changeSubscriptionPlan>('changeSubscriptionPlan', {
        ...planChangeStartOptions(input, toProduct.code),
        args: [input],
      }),
    );
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) return { started: false, cause: err };
  }
  return { started: true };
}

/**
 * Requests a plan change of the tenant's subscription to `productId`, as of `now`: records the change
 * (REQUESTED) and starts `subscription-change-plan-<subId>-<changeId>`. Refused before anything runs:
 * 404 for another tenant's subscription; 409 unless it is ACTIVE or TRIALING with an ACTIVE pod and a
 * current period holding `now`, or while another change of it runs; 422 for a product it cannot change
 * to (unknown, retired, the same, another currency or interval, a plan the pod cannot take). An
 * engine that cannot be reached withdraws the change (503), unless its workflow has already claimed
 * it — then it runs, and the answer is the same as for a clean start.
 */
export async function requestSubscriptionPlanChange(
  deps: { em: EntityManager; temporal: Client; config: Config },
  tenantId: string,
  subscriptionId: string,
  productId: string,
  now: Date = new Date(),
): Promise<PlanChangeRequest> {
  const recorded = await recordChange(deps.em, tenantId, subscriptionId, productId, now);
  if (recorded.running) {
    const { running, sub } = recorded;
    // A change still REQUESTED may have lost its start (the request that made it died before the
    // engine answered): starting it again by its id is harmless and gets it going.
    if (running.status === 'REQUESTED') await startChangeWorkflow(deps, running, sub);
    throw conflict(`plan change ${running.id} of this subscription is still running`, {
      plan_change_id: running.id,
    });
  }
  const { sub, change } = recorded;
  const start = await startChangeWorkflow(deps, change, sub);
  if (!start.started) {
    // The start may have landed and its answer been lost: the workflow claims the change first,
    // so either this withdrawal or that claim wins, never both.
    const withdrawn = await deps.em.nativeUpdate(
      SubscriptionPlanChange,
      { id: change.id, status: 'REQUESTED' },
      {
        status: 'FAILED',
        failureReason: 'the workflow engine could not be reached; nothing was changed',
        finishedAt: new Date(),
        updatedAt: new Date(),
      },
    );
    if (withdrawn > 0) {
      throw new AppError(
        'unavailable',
        'the workflow engine could not be reached; the plan was not changed',
        {},
        { cause: start.cause },
      );
    }
  }
  return { subscription: sub, change, workflowId: change.workflowId };
}

/** The tenant's subscription's plan changes, newest first (at most `limit`); 404 for another tenant's. */
export async function listSubscriptionPlanChanges(
  em: EntityManager,
  tenantId: string,
  subscriptionId: string,
  limit = 100,
): Promise<SubscriptionPlanChange[]> {
  const sub = isId('subscription', subscriptionId)
    ? await em.findOne(Subscription, { id: subscriptionId, tenant: tenantId })
    : null;
  if (!sub) throw notFound('subscription');
  return em.find(
    SubscriptionPlanChange,
    { subscription: sub.id, tenant: tenantId },
    { orderBy: { createdAt: 'desc', id: 'desc' }, limit },
  );
}

/**
 * The subscription paying for the pod, while it does (not CANCELED, not deleted), or null. A pod that
 * has one changes its plan only through the subscription, so the plan it runs is the plan billed.
 */
export async function liveSubscriptionOfPod(em: EntityManager, podId: string): Promise<Subscription | null> {
  return em.findOne(Subscription, { podId, status: { $in: [...LIVE] } });
}

/**
 * REQUESTED → RESIZING: the workflow takes the change over. False when the API withdrew it first
 * (its start was not confirmed): then nothing may run.
 */
export async function claimPlanChange(orm: MikroORM, changeId: string): Promise<boolean> {
  const em = systemEm(orm);
  await em.nativeUpdate(
    SubscriptionPlanChange,
    { id: changeId, status: 'REQUESTED' },
    { status: 'RESIZING', updatedAt: new Date() },
  );
  const change = await em.findOneOrFail(SubscriptionPlanChange, { id: changeId }, { filters: false });
  return change.status !== 'FAILED';
}

/**
 * The pod's CHANGE_PLAN job for this change: the one recorded, one an earlier attempt opened before it
 * could record it (created since the change, for its product, not canceled before it ran), or a new
 * one through `requestPlanChange` (the job and the pod workflow's `changePlan` update). Refusals
 * (the pod busy or no longer ACTIVE, the plan invalid for it) are `AppError`s.
 */
export async function requestPlanChangeResize(
  deps: { orm: MikroORM; temporal: Client; config: Config },
  changeId: string,
): Promise<string> {
  const em = systemEm(deps.orm);
  const change = await em.findOneOrFail(SubscriptionPlanChange, { id: changeId }, { filters: false });
  if (change.status !== 'RESIZING') throw conflict(`plan change ${changeId} is ${change.status}`);
  if (change.jobId) return change.jobId;
  const [adoptable] = await em.execute<{ id: string }[]>(
    `select id from provisioning_jobs
      where pod_id = ? and type = 'CHANGE_PLAN' and created_at >= ? and input->>'product_id' = ?
        and status <> 'CANCELED'
      order by created_at, id limit 1`,
    [change.podId, change.createdAt, change.toProduct.id],
  );
  let jobId = adoptable?.id;
  if (!jobId) {
    const pod = await em.findOne(CloudPod, { id: change.podId }, { filters: false });
    if (!pod) throw conflict(`pod ${change.podId} no longer exists`);
    const product = await productOf(em, change.toProduct.id);
    jobId = (await requestPlanChange({ em, temporal: deps.temporal, config: deps.config }, pod, product)).id;
  }
  await em.nativeUpdate(
    SubscriptionPlanChange,
    { id: changeId, jobId: null },
    { jobId, updatedAt: new Date() },
  );
  return jobId;
}

/** The job's status and failure reason, as the change waits on them. */
export async function planChangeJobState(
  orm: MikroORM,
  jobId: string,
): Promise<{ status: JobStatus; failureReason: string | null }> {
  const job = await systemEm(orm).findOneOrFail(
    ProvisioningJob,
    { id: jobId },
    { fields: ['status', 'failureReason'], filters: false },
  );
  return { status: job.status, failureReason: job.failureReason ?? null };
}

/** RESIZING (or REQUESTED) → FAILED with the reason: the subscription keeps its plan, nothing is billed. */
export async function failPlanChange(
  orm: MikroORM,
  changeId: string,
  reason: string,
  now: Date,
): Promise<void> {
  await systemEm(orm).nativeUpdate(
    SubscriptionPlanChange,
    { id: changeId, status: { $in: [...RUNNING_PLAN_CHANGE_STATUSES] } },
    { status: 'FAILED', failureReason: reason.slice(0, 2000), finishedAt: now, updatedAt: now },
  );
}

export interface PlanChangeSettlement {
  settlement: ProrationSettlement;
  invoiceId: string | null;
  invoiceNumber: string | null;
  /** what is left to collect on the invoice */
  amountDue: MinorUnits;
  /** collect it now: charged automatically and something is left due after the credit balance */
  charge: boolean;
  creditNoteId: string | null;
  /** invoiced (total) or credited */
  amount: MinorUnits;
  /** the subscription's status when it was settled */
  status: SubscriptionStatus;
}

/**
 * The stretches the settlement reprices: the current period from `as_of` (not during a trial), and a
 * period that began while the pod was being resized — billed by its renewal (or a trial's conversion)
 * at the old price — whole.
 */
function segmentsOf(change: SubscriptionPlanChange, sub: Subscription): PlanChangeSegment[] {
  const segments: PlanChangeSegment[] = [];
  if (change.prorated) {
    segments.push({ period: { start: change.periodStart, end: change.periodEnd }, asOf: change.asOf });
  }
  const start = sub.currentPeriodStart;
  const end = sub.currentPeriodEnd;
  if (start && end && sub.status !== 'TRIALING' && start.getTime() >= change.periodEnd.getTime()) {
    segments.push({ period: { start, end }, asOf: start });
  }
  return segments;
}

async function settlementOfChange(
  tx: EntityManager,
  change: SubscriptionPlanChange,
  status: SubscriptionStatus,
): Promise<PlanChangeSettlement> {
  const invoice = change.invoice
    ? await tx.findOneOrFail(Invoice, { id: change.invoice.id }, { refresh: true })
    : null;
  const note = change.creditNote ? await tx.findOneOrFail(CreditNote, { id: change.creditNote.id }) : null;
  const due = invoice ? invoice.amountDue - invoice.amountPaid : 0;
  return {
    settlement: change.settlement ?? 'NONE',
    invoiceId: invoice?.id ?? null,
    invoiceNumber: invoice?.number ?? null,
    amountDue: due,
    charge:
      invoice !== null &&
      invoice.collectionMethod === 'AUTOMATIC' &&
      PAYABLE_INVOICE_STATUSES.includes(invoice.status) &&
      due > 0,
    creditNoteId: note?.id ?? null,
    amount: invoice?.total ?? note?.amount ?? 0,
    status,
  };
}

/**
 * After a resize that succeeded: in one transaction holding the subscription's lock, switches its
 * product and price and settles the proration — an invoice drafted and finalized (credit balance
 * applied), a credit note issued, or nothing — and marks the change SUCCEEDED. Repeatable: a change
 * already SUCCEEDED returns what it settled. A subscription canceled meanwhile is switched but not
 * billed (its pod is being terminated).
 */
export async function settlePlanChange(
  orm: MikroORM,
  changeId: string,
  now: Date,
): Promise<PlanChangeSettlement> {
  return systemEm(orm).transactional(async (tx) => {
    const head = await tx.findOneOrFail(SubscriptionPlanChange, { id: changeId }, { filters: false });
    const sub = await tx.findOneOrFail(
      Subscription,
      { id: head.subscription.id },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true, filters: false },
    );
    const change = await tx.findOneOrFail(
      SubscriptionPlanChange,
      { id: changeId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true, filters: false },
    );
    if (change.status === 'SUCCEEDED') return settlementOfChange(tx, change, sub.status);
    if (change.status !== 'RESIZING') throw conflict(`plan change ${changeId} is ${change.status}`);
    const fromProduct = await productOf(tx, change.fromProduct.id);
    const toProduct = await productOf(tx, change.toProduct.id);
    const quote = planChangeQuote({
      from: price(fromProduct, change.fromUnitAmount, change),
      to: price(toProduct, change.toUnitAmount, change),
      segments: sub.status === 'CANCELED' ? [] : segmentsOf(change, sub),
      taxRateBps: await taxRateOf(tx, change.tenant.id),
    });
    sub.product = toProduct;
    sub.unitAmount = change.toUnitAmount;
    change.settlement = quote.settlement;
    if (quote.settlement === 'INVOICE') {
      const first = quote.lines[0]?.period;
      const { invoice: draft } = await createDraftInvoice(tx, {
        tenantId: change.tenant.id,
        customerId: sub.customer.id,
        subscriptionId: sub.id,
        billingReason: 'SUBSCRIPTION_UPDATE',
        currency: change.currency,
        periodStart: first?.start ?? change.asOf,
        periodEnd: quote.lines.at(-1)?.period?.end ?? change.periodEnd,
        lines: quote.lines,
      });
      change.invoice = (await finalizeInvoice(tx, draft.id, now)).invoice;
    } else if (quote.settlement === 'CREDIT_NOTE') {
      change.creditNote = await issueCreditNoteIn(tx, {
        tenantId: change.tenant.id,
        customerId: sub.customer.id,
        subscriptionId: sub.id,
        amount: quote.amount,
        currency: change.currency,
        reason: `Plan change from ${fromProduct.name} to ${toProduct.name} as of ${change.asOf.toISOString()}: unused time credited`,
        sourceKey: `plan-change:${change.id}`,
        issuedAt: now,
      });
    }
    change.status = 'SUCCEEDED';
    change.finishedAt = now;
    await tx.flush();
    return settlementOfChange(tx, change, sub.status);
  });
}

export interface PlanChangeCollection {
  status: SubscriptionStatus;
  /** the invoice is unpaid and the subscription PAST_DUE: dunning collects it */
  dunning: boolean;
  /** when the charge failed (ISO), as dunning schedules its retries from it */
  failedAt: string | null;
}

/**
 * After the change's invoice was charged (or left to a MANUAL customer): paid, nothing due or
 * collected manually → nothing changes; otherwise the subscription becomes PAST_DUE (as a failed
 * renewal makes it) and dunning collects the invoice. Repeatable.
 */
export async function settlePlanChangeCollection(
  orm: MikroORM,
  changeId: string,
  now: Date,
): Promise<PlanChangeCollection> {
  return systemEm(orm).transactional(async (tx) => {
    const change = await tx.findOneOrFail(SubscriptionPlanChange, { id: changeId }, { filters: false });
    const sub = await tx.findOneOrFail(
      Subscription,
      { id: change.subscription.id },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true, filters: false },
    );
    if (!change.invoice) return { status: sub.status, dunning: false, failedAt: null };
    const invoice = await tx.findOneOrFail(Invoice, { id: change.invoice.id }, { refresh: true });
    const unpaid =
      PAYABLE_INVOICE_STATUSES.includes(invoice.status) && invoice.amountPaid < invoice.amountDue;
    if (!unpaid || invoice.collectionMethod === 'MANUAL') {
      return { status: sub.status, dunning: false, failedAt: null };
    }
    if (sub.status !== 'PAST_DUE' && canMoveSubscription(sub.status, 'PAST_DUE')) {
      sub.status = 'PAST_DUE';
      await tx.flush();
    }
    if (sub.status !== 'PAST_DUE' && sub.status !== 'SUSPENDED') {
      return { status: sub.status, dunning: false, failedAt: null };
    }
    const failed = await tx.findOne(
      Payment,
      { invoice: invoice.id, status: { $in: ['FAILED', 'REQUIRES_ACTION', 'PENDING'] } },
      { orderBy: { attempt: 'desc' } },
    );
    return { status: sub.status, dunning: true, failedAt: (failed?.updatedAt ?? now).toISOString() };
  });
}
