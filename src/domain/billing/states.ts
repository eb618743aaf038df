/**
 * Billing states and the moves between them. Pure data and predicates: services refuse a move
 * these call illegal, and webhooks use the payment order to never move a payment backwards.
 */

export const SUBSCRIPTION_STATUSES = [
  'PENDING',
  'TRIALING',
  'ACTIVE',
  'PAST_DUE',
  'SUSPENDED',
  'CANCELED',
] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

const SUBSCRIPTION_MOVES: Record<SubscriptionStatus, readonly SubscriptionStatus[]> = {
  PENDING: ['TRIALING', 'ACTIVE', 'CANCELED'],
  TRIALING: ['ACTIVE', 'PAST_DUE', 'CANCELED'],
  ACTIVE: ['PAST_DUE', 'CANCELED'],
  PAST_DUE: ['ACTIVE', 'SUSPENDED', 'CANCELED'],
  SUSPENDED: ['ACTIVE', 'CANCELED'],
  CANCELED: [],
};

export function canMoveSubscription(from: SubscriptionStatus, to: SubscriptionStatus): boolean {
  return SUBSCRIPTION_MOVES[from].includes(to);
}

export const INVOICE_STATUSES = ['DRAFT', 'OPEN', 'PAID', 'VOID', 'UNCOLLECTIBLE'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

const INVOICE_MOVES: Record<InvoiceStatus, readonly InvoiceStatus[]> = {
  DRAFT: ['OPEN'],
  OPEN: ['PAID', 'VOID', 'UNCOLLECTIBLE'],
  UNCOLLECTIBLE: ['PAID', 'VOID'],
  PAID: [],
  VOID: [],
};

/** Drafts are finalized, never voided or deleted: a mistake in a draft is edited, one in an issued invoice voided. */
export function canMoveInvoice(from: InvoiceStatus, to: InvoiceStatus): boolean {
  return INVOICE_MOVES[from].includes(to);
}

/** Invoices that can still be paid. */
export const PAYABLE_INVOICE_STATUSES: readonly InvoiceStatus[] = ['OPEN', 'UNCOLLECTIBLE'];

/** Why an invoice exists (Stripe's `billing_reason` names). */
export const BILLING_REASONS = [
  'SUBSCRIPTION_CREATE',
  'SUBSCRIPTION_CYCLE',
  'SUBSCRIPTION_UPDATE',
  /** a subscription's last invoice, when it ends: its unbilled usage overage */
  'SUBSCRIPTION_FINAL',
  'MANUAL',
] as const;
export type BillingReason = (typeof BILLING_REASONS)[number];

export const COLLECTION_METHODS = ['AUTOMATIC', 'MANUAL'] as const;
export type CollectionMethod = (typeof COLLECTION_METHODS)[number];

export const PAYMENT_STATUSES = ['PENDING', 'REQUIRES_ACTION', 'FAILED', 'SUCCEEDED', 'REFUNDED'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/**
 * How far a payment has come. A status only ever moves to a higher rank: a `payment_failed`
 * delivered after `succeeded` changes nothing, a refund follows only a success.
 */
const PAYMENT_RANK: Record<PaymentStatus, number> = {
  PENDING: 0,
  REQUIRES_ACTION: 1,
  FAILED: 2,
  SUCCEEDED: 3,
  REFUNDED: 4,
};

export function paymentMovesForward(from: PaymentStatus, to: PaymentStatus): boolean {
  if (to === 'REFUNDED') return from === 'SUCCEEDED';
  return PAYMENT_RANK[to] > PAYMENT_RANK[from];
}

/** A hard decline (stolen card, closed account) is not retried automatically; a soft one is. */
export const DECLINE_KINDS = ['HARD', 'SOFT'] as const;
export type DeclineKind = (typeof DECLINE_KINDS)[number];

export const CREDIT_NOTE_STATUSES = ['ISSUED', 'VOID'] as const;
export type CreditNoteStatus = (typeof CREDIT_NOTE_STATUSES)[number];

/** Numbered document series; each has its own gapless counter per tenant and year. */
export const DOCUMENT_SERIES = ['INVOICE', 'CREDIT_NOTE'] as const;
export type DocumentSeries = (typeof DOCUMENT_SERIES)[number];

const SERIES_PREFIX: Record<DocumentSeries, string> = { INVOICE: 'INV', CREDIT_NOTE: 'CN' };

/** `INV-2026-000042`: series, year and the counter's value, zero-padded so numbers sort. */
export function documentNumber(series: DocumentSeries, year: number, value: number): string {
  return `${SERIES_PREFIX[series]}-${year}-${String(value).padStart(6, '0')}`;
}
