/**
 * Billing entities: subscriptions, invoices with their lines, payments, credit notes, the
 * per-tenant document counters that number them, and the Stripe events received.
 * Amounts are minor units of `currency` in `bigint` columns, read as safe-integer numbers
 * (domain/billing/money.ts says why).
 */
import {
  BigIntType,
  Check,
  Entity,
  Enum,
  Index,
  ManyToOne,
  PrimaryKey,
  Property,
  Unique,
  type Opt,
} from '@mikro-orm/core';
import {
  BILLING_REASONS,
  COLLECTION_METHODS,
  CREDIT_NOTE_STATUSES,
  DECLINE_KINDS,
  DOCUMENT_SERIES,
  INVOICE_STATUSES,
  PAYMENT_STATUSES,
  SUBSCRIPTION_STATUSES,
  type BillingReason,
  type CollectionMethod,
  type CreditNoteStatus,
  type DeclineKind,
  type DocumentSeries,
  type InvoiceStatus,
  type PaymentStatus,
  type SubscriptionStatus,
} from '../../domain/billing/states';
import { INVOICE_LINE_KINDS, type InvoiceLineKind } from '../../domain/billing/invoices';
import type { BillingInterval } from '../../domain/billing/periods';
import type { DunningPolicy } from '../../domain/tenants';
import { Row } from './base';
import { Customer, Product } from './catalog';
import { Tenant } from './tenancy';

/** Minor units: `bigint` in the table, a safe-integer number in code. */
const money = () => new BigIntType('number');

/**
 * A customer's subscription to a product. Its price and interval are copied from the product
 * (or a price override) when it is created, so later catalog edits never reprice it.
 */
@Entity({ tableName: 'subscriptions' })
@Index({ properties: ['customer', 'status'] })
@Index({ properties: ['tenant', 'status'] })
@Index({ properties: ['status', 'currentPeriodEnd'] })
export class Subscription extends Row {
  static override readonly idKind = 'subscription' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  /** customers are only soft-deleted: their billing history stays */
  @ManyToOne({ entity: () => Customer })
  customer!: Customer;

  @ManyToOne({ entity: () => Product })
  product!: Product;

  @Enum({ items: () => SUBSCRIPTION_STATUSES, type: 'string' })
  status: SubscriptionStatus & Opt = 'PENDING';

  /** price per interval in minor units of `currency` (the product's, or the override given) */
  @Property({ type: money() })
  unitAmount!: number;

  @Property({ type: 'string', length: 3, columnType: 'char(3)' })
  currency!: string;

  @Property({ type: 'string', length: 10 })
  interval!: BillingInterval;

  @Property({ type: 'integer' })
  trialDays: number & Opt = 0;

  /** the first period's start: every later period is anchored on its day of month */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  billingAnchor?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  currentPeriodStart?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  currentPeriodEnd?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  trialEnd?: Date | null;

  @Property({ type: 'boolean' })
  cancelAtPeriodEnd: boolean & Opt = false;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  canceledAt?: Date | null;

  /** the slug the subscription's pod gets when activation creates it */
  @Property({ type: 'string', length: 40 })
  podSlug!: string;

  /** the pod this subscription pays for (set when activation creates it) */
  @Property({ type: 'string', length: 40, nullable: true, unique: true })
  podId?: string | null;

  @Property({ type: 'string', length: 200, nullable: true })
  activationWorkflowId?: string | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  deletedAt?: Date | null;
}

/**
 * DRAFT → OPEN → PAID | VOID | UNCOLLECTIBLE (UNCOLLECTIBLE → PAID | VOID). A draft has no
 * number; finalization takes the next one of the tenant's series for the year, gapless.
 * `(subscription, period_start)` is unique for period invoices, so a period is billed once even
 * when a renewal runs twice.
 */
@Entity({ tableName: 'invoices' })
@Unique({ properties: ['tenant', 'number'] })
@Unique({
  name: 'invoices_subscription_period_unique',
  expression:
    `create unique index "invoices_subscription_period_unique" on "invoices" ("subscription_id", "period_start") ` +
    `where "billing_reason" in ('SUBSCRIPTION_CREATE', 'SUBSCRIPTION_CYCLE')`,
})
@Unique({
  name: 'invoices_subscription_final_unique',
  expression:
    `create unique index "invoices_subscription_final_unique" on "invoices" ("subscription_id") ` +
    `where "billing_reason" = 'SUBSCRIPTION_FINAL'`,
})
@Index({ properties: ['status', 'dueDate'] })
@Index({ properties: ['tenant', 'customer'] })
@Check({ name: 'invoices_number_check', expression: "((status = 'DRAFT') = (number IS NULL))" })
export class Invoice extends Row {
  static override readonly idKind = 'invoice' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  /** customers are only soft-deleted: their billing history stays */
  @ManyToOne({ entity: () => Customer })
  customer!: Customer;

