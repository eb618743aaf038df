/**
 * Activities of `processStripeEvent`, and the settlement of a paid invoice that any billing
 * workflow (a dunning retry that succeeded, too) runs after a payment. Each calls a repeatable
 * service function: applying an event twice, or settling an invoice twice, changes nothing more.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import type { MikroORM } from '../db/orm';
import { AppError } from '../domain/errors';
import type { Logger } from '../logger';
import { settleInvoicePaid, type Settlement } from '../services/settlement';
import * as stripeEvents from '../services/stripe-events';

export type { Settlement };
export type { StripeEventOutcome } from '../services/stripe-events';

export interface StripeEventActivityDeps {
  orm: MikroORM;
  config: Config;
  logger: Logger;
}

/** What the workflow needs of a stored event to describe itself. */
export interface StripeEventSummary {
  type: string;
  /** Stripe's `created`, ISO */
  occurredAt: string;
  processed: boolean;
}

export function createStripeEventActivities(deps: StripeEventActivityDeps) {
  const { orm, config, logger } = deps;

  return {
    /** The stored event's type and time; null when no event of that id was stored. */
    async loadStripeEvent(eventId: string): Promise<StripeEventSummary | null> {
      const event = await stripeEvents.loadStripeEvent(orm, eventId);
      if (!event) return null;
      return { type: event.type, occurredAt: event.occurredAt.toISOString(), processed: event.processed };
    },

    /**
     * Applies the event. A refusal of our own (`AppError`: the payment cannot take it) is final; an
     * event that must wait for an earlier one, like any other error, is retried.
     */
    async applyStripeEvent(eventId: string): Promise<stripeEvents.StripeEventOutcome> {
      try {
        const outcome = await stripeEvents.applyStripeEvent(orm, eventId);
        logger.info(
          { eventId, result: outcome.result, invoiceId: outcome.invoiceId },
          'stripe event applied',
        );
        return outcome;
      } catch (err) {
        if (err instanceof AppError) throw ApplicationFailure.nonRetryable(err.detail, `billing.${err.kind}`);
        throw err;
      }
    },

    /**
     * Settles a PAID invoice: its subscription ACTIVE again, its pod unsuspended, its dunning
     * signalled. An engine that could not take the signal is retried (every step is repeatable);
     * an unsuspend that could not be requested is an ops event, never a failed payment.
     */
    async settleInvoicePaid(invoiceId: string, paymentId?: string): Promise<Settlement> {
      const temporal = Context.current().client;
      const settlement = await settleInvoicePaid({ orm, temporal, config }, invoiceId, paymentId);
      if (settlement.dunning === 'unreachable') {
        throw new Error(`dunning-${invoiceId} could not be signalled; retrying the settlement`);
      }
      logger.info({ invoiceId, settlement }, 'invoice settled');
      return settlement;
    },

    async markStripeEventProcessed(eventId: string): Promise<void> {
      await stripeEvents.markStripeEventProcessed(orm, eventId);
    },
  };
}

export type StripeEventActivities = ReturnType<typeof createStripeEventActivities>;
