/** The workflow bundle's entry point: every workflow the worker serves. */
export { onboardTenant } from './tenants';
export { maintenanceCleanup } from './maintenance';
export { cloudPod } from './cloudpods';
export { activateSubscription } from './subscriptions';
