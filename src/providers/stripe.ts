/**
 * Stripe through its official SDK: customers, SetupIntents for saving a card, off-session
 * PaymentIntents for charging it, and webhook signature verification.
 *
 * Every POST carries *our* idempotency key (https://docs.stripe.com/api/idempotent_requests).
 * The SDK would otherwise make up a random one per call, and a call repeated after a lost answer
 * (an activity retry) would then charge twice. The SDK's own network retries (connection errors,
 * 409, 5xx: https://github.com/stripe/stripe-node#network-retries) resend the headers of the first
 * try, so they reuse our key too.
 */
import Stripe from 'stripe';
import { currencyExponent, isSupportedCurrency } from '../domain/billing/money';
import { ProviderError } from './errors';
import { isRetryableStatus, parseRetryAfter } from './http';
import {
  assertIdempotencyKey,
  isSetupIntentStatus,
  unsuccessfulCharge,
  type ChargeInput,
  type ChargeResult,
  type EnsureCustomerInput,
  type PaymentProvider,
  type SetupIntentResult,
} from './payments';

export interface StripeEndpoint {
  host: string;
  port: number;
  protocol: 'http' | 'https';
}

export interface StripePaymentsOptions extends Partial<StripeEndpoint> {
  apiKey: string;
  /** the SDK's retries of one call, each with our idempotency key (default 2) */
  maxNetworkRetries?: number;
  /** per request (default 30 s, well inside an activity's start-to-close timeout) */
  timeoutMs?: number;
}

const PROVIDER = 'stripe';

/** `STRIPE_API_BASE` (`http://127.0.0.1:12111` for stripe-mock) as the SDK's host, port and protocol. */
export function stripeEndpoint(base: string): StripeEndpoint {
  const url = new URL(base);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  const port = url.port ? Number(url.port) : protocol === 'http' ? 80 : 443;
  return { host: url.hostname, port, protocol };
}

/**
 * The key that makes a second `customers.create` for our customer return the first one.
 * Stripe keeps keys for 24 hours, so the caller records the returned id on our customer at once
 * and passes it back as `existingProviderCustomerId` from then on.
 */
export function customerIdempotencyKey(customerId: string): string {
  return `podplane-customer-${customerId}`;
}

export class StripePayments implements PaymentProvider {
  readonly name = 'stripe' as const;
  /** the SDK client, for tests that send a request of their own through it */
  readonly client: Stripe;

  constructor(private readonly opts: StripePaymentsOptions) {
    this.client = new Stripe(opts.apiKey, {
      maxNetworkRetries: opts.maxNetworkRetries ?? 2,
      timeout: opts.timeoutMs ?? 30_000,
      telemetry: false,
      typescript: true,
      ...(opts.host === undefined ? {} : { host: opts.host }),
      ...(opts.port === undefined ? {} : { port: opts.port }),
      ...(opts.protocol === undefined ? {} : { protocol: opts.protocol }),
    });
  }

  async ensureCustomer(input: EnsureCustomerInput): Promise<string> {
    if (input.existingProviderCustomerId) return input.existingProviderCustomerId;
    const customer = await this.call('ensureCustomer', () =>
      this.client.customers.create(
        {
          email: input.email,
          name: input.name,
          metadata: { podplane_customer_id: input.customerId, podplane_tenant_id: input.tenantId },
        },
        { idempotencyKey: customerIdempotencyKey(input.customerId) },
      ),
    );
    return customer.id;
  }

  /** `usage: off_session` asks the issuer up front for later charges without the customer. */
  async createSetupIntent(providerCustomerId: string, idempotencyKey: string): Promise<SetupIntentResult> {
    assertIdempotencyKey(this.name, 'createSetupIntent', idempotencyKey);
    const intent = await this.call('createSetupIntent', () =>
      this.client.setupIntents.create(
        { customer: providerCustomerId, usage: 'off_session', payment_method_types: ['card'] },
        { idempotencyKey },
      ),
    );
    if (!intent.client_secret || !isSetupIntentStatus(intent.status)) {
      throw this.fail(
        'createSetupIntent',
        `SetupIntent ${intent.id} came back unusable`,
        false,
        'UNEXPECTED_RESPONSE',
      );
    }
    return { id: intent.id, clientSecret: intent.client_secret, status: intent.status };
  }

