/**
 * Rate limits (DESIGN.md §8), one budget per class of route, each configurable:
 * - `auth`: 5 requests per client address in 15 minutes, under /api/v1/auth/;
 * - `password-reset`: 3 per client address an hour, under /api/v1/auth/password-reset;
 * - `api`: 100 per client address and tenant a minute, for a tenant's principals;
 * - `admin`: 60 per platform principal a minute;
 * - `webhook`: 500 per client address a minute, under /api/v1/billing/webhooks/.
 * Every limited answer carries the draft-8 `RateLimit`/`RateLimit-Policy` headers and the legacy
 * `X-RateLimit-*` ones; a refusal is a 429 problem with `Retry-After`.
 *
 * Counters live in Redis when REDIS_URL is set (shared by every API process), otherwise in this
 * process's memory. Redis is a guard, not a dependency: when it cannot be reached, or does not
 * answer within STORE_TIMEOUT_MS, requests pass without a limit (fail open) and one warning per
 * outage is logged, so an outage of Redis never becomes an outage of the API.
 */
import type { Express, Request, RequestHandler } from 'express';
import {
  ipKeyGenerator,
  rateLimit,
  type IncrementResponse,
  type Options,
  type Store,
} from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { createClient } from 'redis';
import type { Config } from '../../config';
import { AppError } from '../../domain/errors';
import type { Logger } from '../../logger';
import type { Access } from '../http/route';

export const RATE_LIMIT_CLASSES = ['auth', 'password-reset', 'api', 'admin', 'webhook'] as const;
export type RateLimitClass = (typeof RATE_LIMIT_CLASSES)[number];

/**
 * What a route may declare: a class whose budget it spends, `caller` (the principal's own budget,
 * for an authenticated route under a path that would otherwise pick a class), or `none`.
 */
export type RouteRateLimit = RateLimitClass | 'caller' | 'none';

/**
 * The limit a route spends: declared, else by path, else none for a public route and, for an
 * authenticated one, `caller` — the principal's budget: `api` for a tenant's, `admin` for the platform's.
 */
export type EffectiveRateLimit = RouteRateLimit | 'caller';

/** First match wins: the more specific prefix comes first. */
const PATH_CLASSES: readonly (readonly [prefix: string, limit: RateLimitClass])[] = [
  ['/api/v1/auth/password-reset', 'password-reset'],
  ['/api/v1/auth/', 'auth'],
  ['/api/v1/billing/webhooks/', 'webhook'],
];

export function rateLimitOf(route: {
  path: string;
  access: Access;
  rateLimit?: RouteRateLimit;
}): EffectiveRateLimit {
  if (route.rateLimit) return route.rateLimit;
  const byPath = PATH_CLASSES.find(([prefix]) => route.path.startsWith(prefix));
  if (byPath) return byPath[1];
  return 'public' in route.access ? 'none' : 'caller';
}

const MINUTE_MS = 60_000;

/**
 * How long a request waits for its count before it passes unlimited. Redis answers a local
 * increment in well under a millisecond; only a hung or overloaded server takes this long.
 */
const STORE_TIMEOUT_MS = 500;

/** IPv6 clients are counted per /56, the smallest block a provider commonly gives a customer. */
const IPV6_SUBNET = 56;

function addressOf(req: Request): string {
  return ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? 'unknown', IPV6_SUBNET);
}

interface ClassPolicy {
  windowMs: number;
  limit: (config: Config) => number;
  /** the counter a request increments */
  key: (req: Request) => string;
  /** for the 429's detail: whose budget, on which routes */
  scope: string;
}

