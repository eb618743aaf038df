/** Tenant onboarding activities: each is idempotent, so a retry after a crash changes nothing twice. */
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from '../logger';
import { Notification, Tenant, TenantBillingSettings, TenantQuota } from '../db/entities';
import { systemEm, type MikroORM } from '../db/orm';
import {
  DEFAULT_BILLING_SETTINGS,
  DEFAULT_QUOTAS,
  canTransition,
  welcomeNotification,
} from '../domain/tenants';
import { FAILURE_TYPES } from '../domain/errors';
import { newId } from '../domain/ids';

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
    /** Billing settings with the default dunning policy; an existing row is kept as it is. */
    async createTenantBillingSettings(tenantId: string): Promise<void> {
      await loadTenant(tenantId);
      await systemEm(orm)
        .createQueryBuilder(TenantBillingSettings)
        .insert({
          id: newId('settings'),
          tenant: tenantId,
          taxRateBps: DEFAULT_BILLING_SETTINGS.taxRateBps,
          netTermsDays: DEFAULT_BILLING_SETTINGS.netTermsDays,
          dunningPolicy: DEFAULT_BILLING_SETTINGS.dunningPolicy,
          createdAt: new Date(),
        })
        .onConflict('tenant_id')
        .ignore()
        .execute();
    },

    async createTenantQuotas(tenantId: string): Promise<void> {
      await loadTenant(tenantId);
      await systemEm(orm)
        .createQueryBuilder(TenantQuota)
        .insert({ id: newId('quota'), tenant: tenantId, ...DEFAULT_QUOTAS, createdAt: new Date() })
        .onConflict('tenant_id')
        .ignore()
        .execute();
    },

    /** Writes the welcome mail to the outbox once (dedupe key per tenant). */
    async recordWelcomeNotification(tenantId: string): Promise<void> {
      const tenant = await loadTenant(tenantId);
      const { subject, body } = welcomeNotification(tenant);
      await systemEm(orm)
        .createQueryBuilder(Notification)
        .insert({
          id: newId('notification'),
          tenant: tenantId,
          template: 'tenant.welcome',
          recipient: tenant.ownerEmail,
          subject,
          body,
          status: 'PENDING',
          dedupeKey: `tenant.welcome:${tenantId}`,
          createdAt: new Date(),
        })
        .onConflict('dedupe_key')
        .ignore()
        .execute();
    },

    async activateTenant(tenantId: string): Promise<void> {
      const tenant = await loadTenant(tenantId);
      if (!canTransition(tenant.status, 'ACTIVE')) {
        throw ApplicationFailure.nonRetryable(
          `tenant ${tenantId} is ${tenant.status} and cannot become ACTIVE`,
          FAILURE_TYPES.invalidTenantTransition,
        );
      }
      await systemEm(orm).nativeUpdate(
        Tenant,
        { id: tenantId, status: { $in: ['PENDING', 'ACTIVE'] } },
        { status: 'ACTIVE', activatedAt: new Date() },
      );
      logger.info({ tenantId }, 'tenant active');
    },
  };
}

export type TenantActivities = ReturnType<typeof createTenantActivities>;
