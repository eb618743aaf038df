/** `npm start` supervision: the restart policy (backoff, give-up) and the supervisor around a child. */
import {
  decideRestart,
  supervise,
  type ChildExit,
  type RestartPolicy,
  type SupervisedChild,
} from '../../src/cli/supervisor';
import { waitFor } from '../helpers/wait';

/** Waits on a condition with a deadline (no fixed sleeps). */
const until = <T>(probe: () => T | undefined | false, what: string) =>
  waitFor(() => Promise.resolve(probe()), { what, timeoutMs: 5000, intervalMs: 5 });

const policy: RestartPolicy = { initialDelayMs: 1000, maxDelayMs: 5000, maxRestarts: 4, windowMs: 60_000 };

describe('decideRestart', () => {
  // [earlier failures, now, expected decision]
  const table: [string, number[], number, ReturnType<typeof decideRestart>['decision']][] = [
    ['first failure: the initial delay', [], 100_000, { action: 'restart', delayMs: 1000, restart: 1 }],
    ['second in the window: doubled', [90_000], 100_000, { action: 'restart', delayMs: 2000, restart: 2 }],
    ['third: doubled again', [80_000, 90_000], 100_000, { action: 'restart', delayMs: 4000, restart: 3 }],
    [
      'fourth: capped at maxDelayMs',
      [70_000, 80_000, 90_000],
      100_000,
      { action: 'restart', delayMs: 5000, restart: 4 },
    ],
    [
      'one more than maxRestarts in the window: give up',
      [60_000, 70_000, 80_000, 90_000],
      100_000,
      { action: 'give-up', failures: 5 },
    ],
    [
      'failures older than the window are forgotten',
      [10_000, 20_000, 30_000, 90_000],
      100_000,
      { action: 'restart', delayMs: 2000, restart: 2 },
    ],
    [
      'a failure exactly windowMs ago is outside the window',
      [40_000],
      100_000,
      { action: 'restart', delayMs: 1000, restart: 1 },
    ],
  ];
  it.each(table)('%s', (_name, earlier, now, expected) => {
    const { decision, failures } = decideRestart(policy, earlier, now);
    expect(decision).toEqual(expected);
    expect(failures).toEqual([...earlier.filter((t) => t > now - policy.windowMs), now]);
  });

  it('does not mutate the history it is given', () => {
    const earlier = Object.freeze([90_000]);
    decideRestart(policy, earlier, 100_000);
    expect(earlier).toEqual([90_000]);
  });
});

interface FakeChild extends SupervisedChild {
  pid: number;
  die(exit: ChildExit): void;
  stopped: boolean;
}

function fakeChild(pid: number): FakeChild {
  let resolveExit!: (exit: ChildExit) => void;
  const exited = new Promise<ChildExit>((resolve) => (resolveExit = resolve));
  const child: FakeChild = {
    pid,
    exited,
    stopped: false,
    die: (exit) => resolveExit(exit),
    stop: () => {
      child.stopped = true;
      resolveExit({ code: 0, signal: null });
      return Promise.resolve();
    },
  };
  return child;
}

/** A supervisor with scripted start results, a manual clock and a manual timer queue. */
function harness(
  starts: (() => FakeChild | Error | Promise<FakeChild>)[],
  opts: { isStopping?: () => boolean } = {},
) {
  const timers: { delayMs: number; run: () => void; cancelled: boolean }[] = [];
  const logs: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const giveUps: string[] = [];
  let clock = 1_000_000;
  let startCalls = 0;
  const log = (level: string) => (fields: Record<string, unknown>, msg: string) =>
    logs.push({ level, fields, msg });
  const start = () => {
    const next = starts[startCalls++];
    if (!next) throw new Error(`unexpected start #${startCalls}`);
    const result = next();
    return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
  };
  const supervised = supervise({
    name: 'Temporal dev server',
    start,
    policy,
    log: { info: log('info'), warn: log('warn'), error: log('error') },
    onGiveUp: (line) => giveUps.push(line),
    isStopping: opts.isStopping,
    now: () => clock,
    schedule: (delayMs, run) => {
      const timer = { delayMs, run, cancelled: false };
      timers.push(timer);
      return () => (timer.cancelled = true);
    },
  });
  return {
    supervised,
    timers,
    logs,
    giveUps,
    startCalls: () => startCalls,
    advance: (ms: number) => (clock += ms),
    now: () => clock,
    /** waits until the n-th timer is scheduled, then fires it */
    async fire(n: number) {
      const timer = await until(() => timers[n], `timer #${n}`);
      clock += timer.delayMs;
      timer.run();
      return timer;
    },
  };
}