  /**
   * `off_session: true, confirm: true`: charge now, without the customer
   * (https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method). A decline comes
   * back from the SDK as a thrown `StripeCardError` carrying the PaymentIntent; it is returned here
   * as a FAILED (or REQUIRES_ACTION) result.
   */
  async charge(input: ChargeInput): Promise<ChargeResult> {
    assertIdempotencyKey(this.name, 'charge', input.idempotencyKey);
    const amount = this.stripeAmount(input);
    let intent: Stripe.PaymentIntent;
    try {
      intent = await this.client.paymentIntents.create(
        {
          amount,
          currency: input.currency.toLowerCase(),
          customer: input.providerCustomerId,
          payment_method: input.paymentMethod,
          off_session: true,
          confirm: true,
          description: input.description,
          metadata: {
            tenant_id: input.metadata.tenantId,
            invoice_id: input.metadata.invoiceId,
            attempt: String(input.metadata.attempt),
          },
        },
        { idempotencyKey: input.idempotencyKey },
      );
    } catch (err) {
      const declined = chargeResultOfError(err);
      if (declined) return declined;
      throw this.toProviderError('charge', err);
    }
    return chargeResultOfPaymentIntent(intent);
  }

  private stripeAmount(input: ChargeInput): number {
    try {
      return toStripeAmount(input.amount, input.currency);
    } catch (err) {
      throw this.fail('charge', err instanceof Error ? err.message : String(err), false, 'INVALID_AMOUNT');
    }
  }

  private async call<T>(operation: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw this.toProviderError(operation, err);
    }
  }

  private toProviderError(operation: string, err: unknown): ProviderError {
    const { message, retryable, code, retryAfterMs } = describeStripeError(err);
    return this.fail(operation, message, retryable, code, retryAfterMs);
  }

  /** The secret key never reaches a message, even if an answer echoes it. */
  private fail(
    operation: string,
    message: string,
    retryable: boolean,
    code: string,
    retryAfterMs?: number,
  ): ProviderError {
    const scrubbed = message.split(this.opts.apiKey).join('***');
    return new ProviderError(PROVIDER, operation, scrubbed, retryable, code, retryAfterMs);
  }
}

/**
 * Stripe's zero-decimal currencies (https://docs.stripe.com/currencies#zero-decimal). Stripe
 * takes amounts in the smallest unit like we do, except where its exponent differs from ISO 4217:
 * MGA has two ISO decimals but none at Stripe, and ISK (zero-decimal) is still sent with two
 * decimals always `00` (https://docs.stripe.com/currencies#special-cases).
 */
const STRIPE_ZERO_DECIMAL = new Set([
  'BIF',
  'CLP',
  'DJF',
  'GNF',
  'JPY',
  'KMF',
  'KRW',
  'MGA',
  'PYG',
  'RWF',
  'UGX',
  'VND',
  'VUV',
  'XAF',
  'XOF',
  'XPF',
]);
const STRIPE_TWO_DECIMAL_REPRESENTATION = new Set(['ISK']);
/** Three-decimal currencies whose amounts Stripe wants with a last digit of 0 (https://docs.stripe.com/currencies#three-decimal). */
const STRIPE_THREE_DECIMAL = new Set(['BHD', 'JOD', 'KWD', 'OMR', 'TND']);

function stripeExponent(currency: string, isoExponent: number): number {
  if (STRIPE_TWO_DECIMAL_REPRESENTATION.has(currency)) return 2;
  if (STRIPE_ZERO_DECIMAL.has(currency)) return 0;
  return isoExponent;
}

/**
 * Our amount (ISO minor units) as Stripe's `amount`: JPY 1000 → 1000, EUR 1234 → 1234,
 * ISK 5 → 500, MGA 500 → 5. Throws when Stripe cannot express it (MGA 550, KWD 1235): it would
 * refuse the request, and rounding money silently is not ours to do here.
 */
