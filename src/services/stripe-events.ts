/**
 * Stripe's side of billing: the events its webhook delivers, stored once and applied by
 * `processStripeEvent`, and the SetupIntents through which a customer saves a card.
 *
 * Stripe delivers at least once and in no particular order
 * (https://docs.stripe.com/webhooks#handle-duplicate-events,
 * https://docs.stripe.com/webhooks#event-ordering). So an event is stored by its id (a redelivery
 * is recognised), processed by a workflow whose id is the event's (a second start is refused), and
 * applied by comparing it with the state we hold: a payment only moves forward
 * (`paymentMovesForward`), a payment already applied is not applied again (`recordPayment`), and
 * events are ordered by their `created` — Stripe's clock — never by their ids.
 */
import { ensureProviderCustomer } from './collection';
import { LockMode } from '@mikro-orm/core';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type Stripe from 'stripe';
import type { Config } from '../config';
import { Customer, Invoice, Payment, WebhookEvent } from '../db/entities';
import { systemEm, type EntityManager, type MikroORM } from '../db/orm';
import { paymentMovesForward } from '../domain/billing/states';
import { AppError, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import { ProviderError } from '../providers/errors';
import { classifyDecline, type PaymentProvider, type SetupIntentResult } from '../providers/payments';
import { toStripeAmount } from '../providers/stripe';
import type { ProcessStripeEventInput } from '../workflows/messages/billing';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../workflows/shared';
import type { processStripeEvent } from '../workflows/stripe-events';
import { recordPayment } from './invoices';
import { raiseOpsEvent, type OpsEventInput } from './pod-bookkeeping';

/** A saved payment method id, as `PATCH /customers/:id` accepts it. */
const PAYMENT_METHOD_ID = /^pm_[A-Za-z0-9_]{1,250}$/;

/** The parts of an event this module reads; the rest stays in the stored payload. */
export interface StoredStripeEvent {
  id: string;
  type: string;
  occurredAt: Date;
  object: Record<string, unknown>;
  processed: boolean;
}

/** An event the webhook can store: Stripe's id, type and `created` (seconds) are all there. */
export function isStorableEvent(event: Stripe.Event): boolean {
  return (
    typeof event.id === 'string' &&
    /^evt_\w{1,250}$/.test(event.id) &&
    typeof event.type === 'string' &&
    event.type.length > 0 &&
    event.type.length <= 100 &&
    Number.isSafeInteger(event.created) &&
    typeof event.data?.object === 'object'
  );
}

/**
 * Stores a verified event once (`insert … on conflict (id) do nothing`): a redelivery, even a
 * concurrent one, finds the first row. Returns whether the event has been processed already.
 */
export async function recordStripeEvent(
  em: EntityManager,
  event: Stripe.Event,
): Promise<{ processed: boolean }> {
  await em.execute(
    `insert into webhook_events (id, provider, type, occurred_at, payload)
     values (?, 'stripe', ?, ?, ?::jsonb)
     on conflict (id) do nothing`,
    [event.id, event.type, new Date(event.created * 1000), JSON.stringify(event)],
    'run',
  );
  const [row] = await em.execute<{ processed_at: Date | null }[]>(
    'select processed_at from webhook_events where id = ?',
    [event.id],
  );
  return { processed: Boolean(row?.processed_at) };
}

/**
 * Starts `processStripeEvent` for a stored event. The workflow id is the event's and a second start
 * is refused (REJECT_DUPLICATE), which is the dedupe of concurrent redeliveries; a workflow already
 * started is success (`started: false`). An engine that cannot be reached is 503, so Stripe delivers again later.
 */
export async function startStripeEventProcessing(
  deps: { temporal: Client; config: Config },
  event: Pick<Stripe.Event, 'id' | 'type'>,
): Promise<{ started: boolean }> {
  const args: [ProcessStripeEventInput] = [{ eventId: event.id }];
  try {
    await deps.temporal.withDeadline(Date.now() + deps.config.TEMPORAL_CALL_TIMEOUT_MS, () =>
      deps.temporal.workflow.start<typeof processStripeEvent>('processStripeEvent', {
        workflowId: workflowIds.stripeEvent(event.id),
        taskQueue: TASK_QUEUES.billing,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        args,
        typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'RECEIVED' }],
        staticSummary: `Stripe event ${event.id} (${event.type})`,
        staticDetails:
          'Applies one stored Stripe event to our payments, invoices and customers; what it did is in the current details and the `state` query.',
      }),
    );
    return { started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { started: false };
    throw new AppError(
      'unavailable',
      'the workflow engine could not be reached; the event is stored and is processed when Stripe delivers it again',
      {},
      { cause: err },
    );
  }
}

