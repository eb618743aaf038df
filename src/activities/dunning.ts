/**
 * Dunning activities: thin calls of the repeatable writes in services/dunning.ts, so Temporal may
 * retry any of them after a crash. An `AppError` is a business answer no retry changes
 * (non-retryable, typed `billing.<kind>`), except `unavailable` (the workflow engine or the provider
 * could not be reached), which is retried like any other error — a pod still busy with another
 * operation among them.
 */
import { Context } from '@temporalio/activity';
import type { Config } from '../config';
import type { MikroORM } from '../db/orm';
import type { Logger } from '../logger';
import type { PaymentProvider } from '../providers/payments';
import * as dunning from '../services/dunning';
import { refusalsFinal } from './refusals';

export interface DunningActivityDeps {
  orm: MikroORM;
  config: Config;
  payments: PaymentProvider;
  logger: Logger;
}

export function createDunningActivities(deps: DunningActivityDeps) {
  const { orm, config, payments, logger } = deps;
  /** The pod's workflow is reached with the worker's own client. */
  const podDeps = (): dunning.DunningDeps => ({ orm, config, temporal: Context.current().client });

  return {
    /** Copies the tenant's policy onto the invoice (once); the absolute timeline, and the customer's test clock. */
    async beginDunning(invoiceId: string, failedAt: string): Promise<dunning.DunningStart> {
      return refusalsFinal(() => dunning.beginDunning(orm, invoiceId, new Date(failedAt)));
    },

    /** Where the invoice stands now: a signal woke the workflow before its timer. */
    async dunningStanding(invoiceId: string): Promise<dunning.InvoiceStanding> {
      return refusalsFinal(() => dunning.invoiceStanding(orm, invoiceId));
    },

    /** Retry `attempt`: re-reads the invoice, then charges the default method (or says why not). */
    async retryDunningCharge(invoiceId: string, attempt: number): Promise<dunning.RetryOutcome> {
      const outcome = await refusalsFinal(() =>
        dunning.retryDunningCharge({ orm, payments }, invoiceId, attempt),
      );
      logger.info({ invoiceId, attempt, outcome }, 'dunning retry');
      return outcome;
    },

    /** The customer's email about attempt `attempt`, once; false when nothing was sent (checked at send time). */
    async notifyDunning(
      invoiceId: string,
      attempt: number,
      notice: dunning.DunningNotice,
      nextAt: string | null,
    ): Promise<boolean> {
      return refusalsFinal(() => dunning.notifyDunning(orm, invoiceId, attempt, notice, nextAt));
    },

    /** Locked re-read, then SUSPENDED and the pod suspended (or the payment that raced it wins). */
    async suspendForNonPayment(invoiceId: string): Promise<dunning.DestructiveOutcome> {
      const outcome = await refusalsFinal(() => dunning.suspendForNonPayment(podDeps(), invoiceId));
      logger.info({ invoiceId, outcome }, 'dunning suspension');
      return outcome;
    },

    /** Locked re-read, then CANCELED and the pod terminated (or the payment that raced it wins). */
    async cancelForNonPayment(invoiceId: string): Promise<dunning.DestructiveOutcome> {
      const outcome = await refusalsFinal(() => dunning.cancelForNonPayment(podDeps(), invoiceId));
      logger.info({ invoiceId, outcome }, 'dunning cancellation');
      return outcome;
    },

    /** Settles the paid (or voided) invoice and brings back the pod dunning suspended. */
    async settleDunnedInvoice(
      invoiceId: string,
      podSuspendedByDunning: boolean,
    ): Promise<dunning.InvoiceStanding> {
      return refusalsFinal(() => dunning.settleDunnedInvoice(podDeps(), invoiceId, podSuspendedByDunning));
    },
  };
}

export type DunningActivities = ReturnType<typeof createDunningActivities>;
