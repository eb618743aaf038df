/**
 * Activities of `advanceTestClock`: thin calls of the repeatable steps in services/test-clocks.ts.
 * A stale advance (the clock's advance count moved on) is an answer, `superseded`, not an error;
 * a renewal that failed is reported as a value the workflow turns into INTERNAL_FAILURE. Anything
 * else is retried.
 */
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import type { MikroORM } from '../db/orm';
import type { ClockEvent, ClockStep } from '../domain/test-clocks';
import type { Logger } from '../logger';
import * as clocks from '../services/test-clocks';

export interface TestClockActivityDeps {
  orm: MikroORM;
  logger: Logger;
  /** how long a step waits for a dunning run still busy with its previous step (default 60 s) */
  settleMs?: number;
}

/** What a renewal run on the clock came to; `failure` when its workflow failed. */
export interface ClockRenewalOutcome {
  outcome: string | null;
  status: string | null;
  invoiceId: string | null;
  failure: string | null;
}

export function createTestClockActivities(deps: TestClockActivityDeps) {
  const { orm, logger } = deps;
  const settleMs = deps.settleMs ?? 60_000;
  const advanceDeps = (): clocks.AdvanceDeps => {
    const ctx = Context.current();
    return { orm, temporal: ctx.client, heartbeat: () => ctx.heartbeat() };
  };

  return {
    /** The clock's time and target, or null when another advance now drives the clock. */
    async beginTestClockAdvance(
      clockId: string,
      seq: number,
    ): Promise<{ frozenTime: string; target: string } | null> {
      const standing = await clocks.advanceStanding(orm, clockId, seq);
      return standing
        ? { frozenTime: standing.frozenTime.toISOString(), target: standing.target.toISOString() }
        : null;
    },

    /** The next stop of the advance (null: nothing left before the target), or `superseded`. */
    async nextTestClockStep(
      clockId: string,
      seq: number,
      handled: string[],
    ): Promise<{ step: ClockStep | null } | { superseded: true }> {
      try {
        return { step: await clocks.nextAdvanceStep(advanceDeps(), { clockId, seq, handled, settleMs }) };
      } catch (err) {
        if (err instanceof clocks.AdvanceSupersededError) return { superseded: true };
        throw err;
      }
    },

    /** The clock's time moved forward to `at`; null when another advance now drives the clock. */
    async moveTestClock(clockId: string, seq: number, at: string): Promise<string | null> {
      try {
        return (await clocks.moveTestClock(orm, clockId, seq, new Date(at))).toISOString();
      } catch (err) {
        if (err instanceof clocks.AdvanceSupersededError) return null;
        throw err;
      }
    },

    /** Renews a subscription whose period ended on the clock, and waits for the renewal to finish. */
    async renewOnTestClock(event: Extract<ClockEvent, { kind: 'renewal' }>): Promise<ClockRenewalOutcome> {
      try {
        const state = await clocks.renewOnClock(advanceDeps(), event);
        logger.info(
          { subscriptionId: event.subscriptionId, periodStart: event.periodStart, outcome: state.outcome },
          'test clock renewal',
        );
        return { outcome: state.outcome, status: state.status, invoiceId: state.invoiceId, failure: null };
      } catch (err) {
        // The renewal's own failure (its activities gave up) is the advance's to report, not to retry.
        if (err instanceof WorkflowFailedError) {
          const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
          return {
            outcome: null,
            status: null,
            invoiceId: null,
            failure: `the renewal of subscription ${event.subscriptionId} for the period from ${event.periodStart} failed${cause}`,
          };
        }
        throw err;
      }
    },

    /** Records the trial reminders due as of the clock's time `at`. */
    async remindTrialsOnTestClock(clockId: string, at: string): Promise<{ reminded: number }> {
      return clocks.remindTrialsOnClock(orm, clockId, new Date(at));
    },

    /** Brings a dunning run on the clock to `at` and waits until it waits again; null: nothing to do. */
    async advanceDunningOnTestClock(
      invoiceId: string,
      at: string,
    ): Promise<{ status: string; lastOutcome: string | null } | null> {
      const state = await clocks.advanceDunningClock(advanceDeps(), invoiceId, at);
      if (state) logger.info({ invoiceId, at, status: state.status }, 'test clock dunning step');
      return state ? { status: state.status, lastOutcome: state.lastOutcome } : null;
    },

    /** The usage of the clock's customers rolled up into `usage_daily` until the day of `until` (the clock's time). */
    async rollupUsageOnTestClock(
      clockId: string,
      until: string,
    ): Promise<{ subscriptions: number; rows: number }> {
      const result = await clocks.rollupUsageOnClock(orm, clockId, new Date(until));
      logger.info({ clockId, until, ...result }, 'test clock usage rolled up');
      return result;
    },

    /** The clock at its target and READY; false when another advance now drives the clock. */
    async finishTestClockAdvance(clockId: string, seq: number): Promise<boolean> {
      return clocks.finishAdvance(orm, clockId, seq);
    },

    /** The advance could not finish: the clock INTERNAL_FAILURE, where it got to. */
    async failTestClockAdvance(clockId: string, seq: number, reason: string): Promise<void> {
      await clocks.failAdvance(orm, clockId, seq, reason);
      logger.warn({ clockId, seq, reason }, 'test clock advance failed');
    },
  };
}

export type TestClockActivities = ReturnType<typeof createTestClockActivities>;
