/**
 * One contract for every PaymentProvider, run on the simulator and on the Stripe client against
 * stripe-mock (through a recorder that shows what goes on the wire); then the simulator's business
 * outcomes, the pure Stripe mappings, and webhook signature verification.
 */
import Stripe from 'stripe';
import { parseConfig } from '../../src/config';
import { ProviderError } from '../../src/providers/errors';
import { createProviders } from '../../src/providers/index';
import {
  classifyDecline,
  type ChargeInput,
  type ChargeResult,
  type DeclineReason,
  type PaymentProvider,
} from '../../src/providers/payments';
import { SimulatedPayments } from '../../src/providers/simulator';
import {
  StripePayments,
  StripeWebhookError,
  chargeResultOfError,
  chargeResultOfPaymentIntent,
  customerIdempotencyKey,
  describeStripeError,
  stripeEndpoint,
  toStripeAmount,
  verifyStripeWebhook,
  type PaymentIntentOutcome,
} from '../../src/providers/stripe';
import { createTestDatabase } from '../helpers/db';
import { StripeRecorder, stripeMockUrl } from '../helpers/stripe-mock';

const API_KEY = 'sk_test_PodplaneContract4f1c9a';
const WEBHOOK_SECRET = 'whsec_podplane_contract_secret';
const CHARGE_STATUSES = ['SUCCEEDED', 'FAILED', 'REQUIRES_ACTION', 'PENDING'];

let serial = 0;
/** unique per call, so keys and ids never collide between tests */
function unique(prefix: string): string {
  serial += 1;
  return `${prefix}_${process.pid}_${serial}`;
}

function chargeInput(overrides: Partial<ChargeInput> = {}): ChargeInput {
  const invoiceId = unique('inv');
  return {
    providerCustomerId: 'cus_contract',
    paymentMethod: 'pm_card_visa',
    amount: 1234,
    currency: 'EUR',
    idempotencyKey: `invoice-${invoiceId}-attempt-1`,
    description: `Invoice ${invoiceId}`,
    metadata: { tenantId: 'ten_contract', invoiceId, attempt: 1 },
    ...overrides,
  };
}

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

interface PaymentsHarness {
  payments: PaymentProvider;
  /** the Stripe client's requests as stripe-mock received them; absent for the simulator */
  recorder?: StripeRecorder;
  close(): Promise<void>;
}

function simulatedHarness(): Promise<PaymentsHarness> {
  return Promise.resolve({ payments: new SimulatedPayments({ delayMs: 0 }), close: () => Promise.resolve() });
}

async function stripeHarness(): Promise<PaymentsHarness> {
  const recorder = new StripeRecorder(stripeMockUrl());
  await recorder.start();
  const payments = new StripePayments({ apiKey: API_KEY, ...stripeEndpoint(recorder.url) });
  return { payments, recorder, close: () => recorder.stop() };
}

