/**
 * Once per `npm test`: a real PostgreSQL (DATABASE_URL — a superuser's —, or embedded) with a
 * template database migrated exactly as production migrates (by the owner) and the application's
 * login role, one real Temporal dev server (TEMPORAL_ADDRESS,
 * or started here), and stripe-mock for the Stripe client. Test files clone the template and
 * create their own Temporal namespace.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { MetadataStorage } from '@mikro-orm/core';
import { Client } from 'pg';
import { ensureAppLogin, startEmbeddedPostgres } from '../../src/db/embedded';
import { initOrm, migrate } from '../../src/db/orm';
import { SEARCH_ATTRIBUTE_NAMES } from '../../src/workflows/shared';
import { freePort, startDevServer } from '../../temporal/dev-server';
import { withDatabase } from './pg-url';
import { startStripeMock } from './stripe-mock';

declare global {
  // shared with global-teardown, which runs in the same process
  var __podplaneTeardown: (() => Promise<void>)[] | undefined;
}

const log = (line: string) => process.stderr.write(`[test-setup] ${line}\n`);

/** Jest runs no global teardown when the setup fails, so what was started by then is stopped here. */
export default async function globalSetup(): Promise<void> {
  const teardown: (() => Promise<void>)[] = [];
  globalThis.__podplaneTeardown = teardown;
  try {
    await prepare(teardown);
  } catch (err) {
    for (const step of teardown.splice(0)) await step().catch(() => undefined);
    throw err;
  }
}

async function prepare(teardown: (() => Promise<void>)[]): Promise<void> {
  // First, so that a missing stripe-mock fails the run before anything else is started. No skip
  // without it: the Stripe client's tests are part of the suite.
  const stripeMock = await startStripeMock({ log });
  teardown.push(() => stripeMock.stop());
  log(`stripe-mock at ${stripeMock.url} (${stripeMock.source})`);

  const runId = `${process.pid}_${randomBytes(3).toString('hex')}`;

  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const pg = await startEmbeddedPostgres({
      dataDir: path.join(os.tmpdir(), `podplane-test-pg-${runId}`),
      port: await freePort(),
      database: 'postgres',
      persistent: false,
      log,
    });
    teardown.push(() => pg.stop());
    adminUrl = pg.url;
    log(`embedded PostgreSQL at ${adminUrl.replace(/:[^:@/]*@/, ':***@')}`);
  }

  // The stacks under test connect as the application's login role, so the suite proves its rights
  // suffice; migrations and the tests' own assertions use the superuser (the schema's owner).
  await ensureAppLogin(adminUrl);

  const template = `podplane_tpl_${runId}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database "${template}"`);
  await admin.end();
  const orm = await initOrm({ databaseUrl: withDatabase(adminUrl, template), poolMax: 2 });
  const applied = await migrate(orm);
  await orm.close();
  // jest copies this process's globals into every test sandbox; MikroORM keeps entity metadata in a
  // global, and metadata built in this realm breaks discovery inside a sandbox run in-band.
  MetadataStorage.clear();
  delete (globalThis as Record<string, unknown>)['mikro-orm-metadata'];
  log(`template database ${template} migrated (${applied.length} migrations)`);
  teardown.unshift(async () => {
    const c = new Client({ connectionString: adminUrl });
    await c.connect();
    const dbs = await c.query<{ datname: string }>('select datname from pg_database where datname like $1', [
      `podplane_%${runId}%`,
    ]);
    for (const { datname } of dbs.rows) await c.query(`drop database if exists "${datname}" with (force)`);
    await c.end();
  });

  let temporalAddress = process.env.TEMPORAL_ADDRESS;
  if (!temporalAddress) {
    const dev = await startDevServer({
      searchAttributes: SEARCH_ATTRIBUTE_NAMES,
      port: await freePort(),
      log,
    });
    teardown.push(() => dev.stop());
    temporalAddress = dev.address;
    log(`Temporal dev server at ${temporalAddress} (${dev.source})`);
  }

  process.env.PODPLANE_TEST_ADMIN_URL = adminUrl;
  process.env.PODPLANE_TEST_TEMPLATE = template;
  process.env.PODPLANE_TEST_RUN_ID = runId;
  process.env.PODPLANE_TEST_TEMPORAL_ADDRESS = temporalAddress;
  process.env.PODPLANE_TEST_STRIPE_MOCK_URL = stripeMock.url;
}
