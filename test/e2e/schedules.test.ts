/**
 * The Temporal Schedules: `syncSchedules` creates them and, run again, updates them in place
 * (idempotent); `GET /api/v1/ops/schedules` shows platform admins every schedule with its spec,
 * next run times, paused state and last actions, and refuses tenants; triggering `billing-run`
 * (what an operator does in the Temporal UI) runs a `billingRun` to its end, and triggering
 * `usage-rollup` a `usageRollup` of the three days before today.
 */
import request from 'supertest';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { cronOf, scheduleDefinitions, syncSchedules } from '../../src/schedules';
import { addUtcDays, isoDate } from '../../src/domain/billing';
import { SCHEDULE_IDS } from '../../src/workflows/shared';
import type { usageRollup } from '../../src/workflows/usage-rollup';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  if (stack) {
    for (const def of scheduleDefinitions()) {
      await stack.temporal.schedule
        .getHandle(def.scheduleId)
        .delete()
        .catch(() => undefined);
    }
  }
  await stack?.close();
});

interface ScheduleBody {
  id: string;
  workflow_type: string;
  spec: { cron: string[]; intervals: string[]; timezone: string | null };
  overlap: string;
  catchup_window_seconds: number;
  paused: boolean;
  next_action_times: string[];
  recent_actions: { scheduled_at: string; taken_at: string; workflow_id: string }[];
  managed: boolean;
}

const listSchedules = (auth: string) =>
  request(stack.app).get('/api/v1/ops/schedules').set('Authorization', auth);

it('creates every schedule once, then updates them in place', async () => {
  const ids = scheduleDefinitions().map((d) => d.scheduleId);
  expect(ids).toEqual(
    expect.arrayContaining([SCHEDULE_IDS.billingRun, SCHEDULE_IDS.trialSweep, SCHEDULE_IDS.usageRollup]),
  );
  for (const def of scheduleDefinitions()) {
    expect(def.policies).toMatchObject({ overlap: ScheduleOverlapPolicy.SKIP });
    expect(def.policies?.catchupWindow).toBeDefined();
  }
  expect(await syncSchedules(stack.temporal)).toEqual(ids.map((id) => ({ id, action: 'created' })));
  expect(await syncSchedules(stack.temporal)).toEqual(ids.map((id) => ({ id, action: 'updated' })));
});

it('lists every schedule with its spec, next runs and state to platform admins', async () => {
  const res = await listSchedules(`Bearer ${stack.adminToken}`);
  expect(res.status).toBe(200);
  const schedules = res.body.data as ScheduleBody[];
  expect(schedules.map((s) => s.id)).toEqual(
    expect.arrayContaining([
      SCHEDULE_IDS.billingRun,
      SCHEDULE_IDS.trialSweep,
      SCHEDULE_IDS.maintenanceCleanup,
      SCHEDULE_IDS.usageRollup,
    ]),
  );
  const byId = Object.fromEntries(schedules.map((s) => [s.id, s]));
  expect(byId[SCHEDULE_IDS.billingRun]).toMatchObject({
    workflow_type: 'billingRun',
    spec: { cron: ['0 * * * *'], intervals: [], timezone: 'UTC' },
    overlap: 'SKIP',
    catchup_window_seconds: 86_400,
    paused: false,
    managed: true,
  });
  expect(byId[SCHEDULE_IDS.trialSweep]).toMatchObject({
    workflow_type: 'trialSweep',
    spec: { cron: ['15 * * * *'] },
    overlap: 'SKIP',
    catchup_window_seconds: 7_200,
    paused: false,
  });
  expect(byId[SCHEDULE_IDS.maintenanceCleanup]?.spec.cron).toEqual(['0 3 * * *']);
  expect(byId[SCHEDULE_IDS.usageRollup]).toMatchObject({
    workflow_type: 'usageRollup',
    spec: { cron: ['0 2 * * *'], intervals: [], timezone: 'UTC' },
    overlap: 'SKIP',
    catchup_window_seconds: 172_800,
    paused: false,
    managed: true,
  });
  // daily at 02:00 UTC: the next run within a day, at 02:00, and a day apart
  const rollups = byId[SCHEDULE_IDS.usageRollup]!.next_action_times.map((t) => new Date(t));
  expect(rollups[0]!.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000);
  for (const at of rollups) expect(at.toISOString().slice(11)).toBe('02:00:00.000Z');
  if (rollups.length > 1) expect(rollups[1]!.getTime() - rollups[0]!.getTime()).toBe(86_400_000);
  for (const id of [SCHEDULE_IDS.billingRun, SCHEDULE_IDS.trialSweep]) {
    const next = byId[id]!.next_action_times.map((t) => new Date(t).getTime());
    expect(next.length).toBeGreaterThan(0);
    expect(next[0]).toBeGreaterThan(Date.now());
    // hourly: at most an hour away, and an hour apart
    expect(next[0]! - Date.now()).toBeLessThanOrEqual(3_600_000);
    if (next.length > 1) expect(next[1]! - next[0]!).toBe(3_600_000);
  }
});

