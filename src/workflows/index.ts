/** The workflow bundle's entry point: every workflow the worker serves. */
export { onboardTenant } from './tenants';
export { maintenanceCleanup } from './maintenance';
export { cloudPod } from './cloudpods';
export { activateSubscription } from './subscriptions';
export { renewSubscription } from './renewals';
export { billingRun } from './billing-run';
export { trialSweep } from './trial-sweep';
export { usageRollup } from './usage-rollup';
export { processStripeEvent } from './stripe-events';
export { dunning } from './dunning';
export { advanceTestClock } from './test-clocks';
export { changeSubscriptionPlan } from './subscription-plan-change';
export { auditVerify } from './audit-verify';
