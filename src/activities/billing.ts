/**
 * Billing activities. Each calls a repeatable service function, so Temporal may retry any of them
 * after a crash. Business refusals (`AppError`: a slug taken, a quota exceeded, a customer gone)
 * are non-retryable failures typed by their kind; anything else is retried.
 */
import { Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config';
import type { MikroORM } from '../db/orm';
import type { Logger } from '../logger';
import type { PaymentProvider } from '../providers/payments';
import * as activation from '../services/subscription-activation';
import * as collection from '../services/collection';
import { refusalsFinal } from './refusals';

export interface BillingActivityDeps {
  orm: MikroORM;
  config: Config;
  payments: PaymentProvider;
  logger: Logger;
  /** how often a waiting activity re-reads the row it waits on */
  pollMs?: number;
}

export function createBillingActivities(deps: BillingActivityDeps) {
  const { orm, config, payments, logger } = deps;
  const pollMs = deps.pollMs ?? 1000;

  return {
    async provisionSubscriptionPod(subscriptionId: string): Promise<{ podId: string }> {
      const temporal = Context.current().client;
      const podId = await refusalsFinal(() =>
        activation.claimSubscriptionPod({ orm, temporal, config }, subscriptionId),
      );
      logger.info({ subscriptionId, podId }, 'subscription pod claimed');
      return { podId };
    },

    /** Returns the pod's state as soon as its status is not `lastSeen` (heartbeating meanwhile). */
    async awaitPodChange(
      podId: string,
      lastSeen: string,
    ): Promise<{ status: string; failureReason: string | null }> {
      const ctx = Context.current();
      for (;;) {
        const pod = await activation.podState(orm, podId);
        if (pod.status !== lastSeen) return pod;
        ctx.heartbeat(pod.status);
        await sleep(pollMs, undefined, { signal: ctx.cancellationSignal });
      }
    },

    async notifyActivationFailed(subscriptionId: string, podId: string, reason: string): Promise<void> {
      await activation.notifyActivationFailed(orm, subscriptionId, podId, reason);
    },

    async startTrialIfAny(subscriptionId: string): Promise<{ trialEnd: string } | null> {
      return refusalsFinal(() => activation.startTrialIfAny(orm, subscriptionId));
    },

    /** The first period's invoice, finalized; `charge` says whether it is collected automatically. */
    async issueFirstInvoice(
      subscriptionId: string,
    ): Promise<{ invoiceId: string; number: string; amountDue: number; charge: boolean }> {
      return refusalsFinal(() => collection.issueFirstInvoice(orm, subscriptionId));
    },

    /** Attempt `attempt` to charge the invoice to the customer's default payment method. */
    async chargeInvoice(invoiceId: string, attempt: number): Promise<{ status: string }> {
      return refusalsFinal(() => collection.chargeInvoice({ orm, payments }, invoiceId, attempt));
    },

    /** ACTIVE once the first invoice is paid (or left to a MANUAL customer), PAST_DUE when its charge failed. */
    async settleActivation(subscriptionId: string, invoiceId: string): Promise<'ACTIVE' | 'PAST_DUE'> {
      return refusalsFinal(() => collection.settleActivation(orm, subscriptionId, invoiceId));
    },
  };
}

export type BillingActivities = ReturnType<typeof createBillingActivities>;
