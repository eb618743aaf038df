/** `maintenanceCleanup` — started daily by the `maintenance-cleanup` schedule. */
import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { MaintenanceActivities } from '../activities/maintenance';

const acts = proxyActivities<MaintenanceActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 5 },
});

export async function maintenanceCleanup(): Promise<{ purgedTokens: number }> {
  setCurrentDetails('Purging long-dead API tokens');
  const purgedTokens = await acts.purgeDeadApiTokens();
  setCurrentDetails(`Purged ${purgedTokens} API tokens`);
  return { purgedTokens };
}
