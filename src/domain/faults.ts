/** Fault-injection rules for the simulated providers: which operation fails, for which pod slugs, how often. */

export const FAULT_OPERATIONS = [
  'createVm',
  'findVm',
  'startVm',
  'stopVm',
  'setLocked',
  'resizeVm',
  'destroyVm',
  'snapshotVm',
  'restoreSnapshot',
  'upsertA',
  'deleteA',
] as const;
export type FaultOperation = (typeof FAULT_OPERATIONS)[number];

export interface FaultRuleInput {
  operation: FaultOperation;
  slugPattern: string;
  /** how many times to fail; omitted or null fails every time */
  times?: number | null;
  message?: string;
}

export function globToRegExp(glob: string): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/**
 * `SIMULATOR_FAULTS="createVm:fail-*:2;upsertA:dns-*"` — operation, slug glob, optional count.
 * Returns the rules or throws with the offending entry.
 */
export function parseFaultSpec(spec: string): FaultRuleInput[] {
  return spec
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [operation, slugPattern, times] = entry.split(':');
      if (!operation || !(FAULT_OPERATIONS as readonly string[]).includes(operation) || !slugPattern) {
        throw new Error(`bad fault rule '${entry}': expected <operation>:<slug glob>[:<times>]`);
      }
      const count = times === undefined ? null : Number(times);
      if (count !== null && (!Number.isInteger(count) || count < 1))
        throw new Error(`bad fault count in '${entry}'`);
      return { operation: operation as FaultOperation, slugPattern, times: count };
    });
}
