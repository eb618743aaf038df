/**
 * The problem mapping of failures PostgreSQL really raises: concurrent-change failures
 * (serialization failure 40001, deadlock 40P01, optimistic lock) are 409 "retry", a connection the
 * server terminates (57P01) is 503, and none of them is a 500.
 */
import { Writable } from 'node:stream';
import { IsolationLevel, OptimisticLockError } from '@mikro-orm/core';
import { statusOf, toAppError } from '../../src/api/middleware/problem';
import { initOrm, type EntityManager } from '../../src/db/orm';
import { AppError } from '../../src/domain/errors';
import { createLogger } from '../../src/logger';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.query('create table scratch (id int primary key, n int not null)');
  await db.query('insert into scratch values (1, 0), (2, 0)');
  await db.query('create table scratch_secret (v text primary key)');
});
afterAll(async () => {
  await db?.close();
});

async function caught(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (err) {
    return err;
  }
  throw new Error('expected the database to refuse');
}

function expectMapped(err: unknown, kind: string, status: number): void {
  const mapped = toAppError(err);
  expect(mapped?.kind).toBe(kind);
  expect(mapped && statusOf(mapped.kind)).toBe(status);
}

const fork = (): EntityManager => db.orm.em.fork();

describe('concurrent changes are 409 (retry the request)', () => {
  it('a serialization failure (40001) at commit', async () => {
    const [t1, t2] = [fork(), fork()];
    await t1.begin({ isolationLevel: IsolationLevel.SERIALIZABLE });
    await t2.begin({ isolationLevel: IsolationLevel.SERIALIZABLE });
    try {
      // Write skew: each reads what the other writes.
      await t1.execute('select sum(n) from scratch where id = 2');
      await t2.execute('select sum(n) from scratch where id = 1');
      await t1.execute('update scratch set n = n + 1 where id = 1');
      await t2.execute('update scratch set n = n + 1 where id = 2');
      await t1.commit();
      const err = await caught(t2.commit());
      expect((err as { code?: unknown }).code).toBe('40001');
      expectMapped(err, 'conflict', 409);
    } finally {
      await t1.rollback().catch(() => undefined);
      await t2.rollback().catch(() => undefined);
    }
  });

  it('a deadlock (40P01)', async () => {
    const [t1, t2] = [fork(), fork()];
    await t1.begin();
    await t2.begin();
    try {
      await t1.execute('update scratch set n = n + 1 where id = 1');
      await t2.execute('update scratch set n = n + 1 where id = 2');
      const first = t1.execute('update scratch set n = n + 1 where id = 2').then(
        () => undefined,
        (e: unknown) => e,
      );
      const second = t2.execute('update scratch set n = n + 1 where id = 1').then(
        () => undefined,
        (e: unknown) => e,
      );
      const errors = (await Promise.all([first, second])).filter((e) => e !== undefined);
      expect(errors).toHaveLength(1);
      expect((errors[0] as { code?: unknown }).code).toBe('40P01');
      expectMapped(errors[0], 'conflict', 409);
    } finally {
      await t1.rollback().catch(() => undefined);
      await t2.rollback().catch(() => undefined);
    }
  });

  it('an optimistic lock failure', () => {
    expectMapped(OptimisticLockError.lockFailed('CloudPod'), 'conflict', 409);
  });

  it('unique and foreign-key violations keep their mapping', async () => {
    expectMapped(await caught(fork().execute('insert into scratch values (1, 0)')), 'conflict', 409);
    expectMapped(
      await caught(
        fork().execute(
          "insert into customers (id, tenant_id, email, name, created_at, updated_at) values ('cus_x', 'ten_missing', 'a@b.test', 'x', now(), now())",
        ),
      ),
      'unprocessable',
      422,
    );
  });
});

describe('a connection the server terminates is 503', () => {
  it('an in-flight query on a terminated backend (57P01)', async () => {
    // Its own ORM, so the terminated connection does not linger in the pool the other tests use.
    const orm = await initOrm({ databaseUrl: db.url, poolMax: 1 });
    const inflight = caught(orm.em.fork().execute("select pg_sleep(30), 'terminate-me'"));
    await waitFor(
      async () => {
        const rows = await db.query<{ pid: number }>(
          "select pid from pg_stat_activity where query like '%terminate-me''%' and pid <> pg_backend_pid() and state = 'active'",
        );
        return rows.length > 0;
      },
      { what: 'the sleeping query to show up' },
    );
    await db.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where query like '%terminate-me''%' and pid <> pg_backend_pid()",
    );
    const err = await inflight;
    await orm.close(true);
    expect((err as { code?: unknown }).code).toBe('57P01');
    expectMapped(err, 'unavailable', 503);
  });
});

describe('logging a database failure', () => {
  it('keeps statement parameters and row values out of the log, also when the error is wrapped', async () => {
    const secret = 'ppt_NotForLogs0123456789';
    await fork().execute('insert into scratch_secret values (?)', [secret]);
    const err = await caught(fork().execute('insert into scratch_secret values (?)', [secret]));
    expect(String((err as Error).message)).toContain(secret); // what the driver puts in the message

    const lines: string[] = [];
    const logger = createLogger(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString('utf8'));
          cb();
        },
      }),
    );
    logger.error({ err }, 'failed');
    logger.error({ err: new AppError('internal', 'wrapped', {}, { cause: err }) }, 'failed');
    expect(lines).toHaveLength(2);
    expect(lines.join('')).not.toContain(secret);
    expect(lines.join('')).not.toMatch(/insert into/i);
    const [direct, wrapped] = lines.map((l) => JSON.parse(l) as { err: Record<string, unknown> });
    expect(direct?.err).toMatchObject({
      type: 'UniqueConstraintViolationException',
      code: '23505',
      table: 'scratch_secret',
      constraint: 'scratch_secret_pkey',
    });
    expect(wrapped?.err).toMatchObject({
      type: 'AppError',
      message: 'wrapped',
      cause: { type: 'UniqueConstraintViolationException', code: '23505' },
    });
  });
});
