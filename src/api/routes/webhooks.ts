/**
 * /api/v1/billing/webhooks/stripe: Stripe's deliveries of events. Public — Stripe holds no API token
 * — and authenticated by the `Stripe-Signature` over the raw body instead
 * (https://docs.stripe.com/webhooks#verify-events). An event that verifies is stored by its id and
 * handed to `processStripeEvent`, and answered at once: Stripe wants a 2xx quickly and retries
 * anything else (https://docs.stripe.com/webhooks#acknowledge-events-immediately).
 */
import type { Client } from '@temporalio/client';
import type Stripe from 'stripe';
import type { Config } from '../../config';
import { AppError } from '../../domain/errors';
import { StripeWebhookError, verifyStripeWebhook } from '../../providers/stripe';
import { isStorableEvent, recordStripeEvent, startStripeEventProcessing } from '../../services/stripe-events';
import { route, type Route } from '../http/route';
import type { ApiMetrics } from '../middleware/metrics';
import { WebhookReceived } from './webhooks.schemas';

/** Stripe's own replay window: a signature older than this is refused, so a captured delivery cannot be replayed. */
const SIGNATURE_TOLERANCE_SECONDS = 300;

const REFUSALS: Record<StripeWebhookError['reason'], string> = {
  missing_signature: 'the Stripe-Signature header is missing',
  invalid_signature:
    'the Stripe-Signature does not match the body for the configured secret, or it is more than 5 minutes old',
  malformed_payload: 'the body is not a Stripe event',
};

/** The verified event; every refusal is 400 and nothing of the request is kept. */
function verifiedEvent(body: unknown, signature: string | undefined, secret: string): Stripe.Event {
  if (!Buffer.isBuffer(body)) throw new AppError('malformed_request', 'send the event as application/json');
  let event: Stripe.Event;
  try {
    event = verifyStripeWebhook(body, signature, secret, SIGNATURE_TOLERANCE_SECONDS);
  } catch (err) {
    if (err instanceof StripeWebhookError) throw new AppError('malformed_request', REFUSALS[err.reason]);
    throw err;
  }
  if (!isStorableEvent(event)) throw new AppError('malformed_request', REFUSALS.malformed_payload);
  return event;
}

export function webhookRoutes(deps: { config: Config; temporal: Client; metrics: ApiMetrics }): Route[] {
  return [
    route({
      operationId: 'receiveStripeWebhook',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/webhooks/stripe',
      summary: 'Receive a Stripe event: verified, stored once by its id, and processed by a workflow',
      description:
        'Configure this URL as a webhook endpoint at Stripe and its signing secret as `STRIPE_WEBHOOK_SECRET`. ' +
        'A missing, wrong or older than 5 minutes signature is 400 and nothing is stored. A verified event is ' +
        'stored (a redelivery finds it) and `processStripeEvent` (`stripe-event-<event id>`) is started before ' +
        'the 200; when the workflow engine cannot be reached the answer is 503 so that Stripe delivers it again ' +
        '(the stored row is kept: storing is idempotent). Without a configured secret every delivery is 503.',
      access: { public: 'Stripe calls it; the signature authenticates it' },
      rawBody: { contentType: 'application/json' },
      durable: true,
      responses: {
        200: { description: 'Stored', content: { 'application/json': { schema: WebhookReceived } } },
      },
      async handle({ req, em, res, log }) {
        const secret = deps.config.STRIPE_WEBHOOK_SECRET;
        if (!secret)
          throw new AppError('unavailable', 'webhooks are not configured: STRIPE_WEBHOOK_SECRET is not set');
        const event = verifiedEvent(req.body, req.get('stripe-signature'), secret);
        const { processed } = await recordStripeEvent(em, event);
        if (!processed) {
          const { started } = await startStripeEventProcessing(deps, event);
          if (started) deps.metrics.workflowStarts.inc({ workflow: 'processStripeEvent' });
        }
        log.info({ eventId: event.id, eventType: event.type, processed }, 'stripe event received');
        res.json({ received: true });
      },
    }),
  ];
}