describe.each([
  ['SimulatedPayments', simulatedHarness],
  ['StripePayments against stripe-mock', stripeHarness],
])('PaymentProvider contract: %s', (_name, makeHarness) => {
  let h: PaymentsHarness;
  beforeAll(async () => {
    h = await makeHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const lastRequestTo = (path: string) => {
    const found = h.recorder?.requests.filter((r) => r.path === path).at(-1);
    if (!found) throw new Error(`no request to ${path}`);
    return found;
  };

  it('returns the recorded provider customer without making another', async () => {
    const before = h.recorder?.requests.length ?? 0;
    const id = await h.payments.ensureCustomer({
      customerId: unique('cus'),
      tenantId: 'ten_contract',
      email: 'known@example.test',
      name: 'Known',
      existingProviderCustomerId: 'cus_AlreadyThere',
    });
    expect(id).toBe('cus_AlreadyThere');
    expect(h.recorder?.requests.length ?? 0).toBe(before);
  });

  it('makes one provider customer per customer of ours', async () => {
    const customerId = unique('cus');
    const input = { customerId, tenantId: 'ten_contract', email: 'ada@example.test', name: 'Ada' };
    const first = await h.payments.ensureCustomer(input);
    const second = await h.payments.ensureCustomer(input);
    expect(first).toMatch(/^(sim_)?cus_\w+$/);
    if (h.recorder) {
      // stripe-mock keeps no state; Stripe answers the second create with the first customer
      // because both carry the same idempotency key.
      const key = customerIdempotencyKey(customerId);
      expect(h.recorder.keysSentTo('/v1/customers').filter((sent) => sent === key)).toHaveLength(2);
      const sent = lastRequestTo('/v1/customers').form;
      expect(sent.get('email')).toBe('ada@example.test');
      expect(sent.get('name')).toBe('Ada');
      expect(sent.get('metadata[podplane_customer_id]')).toBe(customerId);
      expect(sent.get('metadata[podplane_tenant_id]')).toBe('ten_contract');
    } else {
      expect(second).toBe(first);
    }
  });

  it('creates a SetupIntent for saving a card to charge off-session', async () => {
    const key = unique('setup');
    const intent = await h.payments.createSetupIntent('cus_contract', key);
    expect(intent.id).toMatch(/^(sim_)?seti_\w+$/);
    expect(intent.clientSecret).toMatch(/_secret_/);
    expect(intent.status).toBe('requires_payment_method');
    if (h.recorder) {
      const sent = lastRequestTo('/v1/setup_intents');
      expect(sent.headers['idempotency-key']).toBe(key);
      expect(sent.form.get('customer')).toBe('cus_contract');
      expect(sent.form.get('usage')).toBe('off_session');
      expect(sent.form.get('payment_method_types[0]')).toBe('card');
    } else {
      expect(await h.payments.createSetupIntent('cus_contract', key)).toEqual(intent);
    }
  });

  it('charges off-session under our idempotency key and returns the provider payment', async () => {
    const input = chargeInput();
    const result = await h.payments.charge(input);
    expect(result.providerPaymentId).toMatch(/^(sim_)?pi_\w+$/);
    expect(CHARGE_STATUSES).toContain(result.status);
    if (h.recorder) {
      const sent = lastRequestTo('/v1/payment_intents');
      expect(sent.headers['idempotency-key']).toBe(input.idempotencyKey);
      expect(Object.fromEntries(sent.form)).toMatchObject({
        amount: '1234',
        currency: 'eur',
        customer: 'cus_contract',
        payment_method: 'pm_card_visa',
        off_session: 'true',
        confirm: 'true',
        description: input.description,
        'metadata[tenant_id]': 'ten_contract',
        'metadata[invoice_id]': input.metadata.invoiceId,
        'metadata[attempt]': '1',
      });
    } else {
      expect(result).toEqual({ providerPaymentId: expect.stringMatching(/^sim_pi_/), status: 'SUCCEEDED' });
    }
  });

  it('treats the same key twice as one charge', async () => {
    const input = chargeInput();
    const first = await h.payments.charge(input);
    const second = await h.payments.charge(input);
    if (h.recorder) {
      expect(h.recorder.keysSentTo('/v1/payment_intents').slice(-2)).toEqual([
        input.idempotencyKey,
        input.idempotencyKey,
      ]);
    } else {
      expect(second).toEqual(first);
    }
  });

  it.each(['', ' ', 'k'.repeat(256)])('refuses to charge under the key %j, sending nothing', async (key) => {
    const before = h.recorder?.requests.length ?? 0;
    const err = await thrown(h.payments.charge(chargeInput({ idempotencyKey: key })));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: 'INVALID_REQUEST', retryable: false });
    expect(h.recorder?.requests.length ?? 0).toBe(before);
  });

  it('sends a zero-decimal amount as it is', async () => {
    const result = await h.payments.charge(chargeInput({ amount: 5000, currency: 'JPY' }));
    expect(result.providerPaymentId).toMatch(/^(sim_)?pi_\w+$/);
    if (h.recorder) {
      const sent = lastRequestTo('/v1/payment_intents').form;
      expect([sent.get('amount'), sent.get('currency')]).toEqual(['5000', 'jpy']);
    } else {
      expect(result.status).toBe('SUCCEEDED');
    }
  });
});

