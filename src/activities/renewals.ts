/**
 * Activities of the scheduled billing workflows (`billingRun`, `renewSubscription`,
 * `trialSweep`). Each calls a repeatable service step (services/renewals.ts), so Temporal may
 * retry any of them. Business refusals (`AppError`) are non-retryable failures typed
 * `billing.<kind>`; an unreachable workflow engine (`unavailable`) and anything else are retried.
 */
import { Context } from '@temporalio/activity';
import type { Config } from '../config';
import { Subscription } from '../db/entities';
import { systemEm, type MikroORM } from '../db/orm';
import type { Logger } from '../logger';
import type { PaymentProvider } from '../providers/payments';
import { startDunning } from '../services/dunning';
import * as renewals from '../services/renewals';
import { terminateSubscriptionPod } from '../services/subscriptions';
import { billingNow, subscriptionBillingClock } from '../services/test-clocks';
import type { DunningInput } from '../workflows/messages/billing';
import { refusalsFinal } from './refusals';

export interface RenewalActivityDeps {
  orm: MikroORM;
  config: Config;
  logger: Logger;
  /** charges the final invoice of a subscription canceled at its period end; without it that invoice is left OPEN */
  payments?: PaymentProvider;
}

/** Renewals started at once within a page: enough to keep the engine busy, bounded for it. */
const START_CONCURRENCY = 20;

/** What a page of the billing run has done so far: its heartbeat, from which a retry resumes. */
interface PageProgress {
  /** the last subscription whose renewal was started (or found running) */
  lastId: string | null;
  started: number;
  alreadyRunning: number;
}

export interface RenewalPage {
  /** due subscriptions on the page: fewer than the limit means it was the last one */
  found: number;
  started: number;
  alreadyRunning: number;
  /** the cursor of the next page */
  lastId: string | null;
}

export function createRenewalActivities(deps: RenewalActivityDeps) {
  const { orm, config, logger } = deps;
  const em = () => systemEm(orm);

  // The cancellation has committed: a provider that cannot be reached leaves the final invoice
  // OPEN (collected by `POST …/pay`) rather than failing the renewal before its pod is terminated.
  const chargeFinal = async (subscriptionId: string): Promise<void> => {
    if (!deps.payments) return;
    try {
      const charged = await renewals.chargeFinalInvoice({ orm, payments: deps.payments }, subscriptionId);
      if (charged.invoiceId) logger.info({ subscriptionId, ...charged }, 'final invoice charged');
    } catch (err) {
      logger.warn({ subscriptionId, err }, 'final invoice not charged: left OPEN');
    }
  };

  return {
    /**
     * Starts the renewals of one page of due subscriptions, heartbeating after each batch; a retry
     * resumes after the last subscription its heartbeat reported.
     */
    async startDueRenewals(input: {
      asOf: string;
      after: string | null;
      limit: number;
    }): Promise<RenewalPage> {
      const ctx = Context.current();
      const resumed = ctx.info.heartbeatDetails as PageProgress | undefined;
      const progress: PageProgress = resumed ?? { lastId: null, started: 0, alreadyRunning: 0 };
      const due = await renewals.dueSubscriptionsPage(systemEm(orm), {
        asOf: new Date(input.asOf),
        after: input.after,
        limit: input.limit,
      });
      const todo = progress.lastId ? due.filter((d) => d.id > (progress.lastId ?? '')) : due;
      for (let i = 0; i < todo.length; i += START_CONCURRENCY) {
        const batch = todo.slice(i, i + START_CONCURRENCY);
        const outcomes = await Promise.all(batch.map((d) => renewals.startRenewal(ctx.client, d)));
        progress.started += outcomes.filter((o) => o === 'started').length;
        progress.alreadyRunning += outcomes.filter((o) => o === 'already-running').length;
        progress.lastId = batch.at(-1)?.id ?? progress.lastId;
        ctx.heartbeat(progress);
      }
      return {
        found: due.length,
        started: progress.started,
        alreadyRunning: progress.alreadyRunning,
        lastId: due.at(-1)?.id ?? null,
      };
    },

    /** What the renewal will do, as of the subscription's billing time (its customer's test clock, or now). */
    async planRenewal(subscriptionId: string, periodStart: string): Promise<renewals.RenewalPlan> {
      return refusalsFinal(async () =>
        renewals.planRenewal(
          orm,
          subscriptionId,
          new Date(periodStart),
          await billingNow(em(), subscriptionId),
        ),
      );
    },

    /**
     * CANCELED at the end of the period, for a subscription set to cancel then, with its final
     * invoice (usage overage up to the period's end) charged; a retry charges the same attempt.
     */
    async cancelEndedSubscription(
      subscriptionId: string,
      periodStart: string,
    ): Promise<{ canceled: boolean; reason: string | null }> {
      const result = await refusalsFinal(async () =>
        renewals.cancelEndedSubscription(
          orm,
          subscriptionId,
          new Date(periodStart),
          await billingNow(em(), subscriptionId),
        ),
      );
      if (result.canceled) {
        logger.info({ subscriptionId, periodStart }, 'subscription canceled at period end');
        await chargeFinal(subscriptionId);
      }
      return result;
    },

    /** Terminates the pod of a canceled subscription through its workflow (the client is this worker's). */
    async terminateSubscriptionPod(subscriptionId: string): Promise<string> {
      const em = systemEm(orm);
      const sub = await em.findOneOrFail(Subscription, { id: subscriptionId }, { filters: false });
      const outcome = await refusalsFinal(() =>
        terminateSubscriptionPod({ em, temporal: Context.current().client, config }, sub),
      );
      logger.info({ subscriptionId, podId: sub.podId, outcome }, 'canceled subscription pod termination');
      return outcome;
    },

    /** The renewed period's invoice, finalized; `invoiceId` null when there is nothing to invoice any more. */
    async issueRenewalInvoice(
      subscriptionId: string,
      periodStart: string,
    ): Promise<renewals.RenewalInvoice | { invoiceId: null; reason: string }> {
      return refusalsFinal(async () =>
        renewals.issueRenewalInvoice(
          orm,
          subscriptionId,
          new Date(periodStart),
          await billingNow(em(), subscriptionId),
        ),
      );
    },

    /** Period advanced (paid, nothing due, or MANUAL) or PAST_DUE (dunning follows). */
    async settleRenewal(
      subscriptionId: string,
      periodStart: string,
      invoiceId: string,
    ): Promise<renewals.RenewalSettlement> {
      return refusalsFinal(async () => {
        const clock = await subscriptionBillingClock(em(), subscriptionId);
        return renewals.settleRenewal(orm, subscriptionId, new Date(periodStart), invoiceId, clock.now, {
          onTestClock: clock.testClockId !== null,
        });
      });
    },

    /** Starts `dunning-<invoiceId>` once (its id is the invoice's and reuse is rejected). */
    async startRenewalDunning(input: DunningInput): Promise<{ workflowId: string; started: boolean }> {
      const result = await startDunning(Context.current().client, input);
      logger.info(
        { invoiceId: input.invoiceId, subscriptionId: input.subscriptionId, ...result },
        'dunning of a renewal invoice',
      );
      return result;
    },

    /** Records the trial reminders due on one page of trials ending soon. */
    async remindEndingTrials(input: {
      asOf: string;
      after: string | null;
      limit: number;
    }): Promise<{ checked: number; reminded: number; lastId: string | null }> {
      return renewals.remindEndingTrials(orm, { ...input, asOf: new Date(input.asOf) });
    },
  };
}

export type RenewalActivities = ReturnType<typeof createRenewalActivities>;
