/** Shared start-up pieces for the entry points: version info and embedded infrastructure. */
import path from 'node:path';
import type { Config } from '../config';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../db/embedded';
import type { Logger } from '../logger';
import { SEARCH_ATTRIBUTE_NAMES } from '../workflows/shared';
import { startDevServer, type DevServerHandle } from '../../temporal/dev-server';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- package.json is outside rootDir's import graph
const pkg = require('../../../package.json') as { version: string };

export const VERSION: string = pkg.version;
export const COMMIT: string = process.env.GIT_COMMIT ?? 'unknown';

/**
 * The application's connection and the owner's (for migrations): DATABASE_URL and
 * DATABASE_OWNER_URL (DATABASE_URL when unset), or the embedded PostgreSQL under DATA_DIR (reused
 * if already running), whose superuser owns the schema and whose `podplane_app_login` is the application.
 */
export async function databaseFor(
  config: Config,
  logger: Logger,
): Promise<{ url: string; ownerUrl: string; embedded?: EmbeddedPostgresHandle }> {
  if (config.DATABASE_URL)
    return { url: config.DATABASE_URL, ownerUrl: config.DATABASE_OWNER_URL ?? config.DATABASE_URL };
  const embedded = await startEmbeddedPostgres({
    dataDir: path.join(config.DATA_DIR, 'postgres'),
    port: config.EMBEDDED_POSTGRES_PORT,
    database: 'podplane',
    persistent: true,
    log: (line) => logger.info(line),
  });
  return { url: embedded.appUrl, ownerUrl: embedded.url, embedded };
}

/** TEMPORAL_ADDRESS, or a dev server (file database under DATA_DIR, UI on TEMPORAL_UI_PORT). */
export async function temporalFor(
  config: Config,
  logger: Logger,
): Promise<{ address: string; dev?: DevServerHandle }> {
  if (config.TEMPORAL_ADDRESS) return { address: config.TEMPORAL_ADDRESS };
  const dev = await startDevServer({
    searchAttributes: SEARCH_ATTRIBUTE_NAMES,
    dataDir: path.join(config.DATA_DIR, 'temporal'),
    port: config.TEMPORAL_DEV_PORT,
    uiPort: config.TEMPORAL_UI_PORT,
    namespace: config.TEMPORAL_NAMESPACE,
    log: (line) => logger.info(line),
    env: config.TEMPORAL_CLI_PATH
      ? { ...process.env, TEMPORAL_CLI_PATH: config.TEMPORAL_CLI_PATH }
      : process.env,
  });
  return { address: dev.address, dev };
}