describe('SimulatedPayments outcomes (Stripe test payment methods)', () => {
  const payments = new SimulatedPayments({ delayMs: 0 });

  it.each<[string, Omit<ChargeResult, 'providerPaymentId'>]>([
    ['pm_card_visa', { status: 'SUCCEEDED' }],
    ['pm_card_mastercard', { status: 'SUCCEEDED' }],
    ['pm_card_amex', { status: 'SUCCEEDED' }],
    ['pm_card_jp', { status: 'SUCCEEDED' }],
    ['pm_card_authenticationRequiredOnSetup', { status: 'SUCCEEDED' }],
    [
      'pm_card_chargeDeclined',
      {
        status: 'FAILED',
        declineKind: 'HARD',
        failureCode: 'generic_decline',
        failureMessage: 'Your card was declined.',
      },
    ],
    [
      'pm_card_chargeDeclinedInsufficientFunds',
      {
        status: 'FAILED',
        declineKind: 'SOFT',
        failureCode: 'insufficient_funds',
        failureMessage: 'Your card has insufficient funds.',
      },
    ],
    [
      'pm_card_insufficientFunds',
      {
        status: 'FAILED',
        declineKind: 'SOFT',
        failureCode: 'insufficient_funds',
        failureMessage: 'Your card has insufficient funds.',
      },
    ],
    [
      'pm_card_chargeDeclinedFraudulent',
      {
        status: 'FAILED',
        declineKind: 'HARD',
        failureCode: 'fraudulent',
        failureMessage: 'Your card was declined.',
      },
    ],
    [
      'pm_card_visa_chargeDeclinedLostCard',
      {
        status: 'FAILED',
        declineKind: 'HARD',
        failureCode: 'lost_card',
        failureMessage: 'Your card was declined.',
      },
    ],
    [
      'pm_card_chargeDeclinedStolenCard',
      {
        status: 'FAILED',
        declineKind: 'HARD',
        failureCode: 'stolen_card',
        failureMessage: 'Your card was declined.',
      },
    ],
    [
      'pm_card_chargeDeclinedExpiredCard',
      {
        status: 'FAILED',
        declineKind: 'HARD',
        failureCode: 'expired_card',
        failureMessage: 'Your card has expired.',
      },
    ],
    [
      'pm_card_chargeDeclinedProcessingError',
      {
        status: 'FAILED',
        declineKind: 'SOFT',
        failureCode: 'processing_error',
        failureMessage: 'An error occurred while processing your card. Try again in a little bit.',
      },
    ],
    [
      'pm_card_authenticationRequired',
      {
        status: 'REQUIRES_ACTION',
        failureCode: 'authentication_required',
        failureMessage: 'Your card was declined. This transaction requires authentication.',
      },
    ],
  ])('%s → %j', async (paymentMethod, expected) => {
    const result = await payments.charge(chargeInput({ paymentMethod }));
    expect(result).toEqual({
      providerPaymentId: expect.stringMatching(/^sim_pi_[0-9a-f]{24}$/),
      ...expected,
    });
  });

  it('fails an unknown payment method as Stripe does: HARD, no payment made', async () => {
    expect(await payments.charge(chargeInput({ paymentMethod: 'pm_1NotASavedCard' }))).toEqual({
      providerPaymentId: null,
      status: 'FAILED',
      declineKind: 'HARD',
      failureCode: 'resource_missing',
      failureMessage: "No such PaymentMethod: 'pm_1NotASavedCard'",
    });
  });

  it('derives ids from the keys, so a restarted worker gets the same answer', async () => {
    const input = chargeInput({ paymentMethod: 'pm_card_chargeDeclined' });
    const before = await payments.charge(input);
    const afterRestart = await new SimulatedPayments({ delayMs: 0 }).charge(input);
    expect(afterRestart).toEqual(before);
    const customer = { customerId: 'cus_restart', tenantId: 'ten_1', email: 'r@example.test', name: 'R' };
    expect(await new SimulatedPayments({ delayMs: 0 }).ensureCustomer(customer)).toBe(
      await payments.ensureCustomer(customer),
    );
  });

  it('refuses a key reused for another charge, as Stripe answers idempotency_error', async () => {
    const input = chargeInput();
    await payments.charge(input);
    const err = await thrown(payments.charge({ ...input, amount: input.amount + 1 }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: 'IDEMPOTENCY_MISMATCH', retryable: false });
  });

  it.each([0, -100, 12.5])('refuses the amount %p without deciding anything', async (amount) => {
    const err = await thrown(payments.charge(chargeInput({ amount })));
    expect(err).toMatchObject({ code: 'INVALID_REQUEST', retryable: false });
  });

  it('answers no sooner than its configured delay', async () => {
    const slow = new SimulatedPayments({ delayMs: 60 });
    const started = performance.now();
    await slow.charge(chargeInput());
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
  });
});