export function toStripeAmount(amount: number, currency: string): number {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new Error('amount must be a positive safe integer');
  if (!isSupportedCurrency(currency)) throw new Error(`${currency} is not a supported currency`);
  const iso = currencyExponent(currency);
  const shift = stripeExponent(currency, iso) - iso;
  let value = BigInt(amount);
  if (shift >= 0) {
    value *= 10n ** BigInt(shift);
  } else {
    const divisor = 10n ** BigInt(-shift);
    if (value % divisor !== 0n) throw new Error(`Stripe charges ${currency} only in whole units`);
    value /= divisor;
  }
  if (STRIPE_THREE_DECIMAL.has(currency) && value % 10n !== 0n) {
    throw new Error(`Stripe charges ${currency} only in multiples of 10 minor units`);
  }
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('amount exceeds the safe integer range');
  return Number(value);
}

/** The parts of a PaymentIntent the mapping reads. */
export type PaymentIntentOutcome = Pick<
  Stripe.PaymentIntent,
  'id' | 'status' | 'last_payment_error' | 'cancellation_reason'
>;

/**
 * A PaymentIntent's status as a charge result
 * (https://docs.stripe.com/payments/paymentintents/lifecycle):
 *
 * | Stripe status             | result                                                        |
 * | ------------------------- | ------------------------------------------------------------- |
 * | `succeeded`               | SUCCEEDED                                                     |
 * | `processing`              | PENDING (the webhook tells how it ends)                       |
 * | `requires_capture`        | PENDING (authorized; not reached with automatic capture)      |
 * | `requires_action`         | REQUIRES_ACTION (the customer must authenticate on-session)   |
 * | `requires_payment_method` | FAILED, classified from `last_payment_error`                  |
 * |                           | (REQUIRES_ACTION when that error is `authentication_required`)|
 * | `canceled`                | FAILED, SOFT (a new attempt makes a new PaymentIntent)        |
 * | anything else             | a non-retryable ProviderError: an operator looks at it        |
 */
export function chargeResultOfPaymentIntent(intent: PaymentIntentOutcome): ChargeResult {
  const error = intent.last_payment_error;
  const reason = {
    code: error?.code,
    declineCode: error?.decline_code,
    adviceCode: error?.advice_code,
    message: error?.message,
  };
  switch (intent.status) {
    case 'succeeded':
      return { providerPaymentId: intent.id, status: 'SUCCEEDED' };
    case 'processing':
    case 'requires_capture':
      return { providerPaymentId: intent.id, status: 'PENDING' };
    case 'requires_action':
      return {
        providerPaymentId: intent.id,
        status: 'REQUIRES_ACTION',
        failureCode: reason.declineCode || reason.code || 'authentication_required',
        failureMessage: reason.message,
      };
    case 'requires_payment_method':
      return unsuccessfulCharge(intent.id, error ? reason : { code: 'requires_payment_method' });
    case 'canceled':
      return {
        providerPaymentId: intent.id,
        status: 'FAILED',
        declineKind: 'SOFT',
        failureCode: 'canceled',
        failureMessage: intent.cancellation_reason ?? undefined,
      };
    default:
      throw new ProviderError(
        PROVIDER,
        'charge',
        `PaymentIntent ${intent.id} is in status ${intent.status}, which an off-session charge never leaves it in`,
        false,
        'UNEXPECTED_STATUS',
      );
  }
}

/**
 * The business outcomes the SDK throws instead of returning:
 * - `StripeCardError` (HTTP 402, https://docs.stripe.com/error-handling#payment-errors): a decline
 *   or `authentication_required`, with the PaymentIntent it left behind;
 * - `resource_missing` on `payment_method` (HTTP 400): the saved card no longer exists, which only a
 *   new card fixes (a HARD failure, no PaymentIntent made).
 * Anything else is undefined: not an answer about the payment.
 */
export function chargeResultOfError(err: unknown): ChargeResult | undefined {
  if (err instanceof Stripe.errors.StripeCardError) {
    return unsuccessfulCharge(err.payment_intent?.id ?? null, {
      code: err.code,
      declineCode: err.decline_code || undefined,
      adviceCode: err.payment_intent?.last_payment_error?.advice_code ?? rawAdviceCode(err.raw),
      message: err.message,
    });
  }
  if (
    err instanceof Stripe.errors.StripeInvalidRequestError &&
    err.code === 'resource_missing' &&
    err.param === 'payment_method'
  ) {
    return unsuccessfulCharge(err.payment_intent?.id ?? null, { code: err.code, message: err.message });
  }
  return undefined;
}