describe('supervise', () => {
  it('restarts a child that died, logging which one, how it ended and when it restarts', async () => {
    const first = fakeChild(101);
    const second = fakeChild(102);
    const h = harness([() => first, () => second]);
    const sup = await h.supervised;
    expect(sup.current()).toBe(first);

    first.die({ code: null, signal: 'SIGKILL' });
    const timer = await h.fire(0);
    expect(timer.delayMs).toBe(1000);
    await until(() => sup.current() === second, 'the restarted child');

    const died = h.logs.find((l) => l.level === 'warn');
    expect(died?.fields).toMatchObject({
      child: 'Temporal dev server',
      childPid: 101,
      code: null,
      signal: 'SIGKILL',
      restartInMs: 1000,
      restart: 1,
      maxRestarts: 4,
    });
    expect(new Date(String(died?.fields.restartAt)).getTime()).toBe(h.now());
    expect(h.logs).toContainEqual(
      expect.objectContaining({
        level: 'info',
        fields: expect.objectContaining({ child: 'Temporal dev server', childPid: 102 }),
      }),
    );
    expect(h.giveUps).toEqual([]);
    expect(sup.restarts()).toBe(1);
  });

  it('counts failed restarts and gives up, once, after maxRestarts failures in the window', async () => {
    const first = fakeChild(1);
    const boom = () => new Error('port 7233 is already in use');
    const h = harness([() => first, boom, boom, boom, boom]);
    const sup = await h.supervised;
    first.die({ code: 1, signal: null });
    for (let n = 0; n < 4; n += 1) await h.fire(n);
    await until(() => h.giveUps.length > 0, 'give-up');
    expect(h.timers.map((t) => t.delayMs)).toEqual([1000, 2000, 4000, 5000]);
    expect(h.startCalls()).toBe(5);
    expect(h.giveUps).toHaveLength(1);
    expect(h.logs.filter((l) => l.level === 'error')).toEqual([
      expect.objectContaining({
        fields: expect.objectContaining({ child: 'Temporal dev server', failures: 5 }),
      }),
    ]);
    expect(sup.current()).toBeUndefined();
  });

  it('forgets failures once the child stayed up longer than the window', async () => {
    const children = [1, 2, 3].map(fakeChild);
    const h = harness(children.map((c) => () => c));
    const sup = await h.supervised;
    children[0]!.die({ code: 2, signal: null });
    await h.fire(0);
    await until(() => sup.current() === children[1], 'restart 1');
    h.advance(policy.windowMs + 1);
    children[1]!.die({ code: 2, signal: null });
    const timer = await h.fire(1);
    expect(timer.delayMs).toBe(policy.initialDelayMs);
  });

  it('does not restart what it was asked to stop, and stops the current child', async () => {
    const first = fakeChild(1);
    const h = harness([() => first]);
    const sup = await h.supervised;
    await sup.stop();
    expect(first.stopped).toBe(true);
    await first.exited;
    expect(h.timers).toEqual([]);
    expect(h.logs.filter((l) => l.level !== 'info')).toEqual([]);
  });

  it('cancels a pending restart on stop', async () => {
    const first = fakeChild(1);
    const h = harness([() => first, () => fakeChild(2)]);
    const sup = await h.supervised;
    first.die({ code: null, signal: 'SIGKILL' });
    await until(() => h.timers[0], 'the restart timer');
    await sup.stop();
    expect(h.timers[0]?.cancelled).toBe(true);
    expect(h.startCalls()).toBe(1);
  });

  it('stops a child whose restart completes after stop() was called', async () => {
    const first = fakeChild(1);
    const second = fakeChild(2);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const h = harness([() => first, () => gate.then(() => second)]);
    const sup = await h.supervised;
    first.die({ code: null, signal: 'SIGKILL' });
    await h.fire(0);
    await until(() => h.startCalls() === 2, 'the restart under way');
    const stopping = sup.stop();
    release();
    await stopping;
    expect(second.stopped).toBe(true);
    expect(sup.current()).toBeUndefined();
  });

  it('ignores exits while the owner stops the whole stack', async () => {
    const first = fakeChild(1);
    let stopping = false;
    const h = harness([() => first], { isStopping: () => stopping });
    await h.supervised;
    stopping = true;
    first.die({ code: 0, signal: null });
    await first.exited;
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.timers).toEqual([]);
    expect(h.giveUps).toEqual([]);
  });

  it('supervises a child the caller already started, calling start only to restart it', async () => {
    const initial = fakeChild(7);
    const restarted = fakeChild(8);
    let startCalls = 0;
    const sup = await supervise({
      name: 'PostgreSQL',
      initial,
      start: () => {
        startCalls += 1;
        return Promise.resolve(restarted);
      },
      policy,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      onGiveUp: () => undefined,
      schedule: (_delayMs, run) => {
        run();
        return () => undefined;
      },
    });
    expect(sup.current()).toBe(initial);
    expect(startCalls).toBe(0);
    initial.die({ code: null, signal: 'SIGKILL' });
    await until(() => sup.current() === restarted, 'the restart');
    expect(startCalls).toBe(1);
    await sup.stop();
  });

  it('lets a failing first start fail the caller (start-up failure is not a restart)', async () => {
    const h = harness([() => new Error('no temporal binary')]);
    await expect(h.supervised).rejects.toThrow(Error);
    expect(h.timers).toEqual([]);
  });
});
