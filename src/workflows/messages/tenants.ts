/** Tenant onboarding's messages: what the API starts it with and what its query answers. */
import { defineQuery } from '@temporalio/workflow';

export type OnboardingStep =
  'starting' | 'billing-settings' | 'quotas' | 'welcome-notification' | 'activating' | 'done';

export interface OnboardTenantInput {
  tenantId: string;
}

export interface OnboardTenantState {
  tenantId: string;
  step: OnboardingStep;
  status: 'RUNNING' | 'ACTIVE';
}

export const onboardingStateQuery = defineQuery<OnboardTenantState>('state');
