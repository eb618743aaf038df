/**
 * The stack `npm start` runs (started by src/cli/dev.ts, in a process group of its own): the whole
 * platform on embedded defaults — PostgreSQL, the Temporal dev server and UI, migrations, schedule
 * sync, one worker and the API. SIGINT, SIGTERM or SIGHUP (forwarded by the launcher) stop every
 * piece in reverse: API, worker, Temporal, PostgreSQL. PostgreSQL and Temporal are child processes:
 * one that dies is restarted (src/cli/supervisor.ts); one that keeps dying, or a worker that stops
 * by itself, stops everything with exit code 1.
 *
 * Before starting anything it refuses, with one line on stderr and exit code 1, a data directory
 * another stack (or a PostgreSQL) runs on and a port in use. While it runs, `<DATA_DIR>/run.json`
 * says where it listens (src/cli/run-file.ts).
 */
import path from 'node:path';
import { createApp } from '../api/app';
import { loadConfigOrExit } from '../config';
import { initOrm, migrateAsOwner, ownerConnectionWarning } from '../db/orm';
import { createLogger } from '../logger';
import { createProviders, loadFaultsFromConfig } from '../providers';
import { seedSimulatedNodes } from '../services/nodes';
import { systemEm } from '../db/orm';
import { syncSchedules } from '../schedules';
import { connectTemporal } from '../temporal-client';
import { startSweeper } from '../sweeper';
import { startMailDelivery } from '../mail-delivery';
import { createMailer } from '../providers/mail';
import { installRuntime, startWorkers } from '../worker';
import { describeError } from './errors';
import { COMMIT, VERSION, databaseFor, temporalFor } from './infra';
import { checkPorts, portsToBind } from './ports';
import {
  liveRunFile,
  postgresHolding,
  processStartTime,
  removeRunFile,
  withoutPassword,
  writeRunFile,
  type RunFile,
} from './run-file';
import { serve } from './serve';
import { DEV_RESTART_POLICY, supervise, type SupervisedChild } from './supervisor';
import type { Config } from '../config';

/** What the stack tells the launcher over the IPC channel: where its run file is. */
export interface StackMessage {
  podplaneDataDir: string;
}

/** A restart must bring back a server we spawned: one merely found listening on the port is not ours to watch. */
function spawnedChild<T extends { pid?: number | undefined; exited?: SupervisedChild['exited'] }>(
  what: string,
  handle: T | undefined,
): T & SupervisedChild {
  if (!handle?.exited) throw new Error(`${what} came back, but not as a process started here`);
  return handle as T & SupervisedChild;
}

/**
 * Why this stack must not start, as one line: the data directory is another stack's (or a
 * PostgreSQL's), or a port it binds is taken. Checked before anything starts.
 */
