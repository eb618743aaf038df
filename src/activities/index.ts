/** Composes every area's activities for the worker. */
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { MikroORM } from '../db/orm';
import type { Providers } from '../providers';
import { createAuditActivities, type AuditActivities } from './audit';
import { createBillingActivities, type BillingActivities } from './billing';
import { createCloudPodActivities, type CloudPodActivities } from './cloudpods';
import { createDunningActivities, type DunningActivities } from './dunning';
import { createMaintenanceActivities, type MaintenanceActivities } from './maintenance';
import { createPlanChangeActivities, type PlanChangeActivities } from './plan-change';
import { createRenewalActivities, type RenewalActivities } from './renewals';
import { createStripeEventActivities, type StripeEventActivities } from './stripe-events';
import { createTenantActivities, type TenantActivities } from './tenants';
import { createTestClockActivities, type TestClockActivities } from './test-clocks';
import { createUsageActivities, type UsageActivities } from './usage';

export interface ActivityDeps {
  orm: MikroORM;
  logger: Logger;
  providers: Pick<Providers, 'hypervisor' | 'dns' | 'payments'>;
  /** pod policy and zone for the pods billing creates (the API's own settings) */
  config: Config;
  /** how long backups stay restorable (BACKUP_RETENTION_DAYS; 30 by default) */
  backupRetentionDays?: number;
}

export type Activities = TenantActivities &
  MaintenanceActivities &
  CloudPodActivities &
  BillingActivities &
  RenewalActivities &
  StripeEventActivities &
  DunningActivities &
  UsageActivities &
  PlanChangeActivities &
  TestClockActivities &
  AuditActivities;

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
    ...createBillingActivities({
      orm: deps.orm,
      config: deps.config,
      payments: deps.providers.payments,
      logger: deps.logger,
    }),
    ...createRenewalActivities({
      orm: deps.orm,
      config: deps.config,
      logger: deps.logger,
      payments: deps.providers.payments,
    }),
    ...createStripeEventActivities({ orm: deps.orm, config: deps.config, logger: deps.logger }),
    ...createUsageActivities({ orm: deps.orm, logger: deps.logger }),
    ...createDunningActivities({
      orm: deps.orm,
      config: deps.config,
      payments: deps.providers.payments,
      logger: deps.logger,
    }),
    ...createPlanChangeActivities({ orm: deps.orm, config: deps.config, logger: deps.logger }),
    ...createTestClockActivities({ orm: deps.orm, logger: deps.logger }),
    ...createAuditActivities({ orm: deps.orm }),
  };
}

export type {
  TenantActivities,
  MaintenanceActivities,
  CloudPodActivities,
  BillingActivities,
  RenewalActivities,
  StripeEventActivities,
  DunningActivities,
  UsageActivities,
  PlanChangeActivities,
  TestClockActivities,
  AuditActivities,
};
