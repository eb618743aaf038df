/** The notification outbox: rows written by workflows, delivered by the mail provider. */
import { Entity, Enum, Index, ManyToOne, Property, type Opt } from '@mikro-orm/core';
import { Row } from './base';
import { Customer } from './catalog';
import { Tenant } from './tenancy';

/** PENDING until delivered (SENT) or given up on after the last attempt (FAILED). */
export const NOTIFICATION_STATUSES = ['PENDING', 'SENT', 'FAILED'] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

@Entity({ tableName: 'notifications' })
@Index({ properties: ['status', 'createdAt'] })
@Index({ properties: ['tenant', 'customer'] })
export class Notification extends Row {
  static override readonly idKind = 'notification' as const;

  @Index()
  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  /** the customer it concerns; null for the tenant's own mail (and once the customer is deleted) */
  @ManyToOne({ entity: () => Customer, nullable: true, deleteRule: 'set null' })
  customer?: Customer | null;

  /** what kind of notification it is (`invoice.payment_failed`): the API's `kind` */
  @Property({ type: 'string', length: 100 })
  template!: string;

  @Property({ type: 'string', length: 320 })
  recipient!: string;

  @Property({ type: 'string', length: 300 })
  subject!: string;

  @Property({ type: 'text' })
  body!: string;

  @Enum({ items: () => NOTIFICATION_STATUSES, type: 'string' })
  status: NotificationStatus & Opt = 'PENDING';

  /** makes a retried activity write the same notification once; also the mail's Message-ID */
  @Property({ type: 'string', length: 200, unique: true })
  dedupeKey!: string;

  /** delivery attempts begun (a claim counts, so a sender that crashes mid-send still runs out) */
  @Property({ type: 'integer' })
  attempts: number & Opt = 0;

  /** why the last attempt failed, in words safe to show the tenant */
  @Property({ type: 'string', length: 1000, nullable: true })
  lastError?: string | null;

  /** not delivered before this time: a retry's backoff, or the lease of an attempt in flight */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  nextAttemptAt?: Date | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  sentAt?: Date | null;
}
