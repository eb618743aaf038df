/** /health/ready answers 503 and names the dependency that is down. */
import request from 'supertest';
import { Client, Connection } from '@temporalio/client';
import { createApp } from '../../src/api/app';
import { parseConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { FaultInjector } from '../../src/providers/simulator';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { freePort } from '../../temporal/dev-server';
import { temporalAddress } from '../helpers/temporal';

const logger = createLogger({ level: 'silent' });
const config = parseConfig({ NODE_ENV: 'test' });

function appWith(db: TestDatabase, address: string) {
  // No retry interceptor: its back-off timers would outlive the closed connection at teardown.
  const connection = Connection.lazy({ address, connectTimeout: 500, interceptors: [] });
  const app = createApp({
    config,
    orm: db.orm,
    temporal: new Client({ connection }),
    logger,
    version: 't',
    commit: 't',
    faults: new FaultInjector(db.orm),
  });
  return { app, close: () => connection.close() };
}

describe('GET /health/ready', () => {
  it('is 503 naming temporal when the Temporal frontend is down', async () => {
    const db = await createTestDatabase();
    const { app, close } = appWith(db, `127.0.0.1:${await freePort()}`);
    try {
      const res = await request(app).get('/health/ready');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({
        status: 'unavailable',
        checks: {
          database: { status: 'up' },
          temporal: { status: 'down', error: 'temporal is unreachable' },
        },
      });
    } finally {
      await close();
      await db.close();
    }
  });

  it('is 503 naming the database when PostgreSQL is unreachable', async () => {
    const db = await createTestDatabase();
    const { app, close } = appWith(db, temporalAddress());
    await db.orm.close();
    try {
      const res = await request(app).get('/health/ready');
      expect(res.status).toBe(503);
      expect(res.body.checks).toEqual({
        database: { status: 'down', error: 'database is unreachable' },
        temporal: { status: 'up' },
      });
      // Liveness does not depend on either.
      expect((await request(app).get('/health')).status).toBe(200);
    } finally {
      await close();
      await db.close().catch(() => undefined);
    }
  });
});
