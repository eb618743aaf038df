/**
 * One typed configuration object, parsed once from environment variables.
 * A missing or malformed variable stops the process with one line naming it.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseFaultSpec } from './domain/faults';
import { parseMailFrom } from './providers/mail';
import { parseCustomerAccess, parseTemplates } from './providers/proxmox';

/**
 * Secrets that once shipped as development defaults and are public in this repository: a `.env`
 * may still carry one, and production refuses every one of them.
 */
export const DEV_DEFAULT_SECRETS = {
  JWT_SECRET: 'podplane-dev-only-jwt-secret-not-for-production',
} as const;

/**
 * The development default of JWT_SECRET: random, made once per process, so no secret that signs
 * access tokens is written in code. Tokens signed with it die with the process (users refresh or
 * sign in again; refresh tokens live in the database and survive). Production requires JWT_SECRET.
 */
const PROCESS_JWT_SECRET = randomBytes(32).toString('base64url');

/** HS256 keys shorter than the hash (32 bytes) weaken it (RFC 7518 §3.2). */
const MIN_JWT_SECRET_BYTES = 32;

const booleanString = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const port = z.coerce.number().int().min(0).max(65535);

const durationMs = z.coerce.number().int().min(1);

/** requests allowed in a rate-limit window */
const requestLimit = z.coerce.number().int().min(1).max(1_000_000_000);

/** Express's names for address ranges, accepted in `trust proxy` beside addresses and CIDRs. */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isProxyAddress(entry: string): boolean {
  if (PROXY_RANGES.has(entry) || isIP(entry) !== 0) return true;
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
  const version = cidr ? isIP(cidr[1] ?? '') : 0;
  return version !== 0 && Number(cidr?.[2]) <= (version === 4 ? 32 : 128);
}

/**
 * Express's `trust proxy`: `true`/`false`, or the proxies whose `X-Forwarded-For` is believed —
 * addresses, CIDRs and range names, comma-separated. Only a list keeps the per-address rate limits
 * honest behind a proxy: `true` believes every hop, so a client can name any address it likes.
 */
