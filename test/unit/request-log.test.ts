/** The request log: one short line per request, built by the production `createApp`, without headers. */
import { Writable } from 'node:stream';
import request from 'supertest';
import type { Client } from '@temporalio/client';
import { createApp } from '../../src/api/app';
import { parseConfig } from '../../src/config';
import type { MikroORM } from '../../src/db/orm';
import { createLogger } from '../../src/logger';

/** The app with the logger writing into memory; these requests never reach the database or Temporal. */
function appWithCapturedLog() {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) raw.push(line);
      cb();
    },
  });
  const app = createApp({
    config: parseConfig({ NODE_ENV: 'test' }),
    orm: {} as MikroORM,
    temporal: {} as Client,
    logger: createLogger({ level: 'info' }, sink),
    version: 'test',
    commit: 'test',
  });
  const linesOf = (reqId: string) =>
    raw.filter((line) => (JSON.parse(line) as { reqId?: unknown }).reqId === reqId);
  return { app, linesOf };
}

describe('request log', () => {
  it('writes one line per request with method, URL, status, duration and request id, and no headers', async () => {
    const { app, linesOf } = appWithCapturedLog();
    const res = await request(app)
      .get('/api/v1/no-such-route?cursor=abc')
      .set('Authorization', 'Bearer ppt_not-a-real-token')
      .set('Cookie', 'sid=cookie-value')
      .set('User-Agent', 'request-log-test/1.0')
      .set('X-Request-Id', 'log-one-line');
    expect(res.status).toBe(404);
    const lines = linesOf('log-one-line');
    expect(lines).toHaveLength(1);
    const [line] = lines as [string];
    expect(line.length).toBeLessThan(400);
    expect(line).not.toMatch(/headers|user-agent|request-log-test|cookie|authorization|ppt_/i);
    const entry = JSON.parse(line) as Record<string, unknown>;
    expect(entry).toMatchObject({
      level: 40,
      reqId: 'log-one-line',
      method: 'GET',
      url: '/api/v1/no-such-route',
      status: 404,
    });
    expect(entry.durationMs).toEqual(expect.any(Number));
    expect(entry.msg).toBe(`GET /api/v1/no-such-route 404 ${String(entry.durationMs)}ms`);
    expect(entry).not.toHaveProperty('req');
    expect(entry).not.toHaveProperty('res');
    expect(entry).not.toHaveProperty('tenantId');
  });

  it('names the route template of a matched route instead of the URL', async () => {
    const { app, linesOf } = appWithCapturedLog();
    const res = await request(app)
      .get('/api/v1/tenants/ten_01J00000000000000000000000')
      .set('X-Request-Id', 'log-route');
    expect(res.status).toBe(401);
    const lines = linesOf('log-route');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).toMatchObject({ method: 'GET', route: '/api/v1/tenants/:id', status: 401 });
    expect(entry).not.toHaveProperty('url');
    expect(entry.msg).toMatch(/^GET \/api\/v1\/tenants\/:id 401 \d+ms$/);
  });

  it('logs a 5xx once as the error and once as the request line, which carries no stand-in error', async () => {
    const { app, linesOf } = appWithCapturedLog();
    // A well-formed token makes authentication query the database, which this app does not have.
    const res = await request(app)
      .get('/api/v1/tenants')
      .set('Authorization', `Bearer ppt_${'a'.repeat(43)}`)
      .set('X-Request-Id', 'log-500');
    expect(res.status).toBe(500);
    const entries = linesOf('log-500').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries).toHaveLength(2);
    const [handled, requestLine] = entries as [Record<string, unknown>, Record<string, unknown>];
    expect(handled).toMatchObject({ level: 50, msg: 'unhandled error', err: { type: 'TypeError' } });
    expect(requestLine).toMatchObject({ level: 50, method: 'GET', route: '/api/v1/tenants', status: 500 });
    expect(requestLine).not.toHaveProperty('err');
    expect(JSON.stringify(entries)).not.toContain('ppt_');
  });
});
