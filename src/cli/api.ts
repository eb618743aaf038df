/** `npm run start:api`: the HTTP API, configured by environment; drains on SIGTERM. */
import { createApp } from '../api/app';
import { loadConfigOrExit } from '../config';
import { initOrm, ownerConnectionWarning } from '../db/orm';
import { createLogger } from '../logger';
import { connectTemporal } from '../temporal-client';
import { describeError } from './errors';
import { COMMIT, VERSION } from './infra';
import { serve } from './serve';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'podplane-api' });
  if (!config.DATABASE_URL || !config.TEMPORAL_ADDRESS) {
    process.stderr.write(
      'invalid configuration: DATABASE_URL and TEMPORAL_ADDRESS are required for start:api (use npm start for the embedded stack)\n',
    );
    process.exit(1);
  }
  const orm = await initOrm({ databaseUrl: config.DATABASE_URL, poolMax: config.DATABASE_POOL_MAX });
  // Production keeps the audit trail's guarantee: the application's role must own nothing.
  const ownerWarning = await ownerConnectionWarning(orm);
  if (ownerWarning && config.NODE_ENV === 'production') {
    process.stderr.write(`invalid configuration for start:api: ${ownerWarning}\n`);
    process.exit(1);
  }
  if (ownerWarning) logger.warn(ownerWarning);
  const temporal = await connectTemporal(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  // Of the providers the API calls only payments (a customer paying an invoice, saving a card),
  // which the route table builds from config; it builds no Proxmox or PowerDNS client, and the
  // simulators' admin routes read the simulators' tables through the ORM.
  const app = createApp({
    config,
    orm,
    temporal: temporal.client,
    logger,
    version: VERSION,
    commit: COMMIT,
  });
  const server = await serve(app, config, logger);
  const stop = async (signal: string) => {
    logger.info({ signal }, 'draining API');
    await server.drain(config.SHUTDOWN_TIMEOUT_MS);
    await temporal.close();
    await orm.close();
    logger.info('API stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`podplane api failed to start: ${describeError(err)}\n`);
  process.exit(1);
});
