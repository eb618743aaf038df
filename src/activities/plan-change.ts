/**
 * Activities of `changeSubscriptionPlan`. Each calls a repeatable step of
 * services/subscription-plan-change.ts, so Temporal may retry any of them after a crash. Business
 * refusals (`AppError`: the pod busy, the plan invalid for it) are non-retryable failures typed
 * `billing.<kind>`; anything else is retried.
 */
import { Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config';
import type { MikroORM } from '../db/orm';
import type { Logger } from '../logger';
import * as planChange from '../services/subscription-plan-change';
import { refusalsFinal } from './refusals';

export interface PlanChangeActivityDeps {
  orm: MikroORM;
  config: Config;
  logger: Logger;
  /** how often a waiting activity re-reads the job it waits on */
  pollMs?: number;
}

export function createPlanChangeActivities(deps: PlanChangeActivityDeps) {
  const { orm, config, logger } = deps;
  const pollMs = deps.pollMs ?? 1000;

  return {
    /** REQUESTED → RESIZING; false when the API withdrew the change (its start was never confirmed). */
    async claimPlanChange(changeId: string): Promise<boolean> {
      return planChange.claimPlanChange(orm, changeId);
    },

    /** The pod's CHANGE_PLAN job for the change: found when an earlier attempt opened it, else requested. */
    async requestPlanChangeResize(changeId: string): Promise<{ jobId: string }> {
      const jobId = await refusalsFinal(() =>
        planChange.requestPlanChangeResize({ orm, temporal: Context.current().client, config }, changeId),
      );
      logger.info({ changeId, jobId }, 'subscription plan change: pod resize requested');
      return { jobId };
    },

    /** Returns the job's state as soon as its status is not `lastSeen` (heartbeating meanwhile). */
    async awaitPlanChangeJob(
      jobId: string,
      lastSeen: string,
    ): Promise<{ status: string; failureReason: string | null }> {
      const ctx = Context.current();
      for (;;) {
        const job = await planChange.planChangeJobState(orm, jobId);
        if (job.status !== lastSeen) return job;
        ctx.heartbeat(job.status);
        await sleep(pollMs, undefined, { signal: ctx.cancellationSignal });
      }
    },

    /** FAILED with the reason: the subscription keeps its plan and nothing is billed. */
    async failPlanChange(changeId: string, reason: string): Promise<void> {
      await planChange.failPlanChange(orm, changeId, reason, new Date());
      logger.info({ changeId, reason }, 'subscription plan change failed; nothing billed');
    },

    /** Switches the plan and settles the proration (invoice, credit note or nothing), once. */
    async settlePlanChange(changeId: string): Promise<planChange.PlanChangeSettlement> {
      const settled = await refusalsFinal(() => planChange.settlePlanChange(orm, changeId, new Date()));
      logger.info({ changeId, ...settled }, 'subscription plan change settled');
      return settled;
    },

    /** After the charge: PAST_DUE (dunning follows) when the invoice stayed unpaid. */
    async settlePlanChangeCollection(changeId: string): Promise<planChange.PlanChangeCollection> {
      return refusalsFinal(() => planChange.settlePlanChangeCollection(orm, changeId, new Date()));
    },
  };
}

export type PlanChangeActivities = ReturnType<typeof createPlanChangeActivities>;
