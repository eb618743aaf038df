/** The `podplane` operator CLI (`npm run cli -- <command>`). */
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfigOrExit } from '../config';
import { initOrm, migrate, systemEm, type MikroORM } from '../db/orm';
import {
  DEFAULT_TOKEN_LIFETIME_DAYS,
  MAX_TOKEN_LIFETIME_DAYS,
  TOKEN_SCOPES,
  type TokenScope,
} from '../domain/api-tokens';
import { authSettings } from '../api/routes/auth';
import { LoginBody } from '../api/routes/auth.schemas';
import { CreateTenantBody, TenantQuotasBody } from '../api/routes/tenants.schemas';
import { isId } from '../domain/ids';
import { MEMBERSHIP_ROLES, isMembershipRole } from '../domain/permissions';
import { createLogger } from '../logger';
import { issueToken } from '../services/api-tokens';
import { createUser } from '../services/auth';
import { createTenant, setTenantQuotas, tenantQuotas, type TenantQuotaReport } from '../services/tenants';
import { syncSchedules } from '../schedules';
import { retryJob } from '../services/cloudpods';
import { connectTemporal, type TemporalClientHandle } from '../temporal-client';
import { auditVerifyCommand } from './audit-verify';
import { describeError } from './errors';
import { appUrlOf } from '../db/roles';
import { withAuditContext } from '../db/audit-context';
import { databaseFor } from './infra';
import { liveRunFile, postgresHolding, runFilePath, type RunFile } from './run-file';

const config = loadConfigOrExit();
const logger = createLogger({
  level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL,
  name: 'podplane-cli',
});

const dataDir = path.resolve(config.DATA_DIR);

/**
 * The `npm start` running on DATA_DIR, from its run.json: the CLI reaches its PostgreSQL and
 * Temporal wherever they listen, without the port variables npm start was given.
 */
function runningStack(): RunFile | undefined {
  const stack = liveRunFile(dataDir);
  if (stack && stack.state !== 'running') {
    throw new Error(
      `npm start (pid ${stack.pid}) is still starting on ${dataDir}; ` +
        'run this again once it prints "Podplane is running"',
    );
  }
  return stack;
}

/**
 * DATABASE_URL (and DATABASE_OWNER_URL for migrations); else the running npm start's database; else
 * the embedded PostgreSQL under DATA_DIR. `url` is the application's role, `ownerUrl` the schema owner's.
 */
async function database(): Promise<{
  url: string;
  ownerUrl: string;
  from?: string;
  stop?: () => Promise<void>;
}> {
  if (config.DATABASE_URL) {
    return { url: config.DATABASE_URL, ownerUrl: config.DATABASE_OWNER_URL ?? config.DATABASE_URL };
  }
  const stack = runningStack();
  if (stack) {
    if (!stack.databaseEmbedded || !stack.databaseUrl) {
      throw new Error(
        `npm start (pid ${stack.pid}) uses the database at ${stack.databaseUrl ?? '(unrecorded)'}; ` +
          'set DATABASE_URL to reach it',
      );
    }
    // npm start records its embedded superuser's URL; commands other than migrations act as the application
    return {
      url: appUrlOf(stack.databaseUrl),
      ownerUrl: stack.databaseUrl,
      from: `npm start's PostgreSQL (pid ${stack.pid}, ${runFilePath(dataDir)})`,
    };
  }
  // No npm start recorded, but a PostgreSQL holds the data directory: starting a second one there
  // cannot work, and the one that runs listens where EMBEDDED_POSTGRES_PORT does not say.
  const held = postgresHolding(dataDir);
  if (held && held.port !== config.EMBEDDED_POSTGRES_PORT) {
    throw new Error(
      `PostgreSQL (pid ${held.pid}) already runs on ${held.dir}, on port ${held.port}, and no running ` +
        `npm start is recorded in ${runFilePath(dataDir)}; set EMBEDDED_POSTGRES_PORT=${held.port} to use it, or stop it`,
    );
  }
  // reuses a server on EMBEDDED_POSTGRES_PORT, else runs one for this command
  const db = await databaseFor(config, logger);
  const embedded = db.embedded;
  return { url: db.url, ownerUrl: db.ownerUrl, ...(embedded?.owned ? { stop: () => embedded.stop() } : {}) };
}

