/** Housekeeping activities run by the `maintenance-cleanup` schedule. */
import { ApiToken } from '../db/entities';
import { systemEm, type MikroORM } from '../db/orm';

export interface MaintenanceActivityDeps {
  orm: MikroORM;
  /** how long expired or revoked tokens stay listed before they are purged */
  tokenRetentionDays: number;
}

export function createMaintenanceActivities({ orm, tokenRetentionDays }: MaintenanceActivityDeps) {
  return {
    /** Deletes API tokens that expired or were revoked longer than the retention ago. */
    async purgeDeadApiTokens(): Promise<number> {
      const cutoff = new Date(Date.now() - tokenRetentionDays * 86_400_000);
      return systemEm(orm).nativeDelete(ApiToken, {
        $or: [{ expiresAt: { $lt: cutoff } }, { revokedAt: { $lt: cutoff } }],
      });
    },
  };
}

export type MaintenanceActivities = ReturnType<typeof createMaintenanceActivities>;
