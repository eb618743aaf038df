/**
 * The embedded default payment provider: answers like Stripe's test mode does for Stripe's test
 * payment methods (https://docs.stripe.com/testing), without a network or a Stripe account.
 *
 * The outcome of a charge is a pure function of its payment method and every id is derived from
 * our keys, so the simulator keeps no durable state: what it remembers (in memory) is only each
 * idempotency key's request, to refuse a key reused for a different charge as Stripe does. After
 * a worker restart a repeated charge is evaluated again and gets the same result and the same
 * payment id, which is what Stripe's idempotency would have answered.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderError } from '../errors';
import {
  assertIdempotencyKey,
  unsuccessfulCharge,
  type ChargeInput,
  type ChargeResult,
  type DeclineReason,
  type EnsureCustomerInput,
  type PaymentProvider,
  type SetupIntentResult,
} from '../payments';

export interface SimulatedPaymentsOptions {
  /** added to every call, to make a demo watchable or outlast an activity timeout */
  delayMs: number;
}

/** `card_declined` with the issuer's reason, as Stripe reports a declined test card. */
function declined(declineCode: string, message: string): DeclineReason {
  return { code: 'card_declined', declineCode, message };
}

const GENERIC = declined('generic_decline', 'Your card was declined.');
/**
 * The simulator's hard decline for `pm_card_chargeDeclined`: the generic decline with the
 * issuer's advice `do_not_try_again`, which Stripe sends when the issuer forbids retrying
 * (https://docs.stripe.com/declines/card#retrying-issuer-declines). Our billing contract gives
 * that card the hard-decline role (no automatic retries, reminders only) and
 * `pm_card_insufficientFunds` the soft one, so each business path has its card.
 */
const GENERIC_FINAL: DeclineReason = { ...GENERIC, adviceCode: 'do_not_try_again' };
const INSUFFICIENT = declined('insufficient_funds', 'Your card has insufficient funds.');
const LOST = declined('lost_card', 'Your card was declined.');
const STOLEN = declined('stolen_card', 'Your card was declined.');
const FRAUDULENT = declined('fraudulent', 'Your card was declined.');
const VELOCITY = declined(
  'card_velocity_exceeded',
  'Your card was declined for making repeated attempts too frequently or exceeding its amount limit.',
);
const AUTHENTICATION: DeclineReason = {
  code: 'authentication_required',
  declineCode: 'authentication_required',
  message: 'Your card was declined. This transaction requires authentication.',
};

/**
 * Stripe's test payment methods that do not succeed off-session, with what Stripe answers
 * (https://docs.stripe.com/testing#declined-payments and #authentication-and-setup). Both the
 * `pm_card_…` and `pm_card_visa_…` spellings exist at Stripe. `pm_card_insufficientFunds` is a
 * simulator-only shorthand; Stripe itself knows only the `chargeDeclined…` names.
 * `pm_card_chargeDeclined` is a generic decline the issuer advises not to retry (HARD, see
 * `GENERIC_FINAL`); an unexplained decline without that advice is SOFT (see `classifyDecline`), as
 * `pm_card_chargeCustomerFail` shows; the lost, stolen and fraudulent cards are HARD by their code.
 */
const UNSUCCESSFUL: Readonly<Record<string, DeclineReason>> = {
  pm_card_chargeDeclined: GENERIC_FINAL,
  pm_card_visa_chargeDeclined: GENERIC_FINAL,
  pm_card_chargeCustomerFail: GENERIC,
  pm_card_chargeDeclinedInsufficientFunds: INSUFFICIENT,
  pm_card_visa_chargeDeclinedInsufficientFunds: INSUFFICIENT,
  pm_card_insufficientFunds: INSUFFICIENT,
  pm_card_chargeDeclinedLostCard: LOST,
  pm_card_visa_chargeDeclinedLostCard: LOST,
  pm_card_chargeDeclinedStolenCard: STOLEN,
  pm_card_visa_chargeDeclinedStolenCard: STOLEN,
  pm_card_chargeDeclinedFraudulent: FRAUDULENT,
  pm_card_visa_chargeDeclinedFraudulent: FRAUDULENT,
  pm_card_chargeDeclinedVelocityLimitExceeded: VELOCITY,
  pm_card_visa_chargeDeclinedVelocityLimitExceeded: VELOCITY,
  pm_card_chargeDeclinedExpiredCard: { code: 'expired_card', message: 'Your card has expired.' },
  pm_card_chargeDeclinedIncorrectCvc: {
    code: 'incorrect_cvc',
    message: "Your card's security code is incorrect.",
  },
  pm_card_chargeDeclinedProcessingError: {
    code: 'processing_error',
    message: 'An error occurred while processing your card. Try again in a little bit.',
  },
  pm_card_authenticationRequired: AUTHENTICATION,
  pm_card_threeDSecure2Required: AUTHENTICATION,
};

