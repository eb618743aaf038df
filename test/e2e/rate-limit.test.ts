/**
 * Rate limits (DESIGN.md §8) through the production app: auth 5 / 15 min and password reset 3 / h
 * per address, the API per address and tenant, admin per principal, webhooks per address; the
 * draft-8 `RateLimit`/`RateLimit-Policy` and legacy `X-RateLimit-*` headers; 429 problem+json with
 * `Retry-After`; health, metrics and the API description never limited; a Redis that cannot be
 * reached lets requests through. Counters live in the Redis at REDIS_URL when it is set (under a
 * key prefix of this run, deleted afterwards), otherwise in memory.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import express, { type Express } from 'express';
import request from 'supertest';
import { createClient } from 'redis';
import { createApp } from '../../src/api/app';
import { mountRoutes, route, type Route } from '../../src/api/http/route';
import { notFoundHandler, problemHandler } from '../../src/api/middleware/problem';
import {
  createRateLimits,
  rateLimitOf,
  rateLimitsOf,
  type RateLimits,
  type RouteRateLimit,
} from '../../src/api/middleware/rate-limit';
import { requestLog } from '../../src/api/middleware/request-log';
import { parseConfig } from '../../src/config';
import { systemEm } from '../../src/db/orm';
import { createLogger } from '../../src/logger';
import { issueToken } from '../../src/services/api-tokens';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

const REDIS_URL = process.env.REDIS_URL || undefined;
/** this run's keys, and nobody else's: deleted by prefix afterwards */
const RUN_PREFIX = `podplane-test:rl:${randomUUID()}:`;

let stack: TestStack;
let a: ActiveTenant;
let b: ActiveTenant;
const opened: RateLimits[] = [];
let apps = 0;

interface LimitedApp {
  app: Express;
  /** every log line this app wrote */
  lines: Record<string, unknown>[];
}

function configFor(env: Record<string, string>) {
  return parseConfig({
    NODE_ENV: 'test',
    ...(REDIS_URL ? { REDIS_URL } : {}),
    // each app counts on its own, as if it were the only one, unless a test shares a prefix
    RATE_LIMIT_PREFIX: `${RUN_PREFIX}${++apps}:`,
    ...env,
  });
}

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ level: 'info' }, sink), lines };
}

/** The production app with this configuration (the stack's database and Temporal). */
function limitedApp(env: Record<string, string> = {}): LimitedApp {
  const { logger, lines } = capturingLogger();
  const app = createApp({
    config: configFor(env),
    orm: stack.db.orm,
    temporal: stack.temporal,
    logger,
    version: 'test',
    commit: 'test',
    faults: stack.providers.faults,
  });
  opened.push(rateLimitsOf(app));
  return { app, lines };
}

/**
 * Routes under /api/v1/auth/ do not exist yet in the route table: these stand in for them, mounted
 * by the production `mountRoutes` with the production limits, as createApp mounts the table.
 */
function authApp(env: Record<string, string> = {}): { app: Express; calls: () => number } {
  const config = configFor(env);
  const { logger } = capturingLogger();
  let calls = 0;
  const publicRoute = (method: 'get' | 'post', path: string, extra: { rateLimit?: RouteRateLimit } = {}) =>
    route({
      operationId: `test${path}`,
      tag: 'System',
      method,
      path,
      summary: 'stand-in',
      access: { public: 'a stand-in for the auth routes' },
      responses: { 200: { description: 'done' } },
      ...extra,
      handle({ res }) {
        calls += 1;
        res.json({ done: true });
      },
    });
  const routes = [
    publicRoute('post', '/api/v1/auth/login'),
    publicRoute('post', '/api/v1/auth/refresh'),
    publicRoute('post', '/api/v1/auth/password-reset'),
    publicRoute('post', '/api/v1/auth/password-reset/confirm'),
    publicRoute('get', '/api/v1/auth/methods', { rateLimit: 'none' }),
  ];
  const app = express();
  app.set('trust proxy', config.TRUST_PROXY);
  app.use(requestLog(logger));
  const rateLimits = createRateLimits(config, logger);
  opened.push(rateLimits);
  mountRoutes(app, routes, { orm: stack.db.orm, config, rateLimits });
  app.use(notFoundHandler);
  app.use(problemHandler);
  return { app, calls: () => calls };
}

