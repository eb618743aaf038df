/** Composes every area's activities for the worker. */
import type { Logger } from '../logger';
import type { MikroORM } from '../db/orm';
import type { Providers } from '../providers';
import { createCloudPodActivities, type CloudPodActivities } from './cloudpods';
import { createMaintenanceActivities, type MaintenanceActivities } from './maintenance';
import { createTenantActivities, type TenantActivities } from './tenants';

export interface ActivityDeps {
  orm: MikroORM;
  logger: Logger;
  providers: Pick<Providers, 'hypervisor' | 'dns'>;
  /** how long backups stay restorable (BACKUP_RETENTION_DAYS; 30 by default) */
  backupRetentionDays?: number;
}

export type Activities = TenantActivities & MaintenanceActivities & CloudPodActivities;

export function createActivities(deps: ActivityDeps): Activities {
  return {
    ...createTenantActivities(deps),
    ...createMaintenanceActivities({ orm: deps.orm, tokenRetentionDays: 30 }),
    ...createCloudPodActivities({
      orm: deps.orm,
      logger: deps.logger,
      ...deps.providers,
      ...(deps.backupRetentionDays ? { backupRetentionDays: deps.backupRetentionDays } : {}),
    }),
  };
}

export type { TenantActivities, MaintenanceActivities, CloudPodActivities };