/**
 * Stripe's test payment methods that succeed off-session: the card brands
 * (https://docs.stripe.com/testing#cards), the cards by country (`pm_card_us`, `pm_card_jp` …,
 * https://docs.stripe.com/testing#international-cards), and the card that needs authentication
 * only when it is saved, not when it is charged later.
 */
const SUCCEEDING = new Set([
  'pm_card_visa',
  'pm_card_visa_debit',
  'pm_card_mastercard',
  'pm_card_mastercard_debit',
  'pm_card_mastercard_prepaid',
  'pm_card_amex',
  'pm_card_discover',
  'pm_card_diners',
  'pm_card_jcb',
  'pm_card_unionpay',
  'pm_card_authenticationRequiredOnSetup',
]);
const COUNTRY_CARD = /^pm_card_[a-z]{2}$/;

/** idempotency keys remembered for the mismatch check: bounded memory, far more than a day's charges */
const REMEMBERED_KEYS = 100_000;

/** What Stripe answers for a payment method it does not know (an invalid request, no payment made). */
function unknownMethod(paymentMethod: string): DeclineReason {
  return { code: 'resource_missing', message: `No such PaymentMethod: '${paymentMethod}'` };
}

/** Stable short hash: ids are functions of our keys, so a repeated call returns the same id. */
function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 24);
}

export class SimulatedPayments implements PaymentProvider {
  readonly name = 'simulated' as const;
  /** each idempotency key's request fingerprint, oldest first (see the module comment) */
  private readonly charges = new Map<string, string>();

  constructor(private readonly opts: SimulatedPaymentsOptions) {}

  async ensureCustomer(input: EnsureCustomerInput): Promise<string> {
    await this.delay();
    return input.existingProviderCustomerId || `sim_cus_${digest(`customer:${input.customerId}`)}`;
  }

  async createSetupIntent(providerCustomerId: string, idempotencyKey: string): Promise<SetupIntentResult> {
    await this.delay();
    assertIdempotencyKey(this.name, 'createSetupIntent', idempotencyKey);
    const id = `sim_seti_${digest(`setup:${providerCustomerId}:${idempotencyKey}`)}`;
    return { id, clientSecret: `${id}_secret_${digest(`secret:${id}`)}`, status: 'requires_payment_method' };
  }

  async charge(input: ChargeInput): Promise<ChargeResult> {
    await this.delay();
    assertIdempotencyKey(this.name, 'charge', input.idempotencyKey);
    validateAmount(input);
    this.rememberKey(input);
    const outcome = outcomeOf(input.paymentMethod);
    // Stripe makes no PaymentIntent when it refuses the payment method itself.
    if (outcome === 'unknown') return unsuccessfulCharge(null, unknownMethod(input.paymentMethod));
    const providerPaymentId = `sim_pi_${digest(`charge:${input.idempotencyKey}`)}`;
    if (outcome === 'succeeded') return { providerPaymentId, status: 'SUCCEEDED' };
    return unsuccessfulCharge(providerPaymentId, outcome);
  }

  /** Stripe answers `idempotency_error` for a key reused with other parameters. */
  private rememberKey(input: ChargeInput): void {
    const fingerprint = JSON.stringify([
      input.providerCustomerId,
      input.paymentMethod,
      input.amount,
      input.currency,
    ]);
    const earlier = this.charges.get(input.idempotencyKey);
    if (earlier !== undefined && earlier !== fingerprint) {
      throw new ProviderError(
        this.name,
        'charge',
        `idempotency key ${input.idempotencyKey} was used for a different charge`,
        false,
        'IDEMPOTENCY_MISMATCH',
      );
    }
    this.charges.set(input.idempotencyKey, fingerprint);
    // Stripe forgets keys after 24 hours; a long-running worker forgets its oldest ones.
    if (this.charges.size > REMEMBERED_KEYS) {
      const oldest = this.charges.keys().next();
      if (!oldest.done) this.charges.delete(oldest.value);
    }
  }

  private async delay(): Promise<void> {
    if (this.opts.delayMs > 0) await sleep(this.opts.delayMs);
  }
}

function outcomeOf(paymentMethod: string): 'succeeded' | 'unknown' | DeclineReason {
  if (SUCCEEDING.has(paymentMethod) || COUNTRY_CARD.test(paymentMethod)) return 'succeeded';
  return UNSUCCESSFUL[paymentMethod] ?? 'unknown';
}

/** Stripe refuses amounts that are not positive integers and currencies it does not know. */
function validateAmount(input: ChargeInput): void {
  if (!Number.isSafeInteger(input.amount) || input.amount <= 0) {
    throw new ProviderError(
      'simulated',
      'charge',
      'amount must be a positive integer',
      false,
      'INVALID_REQUEST',
    );
  }
  if (!/^[A-Z]{3}$/.test(input.currency)) {
    throw new ProviderError(
      'simulated',
      'charge',
      'currency must be an ISO 4217 code',
      false,
      'INVALID_REQUEST',
    );
  }
}
