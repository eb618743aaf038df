/** /api/v1/ops/schedules (platform admin): the Temporal Schedules, their next runs and last actions. */
import { isGrpcServiceError, type Client } from '@temporalio/client';
import type { Config } from '../../config';
import { AppError } from '../../domain/errors';
import { describeSchedules, type ScheduleOverview } from '../../schedules';
import { route, type Route } from '../http/route';
import { z } from '../zod';

/** gRPC DEADLINE_EXCEEDED and UNAVAILABLE: the engine did not answer in time, or not at all. */
const ENGINE_DOWN_CODES = new Set([4, 14]);

function engineDown(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    if (isGrpcServiceError(e) && ENGINE_DOWN_CODES.has(Number(e.code))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const Timestamp = z.string().openapi({ example: '2026-11-23T21:00:00.000Z' });

const ScheduleView = z
  .object({
    id: z.string().openapi({ example: 'billing-run' }),
    workflow_type: z.string().openapi({ example: 'billingRun' }),
    spec: z.object({
      cron: z.array(z.string()).openapi({
        description: 'calendar specs as cron expressions (minute hour day-of-month month day-of-week)',
        example: ['0 * * * *'],
      }),
      intervals: z.array(z.string()).openapi({ example: [] }),
      timezone: z.string().nullable(),
    }),
    overlap: z.string().openapi({ example: 'SKIP' }),
    catchup_window_seconds: z.number().int(),
    paused: z.boolean(),
    note: z.string().nullable(),
    next_action_times: z.array(Timestamp).openapi({ description: 'the next times it fires, soonest first' }),
    recent_actions: z
      .array(z.object({ scheduled_at: Timestamp, taken_at: Timestamp, workflow_id: z.string() }))
      .openapi({ description: 'the last actions taken (triggers included), oldest first' }),
    running_workflow_ids: z.array(z.string()),
    managed: z
      .boolean()
      .openapi({ description: 'defined by podplane and kept up to date by schedules:sync' }),
  })
  .openapi('Schedule');

const ScheduleList = z.object({ data: z.array(ScheduleView) }).openapi('ScheduleList');

function scheduleView(s: ScheduleOverview): z.infer<typeof ScheduleView> {
  return {
    id: s.id,
    workflow_type: s.workflowType,
    spec: { cron: s.cron, intervals: s.intervals, timezone: s.timezone },
    overlap: s.overlap,
    catchup_window_seconds: Math.round(s.catchupWindowMs / 1000),
    paused: s.paused,
    note: s.note,
    next_action_times: s.nextActionTimes.map((t) => t.toISOString()),
    recent_actions: s.recentActions.map((a) => ({
      scheduled_at: a.scheduledAt.toISOString(),
      taken_at: a.takenAt.toISOString(),
      workflow_id: a.workflowId,
    })),
    running_workflow_ids: s.runningWorkflowIds,
    managed: s.managed,
  };
}

export function scheduleRoutes(deps: { temporal: Client; config: Config }): Route[] {
  return [
    route({
      operationId: 'listSchedules',
      tag: 'Operations',
      method: 'get',
      path: '/api/v1/ops/schedules',
      summary:
        'Every Temporal Schedule (billing-run, trial-sweep, maintenance-cleanup, …): its spec, next run times, paused state and last actions',
      access: { caller: 'platform', permission: 'ops:read' },
      responses: {
        200: {
          description: 'The schedules, by id',
          content: { 'application/json': { schema: ScheduleList } },
        },
      },
      async handle({ res }) {
        let schedules: ScheduleOverview[];
        try {
          schedules = await deps.temporal.withDeadline(
            Date.now() + deps.config.TEMPORAL_CALL_TIMEOUT_MS,
            () => describeSchedules(deps.temporal),
          );
        } catch (err) {
          if (!engineDown(err)) throw err;
          throw new AppError('unavailable', 'the workflow engine could not be reached', {}, { cause: err });
        }
        res.json({ data: schedules.map(scheduleView) });
      },
    }),
  ];
}
