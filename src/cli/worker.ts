/** `npm run start:worker`: every task queue, schedules synced at boot; finishes in-flight activities on SIGTERM. */
import { loadConfigOrExit } from '../config';
import { initOrm, ownerConnectionWarning } from '../db/orm';
import { createLogger } from '../logger';
import { createProviders, loadFaultsFromConfig } from '../providers';
import { syncSchedules } from '../schedules';
import { connectTemporal } from '../temporal-client';
import { startSweeper } from '../sweeper';
import { startMailDelivery } from '../mail-delivery';
import { createMailer } from '../providers/mail';
import { installRuntime, startWorkers } from '../worker';
import { describeError } from './errors';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'podplane-worker' });
  if (!config.DATABASE_URL || !config.TEMPORAL_ADDRESS) {
    process.stderr.write(
      'invalid configuration: DATABASE_URL and TEMPORAL_ADDRESS are required for start:worker (use npm start for the embedded stack)\n',
    );
    process.exit(1);
  }
  // We own shutdown: stop polling, let activities finish, then close the database.
  installRuntime(logger);
  const orm = await initOrm({ databaseUrl: config.DATABASE_URL, poolMax: config.DATABASE_POOL_MAX });
  // Production keeps the audit trail's guarantee: the application's role must own nothing.
  const ownerWarning = await ownerConnectionWarning(orm);
  if (ownerWarning && config.NODE_ENV === 'production') {
    process.stderr.write(`invalid configuration for start:worker: ${ownerWarning}\n`);
    process.exit(1);
  }
  if (ownerWarning) logger.warn(ownerWarning);
  const temporal = await connectTemporal(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  const synced = await syncSchedules(temporal.client);
  logger.info({ schedules: synced }, 'schedules synced');
  const providers = createProviders(config, orm);
  await loadFaultsFromConfig(config, providers.faults);
  const workers = await startWorkers({
    orm,
    logger,
    providers,
    address: config.TEMPORAL_ADDRESS,
    namespace: config.TEMPORAL_NAMESPACE,
    shutdownGraceTimeMs: config.SHUTDOWN_TIMEOUT_MS,
    backupRetentionDays: config.BACKUP_RETENTION_DAYS,
    config,
  });
  // Every worker start (and then every SWEEP_INTERVAL_MS) re-delivers work a crash stranded.
  const sweeper = startSweeper({ orm, temporal: temporal.client, config, logger });
  // The outbox is delivered from here (SMTP_URL), or kept and logged without it.
  const mail = startMailDelivery({ orm, mailer: createMailer(config), config, logger });
  const stop = async (signal: string) => {
    logger.info({ signal }, 'worker shutting down; in-flight activities finish first');
    await sweeper.stop();
    await mail.stop();
    await workers.shutdown();
    await temporal.close();
    await orm.close();
    logger.info('worker stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  await workers.done;
}

main().catch((err: unknown) => {
  process.stderr.write(`podplane worker failed: ${describeError(err)}\n`);
  process.exit(1);
});
