/**
 * Collecting money for a subscription: its first invoice, a charge of an invoice to the
 * customer's saved payment method, and what the outcome makes of the subscription. Every step is
 * repeatable under retry: the first invoice is one per subscription and period (a unique index),
 * a charge attempt is one Payment row keyed `<invoiceId>:attempt-<n>` and sent to the provider
 * under that same key, and a success is applied to the invoice once (invoices.recordPayment).
 */
import { LockMode } from '@mikro-orm/core';
import { Customer, Invoice, Payment, Subscription } from '../db/entities';
import { systemEm, type EntityManager, type MikroORM } from '../db/orm';
import { PAYABLE_INVOICE_STATUSES, paymentMovesForward } from '../domain/billing/states';
import { newId } from '../domain/ids';
import type { ChargeResult, PaymentProvider } from '../providers/payments';
import { createDraftInvoice, finalizeInvoice, recordPayment } from './invoices';
import { firstPeriod } from './subscription-activation';

/** The first period's invoice of a subscription whose pod is ACTIVE, drafted once and finalized. */
export async function issueFirstInvoice(
  orm: MikroORM,
  subscriptionId: string,
): Promise<{ invoiceId: string; number: string; amountDue: number; charge: boolean }> {
  const em = systemEm(orm);
  const sub = await em.findOneOrFail(
    Subscription,
    { id: subscriptionId },
    { populate: ['product', 'customer'] },
  );
  const period = await firstPeriod(orm, sub);
  const { invoice: draft } = await createDraftInvoice(em.fork(), {
    tenantId: sub.tenant.id,
    customerId: sub.customer.id,
    subscriptionId: sub.id,
    billingReason: 'SUBSCRIPTION_CREATE',
    currency: sub.currency,
    periodStart: period.start,
    periodEnd: period.end,
    lines: [
      {
        kind: 'SUBSCRIPTION',
        description: `${sub.product.name} (${sub.podSlug}), ${period.start.toISOString().slice(0, 10)} – ${period.end.toISOString().slice(0, 10)}`,
        quantity: 1,
        unitAmount: sub.unitAmount,
        period: { start: period.start, end: period.end },
      },
    ],
  });
  await em.nativeUpdate(
    Subscription,
    { id: sub.id, billingAnchor: null },
    { billingAnchor: period.start, updatedAt: new Date() },
  );
  const { invoice } = await finalizeInvoice(em.fork(), draft.id, new Date());
  return {
    invoiceId: invoice.id,
    number: invoice.number ?? invoice.id,
    amountDue: invoice.amountDue - invoice.amountPaid,
    charge:
      sub.customer.collectionMethod === 'AUTOMATIC' &&
      PAYABLE_INVOICE_STATUSES.includes(invoice.status) &&
      invoice.amountDue > invoice.amountPaid,
  };
}

/** The provider customer of ours, made once and recorded on the customer. */
export async function ensureProviderCustomer(
  em: EntityManager,
  payments: PaymentProvider,
  customer: Customer,
): Promise<string> {
  if (customer.providerCustomerId) return customer.providerCustomerId;
  const id = await payments.ensureCustomer({
    customerId: customer.id,
    tenantId: customer.tenant.id,
    email: customer.email,
    name: customer.name,
  });
  // Two concurrent requests get the same provider customer (its key is our customer id); the first to record it wins.
  await em.nativeUpdate(
    Customer,
    { id: customer.id, providerCustomerId: null },
    { providerCustomerId: id, updatedAt: new Date() },
  );
  const recorded = await em.fork().findOneOrFail(Customer, { id: customer.id });
  return recorded.providerCustomerId ?? id;
}

/** The attempt's payment row, made once: a retry finds the row (and its outcome) by its key. */
async function attemptRow(
  orm: MikroORM,
  invoice: Invoice,
  attempt: number,
  paymentMethod: string | null,
): Promise<Payment> {
  const key = `${invoice.id}:attempt-${attempt}`;
  const em = systemEm(orm);
  await em
    .createQueryBuilder(Payment)
    .insert({
      id: newId('payment'),
      tenant: invoice.tenant.id,
      invoice: invoice.id,
      provider: 'pending',
      idempotencyKey: key,
      attempt,
      status: 'PENDING',
      amount: invoice.amountDue - invoice.amountPaid,
      currency: invoice.currency,
      paymentMethod,
      createdAt: new Date(),
      updatedAt: new Date(),
    })
    .onConflict('idempotency_key')
    .ignore()
    .execute();
  return em.findOneOrFail(Payment, { idempotencyKey: key });
}