describe('classifyDecline', () => {
  it.each<[DeclineReason, 'HARD' | 'SOFT']>([
    [{ code: 'card_declined', declineCode: 'stolen_card' }, 'HARD'],
    [{ code: 'card_declined', declineCode: 'lost_card' }, 'HARD'],
    [{ code: 'card_declined', declineCode: 'pickup_card' }, 'HARD'],
    [{ code: 'card_declined', declineCode: 'fraudulent' }, 'HARD'],
    [{ code: 'card_declined', declineCode: 'do_not_try_again' }, 'HARD'],
    [{ code: 'expired_card' }, 'HARD'],
    [{ code: 'incorrect_cvc' }, 'HARD'],
    [{ code: 'resource_missing' }, 'HARD'],
    [{ code: 'card_declined', declineCode: 'insufficient_funds' }, 'SOFT'],
    [{ code: 'card_declined', declineCode: 'card_velocity_exceeded' }, 'SOFT'],
    [{ code: 'card_declined', declineCode: 'try_again_later' }, 'SOFT'],
    [{ code: 'processing_error' }, 'SOFT'],
    [{ code: 'card_declined', declineCode: 'generic_decline' }, 'SOFT'],
    [{ code: 'card_declined', declineCode: 'do_not_honor' }, 'SOFT'],
    [{ code: 'card_declined' }, 'SOFT'],
    [{ code: 'card_declined', declineCode: 'a_code_stripe_adds_next_year' }, 'SOFT'],
    [{ code: 'card_declined', declineCode: 'generic_decline', adviceCode: 'do_not_try_again' }, 'HARD'],
    [{ code: 'card_declined', declineCode: 'generic_decline', adviceCode: 'confirm_card_data' }, 'HARD'],
    [{ code: 'card_declined', declineCode: 'incorrect_zip', adviceCode: 'try_again_later' }, 'SOFT'],
  ])('%j → %s', (reason, kind) => {
    expect(classifyDecline(reason)).toBe(kind);
  });
});