/** The stored event, or null for an id never stored. */
export async function loadStripeEvent(orm: MikroORM, eventId: string): Promise<StoredStripeEvent | null> {
  const row = await systemEm(orm).findOne(WebhookEvent, { id: eventId });
  if (!row) return null;
  const data = (row.payload as { data?: { object?: unknown } }).data;
  const object = typeof data?.object === 'object' && data.object !== null ? data.object : {};
  return {
    id: row.id,
    type: row.type,
    occurredAt: row.occurredAt,
    object: object as Record<string, unknown>,
    processed: Boolean(row.processedAt),
  };
}

/** Sets `processed_at` once; a repeat keeps the first time. */
export async function markStripeEventProcessed(orm: MikroORM, eventId: string): Promise<void> {
  await systemEm(orm).nativeUpdate(
    WebhookEvent,
    { id: eventId, processedAt: null },
    { processedAt: new Date() },
  );
}

export type StripeEventResult =
  /** the event changed our state */
  | 'applied'
  /** it had been applied before (another delivery, or our own answer to the charge) */
  | 'duplicate'
  /** our state is newer than the event: nothing moves back */
  | 'stale'
  /** it names nothing of ours */
  | 'unmatched'
  /** a type we do not act on */
  | 'ignored'
  /** applying it would be wrong (amounts or currencies disagree): an ops event says why */
  | 'anomaly';

export interface StripeEventOutcome {
  result: StripeEventResult;
  detail: string;
  tenantId: string | null;
  customerId: string | null;
  invoiceId: string | null;
  paymentId: string | null;
  /** the invoice is PAID after this event: settle it (settlement is repeatable) */
  settle: boolean;
}

/** Thrown for an event that must wait for an earlier one (a refund before its success): retried. */
export class StripeEventNotReady extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StripeEventNotReady';
  }
}

function outcome(
  result: StripeEventResult,
  detail: string,
  refs: { payment?: Payment | null; customer?: Customer | null; settle?: boolean } = {},
): StripeEventOutcome {
  const { payment, customer } = refs;
  return {
    result,
    detail,
    tenantId: payment?.tenant.id ?? customer?.tenant.id ?? null,
    customerId: customer?.id ?? null,
    invoiceId: payment?.invoice.id ?? null,
    paymentId: payment?.id ?? null,
    settle: refs.settle ?? false,
  };
}

/** An id field Stripe may send as the id or as the expanded object. */
function idOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string') {
    return (value as { id: string }).id;
  }
  return null;
}

type PaymentMatch = { payment: Payment } | { boundElsewhere: Payment } | null;

/**
 * Our payment for a PaymentIntent: by the intent's id, else by the metadata every charge we make
 * carries (`invoice_id` and `attempt`, which are the payment's key; `tenant_id` must agree). The
 * second finds a payment whose charge answer was lost before its id was recorded. A payment bound to
 * another intent is not this one: Stripe collected money we did not ask for under that key.
 */
