/**
 * Temporal Schedules, created or updated idempotently by `schedules:sync` (CLI, `npm start`, worker
 * boot), and what operators see of them (`GET /api/v1/ops/schedules`). Every schedule skips an
 * action while the previous one still runs (overlap SKIP) and names how late a missed action may
 * still be taken (its catch-up window) after the engine or the workers were down.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type CalendarSpecDescription,
  type Client,
  type Range,
  type ScheduleDescription,
  type ScheduleOptions,
} from '@temporalio/client';
import { SCHEDULE_IDS, TASK_QUEUES } from './workflows/shared';
import { ROLLUP_LOOKBACK_DAYS } from './workflows/messages/usage';

const MANAGED_NOTE = 'managed by podplane schedules:sync';

/** What sets one schedule apart; every schedule skips overlaps and carries the managed note. */
interface ScheduleDef {
  id: string;
  cron: string;
  workflowType: string;
  taskQueue: string;
  summary: string;
  catchupWindow: string;
}

function schedule(def: ScheduleDef): ScheduleOptions {
  return {
    scheduleId: def.id,
    spec: { cronExpressions: [def.cron], timezone: 'UTC' },
    action: {
      type: 'startWorkflow',
      workflowType: def.workflowType,
      // one workflow id per schedule: with overlap SKIP, at most one run at a time
      workflowId: def.id,
      taskQueue: def.taskQueue,
      args: [],
      staticSummary: def.summary,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: def.catchupWindow },
    state: { note: MANAGED_NOTE },
  };
}

export function scheduleDefinitions(): ScheduleOptions[] {
  return [
    schedule({
      id: SCHEDULE_IDS.maintenanceCleanup,
      cron: '0 3 * * *',
      workflowType: 'maintenanceCleanup',
      taskQueue: TASK_QUEUES.maintenance,
      summary: 'Daily housekeeping: purge long-dead API tokens and expired Idempotency-Keys',
      catchupWindow: '1 hour',
    }),
    schedule({
      id: SCHEDULE_IDS.billingRun,
      cron: '0 * * * *',
      workflowType: 'billingRun',
      taskQueue: TASK_QUEUES.billing,
      summary: 'Hourly: start the renewal of every subscription whose period ended (trials included)',
      // A day: after an outage the missed run is still taken once the engine is back (SKIP keeps it
      // to one at a time), so no period stays unbilled for longer than the outage.
      catchupWindow: '1 day',
    }),
    schedule({
      id: SCHEDULE_IDS.trialSweep,
      cron: '15 * * * *',
      workflowType: 'trialSweep',
      taskQueue: TASK_QUEUES.billing,
      summary: 'Hourly: record the reminders of trials ending in 7, 3 and 1 days',
      // Reminders are only worth sending near their time; the next sweep sends the latest one due.
      catchupWindow: '2 hours',
    }),
    schedule({
      id: SCHEDULE_IDS.usageRollup,
      cron: '0 2 * * *',
      workflowType: 'usageRollup',
      taskQueue: TASK_QUEUES.billing,
      summary: `Daily 02:00 UTC: roll up the last ${ROLLUP_LOOKBACK_DAYS} UTC days of usage records into usage_daily`,
      // Each run rolls up the three days before it, so a run missed by up to two days is covered by
      // the one taken late; beyond that, the next day's run covers what is still in its window.
      catchupWindow: '2 days',
    }),
    schedule({
      id: SCHEDULE_IDS.auditVerify,
      cron: '0 4 * * 0',
      workflowType: 'auditVerify',
      taskQueue: TASK_QUEUES.maintenance,
      summary:
        'Weekly, Sunday 04:00 UTC: recompute every audit chain; a break raises a CRITICAL security event',
      // A week late is still worth a check; the next one comes a week later anyway.
      catchupWindow: '1 day',
    }),
  ];
}

/** Creates missing schedules and brings existing ones to the definition; returns what it did. */
export async function syncSchedules(
  client: Client,
): Promise<{ id: string; action: 'created' | 'updated' }[]> {
  const results: { id: string; action: 'created' | 'updated' }[] = [];
  for (const def of scheduleDefinitions()) {
    try {
      await client.schedule.create(def);
      results.push({ id: def.scheduleId, action: 'created' });
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      await client.schedule.getHandle(def.scheduleId).update((prev) => ({
        ...prev,
        spec: def.spec,
        action: def.action,
        policies: { ...prev.policies, ...def.policies },
      }));
      results.push({ id: def.scheduleId, action: 'updated' });
    }
  }
  return results;
}

