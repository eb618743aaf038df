/**
 * One typed configuration object, parsed once from environment variables.
 * A missing or malformed variable stops the process with one line naming it.
 */
import { z } from 'zod';
import { parseFaultSpec } from './domain/faults';
import { parseCustomerAccess, parseTemplates } from './providers/proxmox';

/** Secrets that ship as development defaults; production refuses every one of them. */
export const DEV_DEFAULT_SECRETS = {
  JWT_SECRET: 'podplane-dev-only-jwt-secret-not-for-production',
} as const;

const booleanString = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const port = z.coerce.number().int().min(0).max(65535);

const durationMs = z.coerce.number().int().min(1);

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
    TEMPORAL_DEV_PORT: port.default(7233),
    TEMPORAL_UI_PORT: port.default(8233),
    TEMPORAL_CLI_PATH: z.string().min(1).optional(),
    JWT_SECRET: z.string().min(1).default(DEV_DEFAULT_SECRETS.JWT_SECRET),
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
    TRUST_PROXY: booleanString.default(false),
    SHUTDOWN_TIMEOUT_MS: durationMs.default(30000),
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
    if (cfg.NODE_ENV !== 'production') return;
    // Without webhooks a payment that settles later (processing, 3-D Secure) would stay PENDING.
    if (cfg.STRIPE_SECRET_KEY && !cfg.STRIPE_WEBHOOK_SECRET) {
      issue('STRIPE_WEBHOOK_SECRET', 'is required with STRIPE_SECRET_KEY in production');
    }
    if ((Object.values(DEV_DEFAULT_SECRETS) as string[]).includes(cfg.JWT_SECRET)) {
      issue('JWT_SECRET', 'the development default secret is refused in production');
    } else if (Buffer.byteLength(cfg.JWT_SECRET, 'utf8') < 32) {
      issue('JWT_SECRET', 'must be at least 32 bytes in production');
    }
    if (cfg.ALLOWED_ORIGINS?.includes('*')) {
      issue('ALLOWED_ORIGINS', "'*' is refused in production; list the exact origins");
    }
    if (!cfg.DATABASE_URL) issue('DATABASE_URL', 'is required in production');
    if (!cfg.TEMPORAL_ADDRESS) issue('TEMPORAL_ADDRESS', 'is required in production');
  })
  .transform(withDefaultOrigins);

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
