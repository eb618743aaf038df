/**
 * PostgreSQL going away while the API runs: authenticated routes answer 503 problem+json with
 * Retry-After (never 500), the outage is logged once rather than once per request, and the API
 * serves again when the database is back.
 *
 * The ORM reaches PostgreSQL through a TCP relay this test owns, so "down" is what a client sees
 * when the server goes away: open connections reset, new ones refused.
 */
import { Writable } from 'node:stream';
import request from 'supertest';
import { Client, Connection } from '@temporalio/client';
import { createApp } from '../../src/api/app';
import { parseConfig } from '../../src/config';
import { initOrm, systemEm, type MikroORM } from '../../src/db/orm';
import { createLogger } from '../../src/logger';
import { FaultInjector } from '../../src/providers/simulator';
import { issueToken } from '../../src/services/api-tokens';
import { freePort } from '../../temporal/dev-server';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { expectProblem } from '../helpers/problem';
import { Relay } from '../helpers/relay';
import { waitFor } from '../helpers/wait';

describe('the API while PostgreSQL is down', () => {
  let db: TestDatabase;
  let relay: Relay;
  let orm: MikroORM;
  let temporal: Connection;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    relay = new Relay({ host: target.hostname, port: Number(target.port || 5432) });
    await relay.up();
    const relayed = new URL(db.url);
    relayed.hostname = '127.0.0.1';
    relayed.port = String(relay.port);
    orm = await initOrm({ databaseUrl: relayed.toString(), poolMax: 3 });
    temporal = Connection.lazy({
      address: `127.0.0.1:${await freePort()}`,
      connectTimeout: 500,
      interceptors: [],
    });
  });
  afterAll(async () => {
    await relay?.up().catch(() => undefined);
    await orm?.close(true);
    await temporal?.close();
    await db?.close();
  });

  function appAndToken() {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n'))
          if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    return createApp({
      config: parseConfig({ NODE_ENV: 'test' }),
      orm,
      temporal: new Client({ connection: temporal }),
      logger: createLogger({ level: 'info' }, sink),
      version: 't',
      commit: 't',
      faults: new FaultInjector(orm),
    });
  }

  const outageLines = () => lines.filter((l) => l.msg === 'database unreachable');
  const recoveryLines = () => lines.filter((l) => l.msg === 'database reachable again');

  it('answers 503 with Retry-After, logs the outage once, and serves again once it is back', async () => {
    const app = appAndToken();
    const { secret } = await issueToken(systemEm(db.orm), {
      tenantId: null,
      name: 'outage admin',
      scopes: ['read', 'write'],
    });
    const get = () => request(app).get('/api/v1/tenants').set('Authorization', `Bearer ${secret}`);

    expect((await get()).status).toBe(200);

    await relay.down();
    for (let i = 0; i < 4; i++) {
      const res = await get();
      expectProblem(res, 503, 'unavailable');
      expect(res.headers['retry-after']).toBe('5');
    }
    // A route that writes fails the same way, before anything is attempted.
    expectProblem(
      await request(app)
        .post('/api/v1/tenants')
        .set('Authorization', `Bearer ${secret}`)
        .send({ slug: 'during-outage', name: 'x', currency: 'EUR', owner_email: 'a@b.test' }),
      503,
      'unavailable',
    );
    expect(outageLines()).toHaveLength(1);
    expect(outageLines()[0]).toMatchObject({ level: 50 });
    expect(lines.filter((l) => l.msg === 'unhandled error')).toEqual([]);

    await relay.up();
    await waitFor(async () => (await get()).status === 200, { what: 'the API serving again' });
    expect(recoveryLines()).toHaveLength(1);

    // A second outage is a new one: logged again, once.
    await relay.down();
    expectProblem(await get(), 503, 'unavailable');
    expectProblem(await get(), 503, 'unavailable');
    expect(outageLines()).toHaveLength(2);
    await relay.up();
    await waitFor(async () => (await get()).status === 200, { what: 'the API serving again' });
  });
});
