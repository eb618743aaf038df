/**
 * `npm start`: runs the stack (src/cli/stack.ts) in a process group of its own and stands between
 * it and the terminal.
 *
 * A terminal's Ctrl-C signals its whole foreground process group. PostgreSQL and the Temporal dev
 * server would get it straight away and die while the API still drains; so they run, with the
 * stack that owns them, in their own group, and only this launcher (and npm) get the terminal's
 * signals. The launcher forwards the first SIGINT, SIGTERM or SIGHUP — npm forwards SIGINT and
 * SIGTERM sent to its pid here too — to the stack process alone, which stops API, worker,
 * Temporal and PostgreSQL in that order; it then exits with the stack's exit code.
 *
 * Nothing holds ports after a hard death:
 * - the stack killed with SIGKILL: the launcher stops what is left of its process group
 *   (SIGTERM, then SIGKILL) and exits 1;
 * - this launcher killed with SIGKILL: the stack sees its IPC channel close and stops in order;
 * - npm killed with SIGKILL: the launcher sees its parent change and stops the stack.
 * Only a SIGKILL of both the launcher and the stack at once leaves PostgreSQL and Temporal running.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { removeRunFile } from './run-file';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** how long what a dead stack left gets to stop after SIGTERM, before SIGKILL */
const REAP_GRACE_MS = 10_000;

/** Live (not zombie) members of process group `pgid`, from /proc; undefined where there is no /proc. */
function liveGroupMembers(pgid: number): number[] | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const members: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') members.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return members;
}

function groupRuns(pgid: number): boolean {
  const members = liveGroupMembers(pgid);
  if (members) return members.length > 0;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone
  }
}

async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/** Stops what the stack's process group still runs (nothing, after a clean stop); how many were left. */
async function reap(pgid: number): Promise<number> {
  const left = liveGroupMembers(pgid)?.length ?? (groupRuns(pgid) ? 1 : 0);
  if (left === 0) return 0;
  signalGroup(pgid, 'SIGTERM');
  if (!(await until(() => !groupRuns(pgid), REAP_GRACE_MS))) {
    signalGroup(pgid, 'SIGKILL');
    await until(() => !groupRuns(pgid), 5_000);
  }
  return left;
}

function main(): void {
  const stack = spawn(process.execPath, [...process.execArgv, path.join(__dirname, 'stack.js')], {
    // a new session and process group: the terminal's signals do not reach it
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pid = stack.pid;
  if (pid === undefined) {
    stack.once('error', (err) => {
      process.stderr.write(`podplane: could not start the stack: ${err.message}\n`);
      process.exit(1);
    });
    return;
  }

  let dataDir: string | undefined;
  stack.on('message', (message: unknown) => {
    const dir = (message as { podplaneDataDir?: unknown } | null)?.podplaneDataDir;
    if (typeof dir === 'string') dataDir = dir;
  });

  let forwarded = false;
  const forward = (signal: NodeJS.Signals) => {
    // the stack stops once; a repeat (npm forwards what the terminal also sent us) changes nothing
    if (forwarded) return;
    forwarded = true;
    try {
      stack.kill(signal);
    } catch {
      // already gone: its exit handler below runs
    }
  };
  for (const signal of SIGNALS) process.on(signal, () => forward(signal));

  // npm killed with SIGKILL: this process is reparented and nobody would stop the stack.
  const parent = process.ppid;
  const orphanWatch = setInterval(() => {
    if (process.ppid !== parent) forward('SIGTERM');
  }, 1000);

  stack.once('exit', (code, signal) => {
    clearInterval(orphanWatch);
    void (async () => {
      const left = await reap(pid);
      if (dataDir) {
        try {
          removeRunFile(dataDir, pid);
        } catch {
          // a stale run.json is recognised by its dead pid
        }
      }
      if (signal) {
        process.stderr.write(
          `podplane: the stack process (pid ${pid}) was killed by ${signal}` +
            `${left > 0 ? `; stopped the ${left} processes it left running` : ''}\n`,
        );
        process.exit(1);
      }
      if (left > 0) {
        process.stderr.write(`podplane: stopped ${left} processes the stack left running\n`);
      }
      process.exit(code ?? 1);
    })();
  });
}

main();
