/**
 * Test clocks of sandbox tenants, as Stripe users know them: a clock holds a frozen time; the
 * customers attached to it are billed as of that time (`billingNow`), never by the wall clock, so
 * the hourly billing run and trial sweep leave them alone; an advance (`advanceTestClock`) walks the
 * clock forward, stopping at each time something falls due for its customers and running it then.
 *
 * The API's writes (create, advance, delete, attach) each run in one transaction with the clock's
 * row locked; the advance's own steps are repeatable and guarded by the clock's advance count, so a
 * stale advance never moves a clock another one now drives.
 */
import { LockMode } from '@mikro-orm/core';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config';
import { TestClock } from '../db/entities';
import { systemEm, type EntityManager, type MikroORM } from '../db/orm';
import { AppError, conflict, forbidden, notFound } from '../domain/errors';
import { isId } from '../domain/ids';
import {
  MAX_TEST_CLOCK_CUSTOMERS,
  advanceProblem,
  clockEventKey,
  nextClockStep,
  trialReminderEvents,
  type ClockEvent,
  type ClockStep,
  type TimedClockEvent,
} from '../domain/test-clocks';
import {
  clockAdvancedUpdate,
  dunningStateQuery,
  testClockDetachedSignal,
  type DunningState,
} from '../workflows/messages/dunning';
import type { RenewalState } from '../workflows/messages/renewals';
import { advanceTestClockStartOptions, type AdvanceTestClockInput } from '../workflows/messages/test-clocks';
import { workflowIds } from '../workflows/shared';
import type { renewSubscription } from '../workflows/renewals';
import type { advanceTestClock } from '../workflows/test-clocks';
import { remindEndingTrials, startRenewal, trialReminderKey } from './renewals';
import { rollupSubscriptionsUsage } from './usage-rollup';

/** A customer's billing time: its test clock's frozen time, or the wall clock (`testClockId` null). */
export interface BillingClock {
  now: Date;
  testClockId: string | null;
}

async function clockOf(em: EntityManager, sql: string, id: string): Promise<BillingClock> {
  const [row] = await em.execute<{ id: string; frozen_time: Date }[]>(sql, [id]);
  return row
    ? { now: new Date(row.frozen_time), testClockId: row.id }
    : { now: new Date(), testClockId: null };
}

/** The billing clock of a customer. */
export function customerBillingClock(em: EntityManager, customerId: string): Promise<BillingClock> {
  return clockOf(
    em,
    `select t.id, t.frozen_time from customers c join test_clocks t on t.id = c.test_clock_id
      where c.id = ? and t.deleted_at is null`,
    customerId,
  );
}

/** The billing clock of a subscription's customer. */
export function subscriptionBillingClock(em: EntityManager, subscriptionId: string): Promise<BillingClock> {
  return clockOf(
    em,
    `select t.id, t.frozen_time from subscriptions s join customers c on c.id = s.customer_id
       join test_clocks t on t.id = c.test_clock_id
      where s.id = ? and t.deleted_at is null`,
    subscriptionId,
  );
}

/**
 * The time billing decisions about a subscription are made at — period ends, due dates, trial
 * ends, the "as of" of a renewal: its customer's test clock when it has one, else now.
 */
export async function billingNow(em: EntityManager, subscriptionId: string): Promise<Date> {
  return (await subscriptionBillingClock(em, subscriptionId)).now;
}

/** Only a sandbox tenant may use clocks: 403 naming why for a live one. */
async function requireSandbox(em: EntityManager, tenantId: string): Promise<void> {
  const [tenant] = await em.execute<{ mode: string }[]>('select mode from tenants where id = ?', [tenantId]);
  if (tenant?.mode !== 'SANDBOX') {
    throw forbidden(
      'test clocks are for sandbox tenants and this tenant is LIVE; a platform admin creates a sandbox tenant with `sandbox: true`',
    );
  }
}

