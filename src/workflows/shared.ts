/**
 * Everything the API and the workflows agree on: task queues, search attribute keys,
 * workflow-id builders and message definitions. Imported by both sides, so it stays
 * deterministic (only @temporalio/workflow and @temporalio/common).
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';

export const TASK_QUEUES = {
  provisioning: 'provisioning',
  billing: 'billing',
  maintenance: 'maintenance',
} as const;

export type TaskQueue = (typeof TASK_QUEUES)[keyof typeof TASK_QUEUES];

/** Custom Keyword search attributes (DESIGN.md §6); the dev server and compose setup register these. */
export const SEARCH_ATTRIBUTES = {
  TenantId: defineSearchAttributeKey('TenantId', 'KEYWORD'),
  CustomerId: defineSearchAttributeKey('CustomerId', 'KEYWORD'),
  CloudPodId: defineSearchAttributeKey('CloudPodId', 'KEYWORD'),
  SubscriptionId: defineSearchAttributeKey('SubscriptionId', 'KEYWORD'),
  InvoiceId: defineSearchAttributeKey('InvoiceId', 'KEYWORD'),
  PodplaneStatus: defineSearchAttributeKey('PodplaneStatus', 'KEYWORD'),
} as const;

export const SEARCH_ATTRIBUTE_NAMES: readonly string[] = Object.keys(SEARCH_ATTRIBUTES);

/** Workflow ids derive from business keys, never from clocks or randoms. */
export const workflowIds = {
  onboardTenant: (tenantId: string) => `tenant-onboard-${tenantId}`,
} as const;

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

export const SCHEDULE_IDS = {
  maintenanceCleanup: 'maintenance-cleanup',
} as const;