/** A charge that did not succeed, recorded on its row — only ever forward (never over a success). */
async function recordUnsuccessful(
  orm: MikroORM,
  paymentId: string,
  provider: string,
  result: ChargeResult,
): Promise<void> {
  await systemEm(orm).transactional(async (em) => {
    const payment = await em.findOneOrFail(
      Payment,
      { id: paymentId },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (!paymentMovesForward(payment.status, result.status)) return;
    payment.provider = provider;
    payment.providerPaymentId = result.providerPaymentId ?? payment.providerPaymentId ?? null;
    payment.status = result.status;
    payment.declineKind = result.declineKind ?? null;
    payment.failureCode = result.failureCode ?? null;
    payment.failureMessage = result.failureMessage?.slice(0, 500) ?? null;
  });
}

export type ChargeOutcome = 'SUCCEEDED' | 'FAILED' | 'REQUIRES_ACTION' | 'PENDING' | 'NOT_DUE';

/**
 * Charges what is left due on the invoice to `paymentMethod` — when not given, the customer's
 * default payment method — as attempt `attempt`. Without either, the attempt is FAILED saying so
 * (dunning then reminds them). A decline is an outcome, not an error; only an unreachable provider
 * throws (and is retried with the same key, so the provider sees one charge).
 */
export async function chargeInvoice(
  deps: { orm: MikroORM; payments: PaymentProvider },
  invoiceId: string,
  attempt: number,
  paymentMethod?: string,
): Promise<{ status: ChargeOutcome }> {
  const { orm, payments } = deps;
  const em = systemEm(orm);
  const invoice = await em.findOneOrFail(Invoice, { id: invoiceId }, { populate: ['customer'] });
  if (!PAYABLE_INVOICE_STATUSES.includes(invoice.status) || invoice.amountPaid >= invoice.amountDue) {
    return { status: 'NOT_DUE' };
  }
  const customer = invoice.customer;
  const method = paymentMethod ?? customer.defaultPaymentMethod ?? null;
  const row = await attemptRow(orm, invoice, attempt, method);
  if (row.status === 'SUCCEEDED') return { status: 'SUCCEEDED' };
  if (row.status !== 'PENDING')
    return { status: row.status === 'REQUIRES_ACTION' ? 'REQUIRES_ACTION' : 'FAILED' };
  if (!method) {
    await recordUnsuccessful(orm, row.id, payments.name, {
      providerPaymentId: null,
      status: 'FAILED',
      declineKind: 'SOFT',
      failureCode: 'payment_method_missing',
      failureMessage: 'the customer has no default payment method',
    });
    return { status: 'FAILED' };
  }
  const result = await payments.charge({
    providerCustomerId: await ensureProviderCustomer(em, payments, customer),
    paymentMethod: method,
    amount: row.amount,
    currency: invoice.currency,
    idempotencyKey: row.idempotencyKey,
    description: `Invoice ${invoice.number ?? invoice.id}`,
    metadata: { tenantId: invoice.tenant.id, invoiceId: invoice.id, attempt },
  });
  if (result.status !== 'SUCCEEDED') {
    await recordUnsuccessful(orm, row.id, payments.name, result);
    return { status: result.status };
  }
  await em.nativeUpdate(
    Payment,
    { id: row.id },
    { provider: payments.name, providerPaymentId: result.providerPaymentId, updatedAt: new Date() },
  );
  await recordPayment(em.fork(), invoice.id, { paymentId: row.id, amount: row.amount });
  return { status: 'SUCCEEDED' };
}

/**
 * After the first invoice: ACTIVE for its first period when it is paid or left to a MANUAL
 * customer to pay; PAST_DUE when an automatic charge did not succeed (dunning follows).
 */
export async function settleActivation(
  orm: MikroORM,
  subscriptionId: string,
  invoiceId: string,
): Promise<'ACTIVE' | 'PAST_DUE'> {
  return systemEm(orm).transactional(async (em) => {
    const sub = await em.findOneOrFail(
      Subscription,
      { id: subscriptionId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, populate: ['customer'] },
    );
    const invoice = await em.findOneOrFail(Invoice, { id: invoiceId });
    if (sub.status === 'ACTIVE' || sub.status === 'PAST_DUE') return sub.status;
    const paidOrManual = invoice.status === 'PAID' || sub.customer.collectionMethod === 'MANUAL';
    sub.status = paidOrManual ? 'ACTIVE' : 'PAST_DUE';
    sub.currentPeriodStart = invoice.periodStart ?? null;
    sub.currentPeriodEnd = invoice.periodEnd ?? null;
    return sub.status;
  });
}
