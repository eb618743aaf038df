/**
 * Every change to an invoice: drafting, finalization (number, due date, credit balance), voiding,
 * writing off, and recording a payment. Each runs in one transaction; routes, activities and the
 * CLI call these and never write invoices themselves. The arithmetic is the pure core's
 * (domain/billing); this module decides when it runs and stores its results.
 *
 * Lock order, the same everywhere so concurrent changes queue instead of deadlocking: the invoice,
 * then its payment, then the customer, then the tenant's document counter.
 */
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import {
  Invoice,
  InvoiceLine,
  Payment,
  Subscription,
  Tenant,
  TenantBillingSettings,
  type CreditNote,
} from '../db/entities';
import { SOFT_DELETED, type EntityManager } from '../db/orm';
import { lockCustomer, lockInvoice, nextDocumentNumber } from '../db/repositories/billing';
import {
  applyCreditBalance,
  assertValidDate,
  billingError,
  invoiceDueDate,
  invoiceLine,
  invoiceTotals,
  sumMinorUnits,
  type InvoiceLineDraft,
  type InvoiceLineInput,
  type MinorUnits,
} from '../domain/billing';
import {
  PAYABLE_INVOICE_STATUSES,
  canMoveInvoice,
  type BillingReason,
  type InvoiceStatus,
} from '../domain/billing/states';
import { AppError, conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import { issueCreditNoteIn } from './credit-notes';

const PERIOD_UNIQUE = 'invoices_subscription_period_unique';
/** Invoices billing a subscription period: unique per (subscription, period start). */
const PERIOD_REASONS: readonly BillingReason[] = ['SUBSCRIPTION_CREATE', 'SUBSCRIPTION_CYCLE'];
const DESCRIPTION_MAX = 500;
/** `invoice_lines.quantity` is a PostgreSQL `integer`. */
const QUANTITY_MAX = 2_147_483_647;

/** An invoice and its lines in their order on the invoice. */
export interface InvoiceWithLines {
  invoice: Invoice;
  lines: InvoiceLine[];
}

async function linesOf(tx: EntityManager, invoice: Invoice): Promise<InvoiceWithLines> {
  const lines = await tx.find(InvoiceLine, { invoice: invoice.id }, { orderBy: { position: 'asc' } });
  return { invoice, lines };
}

/** An invoice of the caller (the tenant filter hides other tenants'), locked; else 404. */
async function requireInvoice(tx: EntityManager, invoiceId: string): Promise<Invoice> {
  const invoice = await lockInvoice(tx, invoiceId);
  if (!invoice) throw notFound('invoice');
  return invoice;
}

/** The tenant's tax rate and net terms; onboarding creates them before any invoice can exist. */
async function billingSettings(tx: EntityManager, tenantId: string): Promise<TenantBillingSettings> {
  const settings = await tx.findOne(TenantBillingSettings, { tenant: tenantId });
  if (!settings) {
    throw conflict('the tenant has no billing settings yet: its onboarding has not finished');
  }
  return settings;
}

function unknownCustomer(): AppError {
  return new AppError('unprocessable', 'customer_id does not name a customer of this tenant', {
    errors: [{ field: 'customer_id', message: 'unknown customer' }],
  });
}

export interface CreateDraftInvoiceInput {
  tenantId: string;
  customerId: string;
  subscriptionId?: string | null | undefined;
  billingReason: BillingReason;
  /** the tenant's currency (undefined takes it): credit balances are held in it, so no other is accepted */
  currency?: string | undefined;
  lines: readonly InvoiceLineInput[];
  periodStart?: Date | null | undefined;
  periodEnd?: Date | null | undefined;
}

/** Lines as the pure core builds them, plus the limits of their columns. */
function draftLines(lines: readonly InvoiceLineInput[]): InvoiceLineDraft[] {
  if (lines.length === 0) {
    throw billingError('validation_failed', 'invalid_line', 'an invoice needs at least one line');
  }
  return lines.map((input) => {
    const description = input.description.trim();
    if (description.length === 0 || description.length > DESCRIPTION_MAX) {
      throw billingError(
        'validation_failed',
        'invalid_line',
        `a line description is 1–${DESCRIPTION_MAX} characters`,
      );
    }
    if (input.quantity > QUANTITY_MAX) {
      throw billingError('validation_failed', 'invalid_line', `a line quantity is at most ${QUANTITY_MAX}`);
    }
    return invoiceLine({ ...input, description });
  });
}

/** What each billing reason requires of the subscription and period. */
function checkReason(input: CreateDraftInvoiceInput): void {
  const needsSubscription = input.billingReason !== 'MANUAL';
  if (needsSubscription && !input.subscriptionId) {
    throw new AppError('validation_failed', `a ${input.billingReason} invoice names its subscription`);
  }
  if (!PERIOD_REASONS.includes(input.billingReason)) return;
  if (!input.periodStart || !input.periodEnd) {
    throw billingError(
      'validation_failed',
      'invalid_period',
      'a period invoice names its period start and end',
    );
  }
  assertValidDate(input.periodStart, 'period start');
  assertValidDate(input.periodEnd, 'period end');
  if (input.periodEnd.getTime() <= input.periodStart.getTime()) {
    throw billingError('validation_failed', 'invalid_period', 'a period must end after it starts');
  }
}

/** The period invoice already drafted for this subscription and period start, if any. */
async function periodInvoice(
  tx: EntityManager,
  input: CreateDraftInvoiceInput,
): Promise<InvoiceWithLines | null> {
  if (!PERIOD_REASONS.includes(input.billingReason) || !input.subscriptionId || !input.periodStart)
    return null;
  const invoice = await tx.findOne(
    Invoice,
    {
      tenant: input.tenantId,
      subscription: input.subscriptionId,
      periodStart: input.periodStart,
      billingReason: { $in: [...PERIOD_REASONS] },
    },
    { refresh: true },
  );
  return invoice ? linesOf(tx, invoice) : null;
}

/** The subscription named, which must be the customer's and bill in the invoice's currency. */
async function checkSubscription(
  tx: EntityManager,
  input: CreateDraftInvoiceInput,
  currency: string,
): Promise<Subscription | null> {
  if (!input.subscriptionId) return null;
  const subscription = isId('subscription', input.subscriptionId)
    ? await tx.findOne(
        Subscription,
        { id: input.subscriptionId, tenant: input.tenantId, customer: input.customerId },
        { filters: { [SOFT_DELETED]: false } },
      )
    : null;
  if (!subscription) {
    throw new AppError('unprocessable', 'the subscription is not one of this customer', {
      errors: [{ field: 'subscription_id', message: 'unknown subscription' }],
    });
  }
  if (subscription.currency !== currency) {
    throw billingError(
      'unprocessable',
      'currency_mismatch',
      `the subscription bills in ${subscription.currency}`,
    );
  }
  return subscription;
}

async function insertDraft(
  tx: EntityManager,
  input: CreateDraftInvoiceInput,
  lines: InvoiceLineDraft[],
): Promise<InvoiceWithLines> {
  const existing = await periodInvoice(tx, input);
  if (existing) return existing;
  const customer = await lockCustomer(tx, input.tenantId, input.customerId, { live: true });
  if (!customer) throw unknownCustomer();
  const tenant = await tx.findOneOrFail(Tenant, { id: input.tenantId });
  const currency = input.currency ?? tenant.currency;
  if (currency !== tenant.currency) {
    throw billingError(
      'unprocessable',
      'currency_mismatch',
      `this tenant invoices in ${tenant.currency}, where its customers' credit balances are held`,
    );
  }
  const subscription = await checkSubscription(tx, input, currency);
  const { taxRateBps } = await billingSettings(tx, input.tenantId);
  const totals = invoiceTotals(lines, taxRateBps);
  const invoice = tx.create(Invoice, {
    tenant: input.tenantId,
    customer,
    subscription,
    billingReason: input.billingReason,
    collectionMethod: customer.collectionMethod,
    currency,
    taxRateBps,
    ...totals,
    amountDue: totals.total,
    periodStart: input.periodStart ?? null,
    periodEnd: input.periodEnd ?? null,
  });
  const rows = lines.map((line, position) =>
    tx.create(InvoiceLine, {
      tenant: input.tenantId,
      invoice,
      kind: line.kind,
      description: line.description,
      quantity: line.quantity,
      unitAmount: line.unitAmount,
      amount: line.amount,
      periodStart: line.period?.start ?? null,
      periodEnd: line.period?.end ?? null,
      position,
    }),
  );
  await tx.flush();
  return { invoice, lines: rows };
}

function isPeriodTaken(err: unknown): boolean {
  return (
    err instanceof UniqueConstraintViolationException &&
    (err as { constraint?: unknown }).constraint === PERIOD_UNIQUE
  );
}

/**
 * Drafts an invoice with its lines, totals from the pure core at the tenant's tax rate. A period
 * invoice (SUBSCRIPTION_CREATE/CYCLE) is drafted once per subscription and period start: a second
 * call — a renewal run twice, even concurrently — gets the existing invoice, whatever its lines.
 * The customer must be live and of the tenant (else 422 naming `customer_id`).
 */
export async function createDraftInvoice(
  em: EntityManager,
  input: CreateDraftInvoiceInput,
): Promise<InvoiceWithLines> {
  checkReason(input);
  const lines = draftLines(input.lines);
  try {
    return await em.transactional((tx) => insertDraft(tx, input, lines));
  } catch (err) {
    // A concurrent call drafted the period first; its transaction has committed, so it is read.
    if (!isPeriodTaken(err)) throw err;
    const existing = await em.transactional((tx) => periodInvoice(tx, input));
    if (!existing) throw err;
    return existing;
  }
}

/**
 * DRAFT → OPEN: takes the next INVOICE number of the tenant for the year, sets the due date by the
 * tenant's net terms and spends the customer's credit balance on the total. All in the locking
 * transaction, so a rollback returns the number (gapless) and the credit together. What is left
 * due being 0 (credit covered it, or the total gave money back) makes the invoice PAID at once.
 */
async function finalizeDraft(tx: EntityManager, invoice: Invoice, now: Date): Promise<void> {
  const tenantId = invoice.tenant.id;
  const customer = await lockCustomer(tx, tenantId, invoice.customer.id, { live: false });
  if (!customer) throw new Error(`invoice ${invoice.id} refers to a customer that does not exist`);
  const { netTermsDays } = await billingSettings(tx, tenantId);
  const credit = applyCreditBalance(invoice.total, customer.creditBalance);
  // Last before the writes: the counter row stays locked until commit, so it is taken as late as possible.
  invoice.number = await nextDocumentNumber(tx, tenantId, 'INVOICE', now.getUTCFullYear());
  invoice.status = 'OPEN';
  invoice.finalizedAt = now;
  // A subscription's invoice charged automatically is due when it is issued (the charge is its
  // payment, and dunning counts from it), as Stripe's `charge_automatically` invoices are; net
  // terms are for invoices the customer pays themselves, one-off invoices included.
  const chargedAtIssue = invoice.collectionMethod === 'AUTOMATIC' && invoice.billingReason !== 'MANUAL';
  invoice.dueDate = chargedAtIssue ? now : invoiceDueDate(now, netTermsDays);
  invoice.creditApplied = credit.appliedCredit;
  invoice.amountDue = credit.amountDue;
  customer.creditBalance = credit.creditBalanceAfter;
  if (credit.amountDue === 0) {
    invoice.status = 'PAID';
    invoice.paidAt = now;
  }
  await tx.flush();
}

/**
 * Finalizes a draft (see `finalizeDraft`). Idempotent: an invoice that already has a number is
 * returned unchanged. The invoice row is locked first, so concurrent finalizations of one invoice
 * queue and all but the first find it numbered.
 */
export async function finalizeInvoice(
  em: EntityManager,
  invoiceId: string,
  now: Date,
): Promise<InvoiceWithLines> {
  assertValidDate(now, 'finalization time');
  return em.transactional(async (tx) => {
    const invoice = await requireInvoice(tx, invoiceId);
    if (invoice.status === 'DRAFT') await finalizeDraft(tx, invoice, now);
    return linesOf(tx, invoice);
  });
}

/** Refuses a move the invoice state machine does not allow, saying why in the caller's terms. */
function ensureMove(invoice: Invoice, to: InvoiceStatus): void {
  if (canMoveInvoice(invoice.status, to)) return;
  const why =
    invoice.status === 'DRAFT'
      ? 'a draft carries no number and is not an issued invoice; only issued invoices are voided or written off'
      : `the invoice is ${invoice.status}`;
  throw conflict(`cannot move invoice ${invoice.id} to ${to}: ${why}`, { invoice_status: invoice.status });
}

/**
 * OPEN | UNCOLLECTIBLE → VOID. The invoice keeps its number and figures as issued; the credit
 * balance it spent goes back to the customer. Refused (409) for a DRAFT — drafts carry no number
 * (the table ties a number to every non-draft status), so voiding one would burn a number on a
 * document never issued — for a PAID invoice, and for one partly paid (the payment is refunded or
 * credited first, by an explicit step). Voiding a VOID invoice returns it unchanged.
 */
export async function voidInvoice(
  em: EntityManager,
  invoiceId: string,
  now: Date = new Date(),
): Promise<InvoiceWithLines> {
  assertValidDate(now, 'void time');
  return em.transactional(async (tx) => {
    const invoice = await requireInvoice(tx, invoiceId);
    if (invoice.status === 'VOID') return linesOf(tx, invoice);
    ensureMove(invoice, 'VOID');
    if (invoice.amountPaid > 0) {
      throw conflict(
        `invoice ${invoice.number} is partly paid (${invoice.amountPaid} of ${invoice.amountDue}); refund or credit the payment before voiding it`,
        { invoice_status: invoice.status },
      );
    }
    if (invoice.creditApplied > 0) {
      const customer = await lockCustomer(tx, invoice.tenant.id, invoice.customer.id, { live: false });
      if (!customer) throw new Error(`invoice ${invoice.id} refers to a customer that does not exist`);
      customer.creditBalance = sumMinorUnits([customer.creditBalance, invoice.creditApplied]);
    }
    invoice.status = 'VOID';
    invoice.voidedAt = now;
    await tx.flush();
    return linesOf(tx, invoice);
  });
}

/** OPEN → UNCOLLECTIBLE (written off; it can still be paid or voided). Idempotent; others 409. */
export async function markUncollectible(em: EntityManager, invoiceId: string): Promise<InvoiceWithLines> {
  return em.transactional(async (tx) => {
    const invoice = await requireInvoice(tx, invoiceId);
    if (invoice.status !== 'UNCOLLECTIBLE') {
      ensureMove(invoice, 'UNCOLLECTIBLE');
      invoice.status = 'UNCOLLECTIBLE';
      await tx.flush();
    }
    return linesOf(tx, invoice);
  });
}

export interface RecordPaymentInput {
  /** the payment row (`pay_…`) of this invoice whose collection succeeded */
  paymentId: string;
  /** what the provider collected, in minor units of the invoice's currency */
  amount: MinorUnits;
  /** when it was collected; now when not given */
  at?: Date | undefined;
}

export interface PaymentApplication {
  invoice: Invoice;
  payment: Payment;
  /** the part of the payment applied to the invoice (0 for a duplicate) */
  applied: MinorUnits;
  /** the credit note for a part the invoice could not take (overpaid, or already PAID/VOID) */
  creditNote: CreditNote | null;
  /** the payment had been recorded before: nothing changed */
  duplicate: boolean;
}

async function lockPayment(tx: EntityManager, invoice: Invoice, paymentId: string): Promise<Payment> {
  const payment = isId('payment', paymentId)
    ? await tx.findOne(
        Payment,
        { id: paymentId, invoice: invoice.id },
        { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
      )
    : null;
  if (!payment) throw notFound('payment');
  return payment;
}

function checkPayment(invoice: Invoice, payment: Payment, amount: MinorUnits): void {
  if (!Number.isSafeInteger(amount) || amount <= 0) {
    throw billingError(
      'validation_failed',
      'amount_out_of_range',
      'a payment amount is a positive safe integer',
    );
  }
  if (payment.currency !== invoice.currency) {
    throw billingError(
      'unprocessable',
      'currency_mismatch',
      `the payment is in ${payment.currency}, the invoice in ${invoice.currency}`,
    );
  }
  if (invoice.status === 'DRAFT') throw conflict('a draft invoice cannot be paid; finalize it first');
}

/** Adds what the invoice can take of `amount` to its paid amount (PAID once covered); returns that part. */
function applyToInvoice(invoice: Invoice, amount: MinorUnits, at: Date): MinorUnits {
  if (!PAYABLE_INVOICE_STATUSES.includes(invoice.status)) return 0;
  const applied = Math.min(amount, invoice.amountDue - invoice.amountPaid);
  invoice.amountPaid = sumMinorUnits([invoice.amountPaid, applied]);
  if (invoice.amountPaid >= invoice.amountDue) {
    invoice.status = 'PAID';
    invoice.paidAt = at;
  }
  return applied;
}

/** A payment's excess as a credit note to the customer's balance, keyed by the payment. */
function creditExcess(
  tx: EntityManager,
  invoice: Invoice,
  payment: Payment,
  excess: MinorUnits,
  at: Date,
): Promise<CreditNote> {
  return issueCreditNoteIn(tx, {
    tenantId: invoice.tenant.id,
    customerId: invoice.customer.id,
    subscriptionId: invoice.subscription?.id ?? null,
    amount: excess,
    currency: invoice.currency,
    reason: `Payment ${payment.id} exceeded what invoice ${invoice.number ?? invoice.id} had due`,
    sourceKey: `payment-excess:${payment.id}`,
    issuedAt: at,
  });
}

/**
 * Records a successful payment of an invoice: moves the payment row to SUCCEEDED and adds the amount
 * to what the invoice has been paid; fully paid → PAID. The payment's move to SUCCEEDED, in the
 * same transaction, is the marker that it was applied: a payment already SUCCEEDED (or REFUNDED)
 * changes nothing, so a redelivered webhook or a retried activity never applies it twice — which
 * is why nothing else may move a payment to SUCCEEDED. Money the invoice cannot take (more than is
 * left due, or an invoice already PAID or VOID) is never dropped: it becomes a credit note to the
 * customer's balance, keyed by the payment.
 */
export async function recordPayment(
  em: EntityManager,
  invoiceId: string,
  input: RecordPaymentInput,
): Promise<PaymentApplication> {
  const at = assertValidDate(input.at ?? new Date(), 'payment time');
  return em.transactional(async (tx) => {
    const invoice = await requireInvoice(tx, invoiceId);
    const payment = await lockPayment(tx, invoice, input.paymentId);
    if (payment.status === 'SUCCEEDED' || payment.status === 'REFUNDED') {
      return { invoice, payment, applied: 0, creditNote: null, duplicate: true };
    }
    checkPayment(invoice, payment, input.amount);
    payment.status = 'SUCCEEDED';
    // the row is brought in line with what the provider reports it collected
    payment.amount = input.amount;
    const applied = applyToInvoice(invoice, input.amount, at);
    const excess = input.amount - applied;
    const creditNote = excess > 0 ? await creditExcess(tx, invoice, payment, excess, at) : null;
    await tx.flush();
    return { invoice, payment, applied, creditNote, duplicate: false };
  });
}