async function paymentOfIntent(em: EntityManager, intent: Stripe.PaymentIntent): Promise<PaymentMatch> {
  const byId = await em.findOne(Payment, { providerPaymentId: intent.id }, { refresh: true });
  if (byId) return { payment: byId };
  const metadata = intent.metadata ?? {};
  const invoiceId = metadata.invoice_id;
  const attempt = metadata.attempt;
  if (!invoiceId || !isId('invoice', invoiceId) || !attempt || !/^\d{1,6}$/.test(attempt)) return null;
  const byKey = await em.findOne(
    Payment,
    { idempotencyKey: `${invoiceId}:attempt-${Number(attempt)}` },
    { refresh: true },
  );
  if (!byKey || (metadata.tenant_id && metadata.tenant_id !== byKey.tenant.id)) return null;
  if (byKey.providerPaymentId && byKey.providerPaymentId !== intent.id) return { boundElsewhere: byKey };
  return { payment: byKey };
}

async function anomaly(
  em: EntityManager,
  eventId: string,
  payment: Payment,
  why: string,
): Promise<StripeEventOutcome> {
  await raiseOpsEvent(em, {
    severity: 'HIGH',
    kind: 'stripe_event_anomaly',
    tenantId: payment.tenant.id,
    podId: null,
    jobId: null,
    message: `Stripe event ${eventId} for payment ${payment.id} (invoice ${payment.invoice.id}) was not applied: ${why}`,
    details: { eventId, paymentId: payment.id, invoiceId: payment.invoice.id },
    dedupeKey: `stripe-event:${eventId}`,
  });
  return outcome('anomaly', why, { payment });
}

/**
 * What Stripe collected, in our minor units. Conversion to Stripe's units is linear
 * (`toStripeAmount`), so the amount we asked for gives the factor back; null when the currency is
 * not the payment's or the amount does not convert exactly.
 */
function collectedAmount(payment: Payment, intent: Stripe.PaymentIntent): number | null {
  if (intent.currency?.toUpperCase() !== payment.currency) return null;
  const received = intent.amount_received;
  if (!Number.isSafeInteger(received) || received <= 0) return null;
  let asked: number;
  try {
    asked = toStripeAmount(payment.amount, payment.currency);
  } catch {
    return null;
  }
  const scaled = BigInt(received) * BigInt(payment.amount);
  if (scaled % BigInt(asked) !== 0n) return null;
  const ours = Number(scaled / BigInt(asked));
  return Number.isSafeInteger(ours) ? ours : null;
}

/** Records which intent the payment is and the newest provider time seen; never moves either back. */
async function bindIntent(em: EntityManager, payment: Payment, intentId: string, at: Date): Promise<void> {
  await em.execute(
    `update payments
        set provider = case when provider = 'pending' then 'stripe' else provider end,
            provider_payment_id = coalesce(provider_payment_id, ?),
            provider_updated_at = greatest(provider_updated_at, ?),
            updated_at = now()
      where id = ?`,
    [intentId, at, payment.id],
    'run',
  );
}

/**
 * `payment_intent.succeeded` (https://docs.stripe.com/api/events/types#event_types-payment_intent.succeeded):
 * the money is collected. Recorded through `recordPayment`, which applies a payment once whatever
 * the order or number of deliveries; a success outranks any failure, so it applies whenever it
 * arrives.
 */
