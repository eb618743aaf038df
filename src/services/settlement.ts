/**
 * What a paid invoice settles, and paying an invoice on request.
 *
 * `settleInvoicePaid` runs after every successful payment, whatever the path (`POST …/pay`, a
 * Stripe webhook, a dunning retry): the subscription the invoice bills goes back to ACTIVE, its pod
 * is unsuspended when dunning had suspended it, and the invoice's dunning workflow is told to stop.
 * Every step is repeatable, so a retried activity or a second event for the same payment changes
 * nothing more. The payment itself is never undone by what follows it: settlement reports what it
 * could not do (and raises an ops event for it) instead of failing.
 *
 * `payInvoice` charges what an invoice has left due, now, as its next attempt.
 */
import { LockMode } from '@mikro-orm/core';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Config } from '../config';
import { CloudPod, Customer, Invoice, InvoiceLine, Payment, Subscription } from '../db/entities';
import { SOFT_DELETED, systemEm, type EntityManager, type MikroORM } from '../db/orm';
import { lockInvoice } from '../db/repositories/billing';
import {
  PAYABLE_INVOICE_STATUSES,
  canMoveSubscription,
  type InvoiceStatus,
  type SubscriptionStatus,
} from '../domain/billing/states';
import { AppError, conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import { ProviderError } from '../providers/errors';
import type { PaymentProvider } from '../providers/payments';
import { paymentSucceededSignal } from '../workflows/messages/billing';
import { workflowIds } from '../workflows/shared';
import { requestOperation } from './cloudpods';
import { chargeInvoice, type ChargeOutcome } from './collection';
import { recordPayment, type InvoiceWithLines } from './invoices';
import { raiseOpsEvent } from './pod-bookkeeping';

export interface SettlementDeps {
  orm: MikroORM;
  temporal: Client;
  /** the Temporal call deadline and the pod policy a pod's workflow is (re)started with */
  config: Config;
}

/** Subscriptions a paid invoice brings back: the ones dunning moved away from ACTIVE. */
const REACTIVATED: readonly SubscriptionStatus[] = ['PAST_DUE', 'SUSPENDED'];

export type UnsuspendOutcome =
  /** nothing to do: the subscription was not suspended, or its pod is not SUSPENDED */
  | { status: 'not_needed' }
  | { status: 'requested'; jobId: string }
  /** 409 from the pod: another operation is open on it; an ops event says to unsuspend it after */
  | { status: 'busy'; detail: string }
  /** the request could not be made (engine unreachable); an ops event says so */
  | { status: 'failed'; detail: string };

export interface Settlement {
  invoiceId: string;
  invoiceStatus: InvoiceStatus;
  /** the subscription's move, when settlement made one */
  subscription: { id: string; from: SubscriptionStatus; to: 'ACTIVE' } | null;
  unsuspend: UnsuspendOutcome;
  /** `dunning-<invoiceId>` was signalled, was not running, or could not be reached */
  dunning: 'signaled' | 'not_running' | 'unreachable';
}

/** What settlement decides on, read without locks (the move itself re-reads under them). */
interface SettlementFacts {
  invoice: Invoice;
  subscription: Subscription | null;
  pod: CloudPod | null;
  /** another invoice of the subscription is still due in dunning: paying this one is not enough */
  otherInDunning: boolean;
}

async function otherInvoiceInDunning(em: EntityManager, invoice: Invoice, subscriptionId: string) {
  const others = await em.count(Invoice, {
    subscription: subscriptionId,
    id: { $ne: invoice.id },
    status: { $in: [...PAYABLE_INVOICE_STATUSES] },
    dunningPolicy: { $ne: null },
  });
  return others > 0;
}

async function settlementFacts(em: EntityManager, invoiceId: string): Promise<SettlementFacts | null> {
  const invoice = isId('invoice', invoiceId) ? await em.findOne(Invoice, { id: invoiceId }) : null;
  if (!invoice) return null;
  const subscriptionId = invoice.subscription?.id;
  if (!subscriptionId) return { invoice, subscription: null, pod: null, otherInDunning: false };
  const subscription = await em.findOne(Subscription, { id: subscriptionId });
  const pod = subscription?.podId ? await em.findOne(CloudPod, { id: subscription.podId }) : null;
  const otherInDunning = await otherInvoiceInDunning(em, invoice, subscriptionId);
  return { invoice, subscription, pod, otherInDunning };
}

function reactivates(facts: SettlementFacts): boolean {
  const status = facts.subscription?.status;
  return (
    facts.invoice.status === 'PAID' &&
    status !== undefined &&
    REACTIVATED.includes(status) &&
    !facts.otherInDunning
  );
}

/**
 * PAST_DUE | SUSPENDED → ACTIVE, in one transaction that locks the invoice, then the subscription
 * (the order dunning locks them in), and re-checks both under the locks: a subscription canceled
 * or already reactivated meanwhile is left alone.
 */
async function reactivateSubscription(
  orm: MikroORM,
  invoiceId: string,
  subscriptionId: string,
): Promise<Settlement['subscription']> {
  return systemEm(orm).transactional(async (tx) => {
    const invoice = await lockInvoice(tx, invoiceId);
    const sub = await tx.findOne(
      Subscription,
      { id: subscriptionId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    if (invoice?.status !== 'PAID' || !sub || !REACTIVATED.includes(sub.status)) return null;
    if (!canMoveSubscription(sub.status, 'ACTIVE')) return null;
    if (await otherInvoiceInDunning(tx, invoice, subscriptionId)) return null;
    const from = sub.status;
    sub.status = 'ACTIVE';
    await tx.flush();
    return { id: sub.id, from, to: 'ACTIVE' as const };
  });
}

/** Where operators look when a paid customer's pod could not be brought back by itself. */
async function reportUnsuspendProblem(
  orm: MikroORM,
  pod: CloudPod,
  invoiceId: string,
  outcome: Extract<UnsuspendOutcome, { detail: string }>,
): Promise<void> {
  const busy = outcome.status === 'busy';
  await raiseOpsEvent(systemEm(orm), {
    severity: busy ? 'MEDIUM' : 'HIGH',
    kind: busy ? 'unsuspend_after_payment_deferred' : 'unsuspend_after_payment_failed',
    tenantId: pod.tenant.id,
    podId: pod.id,
    jobId: null,
    message: busy
      ? `Invoice ${invoiceId} was paid while pod ${pod.id} had an operation open; unsuspend the pod once it has finished.`
      : `Invoice ${invoiceId} was paid but pod ${pod.id} could not be unsuspended: ${outcome.detail}. Unsuspend it by hand.`,
    details: { invoiceId, reason: outcome.detail },
    dedupeKey: `unsuspend-after-payment:${invoiceId}`,
  });
}

/**
 * The pod's UNSUSPEND through its workflow. Requested *before* the subscription is reactivated:
 * should the process die between the two, a repeat still finds the subscription SUSPENDED and
 * finishes both (a second request while the first job is open is the 409 reported as `busy`).
 */
async function unsuspendPod(
  deps: SettlementDeps,
  pod: CloudPod,
  invoiceId: string,
): Promise<UnsuspendOutcome> {
  let outcome: UnsuspendOutcome;
  try {
    const { job } = await requestOperation(
      { em: systemEm(deps.orm), temporal: deps.temporal, config: deps.config },
      pod,
      'UNSUSPEND',
    );
    return { status: 'requested', jobId: job.id };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    outcome =
      err instanceof AppError && err.kind === 'conflict'
        ? { status: 'busy', detail }
        : { status: 'failed', detail };
  }
  await reportUnsuspendProblem(deps.orm, pod, invoiceId, outcome);
  return outcome;
}

/** The newest successful payment of the invoice: what the dunning workflow is told ended it. */
async function latestPaymentId(em: EntityManager, invoiceId: string): Promise<string> {
  const payment = await em.findOne(
    Payment,
    { invoice: invoiceId, status: 'SUCCEEDED' },
    { orderBy: { updatedAt: 'desc', id: 'desc' } },
  );
  // An invoice paid by credit at finalization has no payment (and was never in dunning).
  return payment?.id ?? '';
}

/**
 * `paymentSucceeded` to `dunning-<invoiceId>`. A workflow that is not running (never started, or
 * finished) is the common case, not an error. An unreachable engine is reported, not thrown: the
 * dunning workflow re-reads the invoice under a lock before every destructive step, so a paid
 * invoice is never suspended or canceled even when this signal is lost.
 */
async function signalDunning(
  deps: SettlementDeps,
  invoiceId: string,
  paymentId: string,
): Promise<Settlement['dunning']> {
  try {
    await deps.temporal.withDeadline(Date.now() + deps.config.TEMPORAL_CALL_TIMEOUT_MS, () =>
      deps.temporal.workflow
        .getHandle(workflowIds.dunning(invoiceId))
        .signal(paymentSucceededSignal, { invoiceId, paymentId }),
    );
    return 'signaled';
  } catch (err) {
    return err instanceof WorkflowNotFoundError ? 'not_running' : 'unreachable';
  }
}

/**
 * Settles a PAID invoice (see the module comment); an invoice that is not PAID settles nothing.
 * `paymentId` is the payment that paid it, when the caller knows it.
 */
export async function settleInvoicePaid(
  deps: SettlementDeps,
  invoiceId: string,
  paymentId?: string,
): Promise<Settlement> {
  const em = systemEm(deps.orm);
  const facts = await settlementFacts(em, invoiceId);
  if (!facts) throw notFound('invoice');
  const settlement: Settlement = {
    invoiceId,
    invoiceStatus: facts.invoice.status,
    subscription: null,
    unsuspend: { status: 'not_needed' },
    dunning: 'not_running',
  };
  if (facts.invoice.status !== 'PAID') return settlement;
  if (reactivates(facts) && facts.subscription) {
    if (facts.subscription.status === 'SUSPENDED' && facts.pod?.status === 'SUSPENDED') {
      settlement.unsuspend = await unsuspendPod(deps, facts.pod, invoiceId);
    }
    settlement.subscription = await reactivateSubscription(deps.orm, invoiceId, facts.subscription.id);
  }
  settlement.dunning = await signalDunning(
    deps,
    invoiceId,
    paymentId ?? (await latestPaymentId(em, invoiceId)),
  );
  return settlement;
}

export interface PayInvoiceDeps extends SettlementDeps {
  payments: PaymentProvider;
  /** the caller's EntityManager: tenant-filtered for a tenant, so other tenants' invoices are 404 */
  em: EntityManager;
}

export interface PayInvoiceInput {
  invoiceId: string;
  /** charge this saved payment method (`pm_…`) instead of the customer's default */
  paymentMethod?: string | undefined;
}

export interface PayInvoiceResult {
  status: Exclude<ChargeOutcome, 'NOT_DUE'>;
  invoice: InvoiceWithLines;
  payment: Payment;
  /** set when the payment succeeded */
  settlement: Settlement | null;
}

function notPayable(invoice: Invoice): AppError {
  const why =
    invoice.status === 'DRAFT'
      ? 'a draft is not issued yet; finalize it first'
      : PAYABLE_INVOICE_STATUSES.includes(invoice.status)
        ? 'nothing is left due on it'
        : `it is ${invoice.status}`;
  return conflict(`invoice ${invoice.number ?? invoice.id} cannot be paid: ${why}`, {
    invoice_status: invoice.status,
  });
}

/** The caller's invoice with something left due and its customer; 404 or 409 otherwise. */
async function payableInvoice(em: EntityManager, invoiceId: string): Promise<Invoice> {
  const invoice = isId('invoice', invoiceId)
    ? await em.findOne(Invoice, { id: invoiceId }, { refresh: true })
    : null;
  if (!invoice) throw notFound('invoice');
  if (!PAYABLE_INVOICE_STATUSES.includes(invoice.status) || invoice.amountPaid >= invoice.amountDue) {
    throw notPayable(invoice);
  }
  return invoice;
}

async function customerOf(em: EntityManager, invoice: Invoice): Promise<Customer> {
  // Deleted customers keep their billing history: their open invoices can still be paid.
  return em.findOneOrFail(Customer, { id: invoice.customer.id }, { filters: { [SOFT_DELETED]: false } });
}

/**
 * The attempt this payment is: the newest attempt again when it is still PENDING with the same
 * payment method — a request whose answer was lost, or dunning's charge in flight, which must not
 * become a second charge — and otherwise the next number. The provider sees the attempt's key, so
 * the same attempt is the same charge.
 */
async function attemptFor(em: EntityManager, invoiceId: string, method: string): Promise<number> {
  const newest = await em.findOne(
    Payment,
    { invoice: invoiceId },
    { orderBy: { attempt: 'desc' }, refresh: true },
  );
  if (!newest) return 1;
  return newest.status === 'PENDING' && newest.paymentMethod === method ? newest.attempt : newest.attempt + 1;
}

/** A provider that could not be asked is the caller's 503 (or 409 for a concurrent attempt), never a decline. */
function providerProblem(err: ProviderError): AppError {
  if (err.code === 'IDEMPOTENCY_MISMATCH') {
    return conflict(
      'another payment of this invoice with a different payment method is under way; retry when it has finished',
    );
  }
  if (err.retryable) {
    return new AppError(
      'unavailable',
      'the payment provider could not be reached; retry with the same Idempotency-Key (the same attempt is retried, never charged twice)',
      {},
      { cause: err },
    );
  }
  return new AppError('internal', 'the payment provider refused the request', {}, { cause: err });
}

/**
 * A method the customer just paid with becomes their default when they had none, so that their
 * next renewal is collected by itself. An existing default is never replaced here (that is
 * `PATCH /customers/:id`), and a method that did not succeed is never saved.
 */
async function adoptAsDefault(orm: MikroORM, customerId: string, method: string): Promise<void> {
  await systemEm(orm).nativeUpdate(
    Customer,
    { id: customerId, defaultPaymentMethod: null },
    { defaultPaymentMethod: method, updatedAt: new Date() },
  );
}

async function invoiceWithLines(em: EntityManager, invoiceId: string): Promise<InvoiceWithLines> {
  const fresh = em.fork();
  const invoice = await fresh.findOneOrFail(Invoice, { id: invoiceId });
  const lines = await fresh.find(InvoiceLine, { invoice: invoiceId }, { orderBy: { position: 'asc' } });
  return { invoice, lines };
}

/**
 * Charges what is left due on an OPEN or UNCOLLECTIBLE invoice now, with `paymentMethod` or the
 * customer's default, and settles it when the charge succeeds. A decline is a result (status
 * FAILED, the payment recorded); an invoice with nothing due is 409; no method at all is 422.
 */
export async function payInvoice(deps: PayInvoiceDeps, input: PayInvoiceInput): Promise<PayInvoiceResult> {
  const invoice = await payableInvoice(deps.em, input.invoiceId);
  const customer = await customerOf(deps.em, invoice);
  const method = input.paymentMethod ?? customer.defaultPaymentMethod ?? null;
  if (!method) {
    throw new AppError('unprocessable', 'the customer has no default payment method; send payment_method', {
      errors: [{ field: 'payment_method', message: 'required: the customer has no default payment method' }],
    });
  }
  const attempt = await attemptFor(deps.em, invoice.id, method);
  let outcome: ChargeOutcome;
  try {
    ({ status: outcome } = await chargeInvoice(deps, invoice.id, attempt, method));
  } catch (err) {
    throw err instanceof ProviderError ? providerProblem(err) : err;
  }
  // paid or voided between the check and the charge
  if (outcome === 'NOT_DUE')
    throw notPayable(await deps.em.fork().findOneOrFail(Invoice, { id: invoice.id }));
  const payment = await deps.em
    .fork()
    .findOneOrFail(Payment, { idempotencyKey: `${invoice.id}:attempt-${attempt}` });
  let settlement: Settlement | null = null;
  if (outcome === 'SUCCEEDED') {
    if (input.paymentMethod && !customer.defaultPaymentMethod) {
      await adoptAsDefault(deps.orm, customer.id, input.paymentMethod);
    }
    settlement = await settleInvoicePaid(deps, invoice.id, payment.id);
  }
  return { status: outcome, invoice: await invoiceWithLines(deps.em, invoice.id), payment, settlement };
}

export interface ManualPaymentInput {
  invoiceId: string;
  /** the customer's own reference of the money (a bank transfer's, a cheque's number) */
  reference: string;
}

/**
 * Records money collected outside the payment provider (a bank transfer, a cheque) for what an
 * OPEN or UNCOLLECTIBLE invoice has left due, and settles the invoice as any payment does. The
 * payment is the invoice's next attempt, keyed `manual:<invoiceId>:<reference>`, so recording the
 * same reference again returns the payment recorded the first time and never applies it twice.
 */
export async function recordManualPayment(
  deps: PayInvoiceDeps,
  input: ManualPaymentInput,
): Promise<PayInvoiceResult> {
  const providerPaymentId = `manual:${input.invoiceId}:${input.reference}`;
  const earlier = await deps.em.findOne(Payment, { providerPaymentId }, { refresh: true });
  let paymentId = earlier?.id;
  if (!paymentId) {
    const invoice = await payableInvoice(deps.em, input.invoiceId);
    paymentId = await deps.em.transactional(async (tx) => {
      const locked = await lockInvoice(tx, invoice.id);
      if (!locked) throw notFound('invoice');
      if (!PAYABLE_INVOICE_STATUSES.includes(locked.status) || locked.amountPaid >= locked.amountDue) {
        throw notPayable(locked);
      }
      const [last] = await tx.execute<{ attempt: number | null }[]>(
        'select max(attempt)::int as attempt from payments where invoice_id = ?',
        [locked.id],
      );
      const attempt = (last?.attempt ?? 0) + 1;
      const payment = tx.create(Payment, {
        tenant: locked.tenant,
        invoice: locked,
        provider: 'manual',
        providerPaymentId,
        idempotencyKey: `${locked.id}:attempt-${attempt}`,
        attempt,
        status: 'PENDING',
        amount: locked.amountDue - locked.amountPaid,
        currency: locked.currency,
      });
      await tx.flush();
      await recordPayment(tx, locked.id, { paymentId: payment.id, amount: payment.amount });
      return payment.id;
    });
  }
  const payment = await deps.em.fork().findOneOrFail(Payment, { id: paymentId });
  const settlement = await settleInvoicePaid(deps, payment.invoice.id, payment.id);
  return {
    status: 'SUCCEEDED',
    invoice: await invoiceWithLines(deps.em, payment.invoice.id),
    payment,
    settlement,
  };
}
