/** A tenant's security policy: required MFA, session lifetime, IP allowlist and lockout. */
import { Entity, OneToOne, Property, type Opt } from '@mikro-orm/core';
import { Row } from './base';
import { Tenant } from './tenancy';

/**
 * At most one row per tenant; a tenant without one has the defaults (`DEFAULT_POLICY` in
 * domain/security-policy.ts): MFA optional, the platform's session lifetime and lockout, any
 * address. A null number means "the platform's value".
 */
@Entity({ tableName: 'tenant_security_policies' })
export class TenantSecurityPolicy extends Row {
  static override readonly idKind = 'securityPolicy' as const;

  @OneToOne({ entity: () => Tenant, owner: true, unique: true, deleteRule: 'cascade' })
  tenant!: Tenant;

  /** every member must have MFA enabled; until they do, a sign-in only lets them set it up */
  @Property({ type: 'boolean' })
  requireMfa: boolean & Opt = false;

  /** how long a sign-in into this tenant lasts; never more than SESSION_TTL_S */
  @Property({ type: 'integer', nullable: true })
  sessionLifetimeS?: number | null;

  /** CIDRs (or single addresses) members may sign in and call from; empty: any address */
  @Property({ type: 'text[]', defaultRaw: "'{}'" })
  ipAllowlist: string[] & Opt = [];

  /** wrong sign-ins in a row that lock a member's account */
  @Property({ type: 'integer', nullable: true })
  lockoutThreshold?: number | null;

  /** how long such a lock lasts */
  @Property({ type: 'integer', nullable: true })
  lockoutDurationS?: number | null;
}
