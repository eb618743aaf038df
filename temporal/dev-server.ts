/**
 * Starts `temporal server start-dev` as a child process: file database with WAL pragmas (or in
 * memory for tests), every custom search attribute registered up front, and the Web UI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { TEMPORAL_CLI, resolveTool, type ToolLog } from './tools';
import { stopChild } from './child-process';

export interface DevServerOptions {
  /** Keyword search attributes to register at start. */
  searchAttributes: readonly string[];
  /** Directory for `temporal.db`; in-memory when omitted (tests). */
  dataDir?: string;
  ip?: string;
  port: number;
  /** UI port; `undefined` runs headless. */
  uiPort?: number;
  namespace?: string;
  log: ToolLog;
  env?: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
  /** dynamic config overrides, e.g. a low continue-as-new threshold for a test */
  dynamicConfig?: Record<string, string | number | boolean>;
}

export interface DevServerHandle {
  address: string;
  uiUrl: string | undefined;
  source: string;
  /** the server's pid when we spawned the binary; undefined for the SDK download */
  pid?: number | undefined;
  /**
   * Settles when the spawned server exits, for whatever reason, so `npm start` can restart it.
   * Undefined for the SDK download, whose process the SDK keeps to itself.
   */
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stops the server; resolves at once if it has already exited */
  stop(): Promise<void>;
}

/** Asks the kernel for a free TCP port on loopback. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function devServerArgs(opts: DevServerOptions): string[] {
  const args = [
    'server',
    'start-dev',
    '--ip',
    opts.ip ?? '127.0.0.1',
    '--port',
    String(opts.port),
    '--log-level',
    'warn',
    '--namespace',
    opts.namespace ?? 'default',
  ];
  if (opts.uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(opts.uiPort));
  if (opts.dataDir) {
    args.push(
      '--db-filename',
      path.join(opts.dataDir, 'temporal.db'),
      '--sqlite-pragma',
      'journal_mode=WAL',
      '--sqlite-pragma',
      'synchronous=OFF',
    );
  }
  for (const name of opts.searchAttributes) args.push('--search-attribute', `${name}=Keyword`);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  return args;
}

/** Polls the frontend until it answers and the namespace knows our search attributes. */
export async function waitForTemporal(
  address: string,
  namespace: string,
  searchAttributes: readonly string[],
  deadlineMs: number,
  aborted: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let lastError = 'not reachable yet';
  while (Date.now() < deadline) {
    const why = aborted();
    if (why) throw new Error(why);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        const res = await connection.operatorService.listSearchAttributes({ namespace });
        const known = Object.keys(res.customAttributes ?? {});
        const missing = searchAttributes.filter((a) => !known.includes(a));
        if (missing.length === 0) return;
        lastError = `search attributes not registered yet: ${missing.join(', ')}`;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Temporal at ${address} did not become ready: ${lastError}`);
}

async function startWithBinary(
  binary: string,
  source: string,
  opts: DevServerOptions,
): Promise<DevServerHandle> {
  if (opts.dataDir) await mkdir(opts.dataDir, { recursive: true });
  const ip = opts.ip ?? '127.0.0.1';
  const address = `${ip}:${opts.port}`;
  const child: ChildProcess = spawn(binary, devServerArgs(opts), {
    env: opts.env ?? process.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-4000);
  });
  let exitedEarly: string | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedEarly = `temporal dev server exited early (code ${code}, signal ${signal}): ${stderrTail.trim()}`;
      resolve({ code, signal });
    });
  });
  try {
    await waitForTemporal(
      address,
      opts.namespace ?? 'default',
      opts.searchAttributes,
      opts.startTimeoutMs ?? 60000,
      () => exitedEarly,
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    address,
    source,
    pid: child.pid,
    exited,
    uiUrl:
      opts.uiPort === undefined ? undefined : `http://${ip === '0.0.0.0' ? '127.0.0.1' : ip}:${opts.uiPort}`,
    stop: () => stopChild(child, 10_000),
  };
}

/** Last resort on machines with internet and no Go: the SDK downloads and runs the dev server. */
async function startWithSdkDownload(opts: DevServerOptions): Promise<DevServerHandle> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const { defineSearchAttributeKey } = await import('@temporalio/common');
  opts.log('no temporal binary and no Go: falling back to the SDK download of the dev server');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download' },
      ip: opts.ip ?? '127.0.0.1',
      port: opts.port,
      ui: opts.uiPort !== undefined,
      ...(opts.uiPort !== undefined ? { uiPort: opts.uiPort } : {}),
      ...(opts.dataDir ? { dbFilename: path.join(opts.dataDir, 'temporal.db') } : {}),
      namespace: opts.namespace ?? 'default',
      searchAttributes: opts.searchAttributes.map((name) => defineSearchAttributeKey(name, 'KEYWORD')),
      extraArgs: opts.dataDir
        ? ['--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', 'synchronous=OFF']
        : [],
    },
  });
  return {
    address: `${opts.ip ?? '127.0.0.1'}:${opts.port}`,
    source: 'sdk-download',
    uiUrl: opts.uiPort === undefined ? undefined : `http://127.0.0.1:${opts.uiPort}`,
    stop: () => env.teardown(),
  };
}

/** Resolves the CLI (building it if needed) and starts the dev server; resolves once it is ready. */
export async function startDevServer(opts: DevServerOptions): Promise<DevServerHandle> {
  if (await portInUse(opts.port, opts.ip ?? '127.0.0.1')) {
    throw new Error(
      `port ${opts.port} is already in use; stop what runs there or set TEMPORAL_DEV_PORT (or TEMPORAL_ADDRESS to use that server)`,
    );
  }
  const found = await resolveTool(TEMPORAL_CLI, opts.log, opts.env ?? process.env);
  if (found.path === undefined) {
    opts.log(`temporal CLI: ${found.why}`);
    return startWithSdkDownload(opts);
  }
  return startWithBinary(found.path, found.source, opts);
}