/** The command being run, for the audit trail. */
let command = 'podplane';

/**
 * Runs `run` with an ORM on the application's role (`as: 'owner'`: the schema owner's, for
 * migrations); every change it makes is audited as the CLI's, naming the command and the OS user.
 */
async function withOrm<T>(run: (orm: MikroORM) => Promise<T>, opts: { as?: 'owner' } = {}): Promise<T> {
  const db = await database();
  try {
    let orm: MikroORM;
    try {
      orm = await initOrm({ databaseUrl: opts.as === 'owner' ? db.ownerUrl : db.url, poolMax: 2 });
    } catch (err) {
      throw db.from ? new Error(`cannot reach ${db.from}: ${describeError(err)}`) : err;
    }
    try {
      return await withAuditContext({ actorType: 'cli', actorId: osUser(), operation: command }, () =>
        run(orm),
      );
    } finally {
      await orm.close();
    }
  } finally {
    await db.stop?.();
  }
}

async function withTemporal<T>(run: (t: TemporalClientHandle) => Promise<T>): Promise<T> {
  const stack = config.TEMPORAL_ADDRESS ? undefined : runningStack();
  const address =
    config.TEMPORAL_ADDRESS ?? stack?.temporalAddress ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}`;
  // npm start's namespace unless this command is given one
  const namespace =
    process.env.TEMPORAL_NAMESPACE || !stack?.temporalNamespace
      ? config.TEMPORAL_NAMESPACE
      : stack.temporalNamespace;
  let temporal: TemporalClientHandle;
  try {
    temporal = await connectTemporal(address, namespace);
  } catch (err) {
    const from = stack ? ` (npm start pid ${stack.pid}, ${runFilePath(dataDir)})` : '';
    throw new Error(`cannot reach Temporal at ${address}${from}: ${describeError(err)}`);
  }
  try {
    return await run(temporal);
  } finally {
    await temporal.close();
  }
}

/** `--scopes pods:read,billing:read`: known scopes, each once. */
function parseScopes(value: string): TokenScope[] {
  const scopes = [...new Set(value.split(',').map((s) => s.trim()))];
  for (const s of scopes) {
    if (!(TOKEN_SCOPES as readonly string[]).includes(s))
      throw new Error(`unknown scope '${s}' (known: ${TOKEN_SCOPES.join(', ')})`);
  }
  return scopes as TokenScope[];
}

/** `--expires-in-days` / `--expires-at`, as `issueToken` bounds them (the default lifetime without either). */
function parseLifetime(opts: { expiresInDays?: string; expiresAt?: string }): { inDays?: number; at?: Date } {
  const lifetime: { inDays?: number; at?: Date } = {};
  if (opts.expiresInDays !== undefined) {
    if (!/^\d+$/.test(opts.expiresInDays)) throw new Error('--expires-in-days: a whole number of days');
    lifetime.inDays = Number(opts.expiresInDays);
  }
  if (opts.expiresAt !== undefined) {
    const at = new Date(opts.expiresAt);
    if (Number.isNaN(at.getTime()))
      throw new Error('--expires-at: an ISO 8601 time, e.g. 2027-01-31T00:00:00Z');
    lifetime.at = at;
  }
  return lifetime;
}

const SCOPES_HELP = `comma-separated scopes: ${TOKEN_SCOPES.join(', ')}`;
const EXPIRES_IN_DAYS_HELP = `days until the token expires (1-${MAX_TOKEN_LIFETIME_DAYS}; default ${DEFAULT_TOKEN_LIFETIME_DAYS})`;
const EXPIRES_AT_HELP = `when the token expires (ISO 8601, at most ${MAX_TOKEN_LIFETIME_DAYS} days ahead)`;

function osUser(): string | null {
  try {
    return userInfo().username;
  } catch {
    return null;
  }
}

const program = new Command('podplane').description('Podplane operator CLI').showHelpAfterError();
program.hook('preAction', (_program, action) => {
  command = action.name();
});

program
  .command('migrate')
  .description('apply pending committed migrations')
  .action(() =>
    withOrm(
      async (orm) => {
        const applied = await migrate(orm);
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema up to date\n');
      },
      { as: 'owner' },
    ),
  );

program
  .command('migration:create')
  .description('generate a migration from the difference between the entities and the migrated database')
  .option('--blank', 'create an empty migration to fill in by hand')
  .action((opts: { blank?: boolean }) =>
    withOrm(
      async (orm) => {
        await migrate(orm);
        const dir = path.resolve(__dirname, '../../../src/db/migrations');
        const result = await orm.getMigrator().createMigration(dir, opts.blank ?? false);
        if (!result.fileName) {
          process.stdout.write('no changes: the entities match the migrations\n');
          return;
        }
        const files = (await readdir(dir)).filter((f) => /^Migration\d+.*\.ts$/.test(f)).sort();
        const names = files.map((f) => f.replace(/\.ts$/, ''));
        const index = [
          '/** Generated by `npm run migration:create`: every committed migration, in order. */',
          "import type { MigrationObject } from '@mikro-orm/core';",
          ...names.map((n) => `import { ${n} } from './${n}';`),
          '',
          'export const MIGRATIONS: MigrationObject[] = [',
          ...names.map((n) => `  { name: '${n}', class: ${n} },`),
          '];',
          '',
        ].join('\n');
        await writeFile(path.join(dir, 'index.ts'), index);
        process.stdout.write(`created src/db/migrations/${result.fileName}\n`);
      },
      { as: 'owner' },
    ),
  );

program
  .command('admin:create')
  .description('create a platform admin API token and print it once')
  .requiredOption('--name <name>', 'who or what the token is for')
  .option(
    '--scopes <scopes>',
    `${SCOPES_HELP} (a platform token: read, write, admin, tenants:read, security:*, audit:read)`,
    'read,write',
  )
  .option('--expires-in-days <days>', EXPIRES_IN_DAYS_HELP)
  .option('--expires-at <time>', EXPIRES_AT_HELP)
  .action((opts: { name: string; scopes: string; expiresInDays?: string; expiresAt?: string }) =>
    withOrm(async (orm) => {
      const { token, secret } = await issueToken(systemEm(orm), {
        tenantId: null,
        name: opts.name,
        scopes: parseScopes(opts.scopes),
        lifetime: parseLifetime(opts),
      });
      process.stdout.write(
        `platform admin token ${token.id} (${token.scopes.join(',')}, expires ${token.expiresAt?.toISOString()}; shown once, store it now):\n${secret}\n`,
      );
    }),
  );

program
  .command('token:create')
  .description("issue a tenant's API token and print it once")
  .requiredOption('--tenant <id>', 'tenant id')
  .requiredOption('--name <name>', 'what the token is for')
  .option('--scopes <scopes>', SCOPES_HELP, 'read,write')
  .option('--expires-in-days <days>', EXPIRES_IN_DAYS_HELP)
  .option('--expires-at <time>', EXPIRES_AT_HELP)
  .action(
    (opts: { tenant: string; name: string; scopes: string; expiresInDays?: string; expiresAt?: string }) =>
      withOrm(async (orm) => {
        const { token, secret } = await issueToken(systemEm(orm), {
          tenantId: opts.tenant,
          name: opts.name,
          scopes: parseScopes(opts.scopes),
          lifetime: parseLifetime(opts),
        });
        process.stdout.write(
          `tenant token ${token.id} (${token.scopes.join(',')}, expires ${token.expiresAt?.toISOString()}; shown once, store it now):\n${secret}\n`,
        );
      }),
  );

/** The first line of stdin, without its line break. */
async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trimEnd();
}

program
  .command('user:create')
  .description(
    'create a user who signs in with email and password: a member of a tenant with a role, or a platform administrator',
  )
  .requiredOption('--email <email>', 'the email the user signs in with')
  .option('--tenant <id>', 'the tenant the user becomes a member of')
  .option('--role <role>', `the role in that tenant: ${MEMBERSHIP_ROLES.join(', ')}`, 'OWNER')
  .option('--platform-admin', 'the user administers the platform (signs in without a tenant)')
  .option('--password-stdin', 'read the password from the first line of stdin instead of generating one')
  .action(
    (opts: {
      email: string;
      tenant?: string;
      role: string;
      platformAdmin?: boolean;
      passwordStdin?: boolean;
    }) =>
      withOrm(async (orm) => {
        const email = LoginBody.shape.email.safeParse(opts.email);
        if (!email.success) throw new Error(`--email: '${opts.email}' is not an email address`);
        if (!isMembershipRole(opts.role)) {
          throw new Error(`--role: unknown role '${opts.role}' (known: ${MEMBERSHIP_ROLES.join(', ')})`);
        }
        if (opts.tenant === undefined && !opts.platformAdmin) {
          throw new Error('give --tenant <id> (with --role), or --platform-admin, or both');
        }
        if (opts.tenant !== undefined && !isId('tenant', opts.tenant)) {
          throw new Error(`--tenant: '${opts.tenant}' is not a tenant id (ten_…)`);
        }
        // 160 random bits: as strong as a password gets, and within every length rule
        const generated = opts.passwordStdin ? undefined : randomBytes(20).toString('base64url');
        const password = generated ?? (await readStdinLine());
        const { user, membership } = await createUser(systemEm(orm), authSettings(config), {
          email: email.data,
          password,
          platformAdmin: opts.platformAdmin ?? false,
          membership: opts.tenant === undefined ? undefined : { tenantId: opts.tenant, role: opts.role },
        });
        const where = [
          membership ? `${membership.role} of ${opts.tenant}` : null,
          user.platformAdmin ? 'platform administrator' : null,
        ]
          .filter(Boolean)
          .join(', ');
        process.stdout.write(`user ${user.id} <${user.email}> created (${where})\n`);
        if (generated) process.stdout.write(`password (shown once, store it now):\n${generated}\n`);
      }),
  );

program
  .command('tenant:create')
  .description('create a tenant and start its onboarding workflow')
  .requiredOption('--slug <slug>')
  .requiredOption('--name <name>')
  .requiredOption('--currency <code>')
  .requiredOption('--owner-email <email>')
  .action((opts: { slug: string; name: string; currency: string; ownerEmail: string }) =>
    withOrm((orm) =>
      withTemporal(async (temporal) => {
        const body = CreateTenantBody.parse({
          slug: opts.slug,
          name: opts.name,
          currency: opts.currency,
          owner_email: opts.ownerEmail,
        });
        const { tenant, workflowId } = await createTenant(
          { em: systemEm(orm), temporal: temporal.client },
          { slug: body.slug, name: body.name, currency: body.currency, ownerEmail: body.owner_email },
        );
        process.stdout.write(`tenant ${tenant.id} created (PENDING); onboarding workflow ${workflowId}\n`);
      }),
    ),
  );

program
  .command('job:retry')
  .description('retry a dead-lettered job (any type): the same service as POST /api/v1/ops/jobs/:id/retry')
  .argument('<jobId>', 'the DEAD_LETTER job')
  .action((jobId: string) =>
    withOrm((orm) =>
      withTemporal(async (temporal) => {
        const job = await retryJob({ em: systemEm(orm), temporal: temporal.client, config }, jobId);
        process.stdout.write(`${job.id}: ${job.type} ${job.status} (pod ${job.pod.id})\n`);
      }),
    ),
  );

function printQuotas(r: TenantQuotaReport): void {
  const { limits: l, usage: u } = r;
  process.stdout.write(
    `tenant ${r.tenant_id} quotas (used / limit):\n` +
      `  pods       ${u.pods} / ${l.max_pods}\n` +
      `  vcpu       ${u.vcpu} / ${l.max_vcpu}\n` +
      `  memory_mb  ${u.memory_mb} / ${l.max_memory_mb}\n` +
      `  disk_gb    ${u.disk_gb} / ${l.max_disk_gb}\n`,
  );
}

/** Numbers as typed: `Number` keeps `1.5` and `abc` (NaN) for the schema to refuse by name. */
const asNumber = (v: string) => (v.trim() === '' ? Number.NaN : Number(v));

program
  .command('tenant:quotas')
  .description("show a tenant's pod quotas and usage, or change the limits given (the others stay)")
  .requiredOption('--tenant <id>', 'tenant id')
  .option('--max-pods <n>', 'pods not TERMINATED', asNumber)
  .option('--max-vcpu <n>', 'vCPUs summed over those pods', asNumber)
  .option('--max-memory-mb <n>', 'memory (MB) summed over those pods', asNumber)
  .option('--max-disk-gb <n>', 'disk (GB) summed over those pods', asNumber)
  .action(
    (opts: {
      tenant: string;
      maxPods?: number;
      maxVcpu?: number;
      maxMemoryMb?: number;
      maxDiskGb?: number;
    }) =>
      withOrm(async (orm) => {
        if (!isId('tenant', opts.tenant)) throw new Error(`'${opts.tenant}' is not a tenant id (ten_…)`);
        const given = {
          max_pods: opts.maxPods,
          max_vcpu: opts.maxVcpu,
          max_memory_mb: opts.maxMemoryMb,
          max_disk_gb: opts.maxDiskGb,
        };
        if (Object.values(given).every((v) => v === undefined)) {
          printQuotas(await tenantQuotas(systemEm(orm), opts.tenant));
          return;
        }
        // The route's schema: the same bounds from the shell as over HTTP.
        const parsed = TenantQuotasBody.safeParse(given);
        if (!parsed.success) {
          const problems = parsed.error.issues.map(
            (i) => `--${String(i.path[0] ?? 'limits').replace(/_/g, '-')}: ${i.message}`,
          );
          throw new Error(problems.join('; '));
        }
        const body = parsed.data;
        const { report } = await setTenantQuotas(systemEm(orm), opts.tenant, {
          maxPods: body.max_pods,
          maxVcpu: body.max_vcpu,
          maxMemoryMb: body.max_memory_mb,
          maxDiskGb: body.max_disk_gb,
        });
        printQuotas(report);
      }),
  );

program
  .command('audit:verify')
  .description(
    'recompute every audit chain (or one tenant’s): hashes, prev_hash links, seqs without gaps and the heads; ' +
      'exit code 1 naming each broken chain and its first broken seq',
  )
  .option('--tenant <id>', 'only this tenant’s chain (`platform`: the platform’s)')
  .action((opts: { tenant?: string }) =>
    withOrm(async (orm) => {
      const { exitCode, output } = await auditVerifyCommand(systemEm(orm), opts);
      process.stdout.write(output);
      process.exitCode = exitCode;
    }),
  );

program
  .command('schedules:sync')
  .description('create or update every Temporal schedule')
  .action(() =>
    withTemporal(async (temporal) => {
      for (const r of await syncSchedules(temporal.client)) process.stdout.write(`${r.id}: ${r.action}\n`);
    }),
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`podplane: ${describeError(err)}\n`);
  process.exit(1);
});
