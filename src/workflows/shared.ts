/**
 * What every area's workflows and their callers share: task queues, search attribute keys,
 * workflow-id and schedule-id builders. Each area's messages (inputs, signals, queries, updates)
 * live in `messages/<area>.ts`. Imported by both sides, so it stays deterministic.
 */
import { defineSearchAttributeKey } from '@temporalio/common';

export const TASK_QUEUES = {
  provisioning: 'provisioning',
  billing: 'billing',
  maintenance: 'maintenance',
} as const;

export type TaskQueue = (typeof TASK_QUEUES)[keyof typeof TASK_QUEUES];

/** Custom Keyword search attributes (docs/architecture.md); the dev server and compose setup register these. */
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
  cloudPod: (podId: string) => `cloudpod-${podId}`,
  activateSubscription: (subscriptionId: string) => `subscription-activate-${subscriptionId}`,
  /** `periodStart` as ISO: one renewal per subscription and period */
  renewSubscription: (subscriptionId: string, periodStart: string) =>
    `subscription-renew-${subscriptionId}-${periodStart}`,
  /** one per requested change: its `subscription_plan_changes` row id */
  changeSubscriptionPlan: (subscriptionId: string, changeId: string) =>
    `subscription-change-plan-${subscriptionId}-${changeId}`,
  dunning: (invoiceId: string) => `dunning-${invoiceId}`,
  /** `seq`: the clock's advance count, one workflow per requested advance */
  advanceTestClock: (clockId: string, seq: number) => `test-clock-${clockId}-advance-${seq}`,
  stripeEvent: (eventId: string) => `stripe-event-${eventId}`,
  /** `day` as `YYYY-MM-DD` (UTC): a rollup started by hand; the schedule's runs are `usage-rollup-<scheduled time>` */
  usageRollup: (day: string) => `usage-rollup-${day}`,
} as const;

export const SCHEDULE_IDS = {
  maintenanceCleanup: 'maintenance-cleanup',
  billingRun: 'billing-run',
  trialSweep: 'trial-sweep',
  usageRollup: 'usage-rollup',
  auditVerify: 'audit-verify',
} as const;
