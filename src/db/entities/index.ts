/** Every entity, listed explicitly: discovery never scans the file system. */
import { Notification } from './notifications';
import { ApiToken, Tenant, TenantBillingSettings, TenantQuota } from './tenancy';

export * from './notifications';
export * from './tenancy';

export const ENTITIES = [Tenant, TenantBillingSettings, TenantQuota, ApiToken, Notification];

/** Entities whose rows belong to one tenant (a `tenant` relation); the tenant filter covers them. */
export const TENANT_SCOPED_ENTITIES = [TenantBillingSettings, TenantQuota, ApiToken, Notification];