const POLICIES: Record<RateLimitClass, ClassPolicy> = {
  auth: {
    windowMs: 15 * MINUTE_MS,
    limit: (c) => c.RATE_LIMIT_AUTH_PER_15_MIN,
    key: addressOf,
    scope: 'per client address to /api/v1/auth/',
  },
  'password-reset': {
    windowMs: 60 * MINUTE_MS,
    limit: (c) => c.RATE_LIMIT_PASSWORD_RESET_PER_HOUR,
    key: addressOf,
    scope: 'per client address to the password reset routes',
  },
  api: {
    windowMs: MINUTE_MS,
    limit: (c) => c.RATE_LIMIT_API_PER_MIN,
    key: (req) => `${addressOf(req)}|${req.principal?.tenantId ?? '-'}`,
    scope: 'per client address and tenant',
  },
  admin: {
    windowMs: MINUTE_MS,
    limit: (c) => c.RATE_LIMIT_ADMIN_PER_MIN,
    // Without a principal (a public route that declares `admin`) the address stands in for it.
    key: (req) => (req.principal ? `${req.principal.actorType}:${req.principal.actorId}` : addressOf(req)),
    scope: 'per platform principal',
  },
  webhook: {
    windowMs: MINUTE_MS,
    limit: (c) => c.RATE_LIMIT_WEBHOOK_PER_MIN,
    key: addressOf,
    scope: 'per client address to the webhook routes',
  },
};

function describeWindow(windowMs: number): string {
  if (windowMs === MINUTE_MS) return 'a minute';
  if (windowMs === 60 * MINUTE_MS) return 'an hour';
  return `${windowMs / MINUTE_MS} minutes`;
}

/** Logs the first failure of an outage and its end, not every request in between. */
function outageLog(log: Logger) {
  let down = false;
  return {
    down(err: unknown) {
      if (down) return;
      down = true;
      log.warn(
        { err, store: 'redis', reachable: false },
        'rate-limit store (Redis) unreachable: requests pass without rate limits until it answers again',
      );
    },
    up() {
      if (!down) return;
      down = false;
      log.warn(
        { store: 'redis', reachable: true },
        'rate-limit store (Redis) reachable again: rate limits apply',
      );
    },
  };
}
type OutageLog = ReturnType<typeof outageLog>;

type SendCommand = (...args: string[]) => Promise<RedisReply>;

/**
 * rate-limit-redis, made to survive a Redis that is down when the API starts: its Lua scripts are
 * loaded on first use, and loaded again after a failure (the library would keep the failed load
 * and refuse every later request). Failures still reach express-rate-limit, which lets the request
 * pass (`passOnStoreError`).
 */
class RecoveringRedisStore implements Store {
  readonly localKeys = false;
  readonly prefix: string;
  private readonly inner: RedisStore;
  private options: Options | undefined;
  private loaded: Promise<void> | undefined;

  constructor(
    sendCommand: SendCommand,
    prefix: string,
    private readonly outage: OutageLog,
  ) {
    this.prefix = prefix;
    this.inner = new RedisStore({ sendCommand, prefix });
  }

  init(options: Options): void {
    this.options = options;
  }

  private load(): Promise<void> {
    const options = this.options;
    if (!options) return Promise.reject(new Error('the rate-limit store was used before init'));
    this.loaded ??= this.inner.init(options).catch((err: unknown) => {
      this.loaded = undefined;
      throw err;
    });
    return this.loaded;
  }

  async increment(key: string): Promise<IncrementResponse> {
    try {
      await this.load();
      const counted = await this.inner.increment(key);
      this.outage.up();
      return counted;
    } catch (err) {
      this.outage.down(err);
      throw err;
    }
  }

  async decrement(key: string): Promise<void> {
    await this.load();
    await this.inner.decrement(key);
  }

  async resetKey(key: string): Promise<void> {
    await this.load();
    await this.inner.resetKey(key);
  }
}

type RedisClient = ReturnType<typeof createClient>;

/**
 * A Redis client that never holds a request up for long, and never keeps the process alive. The
 * client library is loaded only when REDIS_URL is set (it costs the process about 19 MB).
 */