describe('Stripe PaymentIntent status mapping', () => {
  const intent = (overrides: Partial<PaymentIntentOutcome>): PaymentIntentOutcome => ({
    id: 'pi_map',
    status: 'succeeded',
    last_payment_error: null,
    cancellation_reason: null,
    ...overrides,
  });

  it.each<[Partial<PaymentIntentOutcome>, ChargeResult]>([
    [{ status: 'succeeded' }, { providerPaymentId: 'pi_map', status: 'SUCCEEDED' }],
    [{ status: 'processing' }, { providerPaymentId: 'pi_map', status: 'PENDING' }],
    [{ status: 'requires_capture' }, { providerPaymentId: 'pi_map', status: 'PENDING' }],
    [
      { status: 'requires_action' },
      { providerPaymentId: 'pi_map', status: 'REQUIRES_ACTION', failureCode: 'authentication_required' },
    ],
    [
      {
        status: 'requires_payment_method',
        last_payment_error: {
          type: 'card_error',
          code: 'card_declined',
          decline_code: 'insufficient_funds',
          message: 'Your card has insufficient funds.',
        },
      },
      {
        providerPaymentId: 'pi_map',
        status: 'FAILED',
        declineKind: 'SOFT',
        failureCode: 'insufficient_funds',
        failureMessage: 'Your card has insufficient funds.',
      },
    ],
    [
      {
        status: 'requires_payment_method',
        last_payment_error: {
          type: 'card_error',
          code: 'card_declined',
          decline_code: 'stolen_card',
          message: 'Declined.',
        },
      },
      {
        providerPaymentId: 'pi_map',
        status: 'FAILED',
        declineKind: 'HARD',
        failureCode: 'stolen_card',
        failureMessage: 'Declined.',
      },
    ],
    [
      {
        status: 'requires_payment_method',
        last_payment_error: {
          type: 'card_error',
          code: 'authentication_required',
          decline_code: 'authentication_required',
          message: 'Authenticate.',
        },
      },
      {
        providerPaymentId: 'pi_map',
        status: 'REQUIRES_ACTION',
        failureCode: 'authentication_required',
        failureMessage: 'Authenticate.',
      },
    ],
    [
      { status: 'requires_payment_method' },
      {
        providerPaymentId: 'pi_map',
        status: 'FAILED',
        declineKind: 'SOFT',
        failureCode: 'requires_payment_method',
      },
    ],
    [
      { status: 'canceled', cancellation_reason: 'automatic' },
      {
        providerPaymentId: 'pi_map',
        status: 'FAILED',
        declineKind: 'SOFT',
        failureCode: 'canceled',
        failureMessage: 'automatic',
      },
    ],
  ])('%j', (overrides, expected) => {
    expect(chargeResultOfPaymentIntent(intent(overrides))).toEqual(expected);
  });

  it('refuses a status an off-session charge cannot end in', () => {
    let err: unknown;
    try {
      chargeResultOfPaymentIntent(intent({ status: 'requires_confirmation' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: 'UNEXPECTED_STATUS', retryable: false });
  });
});

describe('Stripe errors', () => {
  it('turns a StripeCardError into a classified result', () => {
    const err = new Stripe.errors.StripeCardError({
      type: 'card_error',
      code: 'card_declined',
      decline_code: 'lost_card',
      message: 'Your card was declined.',
    });
    expect(chargeResultOfError(err)).toEqual({
      providerPaymentId: null,
      status: 'FAILED',
      declineKind: 'HARD',
      failureCode: 'lost_card',
      failureMessage: 'Your card was declined.',
    });
  });

  it('turns a missing payment method into a HARD failure and nothing else into a result', () => {
    const missing = new Stripe.errors.StripeInvalidRequestError({
      type: 'invalid_request_error',
      code: 'resource_missing',
      param: 'payment_method',
      message: "No such PaymentMethod: 'pm_gone'",
    });
    expect(chargeResultOfError(missing)).toMatchObject({ status: 'FAILED', declineKind: 'HARD' });
    const otherMissing = new Stripe.errors.StripeInvalidRequestError({
      type: 'invalid_request_error',
      code: 'resource_missing',
      param: 'customer',
    });
    expect(chargeResultOfError(otherMissing)).toBeUndefined();
    expect(chargeResultOfError(new Error('boom'))).toBeUndefined();
  });

  it.each<[string, unknown, { retryable: boolean; code: string; retryAfterMs?: number }]>([
    [
      'a connection error',
      new Stripe.errors.StripeConnectionError({ type: 'api_error', message: 'ECONNRESET' }),
      { retryable: true, code: 'NETWORK' },
    ],
    [
      'a 429 with Retry-After',
      new Stripe.errors.StripeRateLimitError({
        type: 'rate_limit_error',
        statusCode: 429,
        code: 'rate_limit',
        headers: { 'retry-after': '2' },
      }),
      { retryable: true, code: 'rate_limit', retryAfterMs: 2000 },
    ],
    [
      'a 500',
      new Stripe.errors.StripeAPIError({ type: 'api_error', statusCode: 500 }),
      { retryable: true, code: 'HTTP_500' },
    ],
    [
      'a 409 key in use',
      new Stripe.errors.StripeInvalidRequestError({
        type: 'invalid_request_error',
        statusCode: 409,
        code: 'idempotency_key_in_use',
      }),
      { retryable: true, code: 'idempotency_key_in_use' },
    ],
    [
      'an unreadable answer',
      new Stripe.errors.StripeAPIError({ type: 'api_error', message: 'Invalid JSON' }),
      { retryable: true, code: 'HTTP_UNREADABLE' },
    ],
    [
      'a key reused with other parameters',
      new Stripe.errors.StripeIdempotencyError({ type: 'idempotency_error', statusCode: 400 }),
      { retryable: false, code: 'IDEMPOTENCY_MISMATCH' },
    ],
    [
      'a bad API key',
      new Stripe.errors.StripeAuthenticationError({ type: 'authentication_error', statusCode: 401 }),
      { retryable: false, code: 'HTTP_401' },
    ],
    [
      'an invalid request',
      new Stripe.errors.StripeInvalidRequestError({
        type: 'invalid_request_error',
        statusCode: 400,
        code: 'parameter_unknown',
      }),
      { retryable: false, code: 'parameter_unknown' },
    ],
    ['a bug of ours', new TypeError('x is undefined'), { retryable: false, code: 'UNEXPECTED' }],
  ])('%s', (_what, err, expected) => {
    expect(describeStripeError(err)).toMatchObject(expected);
  });
});

describe('toStripeAmount', () => {
  it.each([
    [1234, 'EUR', 1234],
    [5000, 'JPY', 5000],
    [1230, 'KWD', 1230],
    [5, 'ISK', 500],
    [500, 'MGA', 5],
  ])('%p %s → %p', (amount, currency, expected) => {
    expect(toStripeAmount(amount, currency)).toBe(expected);
  });

  it.each([
    [550, 'MGA'],
    [1235, 'KWD'],
    [0, 'EUR'],
    [100, 'XXX'],
    [100, 'eur'],
  ])('refuses %p %s', (amount, currency) => {
    expect(() => toStripeAmount(amount, currency)).toThrow(Error);
  });
});

describe('StripePayments on the wire (stripe-mock behind a recorder)', () => {
  let recorder: StripeRecorder;
  let stripe: StripePayments;
  beforeAll(async () => {
    recorder = new StripeRecorder(stripeMockUrl());
    await recorder.start();
    stripe = new StripePayments({ apiKey: API_KEY, ...stripeEndpoint(recorder.url) });
  });
  afterAll(async () => {
    await recorder?.stop();
  });

  it('retries a 500 itself with our key, never a key of its own', async () => {
    const input = chargeInput();
    recorder.answerNext(500, { error: { type: 'api_error', message: 'An unknown error occurred' } });
    const result = await stripe.charge(input);
    expect(result.providerPaymentId).toMatch(/^pi_/);
    expect(recorder.keysSentTo('/v1/payment_intents').slice(-2)).toEqual([
      input.idempotencyKey,
      input.idempotencyKey,
    ]);
  });

  it('returns a decline the SDK throws as a result, with its PaymentIntent', async () => {
    recorder.answerNext(402, {
      error: {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'stolen_card',
        message: 'Your card was declined.',
        payment_intent: { id: 'pi_declined', object: 'payment_intent', status: 'requires_payment_method' },
      },
    });
    expect(await stripe.charge(chargeInput())).toEqual({
      providerPaymentId: 'pi_declined',
      status: 'FAILED',
      declineKind: 'HARD',
      failureCode: 'stolen_card',
      failureMessage: 'Your card was declined.',
    });
  });

  it('follows the advice code of a decline', async () => {
    recorder.answerNext(402, {
      error: {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'generic_decline',
        advice_code: 'do_not_try_again',
        message: 'Your card was declined.',
      },
    });
    expect(await stripe.charge(chargeInput())).toMatchObject({ status: 'FAILED', declineKind: 'HARD' });
  });

  it('reports a refused key as a non-retryable error without the key in it', async () => {
    recorder.answerNext(401, {
      error: { type: 'invalid_request_error', message: `Invalid API Key provided: ${API_KEY}` },
    });
    const err = await thrown(
      stripe.ensureCustomer({ customerId: unique('cus'), tenantId: 't', email: 'e@example.test', name: 'E' }),
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({
      provider: 'stripe',
      operation: 'ensureCustomer',
      retryable: false,
      code: 'HTTP_401',
    });
    expect((err as Error).message).not.toContain(API_KEY);
  });

  it('reports an outage that outlasts the SDK retries as retryable', async () => {
    const outage = new StripePayments({
      apiKey: API_KEY,
      ...stripeEndpoint(recorder.url),
      maxNetworkRetries: 0,
    });
    recorder.answerNext(503, { error: { type: 'api_error', message: 'Service unavailable' } });
    const err = await thrown(outage.createSetupIntent('cus_contract', unique('setup')));
    expect(err).toMatchObject({ retryable: true, code: 'HTTP_503' });
  });

  it('has stripe-mock validate requests, so the accepted shapes above are real ones', async () => {
    const params: Stripe.PaymentIntentCreateParams & Record<string, unknown> = {
      amount: 100,
      currency: 'eur',
      not_a_stripe_parameter: 'x',
    };
    const err = await thrown(stripe.client.paymentIntents.create(params));
    expect(describeStripeError(err)).toMatchObject({ retryable: false, code: 'HTTP_400' });
  });

  it('refuses an amount Stripe cannot express before calling it', async () => {
    const before = recorder.requests.length;
    const err = await thrown(stripe.charge(chargeInput({ amount: 1235, currency: 'KWD' })));
    expect(err).toMatchObject({ code: 'INVALID_AMOUNT', retryable: false });
    expect(recorder.requests.length).toBe(before);
  });
});

describe('verifyStripeWebhook', () => {
  const payload = JSON.stringify({ id: 'evt_contract', object: 'event', type: 'payment_intent.succeeded' });
  const now = () => Math.floor(Date.now() / 1000);
  const sign = (body: string, timestamp = now(), secret = WEBHOOK_SECRET) =>
    Stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
  const reasonOf = (run: () => unknown): string | undefined => {
    try {
      run();
    } catch (err) {
      if (err instanceof StripeWebhookError) return err.reason;
      throw err;
    }
    return undefined;
  };

  it('returns the event of a delivery signed with our secret', () => {
    const event = verifyStripeWebhook(Buffer.from(payload), sign(payload), WEBHOOK_SECRET);
    expect(event).toMatchObject({ id: 'evt_contract', type: 'payment_intent.succeeded' });
  });

  it('accepts a delivery signed just inside the tolerance', () => {
    expect(() =>
      verifyStripeWebhook(Buffer.from(payload), sign(payload, now() - 290), WEBHOOK_SECRET),
    ).not.toThrow();
  });

  it.each<[string, () => unknown, string]>([
    [
      'a missing header',
      () => verifyStripeWebhook(Buffer.from(payload), undefined, WEBHOOK_SECRET),
      'missing_signature',
    ],
    [
      'another secret',
      () =>
        verifyStripeWebhook(Buffer.from(payload), sign(payload, now(), 'whsec_someone_else'), WEBHOOK_SECRET),
      'invalid_signature',
    ],
    [
      'a changed body',
      () =>
        verifyStripeWebhook(
          Buffer.from(payload.replace('succeeded', 'canceled')),
          sign(payload),
          WEBHOOK_SECRET,
        ),
      'invalid_signature',
    ],
    [
      'a delivery older than five minutes',
      () => verifyStripeWebhook(Buffer.from(payload), sign(payload, now() - 301), WEBHOOK_SECRET),
      'invalid_signature',
    ],
    [
      'a garbage header',
      () => verifyStripeWebhook(Buffer.from(payload), 'nonsense', WEBHOOK_SECRET),
      'invalid_signature',
    ],
    [
      'a signed body that is not JSON',
      () => verifyStripeWebhook(Buffer.from('not json'), sign('not json'), WEBHOOK_SECRET),
      'malformed_payload',
    ],
  ])('refuses %s', (_what, run, reason) => {
    expect(reasonOf(run)).toBe(reason);
  });
});

describe('createProviders: payments', () => {
  it('is the simulator without a Stripe key, the Stripe client with one', async () => {
    const db = await createTestDatabase();
    try {
      expect(createProviders(parseConfig({}), db.orm).payments).toBeInstanceOf(SimulatedPayments);
      const configured = createProviders(
        parseConfig({ STRIPE_SECRET_KEY: API_KEY, STRIPE_API_BASE: stripeMockUrl() }),
        db.orm,
      ).payments;
      expect(configured).toBeInstanceOf(StripePayments);
      expect(configured.name).toBe('stripe');
      expect(await configured.createSetupIntent('cus_contract', unique('setup'))).toMatchObject({
        id: expect.stringMatching(/^seti_/),
      });
    } finally {
      await db.close();
    }
  });
});
