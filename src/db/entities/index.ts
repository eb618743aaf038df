/** Every entity, listed explicitly: discovery never scans the file system. */
import {
  CreditNote,
  DocumentCounter,
  Invoice,
  InvoiceLine,
  Payment,
  Subscription,
  UsageDaily,
  UsageRecord,
  WebhookEvent,
} from './billing';
import { Customer, Product } from './catalog';
import { Backup, CloudPod, CoreNode, OpsEvent, ProvisioningJob } from './cloudpods';
import { IdempotencyKey } from './idempotency';
import { Invitation, PasswordResetToken } from './invitations';
import { Membership, Session, User } from './identity';
import { Notification } from './notifications';
import { SubscriptionPlanChange } from './plan-changes';
import { SecurityEvent } from './security';
import { TenantSecurityPolicy } from './security-policy';
import { ShieldEvent, ShieldPolicy, ShieldRule } from './shield';
import { SimBackup, SimDnsRecord, SimFaultRule, SimVm } from './simulator';
import { ApiToken, Tenant, TenantBillingSettings, TenantQuota, TenantUsage } from './tenancy';
import { TestClock } from './test-clocks';

export * from './base';
export * from './billing';
export * from './catalog';
export * from './cloudpods';
export * from './idempotency';
export * from './invitations';
export * from './identity';
export * from './notifications';
export * from './plan-changes';
export * from './security';
export * from './security-policy';
export * from './shield';
export * from './simulator';
export * from './tenancy';
export * from './test-clocks';

export const ENTITIES = [
  Tenant,
  TenantBillingSettings,
  TenantQuota,
  TenantUsage,
  ApiToken,
  Notification,
  Customer,
  Product,
  CoreNode,
  CloudPod,
  ProvisioningJob,
  Backup,
  IdempotencyKey,
  SimVm,
  SimDnsRecord,
  SimFaultRule,
  SimBackup,
  OpsEvent,
  Subscription,
  Invoice,
  InvoiceLine,
  Payment,
  CreditNote,
  DocumentCounter,
  WebhookEvent,
  UsageRecord,
  SubscriptionPlanChange,
  UsageDaily,
  TestClock,
  User,
  Membership,
  Session,
  SecurityEvent,
  Invitation,
  PasswordResetToken,
  TenantSecurityPolicy,
  ShieldPolicy,
  ShieldRule,
  ShieldEvent,
];

/** Entities whose rows belong to one tenant (a `tenant` relation); the tenant filter covers them. */
export const TENANT_SCOPED_ENTITIES = [
  TenantBillingSettings,
  TenantQuota,
  TenantUsage,
  ApiToken,
  Notification,
  Customer,
  Product,
  CloudPod,
  ProvisioningJob,
  Backup,
  Subscription,
  Invoice,
  InvoiceLine,
  Payment,
  CreditNote,
  DocumentCounter,
  UsageRecord,
  SubscriptionPlanChange,
  UsageDaily,
  TestClock,
  Membership,
  Invitation,
  TenantSecurityPolicy,
  ShieldPolicy,
  ShieldRule,
  ShieldEvent,
];
