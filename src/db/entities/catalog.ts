/** Catalog entities: a tenant's customers and the products (plans) it sells. */
import { BigIntType, Entity, Enum, Index, ManyToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import { COLLECTION_METHODS, type CollectionMethod } from '../../domain/billing/states';
import { Row } from './base';
import { Tenant } from './tenancy';
import { TestClock } from './test-clocks';

/** Email is unique per tenant among customers that are not deleted. */
@Entity({ tableName: 'customers' })
@Index({ properties: ['tenant', 'id'] })
@Unique({
  name: 'customers_tenant_email_live_unique',
  expression:
    'create unique index "customers_tenant_email_live_unique" on "customers" ("tenant_id", "email") where "deleted_at" is null',
})
export class Customer extends Row {
  static override readonly idKind = 'customer' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @Property({ type: 'string', length: 320 })
  email!: string;

  @Property({ type: 'string', length: 200 })
  name!: string;

  /** AUTOMATIC: invoices are charged to the default payment method; MANUAL: the customer pays them */
  @Enum({ items: () => COLLECTION_METHODS, type: 'string' })
  collectionMethod: CollectionMethod & Opt = 'AUTOMATIC';

  /** the payment provider's payment method (`pm_…`) charged off-session */
  @Property({ type: 'string', length: 255, nullable: true })
  defaultPaymentMethod?: string | null;

  /** the payment provider's customer (`cus_…` at Stripe) */
  @Property({ type: 'string', length: 255, nullable: true })
  providerCustomerId?: string | null;

  /** credit owed to the customer, in minor units of the tenant's currency; applied to the next invoices */
  @Property({ type: new BigIntType('number') })
  creditBalance: number & Opt = 0;

  /** the sandbox test clock this customer's billing runs at (null: the wall clock) */
  @Index()
  @ManyToOne({ entity: () => TestClock, nullable: true, deleteRule: 'set null' })
  testClock?: TestClock | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  deletedAt?: Date | null;
}

export const PRODUCT_INTERVALS = ['MONTH', 'YEAR'] as const;
export type ProductInterval = (typeof PRODUCT_INTERVALS)[number];

/** A CloudPod plan. Soft-deleted products stay readable for pods on them but cannot be chosen. */
@Entity({ tableName: 'products' })
@Unique({ properties: ['tenant', 'code'] })
@Index({ properties: ['tenant', 'id'] })
export class Product extends Row {
  static override readonly idKind = 'product' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @Property({ type: 'string', length: 64 })
  code!: string;

  @Property({ type: 'string', length: 200 })
  name!: string;

  @Property({ type: 'string', length: 20 })
  kind: string & Opt = 'CLOUDPOD';

  @Enum({ items: () => PRODUCT_INTERVALS, type: 'string' })
  interval!: ProductInterval;

  /** price per interval in minor units of `currency` */
  @Property({ type: 'integer' })
  unitAmount!: number;

  @Property({ type: 'string', length: 3, columnType: 'char(3)' })
  currency!: string;

  @Property({ type: 'integer' })
  vcpu!: number;

  @Property({ type: 'integer' })
  memoryMb!: number;

  @Property({ type: 'integer' })
  diskGb!: number;

  /** bandwidth (usage metric `bandwidth_gb`) each period includes */
  @Property({ type: 'integer' })
  includedBandwidthGb!: number;

  /**
   * the price of each GB beyond `includedBandwidthGb` in a period, in minor units of `currency`,
   * billed in arrears on the renewal invoice; 0 bills no overage
   */
  @Property({ type: 'integer' })
  bandwidthOverageUnitAmount: number & Opt = 0;

  @Property({ type: 'integer' })
  trialDays: number & Opt = 0;

  @Property({ type: 'integer' })
  backupsIncluded: number & Opt = 0;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  deletedAt?: Date | null;
}
