/** Tenant onboarding activities: each calls a repeatable service write, so a retry after a crash changes nothing twice. */
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from '../logger';
import { Tenant } from '../db/entities';
import { systemEm, type MikroORM } from '../db/orm';
import { FAILURE_TYPES } from '../domain/errors';
import * as tenants from '../services/tenants';

export interface TenantActivityDeps {
  orm: MikroORM;
  logger: Logger;
}

export function createTenantActivities({ orm, logger }: TenantActivityDeps) {
  async function loadTenant(tenantId: string): Promise<Tenant> {
    const tenant = await systemEm(orm).findOne(Tenant, { id: tenantId });
    if (!tenant)
      throw ApplicationFailure.nonRetryable(
        `tenant ${tenantId} does not exist`,
        FAILURE_TYPES.tenantNotFound,
      );
    return tenant;
  }

  return {
    async createTenantBillingSettings(tenantId: string): Promise<void> {
      await loadTenant(tenantId);
      await tenants.createDefaultBillingSettings(orm, tenantId);
    },

    async createTenantQuotas(tenantId: string): Promise<void> {
      await loadTenant(tenantId);
      await tenants.createDefaultQuotas(orm, tenantId);
    },

    async recordWelcomeNotification(tenantId: string): Promise<void> {
      await tenants.recordWelcomeNotification(orm, await loadTenant(tenantId));
    },

    async activateTenant(tenantId: string): Promise<void> {
      const status = await tenants.activateTenant(orm, tenantId);
      if (status === null)
        throw ApplicationFailure.nonRetryable(
          `tenant ${tenantId} does not exist`,
          FAILURE_TYPES.tenantNotFound,
        );
      if (status !== 'ACTIVE') {
        throw ApplicationFailure.nonRetryable(
          `tenant ${tenantId} is ${status} and cannot become ACTIVE`,
          FAILURE_TYPES.invalidTenantTransition,
        );
      }
      logger.info({ tenantId }, 'tenant active');
    },
  };
}

export type TenantActivities = ReturnType<typeof createTenantActivities>;
