/** Activities of `usageRollup`: one UTC day of usage records rolled up, repeatable (services/usage-rollup.ts). */
import { systemEm, type MikroORM } from '../db/orm';
import type { Logger } from '../logger';
import { rollupUsage, type RollupResult } from '../services/usage-rollup';
import { refusalsFinal } from './refusals';

export interface UsageActivityDeps {
  orm: MikroORM;
  logger: Logger;
}

export function createUsageActivities(deps: UsageActivityDeps) {
  const { orm, logger } = deps;

  return {
    /** Every tenant's usage of one UTC day (`YYYY-MM-DD`) into `usage_daily`; frozen days stay as they are. */
    async rollupUsageDay(day: string): Promise<RollupResult> {
      const result = await refusalsFinal(() => rollupUsage(systemEm(orm), day));
      logger.info(result, 'usage rolled up');
      return result;
    },
  };
}

export type UsageActivities = ReturnType<typeof createUsageActivities>;
