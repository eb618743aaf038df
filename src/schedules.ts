/** Temporal Schedules, created or updated idempotently by `schedules:sync` (CLI, `npm start`, worker boot). */
import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptions,
} from '@temporalio/client';
import { SCHEDULE_IDS, TASK_QUEUES } from './workflows/shared';

export function scheduleDefinitions(): ScheduleOptions[] {
  return [
    {
      scheduleId: SCHEDULE_IDS.maintenanceCleanup,
      spec: { cronExpressions: ['0 3 * * *'], timezone: 'UTC' },
      action: {
        type: 'startWorkflow',
        workflowType: 'maintenanceCleanup',
        workflowId: 'maintenance-cleanup',
        taskQueue: TASK_QUEUES.maintenance,
        args: [],
        staticSummary: 'Daily housekeeping: purge long-dead API tokens and expired Idempotency-Keys',
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      state: { note: 'managed by podplane schedules:sync' },
    },
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