export interface CreateTestClockInput {
  tenantId: string;
  name: string;
  /** where time stands at first (default: now) */
  frozenTime?: Date | undefined;
}

/** A READY clock of a sandbox tenant (403 for a live one). */
export async function createTestClock(em: EntityManager, input: CreateTestClockInput): Promise<TestClock> {
  return em.transactional(async (tx) => {
    await requireSandbox(tx, input.tenantId);
    const clock = tx.create(TestClock, {
      tenant: input.tenantId,
      name: input.name,
      frozenTime: input.frozenTime ?? new Date(),
    });
    await tx.flush();
    return clock;
  });
}

/** The tenant's clocks are listed only for a sandbox tenant (403 for a live one). */
export function assertMayListTestClocks(em: EntityManager, tenantId: string): Promise<void> {
  return requireSandbox(em, tenantId);
}

/** One of the tenant's clocks that is not deleted, or 404 (other tenants' ids included). */
export async function findTestClock(em: EntityManager, tenantId: string, id: string): Promise<TestClock> {
  const clock = isId('testClock', id)
    ? await em.findOne(TestClock, { id, tenant: tenantId, deletedAt: null }, { refresh: true })
    : null;
  if (!clock) throw notFound('test clock');
  return clock;
}

/** One of the tenant's clocks, locked FOR UPDATE until the transaction ends; else 404. */
async function lockTestClock(tx: EntityManager, tenantId: string, id: string): Promise<TestClock> {
  const clock = isId('testClock', id)
    ? await tx.findOne(
        TestClock,
        { id, tenant: tenantId, deletedAt: null },
        { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
      )
    : null;
  if (!clock) throw notFound('test clock');
  return clock;
}

const advancingConflict = (clock: TestClock, what: string) =>
  conflict(
    `test clock ${clock.id} is advancing to ${clock.advancingTo?.toISOString() ?? 'a later time'}; ${what} once it is READY`,
  );

/**
 * The clock a customer is attached to (at its creation, or by a change while it has no
 * subscription): the tenant's own, READY, and with room for one more customer. The clock stays
 * locked until the caller's transaction ends, so concurrent attachments cannot overfill it.
 */
export async function lockAttachableTestClock(
  tx: EntityManager,
  tenantId: string,
  clockId: string,
): Promise<TestClock> {
  const clock = isId('testClock', clockId)
    ? await tx.findOne(
        TestClock,
        { id: clockId, tenant: tenantId, deletedAt: null },
        { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
      )
    : null;
  if (!clock) {
    throw new AppError('unprocessable', 'test_clock_id does not name a test clock of this tenant', {
      errors: [{ field: 'test_clock_id', message: 'unknown test clock' }],
    });
  }
  if (clock.status === 'ADVANCING') throw advancingConflict(clock, 'attach customers');
  const [count] = await tx.execute<{ n: number }[]>(
    'select count(*)::int as n from customers where test_clock_id = ? and deleted_at is null',
    [clock.id],
  );
  if ((count?.n ?? 0) >= MAX_TEST_CLOCK_CUSTOMERS) {
    throw conflict(
      `test clock ${clock.id} already has ${MAX_TEST_CLOCK_CUSTOMERS} customers, as many as a clock takes`,
      {
        errors: [{ field: 'test_clock_id', message: 'is full' }],
      },
    );
  }
  return clock;
}

/**
 * A customer changes clocks (or leaves one) only before it has any subscription: its periods,
 * invoices and dunning are all counted in one clock's time.
 */
export async function assertClockChangeable(tx: EntityManager, customerId: string): Promise<void> {
  const [row] = await tx.execute<{ n: number }[]>(
    'select count(*)::int as n from subscriptions where customer_id = ?',
    [customerId],
  );
  if ((row?.n ?? 0) > 0) {
    throw conflict(
      `customer ${customerId} has subscriptions: its test clock is chosen before the first one and kept`,
      { errors: [{ field: 'test_clock_id', message: 'cannot change once the customer has subscriptions' }] },
    );
  }
}

export interface TestClockDeps {
  em: EntityManager;
  temporal: Client;
  config: Config;
}

/**
 * Deletes a READY (or failed) clock: soft, so its history stays readable in the advances' workflows.
 * Its customers are detached and billed on the wall clock from then on; their dunning runs are told
 * to wait on timers (a hint after the commit: a run that misses it stays on its last clock time).
 */
export async function deleteTestClock(deps: TestClockDeps, tenantId: string, id: string): Promise<TestClock> {
  const { clock, invoiceIds } = await deps.em.transactional(async (tx) => {
    const locked = await lockTestClock(tx, tenantId, id);
    if (locked.status === 'ADVANCING') throw advancingConflict(locked, 'delete it');
    const invoices = await tx.execute<{ id: string }[]>(
      `select i.id from invoices i join customers c on c.id = i.customer_id
        where c.test_clock_id = ? and i.status in ('OPEN', 'UNCOLLECTIBLE') and i.dunning_policy is not null`,
      [locked.id],
    );
    await tx.execute(
      'update customers set test_clock_id = null, updated_at = now() where test_clock_id = ?',
      [locked.id],
    );
    locked.deletedAt = new Date();
    await tx.flush();
    return { clock: locked, invoiceIds: invoices.map((i) => i.id) };
  });
  await Promise.allSettled(
    invoiceIds.map((invoiceId) =>
      deps.temporal.withDeadline(Date.now() + deps.config.TEMPORAL_CALL_TIMEOUT_MS, () =>
        deps.temporal.workflow.getHandle(workflowIds.dunning(invoiceId)).signal(testClockDetachedSignal),
      ),
    ),
  );
  return clock;
}

/**
 * Starts advancing a clock to `target`: 409 while an advance runs, 422 for a time not later than
 * the frozen time or too far ahead. The clock is ADVANCING, with its advance count moved on, in the
 * transaction that checked it; then `advanceTestClock` starts under that count. An engine that
 * cannot be reached leaves the clock as it was (503).
 */
export async function requestAdvance(
  deps: TestClockDeps,
  tenantId: string,
  id: string,
  target: Date,
): Promise<{ clock: TestClock; workflowId: string }> {
  const { clock, before } = await deps.em.transactional(async (tx) => {
    const locked = await lockTestClock(tx, tenantId, id);
    if (locked.status === 'ADVANCING') throw advancingConflict(locked, 'advance it again');
    const problem = advanceProblem(locked.frozenTime, target);
    if (problem) {
      throw new AppError('unprocessable', problem, { errors: [{ field: 'frozen_time', message: problem }] });
    }
    const previous = { status: locked.status, failureReason: locked.failureReason ?? null };
    locked.status = 'ADVANCING';
    locked.advancingTo = target;
    locked.advances += 1;
    locked.failureReason = null;
    await tx.flush();
    return { clock: locked, before: previous };
  });
  const input: AdvanceTestClockInput = {
    tenantId,
    clockId: clock.id,
    seq: clock.advances,
    target: target.toISOString(),
  };
  const options = advanceTestClockStartOptions(input);
  try {
    await deps.temporal.withDeadline(Date.now() + deps.config.TEMPORAL_CALL_TIMEOUT_MS, () =>
      deps.temporal.workflow.start<typeof advanceTestClock>('advanceTestClock', {
        ...options,
        args: [input],
      }),
    );
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { clock, workflowId: options.workflowId };
    // Nothing half-done: without its workflow the clock would stay ADVANCING. An advance that did
    // start after all finds its count superseded and changes nothing.
    await deps.em.nativeUpdate(
      TestClock,
      { id: clock.id, advances: clock.advances, status: 'ADVANCING' },
      {
        status: before.status,
        advancingTo: null,
        failureReason: before.failureReason,
        updatedAt: new Date(),
      },
    );
    throw new AppError(
      'unavailable',
      'the workflow engine could not be reached; the test clock was not advanced',
      {},
      { cause: err },
    );
  }
  return { clock, workflowId: options.workflowId };
}

/* ---- the advance's steps (activities call these) ---- */

/** What the advance's steps reach: the database, the engine, and the activity's heartbeat. */
export interface AdvanceDeps {
  orm: MikroORM;
  temporal: Client;
  heartbeat: () => void;
}

/** Where an advance stands: the clock's time and target, or null when another advance superseded it. */
export async function advanceStanding(
  orm: MikroORM,
  clockId: string,
  seq: number,
): Promise<{ frozenTime: Date; target: Date } | null> {
  const clock = await systemEm(orm).findOne(TestClock, { id: clockId }, { refresh: true });
  if (clock?.status !== 'ADVANCING' || clock.advances !== seq || !clock.advancingTo) return null;
  return { frozenTime: clock.frozenTime, target: clock.advancingTo };
}

/** A stale advance: the clock row no longer says this advance drives it. */
export class AdvanceSupersededError extends Error {
  override readonly name = 'AdvanceSupersededError';
}

/** Moves the clock's time forward to `at` (never back); repeatable. */
export async function moveTestClock(orm: MikroORM, clockId: string, seq: number, at: Date): Promise<Date> {
  const [row] = await systemEm(orm).execute<{ frozen_time: Date }[]>(
    `update test_clocks set frozen_time = greatest(frozen_time, ?), updated_at = now()
      where id = ? and advances = ? and status = 'ADVANCING' returning frozen_time`,
    [at, clockId, seq],
  );
  if (!row) throw new AdvanceSupersededError(`test clock ${clockId} is no longer driven by advance ${seq}`);
  return new Date(row.frozen_time);
}

/** The advance is done: the clock at its target and READY. Repeatable; a stale advance changes nothing. */
export async function finishAdvance(orm: MikroORM, clockId: string, seq: number): Promise<boolean> {
  const rows = await systemEm(orm).execute<{ id: string }[]>(
    `update test_clocks set frozen_time = greatest(frozen_time, advancing_to), status = 'READY', advancing_to = null,
            updated_at = now()
      where id = ? and advances = ? and status = 'ADVANCING' returning id`,
    [clockId, seq],
  );
  return rows.length > 0;
}

/** The advance could not finish: the clock stays where it got to, INTERNAL_FAILURE with the reason. */
export async function failAdvance(
  orm: MikroORM,
  clockId: string,
  seq: number,
  reason: string,
): Promise<void> {
  await systemEm(orm).execute(
    `update test_clocks set status = 'INTERNAL_FAILURE', advancing_to = null, failure_reason = ?, updated_at = now()
      where id = ? and advances = ? and status = 'ADVANCING'`,
    [reason.slice(0, 1000), clockId, seq],
  );
}

/** Subscriptions of the clock's customers whose period ends by `target`: renewals (trials convert). */
async function renewalEvents(em: EntityManager, clockId: string, target: Date): Promise<TimedClockEvent[]> {
  const rows = await em.execute<
    { id: string; tenant_id: string; customer_id: string; current_period_end: Date }[]
  >(
    `select s.id, s.tenant_id, s.customer_id, s.current_period_end
       from subscriptions s join customers c on c.id = s.customer_id
      where c.test_clock_id = ? and s.status in ('ACTIVE', 'TRIALING') and s.deleted_at is null
        and s.current_period_end <= ?`,
    [clockId, target],
  );
  return rows.map((r) => {
    const periodStart = new Date(r.current_period_end).toISOString();
    const event: ClockEvent = {
      kind: 'renewal',
      subscriptionId: r.id,
      tenantId: r.tenant_id,
      customerId: r.customer_id,
      periodStart,
    };
    return { at: periodStart, key: clockEventKey(event), event };
  });
}

/** The trial reminders of the clock's customers still to be sent, each at its own time. */
async function reminderEvents(em: EntityManager, clockId: string, frozen: Date): Promise<TimedClockEvent[]> {
  const trials = await em.execute<{ id: string; current_period_start: Date | null; trial_end: Date }[]>(
    `select s.id, s.current_period_start, s.trial_end
       from subscriptions s join customers c on c.id = s.customer_id
      where c.test_clock_id = ? and s.status = 'TRIALING' and s.deleted_at is null and s.trial_end > ?`,
    [clockId, frozen],
  );
  if (trials.length === 0) return [];
  const sent = await em.execute<{ dedupe_key: string }[]>(
    `select dedupe_key from notifications where dedupe_key like 'trial-reminder:%' and split_part(dedupe_key, ':', 2) in (${trials.map(() => '?').join(', ')})`,
    trials.map((t) => t.id),
  );
  const sentDays = new Map<string, number[]>();
  for (const { dedupe_key: key } of sent) {
    const [, subscriptionId = '', days] = key.split(':');
    if (key !== trialReminderKey(subscriptionId, Number(days))) continue;
    sentDays.set(subscriptionId, [...(sentDays.get(subscriptionId) ?? []), Number(days)]);
  }
  return trials.flatMap((t) =>
    t.current_period_start
      ? trialReminderEvents({
          subscriptionId: t.id,
          trialStart: new Date(t.current_period_start),
          trialEnd: new Date(t.trial_end),
          frozen,
          sentDaysBefore: sentDays.get(t.id) ?? [],
        })
      : [],
  );
}

/**
 * A dunning run of the clock's customers, once it has settled: begun and waiting (or ended, or
 * not on this clock: null). A run that is still busy with a step is waited for, up to `deadline`.
 */
async function settledDunning(
  client: Client,
  invoiceId: string,
  deadline: number,
  heartbeat: () => void,
): Promise<DunningState | null> {
  const handle = client.workflow.getHandle(workflowIds.dunning(invoiceId));
  for (;;) {
    try {
      const described = await handle.describe();
      if (described.status.name !== 'RUNNING') return null;
      const state = await handle.query(dunningStateQuery);
      if (state.timeline) {
        if (!state.testClockId) return null;
        if (state.waiting) return state;
      }
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
    if (Date.now() > deadline) throw new Error(`dunning of invoice ${invoiceId} is still busy with a step`);
    heartbeat();
    await sleep(100);
  }
}

/** The next wake-up of each dunning run of the clock's customers. */
async function dunningEvents(
  em: EntityManager,
  deps: AdvanceDeps,
  clockId: string,
  settleMs: number,
): Promise<TimedClockEvent[]> {
  const invoices = await em.execute<{ id: string }[]>(
    `select i.id from invoices i join customers c on c.id = i.customer_id
      where c.test_clock_id = ? and i.status in ('OPEN', 'UNCOLLECTIBLE') and i.amount_paid < i.amount_due
      order by i.id`,
    [clockId],
  );
  const deadline = Date.now() + settleMs;
  const events: TimedClockEvent[] = [];
  for (const { id } of invoices) {
    const state = await settledDunning(deps.temporal, id, deadline, deps.heartbeat);
    if (!state?.wakeAt || state.testClockId !== clockId) continue;
    const event: ClockEvent = { kind: 'dunning', invoiceId: id, wakeAt: state.wakeAt };
    events.push({ at: state.wakeAt, key: clockEventKey(event), event });
  }
  return events;
}

/**
 * The advance's next stop: the earliest time by the target at which something not yet run by this
 * advance falls due for the clock's customers, with everything due then — or null when nothing is
 * left before the target. A dunning run busy with a step is first waited for (`settleMs`), so its
 * next wake-up is known.
 */
export async function nextAdvanceStep(
  deps: AdvanceDeps,
  q: { clockId: string; seq: number; handled: readonly string[]; settleMs: number },
): Promise<ClockStep | null> {
  const standing = await advanceStanding(deps.orm, q.clockId, q.seq);
  if (!standing)
    throw new AdvanceSupersededError(`test clock ${q.clockId} is no longer driven by advance ${q.seq}`);
  const em = systemEm(deps.orm);
  const events = [
    ...(await renewalEvents(em, q.clockId, standing.target)),
    ...(await reminderEvents(em, q.clockId, standing.frozenTime)),
    ...(await dunningEvents(em, deps, q.clockId, q.settleMs)),
  ];
  return nextClockStep(events, standing.frozenTime, standing.target, new Set(q.handled));
}

/** Waits for `work`, heartbeating meanwhile. */
async function heartbeating<T>(work: Promise<T>, heartbeat: () => void): Promise<T> {
  const timer = setInterval(heartbeat, 2000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/**
 * Renews a subscription of the clock's customers for the period that ended (the clock stands at
 * its end or later): the same `renewSubscription` the billing run starts, under the same id, so it
 * never bills a period twice; waited for, since the next stop depends on what it did.
 */
export async function renewOnClock(
  deps: AdvanceDeps,
  event: Extract<ClockEvent, { kind: 'renewal' }>,
): Promise<RenewalState> {
  const client = deps.temporal;
  await startRenewal(client, {
    id: event.subscriptionId,
    tenantId: event.tenantId,
    customerId: event.customerId,
    periodStart: new Date(event.periodStart),
  });
  const handle = client.workflow.getHandle<typeof renewSubscription>(
    workflowIds.renewSubscription(event.subscriptionId, event.periodStart),
  );
  return heartbeating(handle.result(), deps.heartbeat);
}

/** Records the trial reminders due for the clock's customers as of `at`. */
export async function remindTrialsOnClock(
  orm: MikroORM,
  clockId: string,
  at: Date,
): Promise<{ reminded: number }> {
  let reminded = 0;
  let after: string | null = null;
  for (;;) {
    const page = await remindEndingTrials(orm, { asOf: at, after, limit: 100, testClockId: clockId });
    reminded += page.reminded;
    if (page.checked < 100 || !page.lastId) return { reminded };
    after = page.lastId;
  }
}

/**
 * Tells a dunning run on the clock that the clock reached `at`: it runs what came due and answers
 * once it waits again (or has ended). One update per clock time (its id), so a retried activity
 * joins the update already sent. A run that ended meanwhile, or is not on a clock, has nothing to do.
 */
export async function advanceDunningClock(
  deps: AdvanceDeps,
  invoiceId: string,
  at: string,
): Promise<DunningState | null> {
  const handle = deps.temporal.workflow.getHandle(workflowIds.dunning(invoiceId));
  try {
    return await heartbeating(
      handle.executeUpdate(clockAdvancedUpdate, { args: [{ now: at }], updateId: `clock-${at}` }),
      deps.heartbeat,
    );
  } catch (err) {
    if (err instanceof WorkflowNotFoundError || err instanceof WorkflowUpdateFailedError) return null;
    throw err;
  }
}

/**
 * The usage of the clock's customers' subscriptions rolled up into `usage_daily` until the day of
 * `until` (the clock's time): the global daily rollup runs on the wall clock's days, so a clock's
 * advance rolls up the days it passed itself. Repeatable.
 */
export async function rollupUsageOnClock(
  orm: MikroORM,
  clockId: string,
  until: Date,
): Promise<{ subscriptions: number; rows: number }> {
  const em = systemEm(orm);
  const subs = await em.execute<{ id: string }[]>(
    `select s.id from subscriptions s join customers c on c.id = s.customer_id
      where c.test_clock_id = ? order by s.id`,
    [clockId],
  );
  const ids = subs.map((r) => r.id);
  const { rows } = await rollupSubscriptionsUsage(em, { subscriptionIds: ids, until });
  return { subscriptions: ids.length, rows };
}