  @ManyToOne({ entity: () => Subscription, nullable: true })
  subscription?: Subscription | null;

  @Enum({ items: () => INVOICE_STATUSES, type: 'string' })
  status: InvoiceStatus & Opt = 'DRAFT';

  @Enum({ items: () => BILLING_REASONS, type: 'string' })
  billingReason!: BillingReason;

  @Enum({ items: () => COLLECTION_METHODS, type: 'string' })
  collectionMethod: CollectionMethod & Opt = 'AUTOMATIC';

  /** `INV-2026-000042`, assigned at finalization */
  @Property({ type: 'string', length: 40, nullable: true })
  number?: string | null;

  @Property({ type: 'string', length: 3, columnType: 'char(3)' })
  currency!: string;

  @Property({ type: 'integer' })
  taxRateBps: number & Opt = 0;

  @Property({ type: money() })
  subtotal: number & Opt = 0;

  @Property({ type: money() })
  tax: number & Opt = 0;

  @Property({ type: money() })
  total: number & Opt = 0;

  /** customer credit balance applied at finalization */
  @Property({ type: money() })
  creditApplied: number & Opt = 0;

  @Property({ type: money() })
  amountDue: number & Opt = 0;

  @Property({ type: money() })
  amountPaid: number & Opt = 0;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  periodStart?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  periodEnd?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  dueDate?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  finalizedAt?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  paidAt?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  voidedAt?: Date | null;

  /** the tenant's dunning policy as it was when dunning began: later edits never change it */
  @Property({ type: 'json', nullable: true })
  dunningPolicy?: DunningPolicy | null;

  /** a dispute was opened on its payment (Stripe `charge.dispute.created`) */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  disputedAt?: Date | null;
}

@Entity({ tableName: 'invoice_lines' })
@Index({ properties: ['invoice'] })
export class InvoiceLine extends Row {
  static override readonly idKind = 'invoiceLine' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @ManyToOne({ entity: () => Invoice, deleteRule: 'cascade' })
  invoice!: Invoice;

  @Enum({ items: () => INVOICE_LINE_KINDS, type: 'string' })
  kind!: InvoiceLineKind;

  @Property({ type: 'string', length: 500 })
  description!: string;

  @Property({ type: 'integer' })
  quantity!: number;

  @Property({ type: money() })
  unitAmount!: number;

  /** quantity × unit amount, or the prorated amount, rounded once */
  @Property({ type: money() })
  amount!: number;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  periodStart?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  periodEnd?: Date | null;

  /** order on the invoice */
  @Property({ type: 'integer' })
  position!: number;
}

/**
 * One attempt to collect an invoice. The idempotency key is the business key of the attempt
 * (`<invoiceId>:attempt-<n>`), sent to the provider as its idempotency key too, so a retried
 * charge is the same charge.
 */
@Entity({ tableName: 'payments' })
@Index({ properties: ['invoice'] })
export class Payment extends Row {
  static override readonly idKind = 'payment' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @ManyToOne({ entity: () => Invoice, deleteRule: 'cascade' })
  invoice!: Invoice;

  /** `simulated` or `stripe` */
  @Property({ type: 'string', length: 20 })
  provider!: string;

  @Property({ type: 'string', length: 255, nullable: true, unique: true })
  providerPaymentId?: string | null;

  @Property({ type: 'string', length: 200, unique: true })
  idempotencyKey!: string;

  @Property({ type: 'integer' })
  attempt!: number;

  @Enum({ items: () => PAYMENT_STATUSES, type: 'string' })
  status: PaymentStatus & Opt = 'PENDING';

  @Property({ type: money() })
  amount!: number;

  @Property({ type: 'string', length: 3, columnType: 'char(3)' })
  currency!: string;

  @Property({ type: 'string', length: 255, nullable: true })
  paymentMethod?: string | null;

  @Enum({ items: () => DECLINE_KINDS, type: 'string', nullable: true })
  declineKind?: DeclineKind | null;

  @Property({ type: 'string', length: 100, nullable: true })
  failureCode?: string | null;

  @Property({ type: 'string', length: 500, nullable: true })
  failureMessage?: string | null;

  /** the provider's `created` of the newest event applied: older events never move it back */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  providerUpdatedAt?: Date | null;
}

/** Money given back to a customer's credit balance (a downgrade, a goodwill credit), numbered. */
@Entity({ tableName: 'credit_notes' })
@Unique({ properties: ['tenant', 'number'] })
export class CreditNote extends Row {
  static override readonly idKind = 'creditNote' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  /** customers are only soft-deleted: their billing history stays */
  @ManyToOne({ entity: () => Customer })
  customer!: Customer;

