/**
 * A saga: steps declared together with their undo, the undo registered before its step runs (a
 * step that fails after acting is undone too), compensation in reverse order. Deterministic and
 * workflow-agnostic: the CloudPod workflow uses it, billing's workflows will.
 */

export interface SagaUndo {
  /** runs the compensation; must be idempotent and treat "nothing to undo" as success */
  run: () => Promise<unknown>;
  /** the undo of this step is skipped when the undo of step `needs` failed (it would lie about it) */
  needs?: string;
}

export interface Compensation {
  failed: { step: string; reason: string }[];
  /** undos not run because a step they need failed to undo */
  skipped: string[];
}

export class Saga {
  private readonly undos: (SagaUndo & { step: string })[] = [];
  /** the step running now, or the last one run: what a failure is reported against */
  current: string;

  constructor(first: string) {
    this.current = first;
  }

  /** Registers the step's undo, then runs it. */
  async step<T>(name: string, run: () => Promise<T>, undo?: SagaUndo): Promise<T> {
    this.current = name;
    if (undo) this.undos.push({ step: name, ...undo });
    return run();
  }

  /**
   * Runs every registered undo, last first. A failing undo does not stop the others, except those
   * that `need` it. `onUndo` is told each step before its undo runs; `reasonOf` turns a failure
   * into the text reported.
   */
  async compensate(
    onUndo: (step: string) => void,
    reasonOf: (err: unknown) => string,
  ): Promise<Compensation> {
    const failed = new Map<string, string>();
    const skipped: string[] = [];
    for (const u of [...this.undos].reverse()) {
      if (u.needs && failed.has(u.needs)) {
        skipped.push(u.step);
        continue;
      }
      onUndo(u.step);
      try {
        await u.run();
      } catch (err) {
        failed.set(u.step, reasonOf(err));
      }
    }
    return { failed: [...failed].map(([step, reason]) => ({ step, reason })), skipped };
  }
}