/** The SDK keeps the error body in `raw` but does not type its `advice_code`. */
function rawAdviceCode(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const value = (raw as Record<string, unknown>).advice_code;
  return typeof value === 'string' ? value : undefined;
}

export interface StripeFailure {
  message: string;
  retryable: boolean;
  code: string;
  retryAfterMs?: number | undefined;
}

/**
 * How a thrown error is retried (https://docs.stripe.com/error-handling):
 *
 * | error                                                 | retryable | code                   |
 * | ----------------------------------------------------- | --------- | ---------------------- |
 * | `StripeConnectionError` (network, timeout)            | yes       | `NETWORK`              |
 * | `StripeRateLimitError` (429, or 400 `rate_limit`)     | yes       | Stripe's code / `HTTP_n` |
 * | 5xx, 409 (`idempotency_key_in_use`), 408, 423         | yes       | Stripe's code / `HTTP_n` |
 * | `StripeAPIError` without a status (unreadable answer) | yes       | `HTTP_UNREADABLE`      |
 * | `StripeIdempotencyError` (key reused, other params)   | no        | `IDEMPOTENCY_MISMATCH` |
 * | 401 `StripeAuthenticationError`, 403 permission       | no        | Stripe's code / `HTTP_n` |
 * | other 4xx (`StripeInvalidRequestError`)               | no        | Stripe's code / `HTTP_n` |
 * | anything that is not a Stripe error (a bug)           | no        | `UNEXPECTED`           |
 *
 * Retrying is always safe for money: every retry carries the same idempotency key.
 */
export function describeStripeError(err: unknown): StripeFailure {
  if (!(err instanceof Stripe.errors.StripeError)) {
    return {
      message: err instanceof Error ? err.message : String(err),
      retryable: false,
      code: 'UNEXPECTED',
    };
  }
  const message = err.requestId ? `${err.message} (request ${err.requestId})` : err.message;
  if (err instanceof Stripe.errors.StripeConnectionError)
    return { message, retryable: true, code: 'NETWORK' };
  if (err instanceof Stripe.errors.StripeIdempotencyError) {
    return { message, retryable: false, code: 'IDEMPOTENCY_MISMATCH' };
  }
  const status = err.statusCode;
  if (status === undefined) {
    const unreadable = err instanceof Stripe.errors.StripeAPIError;
    return { message, retryable: unreadable, code: unreadable ? 'HTTP_UNREADABLE' : 'UNEXPECTED' };
  }
  // Stripe also reports a rate limit as a 400 with code `rate_limit`.
  const retryable = err instanceof Stripe.errors.StripeRateLimitError || isRetryableStatus(status);
  const code = err.code ?? `HTTP_${status}`;
  const retryAfterMs = retryable ? parseRetryAfter(err.headers?.['retry-after']) : undefined;
  return { message, retryable, code, retryAfterMs };
}

/** A webhook that cannot be trusted or read; the route answers 400 and Stripe retries later. */
export class StripeWebhookError extends Error {
  constructor(
    readonly reason: 'missing_signature' | 'invalid_signature' | 'malformed_payload',
    message: string,
  ) {
    super(message);
    this.name = 'StripeWebhookError';
  }
}

/**
 * The event of a webhook delivery, once its `Stripe-Signature` proves it came from Stripe
 * (https://docs.stripe.com/webhooks#verify-events). `rawBody` must be the exact bytes received
 * (not re-serialized JSON). An event signed more than `toleranceSeconds` ago is refused, so a
 * captured delivery cannot be replayed later.
 */
export function verifyStripeWebhook(
  rawBody: Buffer,
  signatureHeader: string | undefined,
  secret: string,
  toleranceSeconds = 300,
): Stripe.Event {
  if (!signatureHeader)
    throw new StripeWebhookError('missing_signature', 'the Stripe-Signature header is missing');
  if (!secret) throw new TypeError('a webhook signing secret is required');
  if (!(toleranceSeconds > 0)) throw new RangeError('toleranceSeconds must be positive');
  try {
    return Stripe.webhooks.constructEvent(rawBody, signatureHeader, secret, toleranceSeconds);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
      throw new StripeWebhookError('invalid_signature', message);
    }
    throw new StripeWebhookError('malformed_payload', message);
  }
}
