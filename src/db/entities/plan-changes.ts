/**
 * A subscription's plan change: requested once, carried out by `changeSubscriptionPlan`. The row
 * holds what the change is priced with (both prices, the period and the moment it was asked for),
 * so the invoice or credit note it ends in is the preview computed with the same inputs, and how it
 * ended. At most one change of a subscription runs at a time (partial unique index).
 */
import { BigIntType, Entity, Enum, Index, ManyToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import type { BillingInterval } from '../../domain/billing/periods';
import type { ProrationSettlement } from '../../domain/billing/proration';
import { Row } from './base';
import { CreditNote, Invoice, Subscription } from './billing';
import { Product } from './catalog';
import { Tenant } from './tenancy';

/**
 * REQUESTED until its workflow claims it (or the API withdraws it, when the workflow could not be
 * started), RESIZING until the pod's resize has ended, then SUCCEEDED (switched and billed) or FAILED
 * (nothing billed).
 */
export const PLAN_CHANGE_STATUSES = ['REQUESTED', 'RESIZING', 'SUCCEEDED', 'FAILED'] as const;
/** A change in one of these holds the subscription's one change slot. */
export const RUNNING_PLAN_CHANGE_STATUSES: readonly PlanChangeStatus[] = ['REQUESTED', 'RESIZING'];
export type PlanChangeStatus = (typeof PLAN_CHANGE_STATUSES)[number];

export const PLAN_CHANGE_SETTLEMENTS = [
  'INVOICE',
  'CREDIT_NOTE',
  'NONE',
] as const satisfies readonly ProrationSettlement[];

@Entity({ tableName: 'subscription_plan_changes' })
@Index({ properties: ['subscription', 'createdAt'] })
@Unique({
  name: 'subscription_plan_changes_one_running',
  expression:
    'create unique index "subscription_plan_changes_one_running" on "subscription_plan_changes" ("subscription_id") where "status" in (\'REQUESTED\', \'RESIZING\')',
})
export class SubscriptionPlanChange extends Row {
  static override readonly idKind = 'planChange' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @ManyToOne({ entity: () => Subscription })
  subscription!: Subscription;

  @ManyToOne({ entity: () => Product })
  fromProduct!: Product;

  @ManyToOne({ entity: () => Product })
  toProduct!: Product;

  /** what the subscription paid per interval before the change, in minor units of `currency` */
  @Property({ type: new BigIntType('number') })
  fromUnitAmount!: number;

  /** what it pays after the change: the target product's price */
  @Property({ type: new BigIntType('number') })
  toUnitAmount!: number;

  @Property({ type: 'string', length: 3, columnType: 'char(3)' })
  currency!: string;

  @Property({ type: 'string', length: 10 })
  interval!: BillingInterval;

  /** the moment the change was requested: the proration is computed as of it */
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  asOf!: Date;

  /** the subscription's current period when the change was requested */
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  periodStart!: Date;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  periodEnd!: Date;

  /** false for a change during a trial: nothing is prorated, the plan is only switched */
  @Property({ type: 'boolean' })
  prorated!: boolean;

  @Enum({ items: () => PLAN_CHANGE_STATUSES, type: 'string' })
  status: PlanChangeStatus & Opt = 'REQUESTED';

  /** the pod being resized */
  @Property({ type: 'string', length: 40 })
  podId!: string;

  /** the pod's CHANGE_PLAN job, once requested */
  @Property({ type: 'string', length: 40, nullable: true })
  jobId?: string | null;

  @Enum({ items: () => PLAN_CHANGE_SETTLEMENTS, type: 'string', nullable: true })
  settlement?: ProrationSettlement | null;

  @ManyToOne({ entity: () => Invoice, nullable: true })
  invoice?: Invoice | null;

  @ManyToOne({ entity: () => CreditNote, nullable: true })
  creditNote?: CreditNote | null;

  @Property({ type: 'text', nullable: true })
  failureReason?: string | null;

  @Property({ type: 'string', length: 200 })
  workflowId!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  finishedAt?: Date | null;
}
