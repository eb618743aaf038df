/**
 * `npm start` as the process tree an operator runs, for real: `npm start` (build included) on free
 * ports and a data directory of its own, with a real embedded PostgreSQL and Temporal dev server.
 *
 * - A port in use stops the start with one line naming it, before anything starts.
 * - SIGINT or SIGTERM sent to npm's pid, or SIGINT to its process group (what a terminal's Ctrl-C
 *   does), stops every piece in order — API, worker, Temporal, PostgreSQL — and frees the ports.
 * - A supervisor killed with SIGKILL (or npm itself) leaves nothing running.
 * - The CLI next to a running stack finds it through `<DATA_DIR>/run.json`, and refuses clearly
 *   when the data directory is held by a stack it cannot reach.
 *
 * Linux only: the tree is read from /proc. Waits are conditions with deadlines, never sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../helpers/wait';

const ROOT = path.resolve(__dirname, '../..');
const describeOnLinux = process.platform === 'linux' ? describe : describe.skip;

// --- processes, read from /proc -------------------------------------------------------------

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  /** start time in clock ticks since boot: with the pid, identifies the process (pids are reused) */
  start: string;
  cmd: string;
}

function readProc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return {
      pid,
      state: fields[0] ?? '?',
      ppid: Number(fields[1]),
      pgid: Number(fields[2]),
      start: fields[19] ?? '?',
      cmd,
    };
  } catch {
    return undefined;
  }
}

function allProcs(): Proc[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProc(Number(name)))
    .filter((p): p is Proc => p !== undefined);
}

function running(p: Proc): boolean {
  const now = readProc(p.pid);
  return now !== undefined && now.start === p.start && now.state !== 'Z';
}

/** The live descendants of `root`. */
function descendants(root: number): Proc[] {
  const procs = allProcs().filter((p) => p.state !== 'Z');
  const found: Proc[] = [];
  let frontier = [root];
  while (frontier.length > 0) {
    const children = procs.filter((p) => frontier.includes(p.ppid));
    found.push(...children);
    frontier = children.map((p) => p.pid);
  }
  return found;
}

/**
 * Every live process of one test's stack, wherever it has been reparented: the data directory (a
 * fresh random path) is in its command line (PostgreSQL, Temporal) or its environment (npm, node).
 */
function processesOf(dataDir: string): Proc[] {
  return allProcs().filter((p) => {
    if (p.pid === process.pid || p.state === 'Z') return false;
    if (p.cmd.includes(dataDir)) return true;
    try {
      return readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0').includes(`DATA_DIR=${dataDir}`);
    } catch {
      return false;
    }
  });
}

const describeProcs = (procs: Proc[]) => procs.map((p) => `${p.pid} ${p.cmd.slice(0, 120)}`);

// --- ports ----------------------------------------------------------------------------------

const VARIABLES = ['PORT', 'EMBEDDED_POSTGRES_PORT', 'TEMPORAL_DEV_PORT', 'TEMPORAL_UI_PORT'] as const;
type Ports = Record<(typeof VARIABLES)[number], number>;

/**
 * Ports below Linux's ephemeral range (32768–60999): a port `listen(0)` hands out there can be
 * taken by any outgoing connection of a parallel test before the stack binds it.
 */
const STACK_PORTS = { from: 20_000, to: 32_000 };

async function freePorts(): Promise<Ports> {
  const taken = new Set<number>();
  const next = async (): Promise<number> => {
    for (;;) {
      const port = STACK_PORTS.from + Math.floor(Math.random() * (STACK_PORTS.to - STACK_PORTS.from));
      if (!taken.has(port) && (await portFree(port))) {
        taken.add(port);
        return port;
      }
    }
  };
  return {
    PORT: await next(),
    EMBEDDED_POSTGRES_PORT: await next(),
    TEMPORAL_DEV_PORT: await next(),
    TEMPORAL_UI_PORT: await next(),
  };
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function busyPorts(ports: Ports): Promise<string[]> {
  const busy: string[] = [];
  for (const variable of VARIABLES) {
    if (!(await portFree(ports[variable]))) busy.push(`${variable}=${ports[variable]}`);
  }
  return busy;
}

// --- runs -----------------------------------------------------------------------------------

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Run {
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  exit: () => Exit | undefined;
  exited: Promise<Exit>;
}

/**
 * What each test started, killed after it if still running. `owner`: the run owns the data
 * directory, so every process using it goes too. Runs started in a `beforeAll` are the suite's.
 */
const started: { run: Run; dataDir: string; owner: boolean }[] = [];
const suiteRuns: { run: Run; dataDir: string; owner: boolean }[] = [];
let inSuiteSetup = false;
const occupiers: ChildProcess[] = [];
const dataDirs: string[] = [];

function newDataDir(): string {
  // directly under tmpdir: as root, PostgreSQL runs as `postgres`, which cannot enter a 0700 mkdtemp dir
  const dir = path.join(os.tmpdir(), `podplane-npm-start-${randomBytes(4).toString('hex')}`);
  dataDirs.push(dir);
  return dir;
}

function stackEnv(ports: Ports, dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'development',
    LOG_LEVEL: 'info',
    DATA_DIR: dataDir,
    // an in-flight request holds the API's drain this long
    SHUTDOWN_TIMEOUT_MS: '3000',
    SIMULATOR_SEED_NODES: 'false',
    ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    ...extra,
  };
  delete env.DATABASE_URL;
  delete env.TEMPORAL_ADDRESS;
  return env;
}