async function intentSucceeded(orm: MikroORM, event: StoredStripeEvent): Promise<StripeEventOutcome> {
  const em = systemEm(orm);
  const intent = event.object as unknown as Stripe.PaymentIntent;
  const match = await paymentOfIntent(em, intent);
  if (!match) return outcome('unmatched', `PaymentIntent ${intent.id} is not one of our payments`);
  if ('boundElsewhere' in match) {
    return anomaly(
      em,
      event.id,
      match.boundElsewhere,
      `the payment is PaymentIntent ${match.boundElsewhere.providerPaymentId}, not ${intent.id}`,
    );
  }
  const { payment } = match;
  const amount = collectedAmount(payment, intent);
  if (amount === null) {
    return anomaly(
      em,
      event.id,
      payment,
      `Stripe collected ${intent.amount_received} ${intent.currency}, which is not ${payment.amount} ${payment.currency}`,
    );
  }
  await bindIntent(em, payment, intent.id, event.occurredAt);
  const applied = await recordPayment(em.fork(), payment.invoice.id, {
    paymentId: payment.id,
    amount,
    at: event.occurredAt,
  });
  return outcome(
    applied.duplicate ? 'duplicate' : 'applied',
    applied.duplicate
      ? `payment ${payment.id} was applied before`
      : `payment ${payment.id} applied: ${applied.applied} ${payment.currency}`,
    { payment, settle: applied.invoice.status === 'PAID' },
  );
}

/**
 * `payment_intent.payment_failed` (https://docs.stripe.com/api/events/types#event_types-payment_intent.payment_failed):
 * forward only — never over a success or a refund, and never over what a newer event said.
 */