/** `"auth"; r=4; t=900` → { name, remaining, reset } */
function parseRateLimit(header: unknown): { name: string; remaining: number; reset: number } {
  const match = /^"([^"]+)"; r=(\d+); t=(\d+)$/.exec(String(header));
  if (!match) throw new Error(`not a draft-8 RateLimit header: ${String(header)}`);
  return { name: match[1] ?? '', remaining: Number(match[2]), reset: Number(match[3]) };
}

/** `"auth"; q=5; w=900; pk=:…:` → { name, quota, window } */
function parsePolicy(header: unknown): { name: string; quota: number; window: number } {
  const match = /^"([^"]+)"; q=(\d+); w=(\d+); pk=:[A-Za-z0-9+/=]+:$/.exec(String(header));
  if (!match) throw new Error(`not a draft-8 RateLimit-Policy header: ${String(header)}`);
  return { name: match[1] ?? '', quota: Number(match[2]), window: Number(match[3]) };
}

function expectLimitHeaders(
  res: request.Response,
  expected: { name: string; quota: number; window: number; remaining: number },
): void {
  expect(parsePolicy(res.headers['ratelimit-policy'])).toEqual({
    name: expected.name,
    quota: expected.quota,
    window: expected.window,
  });
  const limit = parseRateLimit(res.headers['ratelimit']);
  expect(limit).toMatchObject({ name: expected.name, remaining: expected.remaining });
  expect(limit.reset).toBeGreaterThan(0);
  expect(limit.reset).toBeLessThanOrEqual(expected.window);
  expect(res.headers['x-ratelimit-limit']).toBe(String(expected.quota));
  expect(res.headers['x-ratelimit-remaining']).toBe(String(expected.remaining));
  const reset = Number(res.headers['x-ratelimit-reset']);
  const now = Date.now() / 1000;
  expect(reset).toBeGreaterThan(now - 1);
  expect(reset).toBeLessThanOrEqual(Math.ceil(now) + expected.window);
}

function expectRefused(res: request.Response, window: number): void {
  expectProblem(res, 429, 'rate-limited');
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(window);
}

function expectUnlimited(res: request.Response): void {
  for (const header of ['ratelimit', 'ratelimit-policy', 'x-ratelimit-limit', 'x-ratelimit-remaining'])
    expect(res.headers[header]).toBeUndefined();
}

beforeAll(async () => {
  console.log(
    `rate-limit suite: ${REDIS_URL ? `Redis store at ${new URL(REDIS_URL).host} (REDIS_URL)` : 'memory store (REDIS_URL unset)'}`,
  );
  stack = await startTestStack();
  [a, b] = await Promise.all([createActiveTenant(stack, 'rl-a'), createActiveTenant(stack, 'rl-b')]);
});

