/**
 * Fault-injection rules for the simulated providers: which operation misbehaves, for which pod
 * slugs, how often, and how (fails before acting, fails after acting, or answers late).
 */

export const FAULT_OPERATIONS = [
  'createVm',
  'findVm',
  'startVm',
  'stopVm',
  'setSuspended',
  'resizeVm',
  'destroyVm',
  'backupVm',
  'findBackup',
  'restoreBackup',
  'deleteBackup',
  'upsertA',
  'deleteA',
] as const;
export type FaultOperation = (typeof FAULT_OPERATIONS)[number];

/**
 * - `fail`: the call fails before it does anything (a refused request).
 * - `after`: the call takes effect and then fails (a lost answer, a timeout after the fact) —
 *   what every undo and every retried step must survive.
 * - `delay`: the call takes effect and answers only after `delayMs` (to outlast an activity timeout).
 */
export const FAULT_MODES = ['fail', 'after', 'delay'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** Longer than any activity timeout worth testing, short enough not to pin a worker for good. */
export const MAX_FAULT_DELAY_MS = 600_000;

export interface FaultRuleInput {
  operation: FaultOperation;
  slugPattern: string;
  /** how many calls the rule affects; omitted or null affects every call */
  times?: number | null;
  /** default `fail` */
  mode?: FaultMode;
  /** required for `delay`, refused otherwise */
  delayMs?: number | null;
  message?: string;
}

export function isFaultOperation(value: string): value is FaultOperation {
  return (FAULT_OPERATIONS as readonly string[]).includes(value);
}

export function isFaultMode(value: string): value is FaultMode {
  return (FAULT_MODES as readonly string[]).includes(value);
}

export function globToRegExp(glob: string): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/** Why a mode/delay pair is inconsistent, or null when it is fine (shared by the parser and the API). */
export function faultModeProblem(mode: FaultMode, delayMs: number | null | undefined): string | null {
  if (mode === 'delay') {
    if (delayMs === null || delayMs === undefined) return 'a delay rule needs its delay in milliseconds';
    if (!Number.isInteger(delayMs) || delayMs < 1 || delayMs > MAX_FAULT_DELAY_MS)
      return `the delay must be a whole number of milliseconds from 1 to ${MAX_FAULT_DELAY_MS}`;
    return null;
  }
  return delayMs === null || delayMs === undefined ? null : `only a delay rule takes a delay`;
}

const GRAMMAR = '<operation>:<slug glob>[:<times>][:<mode>[=<delayMs>]]';

/** Parses `fail`, `after` or `delay=<ms>`; throws with the reason. */
function parseMode(field: string): { mode: FaultMode; delayMs: number | null } {
  const [name = '', duration, ...rest] = field.split('=');
  if (!isFaultMode(name) || rest.length > 0)
    throw new Error(`unknown fault mode '${field}' (fail, after, delay=<ms>)`);
  const delayMs = duration === undefined ? null : /^\d+$/.test(duration) ? Number(duration) : NaN;
  const problem = faultModeProblem(name, Number.isNaN(delayMs) ? -1 : delayMs);
  if (problem) throw new Error(problem);
  return { mode: name, delayMs };
}

/**
 * `SIMULATOR_FAULTS="createVm:fail-*:2;upsertA:dns-*::delay=5000;createVm:lost-*:1:after"` —
 * operation, slug glob, optional count (empty: every time), optional mode. Every field is
 * checked and no extra field is accepted, so a typo never silently becomes a different rule.
 * Returns the rules or throws naming the offending entry.
 */
export function parseFaultSpec(spec: string): FaultRuleInput[] {
  return spec
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const bad = (why: string) => new Error(`bad fault rule '${entry}': ${why}; expected ${GRAMMAR}`);
      const [operation = '', slugPattern = '', times, modeField, ...extra] = entry.split(':');
      if (!isFaultOperation(operation)) throw bad(`unknown operation '${operation}'`);
      if (!slugPattern) throw bad('the slug glob is empty');
      if (extra.length > 0) throw bad(`unexpected field '${extra.join(':')}'`);
      // An empty count means "every time", and is only needed (so only allowed) before a mode.
      if (times === '' && modeField === undefined) throw bad('the count is empty');
      const count = times === undefined || times === '' ? null : /^\d+$/.test(times) ? Number(times) : NaN;
      if (count !== null && !(Number.isSafeInteger(count) && count >= 1))
        throw bad(`the count '${times}' is not a whole number from 1`);
      let mode: { mode: FaultMode; delayMs: number | null } = { mode: 'fail', delayMs: null };
      if (modeField !== undefined) {
        try {
          mode = parseMode(modeField);
        } catch (err) {
          throw bad(err instanceof Error ? err.message : String(err));
        }
      }
      return { operation, slugPattern, times: count, ...mode };
    });
}
