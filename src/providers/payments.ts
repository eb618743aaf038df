/**
 * Card payments for invoices: Stripe in production (`stripe.ts`), the simulator by default
 * (`simulator/payments.ts`).
 *
 * A decline is a *result* (`ChargeResult` with status FAILED), never a thrown error: the customer's
 * bank answered, and retrying the same request cannot change that answer. Thrown errors are
 * `ProviderError`s and mean the provider could not be asked or did not answer (network, rate
 * limit, outage: `retryable`) or refused the request itself (bad key, invalid parameters: not
 * retryable).
 */
import type { MinorUnits } from '../domain/billing/money';
import type { DeclineKind, PaymentStatus } from '../domain/billing/states';
import { ProviderError } from './errors';

/** The value stored in `payments.provider`. */
export type PaymentProviderName = 'simulated' | 'stripe';

export interface EnsureCustomerInput {
  /** our customer id (`cus_…`): at most one provider customer is made per value */
  customerId: string;
  tenantId: string;
  email: string;
  name: string;
  /** the provider customer already recorded on our customer: returned as is, nothing is created */
  existingProviderCustomerId?: string | null;
}

/** Stripe's SetupIntent statuses (https://docs.stripe.com/payments/setupintents/lifecycle). */
export const SETUP_INTENT_STATUSES = [
  'requires_payment_method',
  'requires_confirmation',
  'requires_action',
  'processing',
  'canceled',
  'succeeded',
] as const;
export type SetupIntentStatus = (typeof SETUP_INTENT_STATUSES)[number];

export function isSetupIntentStatus(value: string): value is SetupIntentStatus {
  return (SETUP_INTENT_STATUSES as readonly string[]).includes(value);
}

/** What the customer's browser needs to save a card for later off-session charges. */
export interface SetupIntentResult {
  id: string;
  /** handed to Stripe.js (`confirmCardSetup`); never logged */
  clientSecret: string;
  status: SetupIntentStatus;
}

/** The statuses a charge can end an API call in (a refund comes later, by its own step). */
export type ChargeStatus = Exclude<PaymentStatus, 'REFUNDED'>;

export interface ChargeInput {
  providerCustomerId: string;
  /** the saved payment method (`pm_…`) charged off-session */
  paymentMethod: string;
  /** minor units of `currency`, exactly as invoiced (a positive safe integer) */
  amount: MinorUnits;
  /** ISO 4217, upper case as stored (`EUR`, `JPY`) */
  currency: string;
  /**
   * Our business key for this attempt (derived from the invoice and attempt): the same key always
   * means the same charge, so a retried call can never charge twice.
   */
  idempotencyKey: string;
  description: string;
  metadata: { tenantId: string; invoiceId: string; attempt: number };
}

export interface ChargeResult {
  /**
   * The provider's payment (`pi_…`). Null only when the provider refused before making one
   * (Stripe answers `resource_missing` for a payment method it does not know).
   */
  providerPaymentId: string | null;
  status: ChargeStatus;
  /** FAILED only: whether retrying the same card later may succeed */
  declineKind?: DeclineKind;
  /** FAILED and REQUIRES_ACTION: the decline code when the issuer gave one, else the error code */
  failureCode?: string;
  failureMessage?: string;
}

/**
 * Every call is idempotent: `ensureCustomer` by our customer id, `createSetupIntent` and `charge`
 * by the caller's idempotency key. There is no "attach payment method" or "set default": a
 * SetupIntent confirmed by the customer attaches the card to the customer
 * (https://docs.stripe.com/payments/save-and-reuse), and every charge names its payment method.
 */
export interface PaymentProvider {
  readonly name: PaymentProviderName;
  /** The provider's customer for ours: `existingProviderCustomerId`, or one made now. */
  ensureCustomer(input: EnsureCustomerInput): Promise<string>;
  /** A SetupIntent for saving a card to be charged off-session later. */
  createSetupIntent(providerCustomerId: string, idempotencyKey: string): Promise<SetupIntentResult>;
  /** An off-session charge of a saved payment method, confirmed at once. */
  charge(input: ChargeInput): Promise<ChargeResult>;
}

/**
 * A charge or SetupIntent without a usable key would not be idempotent: refused before anything is
 * sent. Stripe takes keys of up to 255 characters (https://docs.stripe.com/api/idempotent_requests).
 */
export function assertIdempotencyKey(provider: PaymentProviderName, operation: string, key: string): void {
  if (key.trim() === '' || key.length > 255) {
    throw new ProviderError(
      provider,
      operation,
      'the idempotency key must have 1 to 255 characters',
      false,
      'INVALID_REQUEST',
    );
  }
}

