/** Composes every area's activities for the worker. */
import type { Logger } from '../logger';
import type { MikroORM } from '../db/orm';
import { createMaintenanceActivities, type MaintenanceActivities } from './maintenance';
import { createTenantActivities, type TenantActivities } from './tenants';

export interface ActivityDeps {
  orm: MikroORM;
  logger: Logger;
}

export type Activities = TenantActivities & MaintenanceActivities;

export function createActivities(deps: ActivityDeps): Activities {
  return {
    ...createTenantActivities(deps),
    ...createMaintenanceActivities({ orm: deps.orm, tokenRetentionDays: 30 }),
  };
}

export type { TenantActivities, MaintenanceActivities };
