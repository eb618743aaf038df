/** Stored responses for Idempotency-Key requests (IETF draft semantics, kept 24 h). */
import { Entity, Enum, Index, Property, Unique, type Opt } from '@mikro-orm/core';
import { Row } from './base';

export const IDEMPOTENCY_STATES = ['IN_PROGRESS', 'COMPLETED'] as const;
export type IdempotencyState = (typeof IDEMPOTENCY_STATES)[number];

@Entity({ tableName: 'idempotency_keys' })
@Unique({ properties: ['scope', 'principalId', 'method', 'path', 'keyHash'] })
export class IdempotencyKey extends Row {
  static override readonly idKind = 'idempotency' as const;

  /** tenant id, or `platform` for platform-admin principals */
  @Property({ type: 'string', length: 40 })
  scope!: string;

  @Property({ type: 'string', length: 40 })
  principalId!: string;

  @Property({ type: 'string', length: 10 })
  method!: string;

  @Property({ type: 'string', length: 500 })
  path!: string;

  @Property({ type: 'string', length: 64 })
  keyHash!: string;

  /** SHA-256 of the request body: same key with another payload is a 422 */
  @Property({ type: 'string', length: 64 })
  fingerprint!: string;

  @Enum({ items: () => IDEMPOTENCY_STATES, type: 'string' })
  state: IdempotencyState & Opt = 'IN_PROGRESS';

  @Property({ type: 'integer', nullable: true })
  responseStatus?: number | null;

  @Property({ type: 'json', nullable: true })
  responseBody?: unknown;

  @Property({ type: 'json', nullable: true })
  responseHeaders?: Record<string, string> | null;

  @Index()
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  expiresAt!: Date;

  /** an IN_PROGRESS claim is held until then; a retry after it may take the key over (crashed request) */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  lockedUntil?: Date | null;
}