/** What a provider said about a failed payment, in Stripe's vocabulary. */
export interface DeclineReason {
  /** Stripe's error code (`card_declined`, `expired_card`, `authentication_required` …) */
  code?: string | null | undefined;
  /** the issuer's reason (`insufficient_funds`, `stolen_card` …) */
  declineCode?: string | null | undefined;
  /** the issuer's advice on retrying (`do_not_try_again`, `try_again_later`, `confirm_card_data`) */
  adviceCode?: string | null | undefined;
  message?: string | null | undefined;
}

/**
 * Decline codes after which the same card will not be approved, however often it is retried: the
 * card is lost, stolen, closed, expired, its details are wrong, or the issuer forbids this kind of
 * payment. Only a new or updated payment method helps, so dunning stops retrying it.
 * Source: the "next steps" of https://docs.stripe.com/declines/codes (use a different card, do not
 * retry) and the error codes of https://docs.stripe.com/error-codes for invalid card data.
 * `resource_missing` is the payment method that no longer exists (detached, deleted).
 */
export const HARD_DECLINE_CODES: ReadonlySet<string> = new Set([
  'card_not_supported',
  'currency_not_supported',
  'do_not_try_again',
  'expired_card',
  'fraudulent',
  'incorrect_cvc',
  'incorrect_number',
  'incorrect_zip',
  'invalid_account',
  'invalid_amount',
  'invalid_cvc',
  'invalid_expiry_month',
  'invalid_expiry_year',
  'invalid_number',
  'live_mode_test_card',
  'lost_card',
  'merchant_blacklist',
  'new_account_information_available',
  'not_permitted',
  'pickup_card',
  'resource_missing',
  'restricted_card',
  'revocation_of_all_authorizations',
  'revocation_of_authorization',
  'security_violation',
  'service_not_allowed',
  'stolen_card',
  'stop_payment_order',
  'testmode_decline',
  'transaction_not_allowed',
]);

/**
 * Advice codes (https://docs.stripe.com/declines/card#retrying-issuer-declines) are the issuer's
 * own word on retrying and win over the decline code: `do_not_try_again` forbids it,
 * `confirm_card_data` needs the customer to correct the card (the same data fails again), and
 * `try_again_later` allows it.
 */
const ADVICE: Readonly<Record<string, DeclineKind>> = {
  do_not_try_again: 'HARD',
  confirm_card_data: 'HARD',
  try_again_later: 'SOFT',
};

/**
 * HARD or SOFT. Everything not known to be hard is SOFT: `insufficient_funds`,
 * `card_velocity_exceeded`, `withdrawal_count_limit_exceeded`, `try_again_later`,
 * `processing_error`, `issuer_not_available`, `reenter_transaction`, `approve_with_id`,
 * `call_issuer`, `no_action_taken`, `duplicate_transaction`, and the unexplained
 * `generic_decline` and `do_not_honor`. Stripe documents those last two as "declined for an unknown
 * reason" (https://docs.stripe.com/declines/codes); the card networks count such generic answers
 * among the declines that may be retried within their limits, and Stripe's own Smart Retries
 * retries them (https://docs.stripe.com/billing/revenue-recovery/smart-retries). Calling them hard
 * would end dunning for customers whose next attempt would likely have succeeded.
 */
export function classifyDecline(reason: DeclineReason): DeclineKind {
  const advised = reason.adviceCode ? ADVICE[reason.adviceCode] : undefined;
  if (advised) return advised;
  for (const code of [reason.declineCode, reason.code]) {
    if (code && HARD_DECLINE_CODES.has(code)) return 'HARD';
  }
  return 'SOFT';
}

/**
 * `authentication_required`: the issuer wants 3D Secure, which an off-session charge cannot do.
 * The customer must come back and confirm the payment themselves
 * (https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method), so it is
 * REQUIRES_ACTION rather than a decline.
 */
export function needsAuthentication(reason: DeclineReason): boolean {
  return reason.code === 'authentication_required' || reason.declineCode === 'authentication_required';
}

/** The result of a charge the provider did not complete, classified the same for every provider. */
export function unsuccessfulCharge(providerPaymentId: string | null, reason: DeclineReason): ChargeResult {
  const failureCode = reason.declineCode || reason.code || 'payment_failed';
  const failureMessage = reason.message ?? undefined;
  if (needsAuthentication(reason)) {
    return { providerPaymentId, status: 'REQUIRES_ACTION', failureCode, failureMessage };
  }
  return {
    providerPaymentId,
    status: 'FAILED',
    declineKind: classifyDecline(reason),
    failureCode,
    failureMessage,
  };
}
