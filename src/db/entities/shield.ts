/** The shield: a tenant's IP allow/deny rules and the refusals they made (or would have made). */
import { Entity, Enum, Index, ManyToOne, OneToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import {
  SHIELD_MODES,
  SHIELD_RULE_ACTIONS,
  type ShieldMode,
  type ShieldRuleAction,
} from '../../domain/shield';
import { Row } from './base';
import { Tenant } from './tenancy';

/**
 * One per tenant at most; a tenant without one has the shield OFF and no rules. `version` moves
 * with every change, so a cached compilation can tell it is stale.
 */
@Entity({ tableName: 'shield_policies' })
export class ShieldPolicy extends Row {
  static override readonly idKind = 'shieldPolicy' as const;

  @OneToOne({ entity: () => Tenant, owner: true, unique: true, deleteRule: 'cascade' })
  tenant!: Tenant;

  @Enum({ items: () => SHIELD_MODES, type: 'string' })
  mode: ShieldMode & Opt = 'OFF';

  /** the principal (user or token id) that last set the policy */
  @Property({ type: 'string', length: 40 })
  updatedBy!: string;
}

/** One rule; a policy's rules are evaluated by ascending `position`, the first match deciding. */
@Entity({ tableName: 'shield_rules' })
@Index({ properties: ['policy', 'position'] })
export class ShieldRule extends Row {
  static override readonly idKind = 'shieldRule' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @ManyToOne({ entity: () => ShieldPolicy, deleteRule: 'cascade' })
  policy!: ShieldPolicy;

  @Property({ type: 'integer' })
  position!: number;

  @Enum({ items: () => SHIELD_RULE_ACTIONS, type: 'string' })
  action!: ShieldRuleAction;

  /** normalised (`10.0.0.0/8`, `2001:db8::/32`): see domain/shield.ts `parseCidr` */
  @Property({ type: 'string', length: 43 })
  cidr!: string;

  @Property({ type: 'string', length: 200, nullable: true })
  note?: string | null;

  /** the principal (user or token id) that first added this rule */
  @Property({ type: 'string', length: 40 })
  createdBy!: string;
}

/** Which check refused: the shield's rules, or the tenant security policy's IP allowlist. */
export const SHIELD_EVENT_SOURCES = ['SHIELD', 'ALLOWLIST'] as const;
export type ShieldEventSource = (typeof SHIELD_EVENT_SOURCES)[number];

export const SHIELD_EVENT_ACTIONS = ['BLOCKED', 'WOULD_BLOCK'] as const;
export type ShieldEventAction = (typeof SHIELD_EVENT_ACTIONS)[number];

/**
 * Refusals, aggregated: one row per tenant, address, source, action and minute (`windowStart`),
 * counting its requests in `hits`. The request fields (method, path, actor, request id) are those
 * of the first request of the minute; `lastAt` is the latest. Rules are replaced as a list, so the
 * matched rule is kept by value (id, action, CIDR) rather than as a reference; all three are null
 * when no rule matched (an address outside every ALLOW rule, or outside the allowlist).
 */
@Entity({ tableName: 'shield_events' })
@Unique({ properties: ['tenant', 'ip', 'source', 'action', 'windowStart'] })
@Index({ properties: ['tenant', 'id'] })
export class ShieldEvent extends Row {
  static override readonly idKind = 'shieldEvent' as const;

  @ManyToOne({ entity: () => Tenant, deleteRule: 'cascade' })
  tenant!: Tenant;

  @Property({ type: 'string', length: 45 })
  ip!: string;

  @Enum({ items: () => SHIELD_EVENT_SOURCES, type: 'string' })
  source!: ShieldEventSource;

  /** the shield's mode then (ENFORCE for the allowlist, which is always enforced) */
  @Enum({ items: () => SHIELD_MODES, type: 'string' })
  mode!: ShieldMode;

  @Enum({ items: () => SHIELD_EVENT_ACTIONS, type: 'string' })
  action!: ShieldEventAction;

  @Property({ type: 'string', length: 40, nullable: true })
  ruleId?: string | null;

  @Enum({ items: () => SHIELD_RULE_ACTIONS, type: 'string', nullable: true })
  ruleAction?: ShieldRuleAction | null;

  @Property({ type: 'string', length: 43, nullable: true })
  ruleCidr?: string | null;

  @Property({ type: 'string', length: 10 })
  method!: string;

  /** without the query string */
  @Property({ type: 'string', length: 200 })
  path!: string;

  @Property({ type: 'string', length: 40 })
  actorId!: string;

  @Property({ type: 'string', length: 100 })
  requestId!: string;

  /** the minute the row counts */
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  windowStart!: Date;

  @Property({ type: 'integer' })
  hits: number & Opt = 1;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  lastAt!: Date;
}