  @ManyToOne({ entity: () => Subscription, nullable: true })
  subscription?: Subscription | null;

  @Property({ type: 'string', length: 40 })
  number!: string;

  @Property({ type: money() })
  amount!: number;

  @Property({ type: 'string', length: 3, columnType: 'char(3)' })
  currency!: string;

  @Property({ type: 'string', length: 500 })
  reason!: string;

  @Enum({ items: () => CREDIT_NOTE_STATUSES, type: 'string' })
  status: CreditNoteStatus & Opt = 'ISSUED';

  /** what the credit came from (e.g. `plan-change:<jobId>`): issued once per source */
  @Property({ type: 'string', length: 200, unique: true })
  sourceKey!: string;
}

/**
 * The last number taken in a tenant's series for a year. Incremented by one
 * `insert … on conflict do update … returning` inside the finalizing transaction: a rollback
 * returns the number, so numbers are gapless.
 */
@Entity({ tableName: 'document_counters' })
export class DocumentCounter {
  @ManyToOne({ entity: () => Tenant, primary: true, deleteRule: 'cascade' })
  tenant!: Tenant;

  @Enum({ items: () => DOCUMENT_SERIES, type: 'string', primary: true })
  series!: DocumentSeries;

  @PrimaryKey({ type: 'integer' })
  year!: number;

  @Property({ type: 'integer' })
  lastValue!: number;
}

/** A Stripe event as received: stored by its own id, so a redelivery is recognised. */
@Entity({ tableName: 'webhook_events' })
@Index({ properties: ['processedAt'] })
export class WebhookEvent {
  /** Stripe's event id (`evt_…`) */
  @PrimaryKey({ type: 'string', length: 255 })
  id!: string;

  @Property({ type: 'string', length: 20 })
  provider!: string;

  @Property({ type: 'string', length: 100 })
  type!: string;

  /** the event's `created` (Stripe's clock): events are applied in this order, not by id */
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  occurredAt!: Date;

  @Property({ type: 'json' })
  payload!: Record<string, unknown>;

  @Property({ type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' })
  receivedAt: Date & Opt = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  processedAt?: Date | null;
}

/**
 * One metered quantity reported by a tenant for one of its subscriptions (`bandwidth_gb`, …).
 * Stored once per tenant and idempotency key, so a retried batch never counts twice; rows are
 * written by one multi-row statement (services/usage.ts), never flushed one by one.
 */
@Entity({ tableName: 'usage_records' })
@Unique({ properties: ['tenant', 'idempotencyKey'] })
@Index({ properties: ['subscription', 'occurredAt'] })
// BRIN: usage arrives roughly in time order, so the daily rollup's day scan stays cheap to find
// and the index costs ingestion next to nothing.
@Index({
  name: 'usage_records_occurred_at_brin',
  expression: 'create index "usage_records_occurred_at_brin" on "usage_records" using brin ("occurred_at")',
})
export class UsageRecord extends Row {
  static override readonly idKind = 'usage' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @ManyToOne({ entity: () => Subscription })
  subscription!: Subscription;

  @Property({ type: 'string', length: 64 })
  metric!: string;

  @Property({ type: new BigIntType('number') })
  quantity!: number;

  /** when the usage happened (the caller's clock), which decides the period that bills it */
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  occurredAt!: Date;

  @Property({ type: 'string', length: 200 })
  idempotencyKey!: string;

  /**
   * The renewal invoice that closed the period this usage fell in (services/usage.ts
   * `freezeUsage`), set in the transaction that finalized it; null while its period is open.
   */
  @ManyToOne({ entity: () => Invoice, nullable: true })
  invoice?: Invoice | null;
}

/**
 * A subscription's usage of one metric on one UTC day: the sum of its usage records, kept by the
 * daily rollup (services/usage-rollup.ts). Once an invoice has closed the whole day (`invoice`
 * set) the row never changes again; a day cut by a period boundary stays open until the next
 * renewal closes it.
 */
@Entity({ tableName: 'usage_daily' })
@Unique({ properties: ['subscription', 'metric', 'day'] })
export class UsageDaily extends Row {
  static override readonly idKind = 'usageDaily' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @ManyToOne({ entity: () => Subscription })
  subscription!: Subscription;

  @Property({ type: 'string', length: 64 })
  metric!: string;

  /** the UTC day, `YYYY-MM-DD` */
  @Property({ type: 'date' })
  day!: string;

  @Property({ type: new BigIntType('number') })
  quantity!: number;

  /** the invoice after which the day can no longer change: frozen when set */
  @ManyToOne({ entity: () => Invoice, nullable: true })
  invoice?: Invoice | null;
}
