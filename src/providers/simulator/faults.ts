/**
 * Fault injection for the simulated providers: rules in PostgreSQL that make an operation fail
 * before it acts, fail after it acted, or answer late, for matching pod slugs (or backup ids).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  faultModeProblem,
  globToRegExp,
  isFaultMode,
  type FaultOperation,
  type FaultRuleInput,
} from '../../domain/faults';
import { newId } from '../../domain/ids';
import { SimFaultRule } from '../../db/entities';
import { systemEm, type MikroORM } from '../../db/orm';
import { ProviderError } from '../errors';

export class FaultInjector {
  constructor(private readonly orm: MikroORM) {}

  /** Adds (or, with the same id, replaces) a rule; throws when its mode and delay disagree. */
  async add(rule: FaultRuleInput, id: string = newId('fault')): Promise<SimFaultRule> {
    const mode = rule.mode ?? 'fail';
    const problem = faultModeProblem(mode, rule.delayMs);
    if (problem) throw new Error(`bad fault rule for ${rule.operation}: ${problem}`);
    const em = systemEm(this.orm);
    const row = em.create(SimFaultRule, {
      id,
      operation: rule.operation,
      slugPattern: rule.slugPattern,
      remaining: rule.times ?? null,
      mode,
      delayMs: rule.delayMs ?? null,
      message:
        rule.message ??
        (mode === 'after'
          ? `injected ${rule.operation} failure after the operation took effect`
          : `injected ${rule.operation} failure`),
    });
    await em.upsert(row);
    return row;
  }

  list(): Promise<SimFaultRule[]> {
    return systemEm(this.orm).find(SimFaultRule, {}, { orderBy: { createdAt: 'asc', id: 'asc' } });
  }

  async remove(id: string): Promise<boolean> {
    return (await systemEm(this.orm).nativeDelete(SimFaultRule, { id })) > 0;
  }

  async clear(): Promise<void> {
    await systemEm(this.orm).nativeDelete(SimFaultRule, {});
  }

  /**
   * Consumes one use of the first rule matching the operation and `subject` (a pod slug, or a
   * backup id for the operations that have no pod) and returns it; null when none applies.
   * A counted rule is decremented by one conditional UPDATE, so concurrent calls never share a use.
   */
  async take(operation: FaultOperation, subject: string): Promise<SimFaultRule | null> {
    const em = systemEm(this.orm);
    const rules = await em.find(SimFaultRule, { operation }, { orderBy: { createdAt: 'asc', id: 'asc' } });
    for (const rule of rules) {
      if (!globToRegExp(rule.slugPattern).test(subject)) continue;
      if (rule.remaining === null || rule.remaining === undefined) return rule;
      const consumed = await em
        .getConnection()
        .execute<{ id: string }[]>(
          'update sim_fault_rules set remaining = remaining - 1 where id = ? and remaining > 0 returning id',
          [rule.id],
        );
      if (consumed.length > 0) return rule;
    }
    return null;
  }

  /**
   * Runs `effect` under the rule that applies, if any: `fail` throws instead of running it,
   * `after` runs it and then throws, `delay` runs it and answers after the rule's delay.
   * Injected failures are retryable, as the transient faults they stand for are.
   */
  async around<T>(
    provider: string,
    operation: FaultOperation,
    subject: string,
    effect: () => Promise<T>,
  ): Promise<T> {
    const rule = await this.take(operation, subject);
    const injected = (r: SimFaultRule) =>
      new ProviderError(provider, operation, r.message, true, 'INJECTED_FAULT');
    // An unknown mode (a row written by hand) fails like the default rather than being ignored.
    if (rule && (rule.mode === 'fail' || !isFaultMode(rule.mode))) throw injected(rule);
    const result = await effect();
    if (rule?.mode === 'after') throw injected(rule);
    if (rule?.mode === 'delay' && rule.delayMs) await sleep(rule.delayMs);
    return result;
  }
}

export interface SimulatorOptions {
  orm: MikroORM;
  faults: FaultInjector;
  /** added to every call, to make a demo watchable */
  latencyMs: number;
  /** how long a created VM reports `starting` before `running` */
  bootMs: number;
}
