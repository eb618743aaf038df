/** `onboardTenant` — `tenant-onboard-<tenantId>`: default settings, welcome mail, then ACTIVE. */
import { proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { TenantActivities } from '../activities/tenants';
import { SEARCH_ATTRIBUTES } from './shared';
import { onboardingStateQuery, type OnboardTenantInput, type OnboardTenantState } from './messages/tenants';

const acts = proxyActivities<TenantActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
  },
});

export async function onboardTenant(input: OnboardTenantInput): Promise<OnboardTenantState> {
  const state: OnboardTenantState = { tenantId: input.tenantId, step: 'starting', status: 'RUNNING' };
  setHandler(onboardingStateQuery, () => state);

  const step = async (name: OnboardTenantState['step'], details: string, run: () => Promise<void>) => {
    state.step = name;
    setCurrentDetails(details);
    await run();
  };

  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'ONBOARDING' }]);
  await step('billing-settings', 'Creating billing settings with the default dunning policy', () =>
    acts.createTenantBillingSettings(input.tenantId),
  );
  await step('quotas', 'Creating default quotas', () => acts.createTenantQuotas(input.tenantId));
  await step('welcome-notification', 'Recording the welcome notification', () =>
    acts.recordWelcomeNotification(input.tenantId),
  );
  await step('activating', 'Marking the tenant ACTIVE', () => acts.activateTenant(input.tenantId));
  state.step = 'done';
  state.status = 'ACTIVE';
  setCurrentDetails('Tenant is ACTIVE');
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'ACTIVE' }]);
  return state;
}