const trustProxy = z.string().transform((value, ctx): boolean | string[] => {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  const wrong = entries.find((entry) => !isProxyAddress(entry));
  if (entries.length === 0 || wrong !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `must be true, false or proxy addresses, CIDRs, loopback, linklocal, uniquelocal (comma-separated)${wrong === undefined ? '' : `; not ${wrong}`}`,
    });
    return z.NEVER;
  }
  return entries;
});

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: port.default(3000),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DATA_DIR: z.string().min(1).default('.data'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    /**
     * the schema owner's connection, used only to run migrations (`podplane migrate`, npm start);
     * unset: migrations run through DATABASE_URL, which then must be the owner
     */
    DATABASE_OWNER_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
    EMBEDDED_POSTGRES_PORT: port.default(54329),
    TEMPORAL_ADDRESS: z
      .string()
      .regex(/^[^\s:]+:\d+$/, 'must be host:port')
      .optional(),
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    /** deadline of every call the API makes to Temporal; past it the API answers 503 having changed nothing */
    TEMPORAL_CALL_TIMEOUT_MS: durationMs.default(5000),
    /** how often the worker re-delivers stranded work (pods whose workflow never started, queued jobs) */
    SWEEP_INTERVAL_MS: durationMs.default(60_000),
    /** how old a queued job must be before the sweeper re-delivers it */
    SWEEP_MIN_AGE_MS: durationMs.default(30_000),
    /** workflow runs each task queue's worker keeps cached (the SDK's default grows with the heap) */
    WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).max(100_000).default(100),
    TEMPORAL_DEV_PORT: port.default(7233),
    TEMPORAL_UI_PORT: port.default(8233),
    TEMPORAL_CLI_PATH: z.string().min(1).optional(),
    /** signs users' access tokens (HS256), at least 32 bytes; unset outside production: a per-process random secret */
    JWT_SECRET: z
      .string()
      .refine(
        (secret) => Buffer.byteLength(secret, 'utf8') >= MIN_JWT_SECRET_BYTES,
        `must be at least ${MIN_JWT_SECRET_BYTES} bytes`,
      )
      .optional(),
    /** how long a user's access token is accepted; their session is also checked on every request */
    JWT_ACCESS_TTL_S: z.coerce.number().int().min(30).max(86_400).default(900),
    /** the `iss` of access tokens, checked on every request */
    JWT_ISSUER: z.string().min(1).max(200).default('podplane'),
    /** the `aud` of access tokens, checked on every request */
    JWT_AUDIENCE: z.string().min(1).max(200).default('podplane-api'),
    /** how long a sign-in lasts: its refresh tokens stop working this long after login, refreshed or not */
    SESSION_TTL_S: z.coerce
      .number()
      .int()
      .min(300)
      .max(31_536_000)
      .default(30 * 86_400),
    /** wrong passwords in a row after which an account is locked (whatever address they came from) */
    LOGIN_LOCKOUT_THRESHOLD: z.coerce.number().int().min(1).max(1000).default(10),
    /** how long a locked account refuses logins; attempts during the lock do not extend it */
    LOGIN_LOCKOUT_MS: z.coerce
      .number()
      .int()
      .min(1000)
      .max(86_400_000)
      .default(15 * 60_000),
    /**
     * seals stored secrets (users' TOTP secrets) with AES-256-GCM; at least 32 bytes, a secret. Unset:
     * derived from JWT_SECRET (so in development without JWT_SECRET, MFA set up before a restart
     * needs a recovery code after it). Set it in production: rotating JWT_SECRET then leaves MFA intact.
     */
    TENANT_SECRETS_ENCRYPTION_KEY: z
      .string()
      .refine((secret) => Buffer.byteLength(secret, 'utf8') >= 32, 'must be at least 32 bytes')
      .optional(),
    /** the issuer name authenticator apps show beside a TOTP code */
    MFA_ISSUER: z.string().min(1).max(100).default('Podplane'),
    /** argon2id memory per password hash in KiB; at least the OWASP floor of 19 MiB */
    PASSWORD_HASH_MEMORY_KIB: z.coerce.number().int().min(19_456).max(4_194_304).default(19_456),
    /** argon2id iterations; at least 2 */
    PASSWORD_HASH_TIME_COST: z.coerce.number().int().min(2).max(50).default(2),
    /** argon2id lanes */
    PASSWORD_HASH_PARALLELISM: z.coerce.number().int().min(1).max(16).default(1),
    /** unset → the API's own origins on PORT (see `withDefaultOrigins`) */
    ALLOWED_ORIGINS: z
      .string()
      .optional()
      .transform((s) =>
        s
          ?.split(',')
          .map((o) => o.trim())
          .filter((o) => o.length > 0),
      ),
    BODY_LIMIT: z
      .string()
      .regex(/^\d+(b|kb|mb)$/, 'must look like 100kb or 1mb')
      .default('100kb'),
    TRUST_PROXY: trustProxy.default(false),
    SHUTDOWN_TIMEOUT_MS: durationMs.default(30000),
    /**
     * set: the rate-limit counters live in this Redis, shared by every API process
     * (redis://[user:password@]host:6379[/db], rediss:// for TLS); unset: in each process's memory.
     * A secret (it may hold a password): never logged or echoed.
     */
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL like redis://127.0.0.1:6379')
      .optional(),
    /** the Redis key prefix of the rate-limit counters: one per deployment sharing a Redis */
    RATE_LIMIT_PREFIX: z
      .string()
      .regex(/^[\x21-\x7e]{1,100}$/, 'must be 1 to 100 printable characters without spaces')
      .default('podplane:rl:'),
    /** false: no rate limits at all (DESIGN.md §8 limits below, each configurable) */
    RATE_LIMIT_ENABLED: booleanString.default(true),
    /** requests per client address to /api/v1/auth/… in 15 minutes */
    RATE_LIMIT_AUTH_PER_15_MIN: requestLimit.default(5),
    /** requests per client address to /api/v1/auth/password-reset… in an hour */
    RATE_LIMIT_PASSWORD_RESET_PER_HOUR: requestLimit.default(3),
    /** requests per client address and tenant to the tenant routes in a minute */
    RATE_LIMIT_API_PER_MIN: requestLimit.default(100),
    /** requests per platform principal (administrator or platform token) in a minute */
    RATE_LIMIT_ADMIN_PER_MIN: requestLimit.default(60),
    /** requests per client address to /api/v1/billing/webhooks/… in a minute */
    RATE_LIMIT_WEBHOOK_PER_MIN: requestLimit.default(500),
    WORKER_ACTIVITY_RETRY_INITIAL_MS: durationMs.default(1000),
    PUBLIC_BASE_URL: z.string().url().optional(),
    HYPERVISOR: z.enum(['simulator', 'proxmox']).default('simulator'),
    DNS_PROVIDER: z.enum(['simulator', 'powerdns']).default('simulator'),
    DNS_ZONE: z
      .string()
      .regex(
        /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/,
        'must be a DNS zone like pods.example.com',
      )
      .default('pods.podplane.test'),
    PROXMOX_URL: z.string().url().optional(),
    PROXMOX_TOKEN_ID: z.string().min(1).optional(),
    PROXMOX_TOKEN_SECRET: z.string().min(1).optional(),
    PROXMOX_TEMPLATE_VMID: z.coerce.number().int().min(100).optional(),
    /** `node=vmid,…`: a template per node (clones cannot leave a node whose template is on local storage) */
    PROXMOX_TEMPLATES: z.string().optional(),
    /** `<user|group>:<name with {customer}>:<role>`: the customer's role on their VMs, taken away while suspended */
    PROXMOX_CUSTOMER_ACCESS: z.string().optional(),
    PROXMOX_TASK_POLL_MS: durationMs.default(1000),
    /** backup storage for vzdump archives (backups outlive their VM there) */
    PROXMOX_BACKUP_STORAGE: z.string().min(1).max(100).default('local'),
    POWERDNS_URL: z.string().url().optional(),
    POWERDNS_API_KEY: z.string().min(1).optional(),
    POWERDNS_SERVER_ID: z.string().min(1).default('localhost'),
    SIMULATOR_LATENCY_MS: z.coerce.number().int().min(0).max(60000).default(300),
    SIMULATOR_BOOT_MS: z.coerce.number().int().min(0).max(600000).default(1000),
    SIMULATOR_FAULTS: z.string().optional(),
    SIMULATOR_SEED_NODES: booleanString.default(true),
    PROVISION_RETRY_INITIAL_MS: durationMs.default(60_000),
    PROVISION_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
    PROVISION_HEARTBEAT_TIMEOUT_MS: durationMs.default(30_000),
    PROVISION_RETRY_WINDOW_MS: durationMs.default(14 * 86_400_000),
    /** how long a backup (pre-termination ones included) stays restorable */
    BACKUP_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
    /** set: payments go to Stripe; unset: the payment simulator. A secret: never logged or echoed. */
    STRIPE_SECRET_KEY: z
      .string()
      .regex(
        /^(sk|rk)_(test|live)_\S+$/,
        'must be a Stripe secret or restricted key (sk_test_…, sk_live_…, rk_…)',
      )
      .optional(),
    /** signing secret of the webhook endpoint; a secret */
    STRIPE_WEBHOOK_SECRET: z
      .string()
      .regex(/^whsec_\S+$/, 'must be a webhook signing secret (whsec_…)')
      .optional(),
    /** another Stripe API origin than api.stripe.com, e.g. stripe-mock at http://127.0.0.1:12111 */
    STRIPE_API_BASE: z
      .string()
      .regex(/^https?:\/\/[^/?#\s]+\/?$/, 'must be an http(s)://host[:port] origin without a path')
      .optional(),
    SIMULATED_PAYMENT_DELAY_MS: z.coerce.number().int().min(0).max(60000).default(0),
    /**
     * set: the worker delivers the notification outbox by SMTP (smtp://user:pass@host:587 with
     * STARTTLS when offered, smtps://…:465 for TLS from the start); unset: notifications stay in the
     * outbox. A secret (it holds the password): never logged or echoed.
     */
    SMTP_URL: z
      .string()
      .regex(
        /^smtps?:\/\/[^/?#\s]+(\/?|\/?\?\S*)$/,
        'must be an smtp:// or smtps:// URL like smtp://user:pass@host:587',
      )
      .optional(),
    /** the sender of every notification, `Name <address>` or `address`; required with SMTP_URL */
    MAIL_FROM: z.string().max(320).optional(),
    /** how often the worker looks for notifications to deliver */
    MAIL_POLL_INTERVAL_MS: durationMs.default(10_000),
    /** attempts per notification before it is FAILED */
    MAIL_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
    /** the wait after a first failed attempt; it doubles with each further one (at most an hour) */
    MAIL_RETRY_INITIAL_MS: durationMs.default(60_000),
  })
  .superRefine((cfg, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (cfg.SIMULATOR_FAULTS) {
      try {
        parseFaultSpec(cfg.SIMULATOR_FAULTS);
      } catch (err) {
        issue('SIMULATOR_FAULTS', err instanceof Error ? err.message : String(err));
      }
    }
    for (const [key, parse] of [
      ['PROXMOX_TEMPLATES', parseTemplates],
      ['PROXMOX_CUSTOMER_ACCESS', parseCustomerAccess],
    ] as const) {
      const value = cfg[key];
      if (value === undefined) continue;
      try {
        parse(value);
      } catch (err) {
        issue(key, err instanceof Error ? err.message : String(err));
      }
    }
    if (cfg.HYPERVISOR === 'proxmox') {
      for (const key of [
        'PROXMOX_URL',
        'PROXMOX_TOKEN_ID',
        'PROXMOX_TOKEN_SECRET',
        'PROXMOX_TEMPLATE_VMID',
      ] as const) {
        if (cfg[key] === undefined) issue(key, 'is required when HYPERVISOR=proxmox');
      }
    }
    if (cfg.DNS_PROVIDER === 'powerdns') {
      for (const key of ['POWERDNS_URL', 'POWERDNS_API_KEY'] as const) {
        if (cfg[key] === undefined) issue(key, 'is required when DNS_PROVIDER=powerdns');
      }
    }
    if (cfg.MAIL_FROM !== undefined) {
      try {
        parseMailFrom(cfg.MAIL_FROM);
      } catch (err) {
        issue('MAIL_FROM', err instanceof Error ? err.message : String(err));
      }
    } else if (cfg.SMTP_URL !== undefined) {
      issue('MAIL_FROM', 'is required with SMTP_URL');
    }
    if (cfg.NODE_ENV !== 'production') return;
    // Without webhooks a payment that settles later (processing, 3-D Secure) would stay PENDING.
    if (cfg.STRIPE_SECRET_KEY && !cfg.STRIPE_WEBHOOK_SECRET) {
      issue('STRIPE_WEBHOOK_SECRET', 'is required with STRIPE_SECRET_KEY in production');
    }
    if (cfg.JWT_SECRET === undefined) {
      issue(
        'JWT_SECRET',
        'is required in production (the development default, a secret made per process, would log every user out on each restart and differ between API processes)',
      );
    } else if ((Object.values(DEV_DEFAULT_SECRETS) as string[]).includes(cfg.JWT_SECRET)) {
      issue('JWT_SECRET', 'the development default secret is refused in production');
    }
    if (cfg.ALLOWED_ORIGINS?.includes('*')) {
      issue('ALLOWED_ORIGINS', "'*' is refused in production; list the exact origins");
    }
    if (!cfg.DATABASE_URL) issue('DATABASE_URL', 'is required in production');
    if (!cfg.TEMPORAL_ADDRESS) issue('TEMPORAL_ADDRESS', 'is required in production');
  })
  .transform(withDefaultOrigins)
  .transform((cfg) => ({ ...cfg, JWT_SECRET: cfg.JWT_SECRET ?? PROCESS_JWT_SECRET }));

/** Without ALLOWED_ORIGINS, the browser origins of the API itself: localhost and 127.0.0.1 on PORT. */
function withDefaultOrigins<T extends { PORT: number; ALLOWED_ORIGINS?: string[] | undefined }>(
  cfg: T,
): T & { ALLOWED_ORIGINS: string[] } {
  return {
    ...cfg,
    ALLOWED_ORIGINS: cfg.ALLOWED_ORIGINS ?? [`http://localhost:${cfg.PORT}`, `http://127.0.0.1:${cfg.PORT}`],
  };
}

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`invalid configuration: ${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment; throws a ConfigError that names the first offending variable. */
export function parseConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings are treated as unset so `FOO=` in a .env file falls back to the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  const variable = first ? String(first.path[0] ?? 'environment') : 'environment';
  const problem = first ? first.message : 'is invalid';
  throw new ConfigError(variable, problem);
}

/** For entry points: parse or print one line and exit. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
