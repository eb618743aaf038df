/** Housekeeping activities run by the `maintenance-cleanup` schedule. */
import { heartbeat } from '@temporalio/activity';
import { systemEm, type MikroORM } from '../db/orm';
import { purgeDeadTokens } from '../services/api-tokens';

export interface MaintenanceActivityDeps {
  orm: MikroORM;
  /** how long expired or revoked tokens stay listed before they are purged */
  tokenRetentionDays: number;
}

/** rows deleted per statement: bounded, so a large backlog never holds one long lock */
const PURGE_BATCH = 5000;

/** Outside an activity (a test calling the factory directly) there is nothing to heartbeat. */
function tryHeartbeat(details: unknown): void {
  try {
    heartbeat(details);
  } catch {
    // not running inside an activity
  }
}

export function createMaintenanceActivities({ orm, tokenRetentionDays }: MaintenanceActivityDeps) {
  return {
    /** Deletes API tokens that expired or were revoked longer than the retention ago. */
    async purgeDeadApiTokens(): Promise<number> {
      const cutoff = new Date(Date.now() - tokenRetentionDays * 86_400_000);
      return purgeDeadTokens(systemEm(orm), cutoff);
    },

    /**
     * Deletes Idempotency-Keys past their 24 h (a request still holding its lease keeps its row).
     * Idempotent: a retry deletes whatever is left.
     */
    async purgeExpiredIdempotencyKeys(): Promise<number> {
      const conn = systemEm(orm).getConnection();
      let total = 0;
      for (;;) {
        const deleted = await conn.execute<{ id: string }[]>(
          `delete from idempotency_keys where id in (
             select id from idempotency_keys
              where expires_at < now() and (locked_until is null or locked_until < now())
              limit ?)
           returning id`,
          [PURGE_BATCH],
        );
        total += deleted.length;
        tryHeartbeat(total);
        if (deleted.length < PURGE_BATCH) return total;
      }
    },
  };
}

export type MaintenanceActivities = ReturnType<typeof createMaintenanceActivities>;
