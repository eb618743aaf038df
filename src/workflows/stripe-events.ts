/**
 * `processStripeEvent` — `stripe-event-<eventId>`: applies one Stripe event the webhook stored.
 * Its id is the event's and reuse is rejected, so a redelivered event is processed once; what it
 * applies only ever moves our state forward (services/stripe-events.ts), and a payment it records
 * settles the invoice (subscription ACTIVE again, pod unsuspended, dunning ended).
 */
import {
  defineQuery,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Settlement, StripeEventActivities, StripeEventOutcome } from '../activities/stripe-events';
import { SEARCH_ATTRIBUTES } from './shared';
import type { ProcessStripeEventInput } from './messages/billing';

export type StripeEventStep = 'loading' | 'applying' | 'settling' | 'done' | 'failed';

export interface StripeEventState {
  eventId: string;
  type: string | null;
  /** Stripe's `created` (ISO): the order events apply in */
  occurredAt: string | null;
  step: StripeEventStep;
  outcome: StripeEventOutcome | null;
  settlement: Settlement | null;
}

export const stripeEventStateQuery = defineQuery<StripeEventState>('state');

const acts = proxyActivities<StripeEventActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * Applying waits out an event that arrived before the one it follows (a refund before its
 * success): Stripe retries a delivery for up to three days (https://docs.stripe.com/webhooks#retries),
 * so the missing event has arrived by then or never will.
 */
const apply = proxyActivities<StripeEventActivities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '3 days',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 minutes' },
});

type SearchAttributeUpdates = Extract<Parameters<typeof upsertSearchAttributes>[0], unknown[]>;

function searchAttributesOf(outcome: StripeEventOutcome): SearchAttributeUpdates {
  const pairs: SearchAttributeUpdates = [
    { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: outcome.result.toUpperCase() },
  ];
  if (outcome.tenantId) pairs.push({ key: SEARCH_ATTRIBUTES.TenantId, value: outcome.tenantId });
  if (outcome.customerId) pairs.push({ key: SEARCH_ATTRIBUTES.CustomerId, value: outcome.customerId });
  if (outcome.invoiceId) pairs.push({ key: SEARCH_ATTRIBUTES.InvoiceId, value: outcome.invoiceId });
  return pairs;
}

export async function processStripeEvent(input: ProcessStripeEventInput): Promise<StripeEventState> {
  const state: StripeEventState = {
    eventId: input.eventId,
    type: null,
    occurredAt: null,
    step: 'loading',
    outcome: null,
    settlement: null,
  };
  setHandler(stripeEventStateQuery, () => state);
  const show = (step: StripeEventStep, details: string) => {
    state.step = step;
    setCurrentDetails(details);
  };

  show('loading', `Reading stored event ${input.eventId}`);
  const event = await acts.loadStripeEvent(input.eventId);
  if (!event) {
    // Only a start by hand can get here: the webhook stores the event before it starts this.
    show('failed', `Event ${input.eventId} was never stored; nothing to apply`);
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'FAILED' }]);
    return state;
  }
  state.type = event.type;
  state.occurredAt = event.occurredAt;
  if (event.processed) {
    show('done', `${event.type} of ${event.occurredAt} was processed before`);
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'DUPLICATE' }]);
    return state;
  }

  show('applying', `Applying ${event.type} of ${event.occurredAt}`);
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'APPLYING' }]);
  const outcome = await apply.applyStripeEvent(input.eventId);
  state.outcome = outcome;
  upsertSearchAttributes(searchAttributesOf(outcome));

  if (outcome.settle && outcome.invoiceId) {
    show('settling', `Invoice ${outcome.invoiceId} is paid: settling its subscription and dunning`);
    state.settlement = await acts.settleInvoicePaid(outcome.invoiceId, outcome.paymentId ?? undefined);
  }
  await acts.markStripeEventProcessed(input.eventId);
  show('done', `${event.type}: ${outcome.result} — ${outcome.detail}`);
  return state;
}