async function intentFailed(orm: MikroORM, event: StoredStripeEvent): Promise<StripeEventOutcome> {
  const intent = event.object as unknown as Stripe.PaymentIntent;
  const match = await paymentOfIntent(systemEm(orm), intent);
  if (!match) return outcome('unmatched', `PaymentIntent ${intent.id} is not one of our payments`);
  if ('boundElsewhere' in match)
    return outcome('stale', `the payment is another PaymentIntent than ${intent.id}`, {
      payment: match.boundElsewhere,
    });
  return systemEm(orm).transactional(async (tx) => {
    const payment = await tx.findOneOrFail(
      Payment,
      { id: match.payment.id },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    if (payment.status === 'SUCCEEDED' || payment.status === 'REFUNDED') {
      return outcome('stale', `payment ${payment.id} is ${payment.status}; a failure never undoes it`, {
        payment,
      });
    }
    if (payment.providerUpdatedAt && event.occurredAt < payment.providerUpdatedAt) {
      return outcome('stale', `payment ${payment.id} holds a newer event`, { payment });
    }
    const error = intent.last_payment_error;
    const declineKind = classifyDecline({
      code: error?.code,
      declineCode: error?.decline_code,
      adviceCode: error?.advice_code,
      message: error?.message,
    });
    payment.status = 'FAILED';
    payment.declineKind = declineKind;
    payment.failureCode = (error?.decline_code || error?.code || 'payment_failed').slice(0, 100);
    payment.failureMessage = error?.message?.slice(0, 500) ?? null;
    payment.providerPaymentId ??= intent.id;
    if (payment.provider === 'pending') payment.provider = 'stripe';
    payment.providerUpdatedAt = event.occurredAt;
    return outcome(
      'applied',
      `payment ${payment.id} FAILED (${declineKind} decline, ${payment.failureCode})`,
      { payment },
    );
  });
}

/**
 * `setup_intent.succeeded` (https://docs.stripe.com/payments/save-and-reuse#web-fulfillment): the
 * customer confirmed a card, which is now attached to their Stripe customer and becomes their
 * default. A newer SetupIntent of the same customer already stored wins over this one (its own
 * workflow sets it), so a late delivery never brings back an older card.
 */
async function setupSucceeded(orm: MikroORM, event: StoredStripeEvent): Promise<StripeEventOutcome> {
  const intent = event.object as unknown as Stripe.SetupIntent;
  const providerCustomerId = idOf(intent.customer);
  const method = idOf(intent.payment_method);
  if (!providerCustomerId || !method)
    return outcome('ignored', 'the SetupIntent names no customer or payment method');
  if (!PAYMENT_METHOD_ID.test(method))
    return outcome('ignored', `${method} is not a payment method id we can charge`);
  return systemEm(orm).transactional(async (tx) => {
    const customer = await tx.findOne(
      Customer,
      { providerCustomerId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    if (!customer)
      return outcome('unmatched', `Stripe customer ${providerCustomerId} is none of our live customers`);
    const [newer] = await tx.execute<{ id: string }[]>(
      `select id from webhook_events
        where type = 'setup_intent.succeeded' and id <> ? and occurred_at > ?
          and payload->'data'->'object'->>'customer' = ?
        limit 1`,
      [event.id, event.occurredAt, providerCustomerId],
    );
    if (newer) return outcome('stale', `event ${newer.id} saved a newer card`, { customer });
    if (customer.defaultPaymentMethod === method)
      return outcome('duplicate', `${method} is already the default`, { customer });
    customer.defaultPaymentMethod = method;
    return outcome('applied', `${method} is the default payment method now`, { customer });
  });
}

async function paymentOfProviderId(orm: MikroORM, intentId: string | null): Promise<Payment | null> {
  return intentId ? systemEm(orm).findOne(Payment, { providerPaymentId: intentId }, { refresh: true }) : null;
}

function opsEvent(
  event: StoredStripeEvent,
  payment: Payment | null,
  fields: Pick<OpsEventInput, 'severity' | 'kind' | 'message'> & { details: Record<string, unknown> },
): OpsEventInput {
  return {
    ...fields,
    tenantId: payment?.tenant.id ?? null,
    podId: null,
    jobId: null,
    details: {
      eventId: event.id,
      paymentId: payment?.id ?? null,
      invoiceId: payment?.invoice.id ?? null,
      ...fields.details,
    },
    dedupeKey: `stripe-event:${event.id}`,
  };
}

/**
 * `charge.refunded` (https://docs.stripe.com/api/events/types#event_types-charge.refunded), sent
 * for partial refunds too: a full refund moves the payment to REFUNDED (only ever from SUCCEEDED);
 * every refund is an ops event, since money went back outside our books. A refund delivered before
 * its payment's success waits for it (retried) rather than being lost.
 */
async function chargeRefunded(orm: MikroORM, event: StoredStripeEvent): Promise<StripeEventOutcome> {
  const charge = event.object as unknown as Stripe.Charge;
  const payment = await paymentOfProviderId(orm, idOf(charge.payment_intent));
  const full = charge.refunded === true;
  if (payment && full && payment.status !== 'SUCCEEDED' && payment.status !== 'REFUNDED') {
    throw new StripeEventNotReady(
      `payment ${payment.id} is ${payment.status}; its refund waits for its success`,
    );
  }
  const em = systemEm(orm);
  await raiseOpsEvent(
    em,
    opsEvent(event, payment, {
      severity: 'MEDIUM',
      kind: 'payment_refunded',
      message: `Stripe refunded ${charge.amount_refunded} ${charge.currency} of charge ${charge.id}${payment ? ` (payment ${payment.id}, invoice ${payment.invoice.id})` : ''}${full ? ' in full' : ' in part'}`,
      details: {
        chargeId: charge.id,
        amountRefunded: charge.amount_refunded,
        currency: charge.currency,
        full,
      },
    }),
  );
  if (!payment) return outcome('unmatched', `charge ${charge.id} is none of our payments`);
  if (!full) return outcome('applied', `partial refund of payment ${payment.id} reported`, { payment });
  const moved = await em.transactional(async (tx) => {
    const row = await tx.findOneOrFail(
      Payment,
      { id: payment.id },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    if (!paymentMovesForward(row.status, 'REFUNDED')) return false;
    row.status = 'REFUNDED';
    if (!row.providerUpdatedAt || row.providerUpdatedAt < event.occurredAt)
      row.providerUpdatedAt = event.occurredAt;
    return true;
  });
  return moved
    ? outcome('applied', `payment ${payment.id} REFUNDED`, { payment })
    : outcome('duplicate', `payment ${payment.id} was refunded before`, { payment });
}

/**
 * `charge.dispute.created` (https://docs.stripe.com/disputes/responding): the cardholder disputes a
 * payment. The invoice is flagged (first dispute time kept) and operators get a HIGH ops event:
 * evidence is due within days.
 */
async function disputeCreated(orm: MikroORM, event: StoredStripeEvent): Promise<StripeEventOutcome> {
  const dispute = event.object as unknown as Stripe.Dispute;
  const payment = await paymentOfProviderId(orm, idOf(dispute.payment_intent));
  const em = systemEm(orm);
  await raiseOpsEvent(
    em,
    opsEvent(event, payment, {
      severity: 'HIGH',
      kind: 'payment_disputed',
      message: `Dispute ${dispute.id} (${dispute.reason}) opened on ${dispute.amount} ${dispute.currency}${payment ? ` of payment ${payment.id}, invoice ${payment.invoice.id}` : ' of a charge that is none of our payments'}`,
      details: {
        disputeId: dispute.id,
        reason: dispute.reason,
        amount: dispute.amount,
        currency: dispute.currency,
      },
    }),
  );
  if (!payment) return outcome('unmatched', `dispute ${dispute.id} names none of our payments`);
  await em.nativeUpdate(
    Invoice,
    { id: payment.invoice.id, disputedAt: null },
    { disputedAt: event.occurredAt, updatedAt: new Date() },
  );
  return outcome('applied', `invoice ${payment.invoice.id} flagged as disputed`, { payment });
}

const HANDLERS: Readonly<
  Record<string, (orm: MikroORM, event: StoredStripeEvent) => Promise<StripeEventOutcome>>
> = {
  'payment_intent.succeeded': intentSucceeded,
  'payment_intent.payment_failed': intentFailed,
  'setup_intent.succeeded': setupSucceeded,
  'charge.refunded': chargeRefunded,
  'charge.dispute.created': disputeCreated,
};

/** Applies a stored event to our state (see the module comment); types we do not handle are ignored. */
export async function applyStripeEvent(orm: MikroORM, eventId: string): Promise<StripeEventOutcome> {
  const event = await loadStripeEvent(orm, eventId);
  if (!event) throw notFound('stripe event');
  const handler = HANDLERS[event.type];
  if (!handler) return outcome('ignored', `${event.type} events are not acted on`);
  const result = await handler(orm, event);
  if (result.invoiceId && !result.customerId) {
    const invoice = await systemEm(orm).findOne(Invoice, { id: result.invoiceId });
    result.customerId = invoice?.customer.id ?? null;
  }
  return result;
}

function setupProblem(err: ProviderError): AppError {
  return err.retryable
    ? new AppError('unavailable', 'the payment provider could not be reached; retry', {}, { cause: err })
    : new AppError('internal', 'the payment provider refused the request', {}, { cause: err });
}

/**
 * A SetupIntent for one of the caller's live customers (`em` is tenant-filtered: others are 404),
 * after making sure the customer exists at the provider. Its client secret goes to the customer's
 * browser, which confirms it with Stripe.js; `setup_intent.succeeded` then makes the card the
 * default. `requestKey` makes the provider call idempotent for this one request (the SDK's network
 * retries reuse it); every request makes a SetupIntent of its own, which moves no money.
 */
export async function createCustomerSetupIntent(
  deps: { em: EntityManager; payments: PaymentProvider },
  customerId: string,
  requestKey: string,
): Promise<SetupIntentResult> {
  const customer = isId('customer', customerId) ? await deps.em.findOne(Customer, { id: customerId }) : null;
  if (!customer) throw notFound('customer');
  try {
    const providerCustomerId = await ensureProviderCustomer(deps.em, deps.payments, customer);
    return await deps.payments.createSetupIntent(
      providerCustomerId,
      `${customer.id}:setup-intent:${requestKey}`,
    );
  } catch (err) {
    throw err instanceof ProviderError ? setupProblem(err) : err;
  }
}
