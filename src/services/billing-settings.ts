/**
 * A tenant's billing settings: the tax rate its invoices charge, the net terms of invoices its
 * customers pay themselves, and the dunning policy. A change applies to what is issued after it:
 * an invoice keeps the tax it was finalized with, and an invoice already in dunning keeps the copy
 * of the policy it started with.
 */
import { LockMode } from '@mikro-orm/core';
import { TenantBillingSettings } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { dunningPolicyProblem } from '../domain/billing/dunning';
import { AppError, notFound } from '../domain/errors';
import type { DunningPolicy } from '../domain/tenants';

export interface BillingSettingsPatch {
  taxRateBps?: number | undefined;
  netTermsDays?: number | undefined;
  /** fields not given keep their value */
  dunningPolicy?: Partial<DunningPolicy> | undefined;
}

/** The tenant's settings row (created with the tenant by onboarding); 404 before it exists. */
export async function billingSettingsOf(em: EntityManager, tenantId: string): Promise<TenantBillingSettings> {
  const settings = await em.findOne(TenantBillingSettings, { tenant: tenantId });
  if (!settings) throw notFound('billing settings');
  return settings;
}

/** Applies `patch` under the row's lock, in one transaction; a policy that cannot run is 422, nothing saved. */
export async function updateBillingSettings(
  em: EntityManager,
  tenantId: string,
  patch: BillingSettingsPatch,
): Promise<TenantBillingSettings> {
  return em.transactional(async (tx) => {
    const settings = await tx.findOne(
      TenantBillingSettings,
      { tenant: tenantId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    if (!settings) throw notFound('billing settings');
    const policy: DunningPolicy = { ...settings.dunningPolicy, ...patch.dunningPolicy };
    const problem = dunningPolicyProblem(policy);
    if (problem) {
      throw new AppError('unprocessable', `the dunning policy cannot be used: ${problem}`, {
        errors: [{ field: 'dunning_policy', message: problem }],
      });
    }
    if (patch.taxRateBps !== undefined) settings.taxRateBps = patch.taxRateBps;
    if (patch.netTermsDays !== undefined) settings.netTermsDays = patch.netTermsDays;
    settings.dunningPolicy = { ...policy, retryOffsetsDays: [...policy.retryOffsetsDays] };
    await tx.flush();
    return settings;
  });
}