/** A schedule as operators see it. */
export interface ScheduleOverview {
  id: string;
  workflowType: string;
  /** the calendar specs as cron expressions (`minute hour day-of-month month day-of-week`) */
  cron: string[];
  /** interval specs, `every <seconds>s` (offset `+<seconds>s`) */
  intervals: string[];
  timezone: string | null;
  paused: boolean;
  note: string | null;
  overlap: string;
  catchupWindowMs: number;
  nextActionTimes: Date[];
  recentActions: { scheduledAt: Date; takenAt: Date; workflowId: string }[];
  runningWorkflowIds: string[];
  /** defined by podplane (created and updated by schedules:sync) */
  managed: boolean;
}

const MONTHS = [
  'JANUARY',
  'FEBRUARY',
  'MARCH',
  'APRIL',
  'MAY',
  'JUNE',
  'JULY',
  'AUGUST',
  'SEPTEMBER',
  'OCTOBER',
  'NOVEMBER',
  'DECEMBER',
];
const DAYS = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'];

/** One cron field from the engine's ranges; `*` when they cover `[min, max]` whole. */
function cronField(ranges: Range<number>[], min: number, max: number): string {
  if (ranges.length === 0) return '*';
  return ranges
    .map(({ start, end, step }) => {
      const last = Math.max(start, end);
      const every = step > 1 ? `/${step}` : '';
      if (start === min && last === max) return `*${every}`;
      return last === start ? `${start}` : `${start}-${last}${every}`;
    })
    .join(',');
}

const named = (ranges: Range<string>[], names: readonly string[], base: number): Range<number>[] =>
  ranges.map((r) => ({
    start: names.indexOf(r.start) + base,
    end: names.indexOf(r.end) + base,
    step: r.step,
  }));

/**
 * A calendar spec as a cron expression. The engine keeps cron expressions as calendars, so the
 * expression is rebuilt from what it holds (a seconds field, when not 0, leads).
 */
export function cronOf(calendar: CalendarSpecDescription): string {
  const fields = [
    cronField(calendar.minute, 0, 59),
    cronField(calendar.hour, 0, 23),
    cronField(calendar.dayOfMonth, 1, 31),
    cronField(named(calendar.month, MONTHS, 1), 1, 12),
    cronField(named(calendar.dayOfWeek, DAYS, 0), 0, 6),
  ];
  const seconds = cronField(calendar.second, 0, 59);
  return (seconds === '0' ? fields : [seconds, ...fields]).join(' ');
}

function overview(d: ScheduleDescription, managed: boolean): ScheduleOverview {
  return {
    id: d.scheduleId,
    workflowType: d.action.workflowType,
    cron: (d.spec.calendars ?? []).map(cronOf),
    intervals: (d.spec.intervals ?? []).map(
      (i) => `every ${i.every / 1000}s${i.offset ? ` +${i.offset / 1000}s` : ''}`,
    ),
    timezone: d.spec.timezone ?? null,
    paused: d.state.paused,
    note: d.state.note ?? null,
    // unspecified is the engine's default, SKIP
    overlap: d.policies.overlap ?? ScheduleOverlapPolicy.SKIP,
    catchupWindowMs: d.policies.catchupWindow,
    nextActionTimes: d.info.nextActionTimes,
    recentActions: d.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt,
      takenAt: a.takenAt,
      workflowId: a.action.workflow.workflowId,
    })),
    runningWorkflowIds: d.info.runningActions.map((a) => a.workflow.workflowId),
    managed,
  };
}

/**
 * Every schedule of the namespace, described afresh: ours by their ids (the schedule list is
 * eventually consistent, so one created a moment ago is still shown) and any other the list
 * knows. A defined schedule not created yet (schedules:sync has not run) is left out.
 */
export async function describeSchedules(client: Client): Promise<ScheduleOverview[]> {
  const ours = new Set(scheduleDefinitions().map((d) => d.scheduleId));
  const ids = new Set(ours);
  for await (const summary of client.schedule.list()) ids.add(summary.scheduleId);
  const described = await Promise.all(
    [...ids].sort().map(async (id) => {
      try {
        return overview(await client.schedule.getHandle(id).describe(), ours.has(id));
      } catch (err) {
        if (err instanceof ScheduleNotFoundError) return null;
        throw err;
      }
    }),
  );
  return described.filter((d): d is ScheduleOverview => d !== null);
}
