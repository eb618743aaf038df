/** Tenancy entities: tenants, their settings rows and API tokens. */
import { Check, Entity, Enum, Index, ManyToOne, OneToOne, Property, type Opt } from '@mikro-orm/core';
import type { TokenScope } from '../../domain/api-tokens';
import { Row } from './base';
import { DEFAULT_QUOTAS, TENANT_STATUSES, type DunningPolicy, type TenantStatus } from '../../domain/tenants';

/** LIVE: real customers and money; SANDBOX: a tenant for trying billing out, which may drive time with test clocks. */
export const TENANT_MODES = ['LIVE', 'SANDBOX'] as const;
export type TenantMode = (typeof TENANT_MODES)[number];

@Entity({ tableName: 'tenants' })
export class Tenant extends Row {
  static override readonly idKind = 'tenant' as const;

  @Property({ type: 'string', length: 40, unique: true })
  slug!: string;

  @Property({ type: 'string', length: 200 })
  name!: string;

  @Property({ type: 'string', length: 3, columnType: 'char(3)' })
  currency!: string;

  @Index()
  @Enum({ items: () => TENANT_STATUSES, type: 'string' })
  status: TenantStatus & Opt = 'PENDING';

  @Property({ type: 'string', length: 320 })
  ownerEmail!: string;

  /** set at creation, never changed: only a SANDBOX tenant may use test clocks */
  @Enum({ items: () => TENANT_MODES, type: 'string' })
  mode: TenantMode & Opt = 'LIVE';

  @Property({ type: 'string', length: 200, nullable: true })
  onboardingWorkflowId?: string | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  activatedAt?: Date | null;
}

@Entity({ tableName: 'tenant_billing_settings' })
export class TenantBillingSettings extends Row {
  static override readonly idKind = 'settings' as const;

  @OneToOne({ entity: () => Tenant, owner: true, unique: true, deleteRule: 'cascade' })
  tenant!: Tenant;

  /** basis points: 1 % = 100 */
  @Property({ type: 'integer' })
  taxRateBps!: number;

  @Property({ type: 'integer' })
  netTermsDays!: number;

  @Property({ type: 'json' })
  dunningPolicy!: DunningPolicy;
}

@Entity({ tableName: 'tenant_quotas' })
export class TenantQuota extends Row {
  static override readonly idKind = 'quota' as const;

  @OneToOne({ entity: () => Tenant, owner: true, unique: true, deleteRule: 'cascade' })
  tenant!: Tenant;

  @Property({ type: 'integer' })
  maxPods: number & Opt = DEFAULT_QUOTAS.maxPods;

  @Property({ type: 'integer' })
  maxVcpu: number & Opt = DEFAULT_QUOTAS.maxVcpu;

  @Property({ type: 'integer' })
  maxMemoryMb: number & Opt = DEFAULT_QUOTAS.maxMemoryMb;

  @Property({ type: 'integer' })
  maxDiskGb: number & Opt = DEFAULT_QUOTAS.maxDiskGb;

  @Property({ type: 'integer' })
  apiRequestsPerDay: number & Opt = DEFAULT_QUOTAS.apiRequestsPerDay;
}

/**
 * What a tenant's live pods (every status but TERMINATED, not deleted) hold: kept by the trigger
 * `cloud_pods_usage` in the same statement that changes a pod, which also refuses an insert past
 * the tenant's quota. Quota checks read one row instead of summing the tenant's pods.
 */
@Entity({ tableName: 'tenant_usage' })
export class TenantUsage {
  @OneToOne({ entity: () => Tenant, owner: true, primary: true, deleteRule: 'cascade' })
  tenant!: Tenant;

  @Property({ type: 'integer' })
  pods: number & Opt = 0;

  @Property({ type: 'integer' })
  vcpu: number & Opt = 0;

  @Property({ type: 'integer' })
  memoryMb: number & Opt = 0;

  @Property({ type: 'integer' })
  diskGb: number & Opt = 0;
}

/** A bearer credential. Either bound to one tenant or flagged platform-admin, never both. */
@Entity({ tableName: 'api_tokens' })
@Check({
  name: 'api_tokens_owner_check',
  expression: '(tenant_id is not null) <> platform_admin',
})
export class ApiToken extends Row {
  static override readonly idKind = 'token' as const;

  @Index()
  @ManyToOne({ entity: () => Tenant, nullable: true, deleteRule: 'cascade' })
  tenant?: Tenant | null;

  @Property({ type: 'boolean' })
  platformAdmin: boolean & Opt = false;

  @Property({ type: 'string', length: 100 })
  name!: string;

  /** hex SHA-256 of the secret; the secret itself is never stored */
  @Property({ type: 'string', length: 64, unique: true })
  tokenHash!: string;

  @Property({ type: 'string', length: 20 })
  prefix!: string;

  @Property({ type: 'text[]' })
  scopes!: TokenScope[];

  @Property({ type: 'string', length: 40, nullable: true })
  createdByTokenId?: string | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  lastUsedAt?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  expiresAt?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  revokedAt?: Date | null;
}
