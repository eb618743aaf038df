/** The notification outbox: rows written by workflows, delivered by the mail provider. */
import { Entity, Enum, Index, ManyToOne, Property, type Opt } from '@mikro-orm/core';
import { Row } from './base';
import { Tenant } from './tenancy';

export const NOTIFICATION_STATUSES = ['PENDING', 'SENT', 'FAILED'] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

@Entity({ tableName: 'notifications' })
@Index({ properties: ['status', 'createdAt'] })
export class Notification extends Row {
  static override readonly idKind = 'notification' as const;

  @Index()
  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

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

  /** makes a retried activity write the same notification once */
  @Property({ type: 'string', length: 200, unique: true })
  dedupeKey!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  sentAt?: Date | null;
}
