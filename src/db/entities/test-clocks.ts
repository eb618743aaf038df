/** Test clocks: a sandbox tenant's frozen time, which its attached customers' billing runs at. */
import { Entity, Enum, Index, ManyToOne, Property, type Opt } from '@mikro-orm/core';
import { TEST_CLOCK_STATUSES, type TestClockStatus } from '../../domain/test-clocks';
import { Row } from './base';
import { Tenant } from './tenancy';

/**
 * Time stands still at `frozenTime` until an advance (workflow `test-clock-<id>-advance-<n>`, n =
 * `advances`) walks it to `advancingTo`. Deleting one is soft and detaches its customers.
 */
@Entity({ tableName: 'test_clocks' })
@Index({ properties: ['tenant', 'id'] })
export class TestClock extends Row {
  static override readonly idKind = 'testClock' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @Property({ type: 'string', length: 200 })
  name!: string;

  /** the time every attached customer's billing runs at */
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  frozenTime!: Date;

  @Enum({ items: () => TEST_CLOCK_STATUSES, type: 'string' })
  status: TestClockStatus & Opt = 'READY';

  /** where the running advance takes the clock (null when none runs) */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  advancingTo?: Date | null;

  /** advances requested so far: the sequence number in each advance's workflow id */
  @Property({ type: 'integer' })
  advances: number & Opt = 0;

  /** why the last advance could not finish (INTERNAL_FAILURE) */
  @Property({ type: 'string', length: 1000, nullable: true })
  failureReason?: string | null;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  deletedAt?: Date | null;
}