it('refuses tenants: 403', async () => {
  const tenant = await createActiveTenant(stack, 'schedules-tenant');
  expectProblem(await listSchedules(`Bearer ${tenant.token}`), 403, 'forbidden');
});

it('runs billingRun when billing-run is triggered, and shows the action it took', async () => {
  const handle = stack.temporal.schedule.getHandle(SCHEDULE_IDS.billingRun);
  await handle.trigger();
  const action = await waitFor(async () => (await handle.describe()).info.recentActions.at(-1), {
    what: 'the triggered billing-run action',
    timeoutMs: 30_000,
  });
  expect(action.action.workflow.workflowId).toMatch(/^billing-run-/);
  const result = await stack.temporal.workflow.getHandle(action.action.workflow.workflowId).result();
  expect(result).toMatchObject({ done: true, found: 0 });

  const res = await listSchedules(`Bearer ${stack.adminToken}`);
  const listed = (res.body.data as ScheduleBody[]).find((s) => s.id === SCHEDULE_IDS.billingRun);
  expect(listed?.recent_actions.at(-1)?.workflow_id).toBe(action.action.workflow.workflowId);
});

it('runs usageRollup over the three days before today when usage-rollup is triggered', async () => {
  const handle = stack.temporal.schedule.getHandle(SCHEDULE_IDS.usageRollup);
  await handle.trigger();
  const action = await waitFor(async () => (await handle.describe()).info.recentActions.at(-1), {
    what: 'the triggered usage-rollup action',
    timeoutMs: 30_000,
  });
  expect(action.action.workflow.workflowId).toMatch(/^usage-rollup-/);
  const result = await stack.temporal.workflow
    .getHandle<typeof usageRollup>(action.action.workflow.workflowId)
    .result();
  // the run's own day: the workflow starts when the action is taken
  const today = isoDate(action.takenAt);
  const days = [-3, -2, -1].map((n) => addUtcDays(today, n));
  expect(result).toEqual({ done: true, days, rolledUp: days.map((day) => ({ day, rows: 0 })) });
});

it('writes calendars back as cron expressions', () => {
  const every = (start: number, end: number) => [{ start, end, step: 1 }];
  expect(
    cronOf({
      second: [{ start: 0, end: 0, step: 1 }],
      minute: [{ start: 30, end: 30, step: 1 }],
      hour: [{ start: 0, end: 23, step: 2 }],
      dayOfMonth: every(1, 31),
      month: [{ start: 'JANUARY', end: 'DECEMBER', step: 1 }],
      year: [],
      dayOfWeek: [{ start: 'MONDAY', end: 'FRIDAY', step: 1 }],
    }),
  ).toBe('30 */2 * * 1-5');
  expect(
    cronOf({
      second: [{ start: 15, end: 15, step: 1 }],
      minute: [{ start: 0, end: 0, step: 1 }],
      hour: [
        { start: 3, end: 3, step: 1 },
        { start: 15, end: 15, step: 1 },
      ],
      dayOfMonth: every(1, 31),
      month: [{ start: 'MARCH', end: 'MARCH', step: 1 }],
      year: [],
      dayOfWeek: [{ start: 'SUNDAY', end: 'SATURDAY', step: 1 }],
    }),
  ).toBe('15 0 3,15 * 3 *');
});
