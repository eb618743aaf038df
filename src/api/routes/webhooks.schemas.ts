/** Response schemas for /api/v1/billing/webhooks/*. */
import { z } from '../zod';

export const WebhookReceived = z.object({ received: z.literal(true) }).openapi('WebhookReceived', {
  description: 'The event is stored; it is applied by the `processStripeEvent` workflow',
});
