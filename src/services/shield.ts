/**
 * Tenants' shields: reading one (OFF with no rules when the tenant never set one) and replacing
 * one — its mode and its whole ordered rule list — in one transaction. A shield in ENFORCE that
 * would refuse the address of the caller setting it is refused (422): nobody locks themselves out
 * by mistake. Rules that stay (same action and CIDR) keep their id, author and creation time.
 */
import { LockMode } from '@mikro-orm/core';
import { ShieldPolicy, ShieldRule } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { AppError, type FieldIssue } from '../domain/errors';
import { newId } from '../domain/ids';
import type { TenantPrincipal } from '../domain/principal';
import {
  MAX_SHIELD_RULES,
  compileShield,
  evaluateShield,
  parseCidr,
  parseIp,
  type ShieldMode,
  type ShieldRuleAction,
} from '../domain/shield';

export interface ShieldRuleValues {
  action: ShieldRuleAction;
  cidr: string;
  note?: string | null | undefined;
}

export interface StoredShieldRule {
  id: string;
  position: number;
  action: ShieldRuleAction;
  cidr: string;
  note: string | null;
  createdBy: string;
  createdAt: Date;
}

export interface StoredShield {
  tenantId: string;
  mode: ShieldMode;
  rules: StoredShieldRule[];
  /** null: never set */
  updatedAt: Date | null;
  updatedBy: string | null;
}

/** a blank note is no note */
const noteOf = (values: ShieldRuleValues) => (values.note ? values.note : null);

const ruleOf = (r: ShieldRule): StoredShieldRule => ({
  id: r.id,
  position: r.position,
  action: r.action,
  cidr: r.cidr,
  note: r.note ?? null,
  createdBy: r.createdBy,
  createdAt: r.createdAt,
});

/** The tenant's shield, or OFF with no rules when it has none. */
export async function shieldOf(em: EntityManager, tenantId: string): Promise<StoredShield> {
  const policy = await em.findOne(ShieldPolicy, { tenant: tenantId });
  if (!policy) return { tenantId, mode: 'OFF', rules: [], updatedAt: null, updatedBy: null };
  const rules = await em.find(ShieldRule, { policy }, { orderBy: { position: 'asc' } });
  return {
    tenantId,
    mode: policy.mode,
    rules: rules.map(ruleOf),
    updatedAt: policy.updatedAt,
    updatedBy: policy.updatedBy,
  };
}

/** Why the rules cannot be stored, one issue per wrong rule; the normalised CIDRs otherwise. */
function normalise(rules: readonly ShieldRuleValues[]): { issues: FieldIssue[]; cidrs: string[] } {
  const issues: FieldIssue[] = [];
  const cidrs = rules.map((rule, i) => {
    const cidr = parseCidr(rule.cidr);
    if (!cidr) issues.push({ field: `rules.${i}.cidr`, message: 'is not an IPv4 or IPv6 address or CIDR' });
    return cidr?.text ?? '';
  });
  if (rules.length > MAX_SHIELD_RULES)
    issues.push({ field: 'rules', message: `at most ${MAX_SHIELD_RULES} rules` });
  return { issues, cidrs };
}

/**
 * Replaces the tenant's shield: `mode` and the rules in the order given. `callerIp` is the
 * address of the request setting it: an ENFORCE shield refusing it is a 422, nothing stored.
 */
export async function replaceShield(
  em: EntityManager,
  principal: TenantPrincipal,
  input: { mode: ShieldMode; rules: readonly ShieldRuleValues[] },
  callerIp: string | undefined,
): Promise<StoredShield> {
  const tenantId = principal.tenantId;
  const { issues, cidrs } = normalise(input.rules);
  if (issues.length > 0)
    throw new AppError('validation_failed', 'the shield rules are not valid', { errors: issues });
  if (input.mode === 'ENFORCE') {
    const verdict = evaluateShield(
      compileShield(
        input.rules.map((r, i) => ({ id: `rule-${i}`, action: r.action, cidr: cidrs[i] as string })),
      ),
      parseIp(callerIp ?? ''),
    );
    if (!verdict.allowed) {
      throw new AppError(
        'unprocessable',
        'in ENFORCE these rules would block the address you are calling from; allow it first, or use MONITOR',
        { errors: [{ field: 'rules', message: 'would block your own current address' }] },
      );
    }
  }
  await em.transactional(async (tx) => {
    // One writer per tenant at a time: the policy row (made on first use) is the lock.
    await tx
      .getConnection()
      .execute(
        `insert into shield_policies (id, tenant_id, mode, updated_by) values (?, ?, 'OFF', ?) on conflict (tenant_id) do nothing`,
        [newId('shieldPolicy'), tenantId, principal.actorId],
        'run',
        tx.getTransactionContext(),
      );
    const policy = await tx.findOneOrFail(
      ShieldPolicy,
      { tenant: tenantId },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    policy.mode = input.mode;
    policy.updatedBy = principal.actorId;
    // touch: a PUT that changes only the rules still moves updated_at
    policy.updatedAt = new Date();
    const existing = await tx.find(ShieldRule, { policy });
    const unused = new Map<string, ShieldRule[]>();
    for (const rule of existing) {
      const key = `${rule.action} ${rule.cidr}`;
      unused.set(key, [...(unused.get(key) ?? []), rule]);
    }
    input.rules.forEach((values, position) => {
      const cidr = cidrs[position] as string;
      const kept = unused.get(`${values.action} ${cidr}`)?.shift();
      if (kept) {
        kept.position = position;
        kept.note = noteOf(values);
        return;
      }
      tx.create(ShieldRule, {
        tenant: tenantId,
        policy,
        position,
        action: values.action,
        cidr,
        note: noteOf(values),
        createdBy: principal.actorId,
      });
    });
    for (const rules of unused.values()) for (const rule of rules) tx.remove(rule);
  });
  return shieldOf(em.fork(), tenantId);
}
