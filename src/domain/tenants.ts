/** Tenant rules: slug and currency validity, lifecycle transitions and onboarding defaults. */

export const TENANT_STATUSES = ['PENDING', 'ACTIVE', 'SUSPENDED', 'CLOSED'] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

const TRANSITIONS: Record<TenantStatus, readonly TenantStatus[]> = {
  PENDING: ['ACTIVE', 'CLOSED'],
  ACTIVE: ['SUSPENDED', 'CLOSED'],
  SUSPENDED: ['ACTIVE', 'CLOSED'],
  CLOSED: [],
};

export function canTransition(from: TenantStatus, to: TenantStatus): boolean {
  return from === to || TRANSITIONS[from].includes(to);
}

/** Lowercase letters, digits and inner hyphens, 3–40 characters: it ends up in hostnames. */
export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]$/;

/** Slugs that would collide with platform hostnames or confuse operators. */
export const RESERVED_SLUGS: ReadonlySet<string> = new Set([
  'admin',
  'api',
  'app',
  'docs',
  'ops',
  'platform',
  'podplane',
  'root',
  'status',
  'support',
  'system',
  'temporal',
  'www',
]);

export function slugProblem(slug: string): string | undefined {
  if (!SLUG_PATTERN.test(slug)) {
    return 'must be 3–40 lowercase letters, digits or inner hyphens';
  }
  if (slug.includes('--')) return 'must not contain consecutive hyphens';
  if (RESERVED_SLUGS.has(slug)) return 'is reserved';
  return undefined;
}

const ISO_CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

export function isCurrency(code: string): boolean {
  return /^[A-Z]{3}$/.test(code) && ISO_CURRENCIES.has(code);
}

/** Dunning is data on the tenant, not code: each tenant chooses its own schedule. */
export interface DunningPolicy {
  /** days after the due date on which the charge is retried */
  retryOffsetsDays: number[];
  /** suspend the subscription and its pod after the last retry fails */
  suspendAfterLastRetry: boolean;
  /** cancel and terminate once this many days overdue; null disables termination */
  terminateAfterDaysOverdue: number | null;
  /** email the customer on every failed attempt */
  notifyOnEveryFailure: boolean;
}

export const DEFAULT_DUNNING_POLICY: Readonly<DunningPolicy> = Object.freeze({
  retryOffsetsDays: [1, 3, 5, 7],
  suspendAfterLastRetry: true,
  terminateAfterDaysOverdue: 30,
  notifyOnEveryFailure: true,
});

export interface BillingDefaults {
  taxRateBps: number;
  netTermsDays: number;
  dunningPolicy: DunningPolicy;
}

export const DEFAULT_BILLING_SETTINGS: Readonly<BillingDefaults> = Object.freeze({
  taxRateBps: 0,
  netTermsDays: 14,
  dunningPolicy: {
    ...DEFAULT_DUNNING_POLICY,
    retryOffsetsDays: [...DEFAULT_DUNNING_POLICY.retryOffsetsDays],
  },
});

export interface QuotaLimits {
  maxPods: number;
  maxVcpu: number;
  maxMemoryMb: number;
  maxDiskGb: number;
  apiRequestsPerDay: number;
}

export const DEFAULT_QUOTAS: Readonly<QuotaLimits> = Object.freeze({
  maxPods: 25,
  maxVcpu: 64,
  maxMemoryMb: 131072,
  maxDiskGb: 2000,
  apiRequestsPerDay: 100000,
});

/** Rendered into the outbox by the onboarding workflow. */
export function welcomeNotification(tenant: { name: string; slug: string }): {
  subject: string;
  body: string;
} {
  return {
    subject: `Welcome to Podplane, ${tenant.name}`,
    body:
      `Your tenant "${tenant.slug}" is ready.\n` +
      'Create API tokens for your storefront, add products and customers, and start provisioning CloudPods.',
  };
}
