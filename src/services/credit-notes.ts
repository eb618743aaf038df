/**
 * Credit notes: money given back to a customer's credit balance (a downgrade's proration, an
 * overpayment, a goodwill credit), numbered in the tenant's CREDIT_NOTE series. Issuing is one
 * transaction that takes the number, stores the note and raises the balance, so a balance never
 * grows without the numbered document that explains it.
 */
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { CreditNote, Subscription, Tenant } from '../db/entities';
import { SOFT_DELETED, type EntityManager } from '../db/orm';
import { lockCustomer, nextDocumentNumber } from '../db/repositories/billing';
import { assertValidDate, billingError, sumMinorUnits, type MinorUnits } from '../domain/billing';
import { AppError, conflict } from '../domain/errors';
import { isId } from '../domain/ids';

const SOURCE_KEY_UNIQUE = 'credit_notes_source_key_unique';
const REASON_MAX = 500;
const SOURCE_KEY_MAX = 200;

export interface IssueCreditNoteInput {
  tenantId: string;
  customerId: string;
  subscriptionId?: string | null | undefined;
  /** a positive amount in minor units of `currency` */
  amount: MinorUnits;
  /** the tenant's currency: credit balances are held in it */
  currency: string;
  reason: string;
  /** what the credit comes from (`plan-change:<jobId>`): a second issue with the same key returns the first note */
  sourceKey: string;
  /** when it is issued (the year of its number); now when not given */
  issuedAt?: Date | undefined;
}

function checkInput(input: IssueCreditNoteInput): void {
  if (!Number.isSafeInteger(input.amount) || input.amount <= 0) {
    throw billingError(
      'validation_failed',
      'amount_out_of_range',
      'a credit note amount is a positive safe integer',
    );
  }
  const reason = input.reason.trim();
  if (reason.length === 0 || reason.length > REASON_MAX) {
    throw new AppError('validation_failed', `a credit note reason is 1–${REASON_MAX} characters`);
  }
  if (input.sourceKey.length === 0 || input.sourceKey.length > SOURCE_KEY_MAX) {
    throw new AppError('validation_failed', `a credit note source key is 1–${SOURCE_KEY_MAX} characters`);
  }
}

/**
 * The note already issued for this source, if any. A key is global: one used by another customer
 * or tenant is a conflict, never that note handed out.
 */
async function existingNote(
  tx: EntityManager,
  input: Pick<IssueCreditNoteInput, 'tenantId' | 'customerId' | 'sourceKey'>,
): Promise<CreditNote | null> {
  const note = await tx.findOne(
    CreditNote,
    { sourceKey: input.sourceKey },
    { filters: false, refresh: true },
  );
  if (!note) return null;
  if (note.tenant.id !== input.tenantId || note.customer.id !== input.customerId) {
    throw conflict('this source key was already used for another credit note');
  }
  return note;
}

async function checkSubscription(
  tx: EntityManager,
  input: Pick<IssueCreditNoteInput, 'tenantId' | 'customerId' | 'subscriptionId'>,
): Promise<void> {
  if (input.subscriptionId === undefined || input.subscriptionId === null) return;
  const found =
    isId('subscription', input.subscriptionId) &&
    (await tx.count(
      Subscription,
      { id: input.subscriptionId, tenant: input.tenantId, customer: input.customerId },
      { filters: { [SOFT_DELETED]: false } },
    )) > 0;
  if (!found) {
    throw new AppError('unprocessable', 'the subscription is not one of this customer', {
      errors: [{ field: 'subscription_id', message: 'unknown subscription' }],
    });
  }
}

/**
 * Issues a credit note inside the caller's transaction `tx` (which may also be settling an invoice):
 * locks the customer, returns the note already issued for the source key, or takes the next
 * CREDIT_NOTE number, stores the note and adds the amount to the customer's credit balance.
 */
export async function issueCreditNoteIn(tx: EntityManager, input: IssueCreditNoteInput): Promise<CreditNote> {
  checkInput(input);
  const issuedAt = assertValidDate(input.issuedAt ?? new Date(), 'issue date');
  const customer = await lockCustomer(tx, input.tenantId, input.customerId, { live: false });
  if (!customer) {
    throw new AppError('unprocessable', 'customer_id does not name a customer of this tenant', {
      errors: [{ field: 'customer_id', message: 'unknown customer' }],
    });
  }
  // Read after the lock: a concurrent issue for this customer has committed by now, so it is seen.
  const existing = await existingNote(tx, input);
  if (existing) return existing;
  const tenant = await tx.findOneOrFail(Tenant, { id: input.tenantId });
  if (input.currency !== tenant.currency) {
    throw billingError(
      'unprocessable',
      'currency_mismatch',
      `credit is held in the tenant's currency ${tenant.currency}, not ${input.currency}`,
    );
  }
  await checkSubscription(tx, input);
  const number = await nextDocumentNumber(tx, input.tenantId, 'CREDIT_NOTE', issuedAt.getUTCFullYear());
  const note = tx.create(CreditNote, {
    tenant: input.tenantId,
    customer,
    subscription: input.subscriptionId ?? null,
    number,
    amount: input.amount,
    currency: input.currency,
    reason: input.reason.trim(),
    sourceKey: input.sourceKey,
    createdAt: issuedAt,
  });
  customer.creditBalance = sumMinorUnits([customer.creditBalance, input.amount]);
  await tx.flush();
  return note;
}

function isSourceKeyTaken(err: unknown): boolean {
  return (
    err instanceof UniqueConstraintViolationException &&
    (err as { constraint?: unknown }).constraint === SOURCE_KEY_UNIQUE
  );
}

/**
 * Issues a credit note in one transaction; idempotent by `sourceKey`. Two concurrent issues for the
 * same source serialize on the customer lock; should they race through different customers, the
 * unique source key refuses the second (its number and balance change roll back with it) and the
 * first note is returned or, for another customer, the conflict raised.
 */
export async function issueCreditNote(em: EntityManager, input: IssueCreditNoteInput): Promise<CreditNote> {
  try {
    return await em.transactional((tx) => issueCreditNoteIn(tx, input));
  } catch (err) {
    if (!isSourceKeyTaken(err)) throw err;
    const existing = await em.transactional((tx) => existingNote(tx, input));
    if (!existing) throw err;
    return existing;
  }
}