async function refusal(config: Config, dataDir: string): Promise<string | undefined> {
  const other = liveRunFile(dataDir);
  if (other) {
    return (
      `npm start already runs on ${dataDir} (pid ${other.pid}, ` +
      `${other.apiUrl ? `API ${other.apiUrl}` : 'still starting'})`
    );
  }
  if (!config.DATABASE_URL) {
    const postgres = postgresHolding(dataDir);
    if (postgres) {
      return (
        `PostgreSQL (pid ${postgres.pid}, port ${postgres.port}) already runs on ${postgres.dir} ` +
        `with no npm start recorded in ${path.join(dataDir, 'run.json')}; stop it (kill ${postgres.pid}) and start again`
      );
    }
  }
  return checkPorts(portsToBind(config));
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const dataDir = path.resolve(config.DATA_DIR);
  const refused = await refusal(config, dataDir);
  if (refused) {
    process.stderr.write(`podplane: ${refused}\n`);
    process.exit(1);
  }

  const logger = createLogger({ level: config.LOG_LEVEL, name: 'podplane-dev' });
  installRuntime(logger);
  const record: RunFile = {
    pid: process.pid,
    pidStartTime: processStartTime(process.pid),
    launcherPid: process.send ? process.ppid : undefined,
    state: 'starting',
    startedAt: new Date().toISOString(),
    dataDir,
  };
  writeRunFile(record);
  process.send?.({ podplaneDataDir: dataDir } satisfies StackMessage);

  const stack: { name: string; stop: () => Promise<unknown> }[] = [];
  let stopping = false;
  const stopAll = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'stopping');
    // A stop that hangs must not hold the ports forever: past this, exit (the launcher then
    // stops whatever is left in the process group).
    const limitMs = 2 * config.SHUTDOWN_TIMEOUT_MS + 60_000;
    setTimeout(() => {
      process.stderr.write(`podplane: stopping took longer than ${limitMs / 1000} s; exiting\n`);
      process.exit(1);
    }, limitMs).unref();
    for (const part of stack.reverse()) {
      try {
        await part.stop();
        logger.info(`${part.name} stopped`);
      } catch (err) {
        logger.error({ err }, `${part.name} did not stop cleanly`);
      }
    }
    try {
      removeRunFile(dataDir, process.pid);
    } catch (err) {
      logger.warn({ err }, 'could not remove run.json');
    }
    process.exit(code);
  };
  // The same stop can be asked for more than once (run without the launcher, this process gets
  // both npm's forward and the terminal's signal): listeners stay installed so that a repeat is
  // logged rather than node's default exit, which would leave PostgreSQL and Temporal running.
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) logger.info({ signal }, 'already stopping');
    else void stopAll(signal, 0);
  };
  // SIGHUP is a closed terminal: without it, node dies at once and leaves PostgreSQL and Temporal running.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  // The launcher is gone (killed with SIGKILL): nobody would stop this stack.
  process.on('disconnect', () => void stopAll('the npm start launcher went away', 1));

  /** One line on stderr, then everything stops with exit code 1: never a half-stack. */
  const stopWith = (line: string) => {
    if (stopping) return;
    process.stderr.write(`podplane: ${line}\n`);
    void stopAll(line, 1);
  };
  const fail = (line: string) => {
    if (!stopping) logger.error(line);
    stopWith(line);
  };
  // The supervisor has logged the give-up with its details already.
  const supervision = {
    policy: DEV_RESTART_POLICY,
    log: logger,
    onGiveUp: stopWith,
    isStopping: () => stopping,
  };

  try {
    const db = await databaseFor(config, logger);
    if (db.embedded?.owned) {
      const postgres = await supervise({
        ...supervision,
        name: 'PostgreSQL',
        initial: spawnedChild('PostgreSQL', db.embedded),
        start: async () => spawnedChild('PostgreSQL', (await databaseFor(config, logger)).embedded),
      });
      stack.push({ name: 'PostgreSQL', stop: () => postgres.stop() });
    }
    const temporalInfra = await temporalFor(config, logger);
    const dev = temporalInfra.dev;
    if (dev?.exited) {
      const temporalServer = await supervise({
        ...supervision,
        name: 'Temporal dev server',
        initial: spawnedChild('Temporal dev server', dev),
        start: async () => spawnedChild('Temporal dev server', (await temporalFor(config, logger)).dev),
      });
      stack.push({ name: 'Temporal dev server', stop: () => temporalServer.stop() });
    } else if (dev) {
      logger.warn(
        'the Temporal dev server runs from the SDK download, whose process cannot be watched: if it dies, restart npm start',
      );
      stack.push({ name: 'Temporal dev server', stop: () => dev.stop() });
    }

    // As the schema's owner; the pool below connects as the application's role, which owns nothing.
    const applied = await migrateAsOwner(db.ownerUrl);
    logger.info({ applied }, applied.length ? 'migrations applied' : 'schema up to date');
    const orm = await initOrm({ databaseUrl: db.url, poolMax: config.DATABASE_POOL_MAX });
    stack.push({ name: 'database pool', stop: () => orm.close() });
    const ownerWarning = await ownerConnectionWarning(orm);
    if (ownerWarning) logger.warn(ownerWarning);

    const temporal = await connectTemporal(temporalInfra.address, config.TEMPORAL_NAMESPACE);
    stack.push({ name: 'Temporal client', stop: () => temporal.close() });
    logger.info({ schedules: await syncSchedules(temporal.client) }, 'schedules synced');

    const providers = createProviders(config, orm);
    if (config.HYPERVISOR === 'simulator' && config.SIMULATOR_SEED_NODES) {
      const seeded = await seedSimulatedNodes(systemEm(orm));
      if (seeded > 0) logger.info({ seeded }, 'registered simulated hypervisor nodes');
    }
    const faultRules = await loadFaultsFromConfig(config, providers.faults);
    if (faultRules > 0) logger.warn({ faultRules }, 'simulator fault rules loaded from SIMULATOR_FAULTS');

    const workers = await startWorkers({
      orm,
      logger,
      providers,
      address: temporalInfra.address,
      namespace: config.TEMPORAL_NAMESPACE,
      shutdownGraceTimeMs: config.SHUTDOWN_TIMEOUT_MS,
      backupRetentionDays: config.BACKUP_RETENTION_DAYS,
      config,
    });
    stack.push({ name: 'worker', stop: () => workers.shutdown() });
    // The worker runs in this process and is not restarted: if it stops by itself, so does the rest.
    workers.done.then(
      () => fail('the worker stopped unexpectedly; stopping Podplane'),
      (err: unknown) => fail(`the worker failed: ${describeError(err)}; stopping Podplane`),
    );
    // Pods whose workflow a crash never started, jobs whose signal was lost: delivered now and periodically.
    const sweeper = startSweeper({ orm, temporal: temporal.client, config, logger });
    stack.push({ name: 'sweeper', stop: () => sweeper.stop() });
    // The notification outbox: sent by SMTP when SMTP_URL is set, otherwise kept and logged.
    const mail = startMailDelivery({ orm, mailer: createMailer(config), config, logger });
    stack.push({ name: 'mail delivery', stop: () => mail.stop() });

    const app = createApp({
      config,
      orm,
      temporal: temporal.client,
      logger,
      version: VERSION,
      commit: COMMIT,
      faults: providers.faults,
    });
    const api = await serve(app, config, logger);
    stack.push({ name: 'API', stop: () => api.drain(config.SHUTDOWN_TIMEOUT_MS) });
    writeRunFile({
      ...record,
      state: 'running',
      apiUrl: api.url,
      // the embedded server's local development credentials (its superuser, which migrations need),
      // as the CLI has always used them
      databaseUrl: db.embedded ? db.ownerUrl : withoutPassword(db.url),
      databaseEmbedded: db.embedded !== undefined,
      temporalAddress: temporalInfra.address,
      temporalNamespace: config.TEMPORAL_NAMESPACE,
      temporalUiUrl: temporalInfra.dev?.uiUrl,
    });

    const lines = [
      '',
      'Podplane is running.',
      `  API          ${api.url}/api/v1`,
      `  API docs     ${api.url}/docs`,
      `  Health       ${api.url}/health/ready`,
      `  Temporal UI  ${temporalInfra.dev?.uiUrl ?? `(external Temporal at ${temporalInfra.address})`}`,
      `  Database     ${db.embedded ? `embedded PostgreSQL on 127.0.0.1:${config.EMBEDDED_POSTGRES_PORT}` : 'DATABASE_URL'}`,
      'Create a platform admin token with:  npm run cli -- admin:create --name me',
      'Press Ctrl-C to stop everything.',
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } catch (err) {
    logger.error({ err }, 'start-up failed');
    process.stderr.write(`podplane failed to start: ${describeError(err)}\n`);
    await stopAll('start-up failed', 1);
  }
}

void main();