afterAll(async () => {
  await Promise.all(opened.map((limits) => limits.close()));
  if (REDIS_URL) {
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${RUN_PREFIX}*`, COUNT: 1000 }))
      keys.push(...batch);
    if (keys.length > 0) await client.del(keys);
    client.destroy();
  }
  await stack?.close();
});

describe('route classes', () => {
  it('derives each route’s limit from its declaration: path classes, callers, public routes unlimited', () => {
    const routes = stack.app.locals.routes as Route[];
    const limitOf = (method: string, path: string) => {
      const r = routes.find((x) => x.method === method && x.path === path);
      if (!r) throw new Error(`no route ${method} ${path}`);
      return rateLimitOf(r);
    };
    expect(limitOf('post', '/api/v1/billing/webhooks/stripe')).toBe('webhook');
    expect(limitOf('get', '/api/v1/cloudpods')).toBe('caller');
    expect(limitOf('get', '/api/v1/nodes')).toBe('caller');
    for (const path of ['/health', '/health/ready', '/metrics', '/openapi.json'])
      expect(limitOf('get', path)).toBe('none');
    const access = { public: 'x' };
    expect(rateLimitOf({ path: '/api/v1/auth/login', access })).toBe('auth');
    expect(rateLimitOf({ path: '/api/v1/auth/password-reset/confirm', access })).toBe('password-reset');
    expect(
      rateLimitOf({ path: '/api/v1/auth/sessions', access: { caller: 'any', permission: 'tenants:read' } }),
    ).toBe('auth');
    expect(rateLimitOf({ path: '/api/v1/auth/methods', access, rateLimit: 'none' })).toBe('none');
  });

  it('uses the store REDIS_URL names', () => {
    expect(rateLimitsOf(limitedApp().app).store).toBe(REDIS_URL ? 'redis' : 'memory');
  });
});

describe('auth: 5 requests per address in 15 minutes', () => {
  it('answers the sixth request from one address with 429, Retry-After and the rate-limit headers, without running it', async () => {
    const { app, calls } = authApp();
    for (let i = 0; i < 5; i++) {
      const res = await request(app).post('/api/v1/auth/login').send({});
      expect(res.status).toBe(200);
      expectLimitHeaders(res, { name: 'auth', quota: 5, window: 900, remaining: 4 - i });
    }
    const sixth = await request(app).post('/api/v1/auth/login').send({});
    expectRefused(sixth, 900);
    expectLimitHeaders(sixth, { name: 'auth', quota: 5, window: 900, remaining: 0 });
    expect(calls()).toBe(5);
    // one budget for every route under /api/v1/auth/
    expectRefused(await request(app).post('/api/v1/auth/refresh').send({}), 900);
    expect(calls()).toBe(5);
    // a route that declares itself unlimited stays so
    const open = await request(app).get('/api/v1/auth/methods');
    expect(open.status).toBe(200);
    expectUnlimited(open);
  });

  it('answers the sixth sign-in attempt from one address in the production app with 429', async () => {
    const { app } = limitedApp();
    const attempt = () =>
      request(app)
        .post('/api/v1/auth/login')
        .send({ email: 'nobody@rl-a.test', password: 'not the password at all' });
    for (let i = 0; i < 5; i++) {
      const res = await attempt();
      expectProblem(res, 401, 'unauthenticated');
      expectLimitHeaders(res, { name: 'auth', quota: 5, window: 900, remaining: 4 - i });
    }
    const sixth = await attempt();
    expectRefused(sixth, 900);
    expectLimitHeaders(sixth, { name: 'auth', quota: 5, window: 900, remaining: 0 });
  });

  it('keeps password reset to 3 per address an hour, on a budget of its own', async () => {
    const { app, calls } = authApp();
    for (let i = 0; i < 3; i++) {
      const res = await request(app).post('/api/v1/auth/password-reset').send({});
      expect(res.status).toBe(200);
      expectLimitHeaders(res, { name: 'password-reset', quota: 3, window: 3600, remaining: 2 - i });
    }
    expectRefused(await request(app).post('/api/v1/auth/password-reset/confirm').send({}), 3600);
    expect(calls()).toBe(3);
    const login = await request(app).post('/api/v1/auth/login').send({});
    expect(login.status).toBe(200);
    expectLimitHeaders(login, { name: 'auth', quota: 5, window: 900, remaining: 4 });
  });

  it('counts each client address of a trusted proxy on its own, and ignores X-Forwarded-For from anyone else', async () => {
    const behindProxy = authApp({ TRUST_PROXY: 'loopback', RATE_LIMIT_AUTH_PER_15_MIN: '1' });
    const from = (address: string) =>
      request(behindProxy.app).post('/api/v1/auth/login').set('X-Forwarded-For', address).send({});
    expect((await from('198.51.100.1')).status).toBe(200);
    expectRefused(await from('198.51.100.1'), 900);
    expect((await from('198.51.100.2')).status).toBe(200);
    // IPv6 clients are counted per /56: another address in the same block shares the budget
    expect((await from('2001:db8:0:100::1')).status).toBe(200);
    expectRefused(await from('2001:db8:0:1ff::2'), 900);
    expect((await from('2001:db8:0:200::1')).status).toBe(200);

    const direct = authApp({ RATE_LIMIT_AUTH_PER_15_MIN: '1' });
    const spoofed = (address: string) =>
      request(direct.app).post('/api/v1/auth/login').set('X-Forwarded-For', address).send({});
    expect((await spoofed('198.51.100.1')).status).toBe(200);
    expectRefused(await spoofed('198.51.100.2'), 900);
  });
});

describe('API: per address and tenant', () => {
  it('gives each tenant its own budget from one address, and each address its own behind a trusted proxy', async () => {
    const { app } = limitedApp({ RATE_LIMIT_API_PER_MIN: '3', TRUST_PROXY: 'loopback' });
    const list = (tenant: ActiveTenant, address?: string) => {
      const req = request(app).get('/api/v1/customers').set('Authorization', `Bearer ${tenant.token}`);
      return address ? req.set('X-Forwarded-For', address) : req;
    };
    for (let i = 0; i < 3; i++) {
      const res = await list(a);
      expect(res.status).toBe(200);
      expectLimitHeaders(res, { name: 'api', quota: 3, window: 60, remaining: 2 - i });
    }
    const refused = await list(a);
    expectRefused(refused, 60);
    expectLimitHeaders(refused, { name: 'api', quota: 3, window: 60, remaining: 0 });
    // every tenant route spends the same budget
    expectRefused(await request(app).get('/api/v1/cloudpods').set('Authorization', `Bearer ${a.token}`), 60);

    const otherTenant = await list(b);
    expect(otherTenant.status).toBe(200);
    expectLimitHeaders(otherTenant, { name: 'api', quota: 3, window: 60, remaining: 2 });

    const otherAddress = await list(a, '203.0.113.9');
    expect(otherAddress.status).toBe(200);
    expectLimitHeaders(otherAddress, { name: 'api', quota: 3, window: 60, remaining: 2 });
  });

  it('refuses before anything is written', async () => {
    const { app } = limitedApp({ RATE_LIMIT_API_PER_MIN: '1' });
    const create = (email: string) =>
      request(app).post('/api/v1/customers').set('Authorization', `Bearer ${a.token}`).send({
        email,
        name: 'Rate Limited',
      });
    expect((await create('first@rl-a.test')).status).toBe(201);
    expectRefused(await create('second@rl-a.test'), 60);
    const [row] = await stack.db.query('select count(*)::int as n from customers where email = $1', [
      'second@rl-a.test',
    ]);
    expect(row?.n).toBe(0);
  });
});

describe('admin: per platform principal', () => {
  it('gives each platform principal its own budget, and a tenant on a route open to both its tenant budget', async () => {
    const { app } = limitedApp({ RATE_LIMIT_ADMIN_PER_MIN: '2', RATE_LIMIT_API_PER_MIN: '5' });
    const asAdmin = (token: string) =>
      request(app).get('/api/v1/tenants').set('Authorization', `Bearer ${token}`);
    for (let i = 0; i < 2; i++) {
      const res = await asAdmin(stack.adminToken);
      expect(res.status).toBe(200);
      expectLimitHeaders(res, { name: 'admin', quota: 2, window: 60, remaining: 1 - i });
    }
    expectRefused(await asAdmin(stack.adminToken), 60);

    const { secret } = await issueToken(systemEm(stack.db.orm), {
      tenantId: null,
      name: 'second admin',
      scopes: ['read'],
    });
    const second = await asAdmin(secret);
    expect(second.status).toBe(200);
    expectLimitHeaders(second, { name: 'admin', quota: 2, window: 60, remaining: 1 });

    const tenantOwn = await request(app)
      .get(`/api/v1/tenants/${a.id}`)
      .set('Authorization', `Bearer ${a.token}`);
    expect(tenantOwn.status).toBe(200);
    expectLimitHeaders(tenantOwn, { name: 'api', quota: 5, window: 60, remaining: 4 });
  });
});

describe('webhooks: per address', () => {
  it('limits deliveries per address before the signature is checked', async () => {
    const { app } = limitedApp({ RATE_LIMIT_WEBHOOK_PER_MIN: '2' });
    const deliver = () =>
      request(app)
        .post('/api/v1/billing/webhooks/stripe')
        .set('Content-Type', 'application/json')
        .set('Stripe-Signature', 't=1,v1=00')
        .send('{}');
    for (let i = 0; i < 2; i++) {
      const res = await deliver();
      // no signing secret is configured: 503, counted all the same
      expectProblem(res, 503, 'unavailable');
      expectLimitHeaders(res, { name: 'webhook', quota: 2, window: 60, remaining: 1 - i });
    }
    expectRefused(await deliver(), 60);
  });

  it('allows 500 a minute by default', async () => {
    const res = await request(limitedApp().app)
      .post('/api/v1/billing/webhooks/stripe')
      .set('Content-Type', 'application/json')
      .send('{}');
    expectLimitHeaders(res, { name: 'webhook', quota: 500, window: 60, remaining: 499 });
  });
});

describe('unlimited and switched off', () => {
  it('never limits health, metrics and the API description', async () => {
    const { app } = limitedApp({
      RATE_LIMIT_AUTH_PER_15_MIN: '1',
      RATE_LIMIT_PASSWORD_RESET_PER_HOUR: '1',
      RATE_LIMIT_API_PER_MIN: '1',
      RATE_LIMIT_ADMIN_PER_MIN: '1',
      RATE_LIMIT_WEBHOOK_PER_MIN: '1',
    });
    for (const path of ['/health', '/metrics', '/openapi.json']) {
      for (let i = 0; i < 3; i++) {
        const res = await request(app).get(path);
        expect(res.status).toBe(200);
        expectUnlimited(res);
      }
    }
  });

  it('limits nothing with RATE_LIMIT_ENABLED=false', async () => {
    const { app } = limitedApp({ RATE_LIMIT_ENABLED: 'false', RATE_LIMIT_API_PER_MIN: '1' });
    expect(rateLimitsOf(app).store).toBe('off');
    for (let i = 0; i < 3; i++) {
      const res = await request(app).get('/api/v1/customers').set('Authorization', `Bearer ${a.token}`);
      expect(res.status).toBe(200);
      expectUnlimited(res);
    }
  });
});

describe('a Redis that cannot be reached', () => {
  /** A port nothing listens on. */
  async function closedPort(): Promise<number> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }

  const storeLines = (lines: Record<string, unknown>[], reachable: boolean) =>
    lines.filter((l) => l.component === 'rate-limit' && l.store === 'redis' && l.reachable === reachable);

  it('lets requests through unlimited (fail open), warns once, and never logs the URL', async () => {
    const port = await closedPort();
    const { app, lines } = limitedApp({
      REDIS_URL: `redis://:redis-password-not-logged@127.0.0.1:${port}`,
      RATE_LIMIT_API_PER_MIN: '1',
    });
    for (let i = 0; i < 4; i++) {
      const res = await request(app).get('/api/v1/customers').set('Authorization', `Bearer ${a.token}`);
      expect(res.status).toBe(200);
      expectUnlimited(res);
    }
    expect(storeLines(lines, false)).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain('redis-password-not-logged');
  });

  it('lets requests through when Redis accepts connections but never answers', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const { app, lines } = limitedApp({
        REDIS_URL: `redis://127.0.0.1:${port}`,
        RATE_LIMIT_API_PER_MIN: '1',
      });
      for (let i = 0; i < 3; i++) {
        const res = await request(app).get('/api/v1/customers').set('Authorization', `Bearer ${a.token}`);
        expect(res.status).toBe(200);
        expectUnlimited(res);
      }
      expect(storeLines(lines, false)).toHaveLength(1);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  // The cases below need the Redis server itself.
  if (REDIS_URL) {
    it('starts limiting once a Redis that was down at start comes up', async () => {
      const port = await closedPort();
      const { app, lines } = limitedApp({
        REDIS_URL: `redis://127.0.0.1:${port}`,
        RATE_LIMIT_API_PER_MIN: '1',
      });
      const list = () => request(app).get('/api/v1/customers').set('Authorization', `Bearer ${a.token}`);
      const before = await list();
      expect(before.status).toBe(200);
      expectUnlimited(before);
      // Redis appears at the address the app was given: a proxy to the real one.
      const target = new URL(REDIS_URL);
      const relayed: net.Socket[] = [];
      const relay = net.createServer((client) => {
        const upstream = net.connect(Number(target.port || 6379), target.hostname);
        relayed.push(client, upstream);
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
      try {
        const counted = await waitFor(
          async () => {
            const res = await list();
            return res.headers['ratelimit'] ? res : undefined;
          },
          { what: 'requests counted in Redis', timeoutMs: 20_000, intervalMs: 200 },
        );
        expect(counted.status).toBe(200);
        expectLimitHeaders(counted, { name: 'api', quota: 1, window: 60, remaining: 0 });
        expectRefused(await list(), 60);
        expect(storeLines(lines, true).length).toBeGreaterThanOrEqual(1);
      } finally {
        for (const socket of relayed) socket.destroy();
        await new Promise<void>((resolve) => relay.close(() => resolve()));
      }
    });

    it('shares one budget between API processes through Redis', async () => {
      const prefix = `${RUN_PREFIX}shared:`;
      const one = limitedApp({ RATE_LIMIT_API_PER_MIN: '2', RATE_LIMIT_PREFIX: prefix });
      const two = limitedApp({ RATE_LIMIT_API_PER_MIN: '2', RATE_LIMIT_PREFIX: prefix });
      const list = (app: Express) =>
        request(app).get('/api/v1/customers').set('Authorization', `Bearer ${b.token}`);
      expect((await list(one.app)).status).toBe(200);
      expect((await list(two.app)).status).toBe(200);
      expectRefused(await list(one.app), 60);
      expectRefused(await list(two.app), 60);
      const client = createClient({ url: REDIS_URL });
      await client.connect();
      try {
        const keys: string[] = [];
        for await (const batch of client.scanIterator({ MATCH: `${prefix}api:*`, COUNT: 1000 }))
          keys.push(...batch);
        expect(keys).toHaveLength(1);
        expect(keys[0]).toContain(b.id);
      } finally {
        client.destroy();
      }
    });
  }
});
