/** `maintenanceCleanup` — started daily by the `maintenance-cleanup` schedule. */
import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { MaintenanceActivities } from '../activities/maintenance';

const acts = proxyActivities<MaintenanceActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 5 },
});
/** batched deletes that heartbeat per batch: a large backlog may take longer than one call */
const purges = proxyActivities<MaintenanceActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

export async function maintenanceCleanup(): Promise<{ purgedTokens: number; purgedIdempotencyKeys: number }> {
  setCurrentDetails('Purging long-dead API tokens');
  const purgedTokens = await acts.purgeDeadApiTokens();
  // Appended after the existing step, so a run that started before this change replays unchanged.
  setCurrentDetails(`Purged ${purgedTokens} API tokens; purging expired Idempotency-Keys`);
  const purgedIdempotencyKeys = await purges.purgeExpiredIdempotencyKeys();
  setCurrentDetails(
    `Purged ${purgedTokens} API tokens and ${purgedIdempotencyKeys} expired Idempotency-Keys`,
  );
  return { purgedTokens, purgedIdempotencyKeys };
}
