/**
 * Supervision of `npm start`'s child processes (embedded PostgreSQL, the Temporal dev server): a
 * child that dies unexpectedly is restarted with capped exponential backoff; too many failures in
 * a window and the owner is told to stop the whole stack — never a silent half-stack.
 */

/** How a child process ended: the `exit` event's arguments. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What the supervisor needs of a running child. */
export interface SupervisedChild {
  readonly pid?: number | undefined;
  /** settles when the process exits, for whatever reason (our own stop included) */
  readonly exited: Promise<ChildExit>;
  stop(): Promise<void>;
}

export interface RestartPolicy {
  /** delay before the first restart; doubled for each further failure in the window */
  initialDelayMs: number;
  maxDelayMs: number;
  /** restarts allowed within `windowMs`; the failure after them stops the stack */
  maxRestarts: number;
  windowMs: number;
}

/**
 * `npm start`: 1 s, 2 s, 4 s, 8 s, 15 s. Six failures within two minutes (deaths and failed
 * restarts alike) mean something is wrong that a restart will not fix — a full disk, a port taken,
 * a corrupt data directory — and the operator should see it rather than a stack that flaps.
 */
export const DEV_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 1000,
  maxDelayMs: 15_000,
  maxRestarts: 5,
  windowMs: 120_000,
};

export type RestartDecision =
  | { action: 'restart'; delayMs: number; /** 1-based, within the window */ restart: number }
  | { action: 'give-up'; /** failures within the window, this one included */ failures: number };

/**
 * Pure restart policy: given the times of earlier failures and the time of this one, restart after
 * a backoff or give up. Returns the failure history to keep (only the window's). A child that stays
 * up longer than the window thereby starts again from the initial delay.
 */
export function decideRestart(
  policy: RestartPolicy,
  earlierFailures: readonly number[],
  now: number,
): { decision: RestartDecision; failures: number[] } {
  const failures = [...earlierFailures.filter((t) => t > now - policy.windowMs), now];
  if (failures.length > policy.maxRestarts) {
    return { decision: { action: 'give-up', failures: failures.length }, failures };
  }
  const delayMs = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (failures.length - 1));
  return { decision: { action: 'restart', delayMs, restart: failures.length }, failures };
}

type LogFn = (fields: Record<string, unknown>, msg: string) => void;

export interface SuperviseOptions<T extends SupervisedChild> {
  /** as operators know it: "PostgreSQL", "Temporal dev server" */
  name: string;
  /** starts the child (again) and resolves once it is ready to serve */
  start: () => Promise<T>;
  /** a child the caller already started: supervised from the outset, `start` is only for restarts */
  initial?: T | undefined;
  policy: RestartPolicy;
  log: { info: LogFn; warn: LogFn; error: LogFn };
  /** called once when the policy gives up, with one line saying why; the owner stops everything */
  onGiveUp: (line: string) => void;
  /** true while the owner stops the stack: children exiting then are expected */
  isStopping?: (() => boolean) | undefined;
  now?: () => number;
  /** setTimeout by default; returns a cancel function */
  schedule?: (delayMs: number, run: () => void) => () => void;
}

export interface Supervised<T extends SupervisedChild> {
  /** the running child; undefined while it is down */
  current(): T | undefined;
  /** successful restarts so far */
  restarts(): number;
  /** stops supervising, cancels a pending restart and stops the child */
  stop(): Promise<void>;
}

function describeExit(exit: ChildExit): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

const defaultSchedule = (delayMs: number, run: () => void) => {
  const timer = setTimeout(run, delayMs);
  return () => clearTimeout(timer);
};

/**
 * Starts the child (unless given one) and watches its `exited`. The first start is not
 * supervised: if it fails, the caller's start-up fails as before. Every later failure — an exit
 * we did not ask for, or a restart that throws — goes through `decideRestart`.
 */
export async function supervise<T extends SupervisedChild>(
  opts: SuperviseOptions<T>,
): Promise<Supervised<T>> {
  const now = opts.now ?? Date.now;
  const schedule = opts.schedule ?? defaultSchedule;
  const { name, policy, log } = opts;

  let child: T | undefined = opts.initial ?? (await opts.start());
  let failures: number[] = [];
  let restarts = 0;
  let stopped = false;
  let gaveUp = false;
  let cancelPending: (() => void) | undefined;
  let restarting: Promise<void> | undefined;

  const expected = () => stopped || gaveUp || (opts.isStopping?.() ?? false);

  const failed = (fields: Record<string, unknown>, what: string) => {
    if (expected()) return;
    const at = now();
    const { decision, failures: kept } = decideRestart(policy, failures, at);
    failures = kept;
    if (decision.action === 'give-up') {
      gaveUp = true;
      const line =
        `${name} ${what}; ${decision.failures} failures within ${policy.windowMs / 1000} s ` +
        `(more than ${policy.maxRestarts} restarts), giving up and stopping Podplane`;
      log.error({ child: name, ...fields, failures: decision.failures, windowMs: policy.windowMs }, line);
      opts.onGiveUp(line);
      return;
    }
    const restartAt = new Date(at + decision.delayMs).toISOString();
    log.warn(
      {
        child: name,
        ...fields,
        restartInMs: decision.delayMs,
        restartAt,
        restart: decision.restart,
        maxRestarts: policy.maxRestarts,
      },
      `${name} ${what}; restarting in ${decision.delayMs} ms at ${restartAt} ` +
        `(restart ${decision.restart} of ${policy.maxRestarts} within ${policy.windowMs / 1000} s)`,
    );
    cancelPending = schedule(decision.delayMs, () => {
      cancelPending = undefined;
      restarting = restart()
        .catch((err: unknown) => log.error({ child: name, err }, `${name}: stopping a late restart failed`))
        .finally(() => (restarting = undefined));
    });
  };

  const watch = (running: T) => {
    void running.exited.then((exit) => {
      if (child !== running) return;
      child = undefined;
      failed(
        {
          childPid: running.pid,
          code: exit.code,
          signal: exit.signal,
          diedAt: new Date(now()).toISOString(),
        },
        `(pid ${running.pid ?? '?'}) died unexpectedly with ${describeExit(exit)}`,
      );
    });
  };

  const restart = async () => {
    if (expected()) return;
    let next: T;
    try {
      next = await opts.start();
    } catch (err) {
      // one line: the give-up line is what the operator reads
      const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
      failed({ error: message }, `could not be restarted: ${message}`);
      return;
    }
    if (expected()) {
      // stop() ran while this restart was starting: the new child is not wanted.
      await next.stop();
      return;
    }
    child = next;
    restarts += 1;
    log.info({ child: name, childPid: next.pid, restarts }, `${name} restarted (pid ${next.pid ?? '?'})`);
    watch(next);
  };

  watch(child);

  return {
    current: () => child,
    restarts: () => restarts,
    async stop() {
      stopped = true;
      cancelPending?.();
      cancelPending = undefined;
      await restarting;
      const running = child;
      child = undefined;
      await running?.stop();
    },
  };
}