/** The variables the CLI is given: the data directory only, none of the ports npm start uses. */
function cliEnv(dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'development', DATA_DIR: dataDir };
  for (const name of [...VARIABLES, 'DATABASE_URL', 'TEMPORAL_ADDRESS', 'LOG_LEVEL']) delete env[name];
  return env;
}

/**
 * Spawns a command in its own process group and session, as a shell runs a job: its group is what
 * a terminal's Ctrl-C signals.
 */
function launch(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  dataDir: string,
  owner = false,
): Run {
  const child = spawn(command, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let exit: Exit | undefined;
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<Exit>((resolve) =>
    child.once('close', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  if (child.pid === undefined) throw new Error(`${command} did not start`);
  const run: Run = {
    child,
    pid: child.pid,
    stdout: () => stdout,
    stderr: () => stderr,
    exit: () => exit,
    exited,
  };
  (inSuiteSetup ? suiteRuns : started).push({ run, dataDir, owner });
  return run;
}

const npm = (args: string[], env: NodeJS.ProcessEnv, dataDir: string, owner = false) =>
  launch('npm', args, env, dataDir, owner);
const npmStart = (env: NodeJS.ProcessEnv, dataDir: string) => npm(['start'], env, dataDir, true);

async function exitOf(run: Run, what: string, timeoutMs = 60_000): Promise<Exit> {
  return waitFor(() => Promise.resolve(run.exit()), { what, timeoutMs, intervalMs: 50 });
}

/** Resolves once npm start says it runs; fails at once with its output if it exits first. */
async function untilRunning(run: Run): Promise<void> {
  await waitFor(
    () => {
      const exit = run.exit();
      if (exit) {
        throw new Error(
          `npm start exited (${JSON.stringify(exit)}) before running:\n${run.stdout()}\n${run.stderr()}`,
        );
      }
      return Promise.resolve(run.stdout().includes('Podplane is running'));
    },
    { what: 'npm start to print "Podplane is running"', timeoutMs: 150_000, intervalMs: 100 },
  ).catch((err: unknown) => {
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}\nstdout:\n${run.stdout().slice(-3000)}\nstderr:\n${run.stderr()}`,
    );
  });
}

/** Lines our code wrote to stderr (npm adds its own warnings and error trailer). */
const podplaneLines = (stderr: string) => stderr.split('\n').filter((l) => /^podplane\b/i.test(l));

interface LogLine {
  msg: string;
  time: string;
  [k: string]: unknown;
}

function logLines(stdout: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        return undefined;
      }
    })
    .filter((l): l is LogLine => l !== undefined && typeof l.msg === 'string');
}

function loggedAt(stdout: string, msg: string): number {
  const line = logLines(stdout).find((l) => l.msg === msg);
  if (!line) throw new Error(`no log line "${msg}" in:\n${stdout.slice(-4000)}`);
  return Date.parse(line.time);
}

/** The running stack's PostgreSQL postmaster and Temporal dev server, and who owns them. */
function children(npmPid: number, ports: Ports, dataDir: string) {
  const tree = descendants(npmPid);
  const postgres = tree.find((p) => /\/bin\/postgres /.test(p.cmd) && p.cmd.includes(dataDir));
  const temporal = tree.find(
    (p) => p.cmd.includes('server start-dev') && p.cmd.includes(`--port ${ports.TEMPORAL_DEV_PORT}`),
  );
  if (!postgres || !temporal) {
    throw new Error(`PostgreSQL or Temporal not found under npm:\n${describeProcs(tree).join('\n')}`);
  }
  const supervisor = readProc(postgres.ppid);
  if (!supervisor) throw new Error('the owner of PostgreSQL is gone');
  return { tree, postgres, temporal, supervisor };
}

/** Polls until the process is gone; resolves with the time it was first seen gone. */
async function deathOf(p: Proc, timeoutMs = 60_000): Promise<number> {
  return waitFor(() => Promise.resolve(running(p) ? undefined : Date.now()), {
    what: `pid ${p.pid} (${p.cmd.slice(0, 60)}) to exit`,
    timeoutMs,
    intervalMs: 10,
  });
}

async function nothingLeft(dataDir: string, ports: Ports, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => processesOf(dataDir).length === 0 && (await busyPorts(ports)).length === 0, {
    what: 'every process of the stack to exit and its ports to be free',
    timeoutMs,
    intervalMs: 100,
  }).catch(async (err: unknown) => {
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}\nstill running:\n${describeProcs(processesOf(dataDir)).join('\n')}\nports in use: ${(await busyPorts(ports)).join(', ')}`,
    );
  });
}

/** Another program holding a port: a plain TCP server that answers anything with "other". */
async function occupy(port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      "const s=require('net').createServer((c)=>{c.on('error',()=>{});c.end('HTTP/1.1 200 OK\\r\\ncontent-length: 5\\r\\nconnection: close\\r\\n\\r\\nother');});" +
        "s.listen(Number(process.argv[1]),'127.0.0.1',()=>process.stdout.write('listening\\n'));",
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  occupiers.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  await waitFor(() => Promise.resolve(out.includes('listening')), {
    what: `a stranger listening on ${port}`,
    timeoutMs: 10_000,
    intervalMs: 20,
  });
  return child;
}

/** Whatever a failed test left: every process of its runs, by pid. */
function killRuns(runs: { run: Run; dataDir: string; owner: boolean }[]): void {
  for (const { run, dataDir, owner } of runs) {
    for (const p of [...descendants(run.pid), ...(owner ? processesOf(dataDir) : [])]) {
      if (running(p)) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    if (run.exit() === undefined) run.child.kill('SIGKILL');
  }
}

afterEach(() => {
  killRuns(started.splice(0));
  for (const child of occupiers.splice(0)) child.kill('SIGKILL');
});

afterAll(async () => {
  killRuns(suiteRuns.splice(0));
  for (const dir of dataDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

// --- tests ----------------------------------------------------------------------------------

describeOnLinux('npm start as a process tree', () => {
  describe('ports', () => {
    it.each(VARIABLES)(
      'a port in use (%s) stops the start with one line, before anything starts',
      async (variable) => {
        const ports = await freePorts();
        const dataDir = newDataDir();
        await occupy(ports[variable]);
        const run = npmStart(stackEnv(ports, dataDir), dataDir);
        await waitFor(
          () => Promise.resolve(run.exit() !== undefined || run.stdout().includes('Podplane is running')),
          {
            what: 'npm start to exit or run',
            timeoutMs: 150_000,
            intervalMs: 50,
          },
        );
        expect(run.stdout()).not.toContain('Podplane is running');
        const exit = await exitOf(run, 'npm start to exit');
        expect(exit.code).not.toBe(0);
        expect(podplaneLines(run.stderr())).toEqual([
          `podplane: port ${ports[variable]} (${variable}) is already in use`,
        ]);
        // nothing was started: no process, no data, the other ports free
        expect(describeProcs(processesOf(dataDir))).toEqual([]);
        expect(existsSync(path.join(dataDir, 'postgres'))).toBe(false);
        expect(await busyPorts(ports)).toEqual([`${variable}=${ports[variable]}`]);
      },
      180_000,
    );
  });

  describe('a running stack', () => {
    const ports = {} as Ports;
    let dataDir = '';
    let run: Run;

    beforeAll(async () => {
      Object.assign(ports, await freePorts());
      dataDir = newDataDir();
      // the suite's: the last test stops it, the file's afterAll kills it after a failure
      inSuiteSetup = true;
      try {
        run = npmStart(stackEnv(ports, dataDir), dataDir);
      } finally {
        inSuiteSetup = false;
      }
      await untilRunning(run);
    }, 180_000);

    it('records where it listens in <DATA_DIR>/run.json', () => {
      const { supervisor } = children(run.pid, ports, dataDir);
      const recorded = JSON.parse(readFileSync(path.join(dataDir, 'run.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(recorded).toMatchObject({
        pid: supervisor.pid,
        state: 'running',
        apiUrl: `http://127.0.0.1:${ports.PORT}`,
        databaseUrl: expect.stringContaining(`@127.0.0.1:${ports.EMBEDDED_POSTGRES_PORT}/podplane`),
        temporalAddress: `127.0.0.1:${ports.TEMPORAL_DEV_PORT}`,
      });
    });

    it('serves the CLI without the port variables, through run.json', async () => {
      const cli = npm(
        ['run', 'cli', '--silent', '--', 'admin:create', '--name', 'npm-start-test'],
        cliEnv(dataDir),
        dataDir,
      );
      const exit = await exitOf(cli, 'npm run cli admin:create', 120_000);
      expect({ exit, stderr: podplaneLines(cli.stderr()) }).toEqual({
        exit: { code: 0, signal: null },
        stderr: [],
      });
      expect(cli.stdout()).toMatch(/^ppt_\S+$/m);

      // Temporal too: the schedules go to the stack's dev server, not to TEMPORAL_DEV_PORT's default
      const sync = launch(
        process.execPath,
        ['dist/src/cli/podplane.js', 'schedules:sync'],
        cliEnv(dataDir),
        dataDir,
      );
      const synced = await exitOf(sync, 'podplane schedules:sync', 60_000);
      expect({ synced, stderr: podplaneLines(sync.stderr()) }).toEqual({
        synced: { code: 0, signal: null },
        stderr: [],
      });
    }, 180_000);

    it('the CLI refuses clearly when the data directory is held by a stack it cannot reach', async () => {
      // A stack whose run.json is gone (an older npm start, a crash): PostgreSQL still holds the data directory.
      const runFile = path.join(dataDir, 'run.json');
      await rename(runFile, `${runFile}.away`);
      try {
        const cli = launch(
          process.execPath,
          ['dist/src/cli/podplane.js', 'admin:create', '--name', 'x'],
          cliEnv(dataDir),
          dataDir,
        );
        const exit = await exitOf(cli, 'podplane admin:create', 60_000);
        expect(exit.code).toBe(1);
        const lines = podplaneLines(cli.stderr());
        expect(lines).toHaveLength(1);
        expect(lines[0]).not.toContain('undefined');
        const { postgres } = children(run.pid, ports, dataDir);
        expect(lines[0]).toContain(`PostgreSQL (pid ${postgres.pid})`);
        expect(lines[0]).toContain(`EMBEDDED_POSTGRES_PORT=${ports.EMBEDDED_POSTGRES_PORT}`);
      } finally {
        await rename(`${runFile}.away`, runFile);
      }
    }, 120_000);

    it('a second npm start on the same data directory refuses, naming the running one', async () => {
      const other = await freePorts();
      const second = npm(['start'], stackEnv(other, dataDir), dataDir);
      const exit = await exitOf(second, 'the second npm start to exit', 150_000);
      expect(exit.code).not.toBe(0);
      const { supervisor } = children(run.pid, ports, dataDir);
      expect(podplaneLines(second.stderr())).toEqual([
        `podplane: npm start already runs on ${dataDir} (pid ${supervisor.pid}, API http://127.0.0.1:${ports.PORT})`,
      ]);
      expect(await busyPorts(other)).toEqual([]);
    }, 180_000);

    it("a terminal's Ctrl-C reaches only the supervisor: API, worker, Temporal, PostgreSQL stop in that order", async () => {
      const { postgres, temporal } = children(run.pid, ports, dataDir);
      // A platform admin token, through the CLI given the port (this does not depend on run.json).
      const cli = launch(
        process.execPath,
        ['dist/src/cli/podplane.js', 'admin:create', '--name', 'held-request'],
        { ...cliEnv(dataDir), EMBEDDED_POSTGRES_PORT: String(ports.EMBEDDED_POSTGRES_PORT) },
        dataDir,
      );
      expect(await exitOf(cli, 'podplane admin:create')).toEqual({ code: 0, signal: null });
      const token = /^(ppt_\S+)$/m.exec(cli.stdout())?.[1] ?? '';
      expect(token).not.toBe('');

      // A request in flight holds the API's drain for SHUTDOWN_TIMEOUT_MS: authenticated, its body
      // never comes. `100 Continue` says the server has taken it up.
      const socket = net.connect(ports.PORT, '127.0.0.1');
      socket.on('error', () => undefined);
      let answer = '';
      socket.on('data', (c: Buffer) => (answer += c.toString('utf8')));
      socket.write(
        `POST /api/v1/tenants HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 200\r\nExpect: 100-continue\r\n\r\n',
      );
      await waitFor(() => Promise.resolve(answer.includes('100 Continue')), {
        what: 'the API to take the request up',
        timeoutMs: 10_000,
        intervalMs: 10,
      });
      socket.write('{"slug":');

      // The terminal signals its foreground process group: npm's (npm runs as a job here).
      process.kill(-run.pid, 'SIGINT');
      const [postgresDied, temporalDied, exit] = await Promise.all([
        deathOf(postgres),
        deathOf(temporal),
        exitOf(run, 'npm start to exit after Ctrl-C'),
      ]);
      socket.destroy();
      const out = run.stdout();
      const workerStopped = loggedAt(out, 'worker stopped');
      const logs = logLines(out);
      expect({
        npmGroup: readProc(run.pid)?.pgid ?? run.pid,
        childrenInNpmGroup: [postgres, temporal]
          .filter((p) => p.pgid === run.pid)
          .map((p) => p.cmd.slice(0, 60)),
        // neither child was signalled by the terminal: each stopped after the API and the worker
        temporalDiedAfterWorkerStopped: temporalDied > workerStopped,
        postgresDiedAfterWorkerStopped: postgresDied > workerStopped,
        stopOrder: logs
          .map((l) => l.msg)
          .filter((m) => /^(API|worker|Temporal dev server|PostgreSQL) stopped$/.test(m)),
        complaints: logs
          .filter((l) => /died unexpectedly|did not stop cleanly/.test(l.msg))
          .map((l) => l.msg),
        exit,
      }).toEqual({
        npmGroup: run.pid,
        childrenInNpmGroup: [],
        temporalDiedAfterWorkerStopped: true,
        postgresDiedAfterWorkerStopped: true,
        stopOrder: ['API stopped', 'worker stopped', 'Temporal dev server stopped', 'PostgreSQL stopped'],
        complaints: [],
        exit: { code: 0, signal: null },
      });
      expect(loggedAt(out, 'API stopped')).toBeLessThanOrEqual(workerStopped);
      await nothingLeft(dataDir, ports);
      expect(existsSync(path.join(dataDir, 'run.json'))).toBe(false);
    }, 120_000);
  });

  describe('signals to npm', () => {
    it.each(['SIGINT', 'SIGTERM'] as const)(
      "%s to npm's pid stops everything and frees every port",
      async (signal) => {
        const ports = await freePorts();
        const dataDir = newDataDir();
        const run = npmStart(stackEnv(ports, dataDir), dataDir);
        await untilRunning(run);
        process.kill(run.pid, signal);
        const exit = await exitOf(run, `npm start to exit after ${signal}`);
        expect(exit).toEqual({ code: 0, signal: null });
        await nothingLeft(dataDir, ports);
        expect(logLines(run.stdout()).map((l) => l.msg)).toEqual(
          expect.arrayContaining([
            'API stopped',
            'worker stopped',
            'Temporal dev server stopped',
            'PostgreSQL stopped',
          ]),
        );
        expect(existsSync(path.join(dataDir, 'run.json'))).toBe(false);
      },
      240_000,
    );
  });

  describe('SIGKILL', () => {
    const targets = {
      'npm itself': (npmPid: number) => npmPid,
      'the node process npm started': (npmPid: number) => {
        const node = descendants(npmPid).find(
          (p) => p.cmd.startsWith(process.execPath) || /^node /.test(p.cmd),
        );
        if (!node) throw new Error('no node process under npm');
        return node.pid;
      },
      'the process that owns PostgreSQL and Temporal': (npmPid: number, ports: Ports, dataDir: string) =>
        children(npmPid, ports, dataDir).supervisor.pid,
    };
    it.each(Object.keys(targets) as (keyof typeof targets)[])(
      'killing %s with SIGKILL leaves nothing running and no port held',
      async (target) => {
        const ports = await freePorts();
        const dataDir = newDataDir();
        const run = npmStart(stackEnv(ports, dataDir), dataDir);
        await untilRunning(run);
        const { postgres, temporal } = children(run.pid, ports, dataDir);
        process.kill(targets[target](run.pid, ports, dataDir), 'SIGKILL');
        await nothingLeft(dataDir, ports);
        expect(running(postgres) || running(temporal)).toBe(false);
      },
      240_000,
    );
  });
});