function connectRedis(url: string, outage: OutageLog): { close(): Promise<void>; sendCommand: SendCommand } {
  // The first connection is waited for (a request at start-up is counted); once it has succeeded
  // or failed, a request does not wait for a reconnection but passes at once.
  let connecting = true;
  const connected: Promise<RedisClient> = import('redis').then(({ createClient: create }) => {
    const client = create({ url, commandOptions: { timeout: STORE_TIMEOUT_MS } });
    client.on('ready', () => {
      connecting = false;
      outage.up();
    });
    // Without a listener an 'error' event would end the process; the client reconnects by itself.
    client.on('error', (err: unknown) => {
      connecting = false;
      outage.down(err);
    });
    client.unref();
    client.connect().catch((err: unknown) => outage.down(err));
    return client;
  });
  // a client that cannot be made fails each command, and a failing store lets requests pass
  connected.catch((err: unknown) => outage.down(err));
  const sendCommand: SendCommand = async (...args) => {
    const client = await connected;
    if (!connecting && !client.isReady) throw new Error('Redis is not connected');
    return client.sendCommand<RedisReply>(args);
  };
  return {
    sendCommand,
    close: async () => {
      const client = await connected;
      if (client.isOpen) client.destroy();
    },
  };
}

export interface RateLimits {
  /** where the counters are kept; `off` with RATE_LIMIT_ENABLED=false */
  store: 'redis' | 'memory' | 'off';
  /** the middleware that spends the route's budget, or undefined for an unlimited route */
  forRoute(route: Parameters<typeof rateLimitOf>[0]): RequestHandler | undefined;
  /** closes the Redis connection, if any */
  close(): Promise<void>;
}

export function createRateLimits(config: Config, logger: Logger): RateLimits {
  const log = logger.child({ component: 'rate-limit' });
  if (!config.RATE_LIMIT_ENABLED) {
    log.warn('rate limits are off (RATE_LIMIT_ENABLED=false)');
    return { store: 'off', forRoute: () => undefined, close: () => Promise.resolve() };
  }
  if (config.TRUST_PROXY === true) {
    log.warn(
      'TRUST_PROXY=true believes every X-Forwarded-For hop: a client can choose the address its rate limits count; list the proxies instead',
    );
  }
  const outage = outageLog(log);
  const redis = config.REDIS_URL ? connectRedis(config.REDIS_URL, outage) : undefined;
  // Store failures are logged once per outage (`outage`); express-rate-limit would log one per request.
  // Its own one-argument calls are configuration mistakes, found once each.
  const limiterLog = {
    error: (err: unknown, message?: string) =>
      message === undefined ? log.error({ err }, 'rate limiter misconfigured') : log.debug({ err }, message),
    warn: (err: unknown, message?: string) => log.warn({ err }, message ?? 'rate limiter warning'),
  };

  const limiterOf = (name: RateLimitClass): RequestHandler => {
    const policy = POLICIES[name];
    const limit = policy.limit(config);
    const detail = `at most ${limit} requests in ${describeWindow(policy.windowMs)} ${policy.scope}`;
    return rateLimit({
      windowMs: policy.windowMs,
      limit,
      identifier: name,
      standardHeaders: 'draft-8',
      legacyHeaders: true,
      keyGenerator: policy.key,
      passOnStoreError: true,
      logger: limiterLog,
      ...(redis
        ? {
            store: new RecoveringRedisStore(redis.sendCommand, `${config.RATE_LIMIT_PREFIX}${name}:`, outage),
          }
        : {}),
      handler: (_req, res, next) => {
        const retryAfter = String(res.getHeader('Retry-After') ?? '');
        next(new AppError('rate_limited', `too many requests: ${detail}; retry after ${retryAfter} seconds`));
      },
    });
  };
  const limiters: Record<RateLimitClass, RequestHandler> = {
    auth: limiterOf('auth'),
    'password-reset': limiterOf('password-reset'),
    api: limiterOf('api'),
    admin: limiterOf('admin'),
    webhook: limiterOf('webhook'),
  };

  log.info({ store: redis ? 'redis' : 'memory' }, 'rate limits on');
  return {
    store: redis ? 'redis' : 'memory',
    forRoute(route) {
      const limit = rateLimitOf(route);
      if (limit === 'none') return undefined;
      if (limit !== 'caller') return limiters[limit];
      return (req, res, next) => (req.principal?.tenantId ? limiters.api : limiters.admin)(req, res, next);
    },
    close: () => redis?.close() ?? Promise.resolve(),
  };
}

/** The app's rate limits (createApp keeps them in `app.locals`), for whoever closes the app. */
export function rateLimitsOf(app: Express): RateLimits {
  return app.locals.rateLimits as RateLimits;
}
