/**
 * A full stack for e2e tests: own database, own namespace, a real in-process worker running the
 * production workflows and activities, and the app built by the production `createApp`.
 */
import { Writable } from 'node:stream';
import type { Express } from 'express';
import type { Client } from '@temporalio/client';
import { createApp } from '../../src/api/app';
import { parseConfig, type Config } from '../../src/config';
import { systemEm } from '../../src/db/orm';
import { createLogger, type Logger } from '../../src/logger';
import { issueToken } from '../../src/services/api-tokens';
import { createProviders, type Providers } from '../../src/providers';
import { startWorkers, type RunningWorkers } from '../../src/worker';
import { createTestDatabase, type TestDatabase } from './db';
import { connectClient, createNamespace, temporalAddress, workflowBundle } from './temporal';

export interface TestStack {
  app: Express;
  db: TestDatabase;
  temporal: Client;
  namespace: string;
  config: Config;
  logger: Logger;
  /** every log line the stack wrote, parsed */
  logLines: Record<string, unknown>[];
  adminToken: string;
  workers: RunningWorkers;
  providers: Providers;
  /** stop the in-process worker (a "kill" when graceMs is tiny) */
  stopWorkers(): Promise<void>;
  /** start a fresh in-process worker (after stopWorkers) */
  restartWorkers(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestStack(env: Record<string, string> = {}): Promise<TestStack> {
  const [db, namespace] = await Promise.all([createTestDatabase(), createNamespace('e2e')]);
  // Saga timings in milliseconds, simulators without latency; a test may override any of it.
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    PROVISION_RETRY_INITIAL_MS: '20',
    PROVISION_HEARTBEAT_TIMEOUT_MS: '5000',
    SIMULATOR_LATENCY_MS: '0',
    SIMULATOR_BOOT_MS: '0',
    // Tests send many requests from one address; the rate-limit tests set the limits they test.
    RATE_LIMIT_AUTH_PER_15_MIN: '1000000',
    RATE_LIMIT_PASSWORD_RESET_PER_HOUR: '1000000',
    RATE_LIMIT_API_PER_MIN: '1000000',
    RATE_LIMIT_ADMIN_PER_MIN: '1000000',
    RATE_LIMIT_WEBHOOK_PER_MIN: '1000000',
    ...env,
  });
  const logLines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ level: config.LOG_LEVEL }, sink);
  const { client, close: closeClient } = await connectClient(namespace);
  const providers = createProviders(config, db.orm);
  const bundle = await workflowBundle();
  const launch = () =>
    startWorkers({
      orm: db.orm,
      logger,
      providers,
      address: temporalAddress(),
      namespace,
      workflowBundle: bundle,
      shutdownGraceTimeMs: Number(env.TEST_WORKER_GRACE_MS ?? 5000),
      config,
    });
  let workers = await launch();
  const app = createApp({
    config,
    orm: db.orm,
    temporal: client,
    logger,
    version: 'test',
    commit: 'test',
    faults: providers.faults,
  });
  const { secret: adminToken } = await issueToken(systemEm(db.orm), {
    tenantId: null,
    name: 'test admin',
    scopes: ['read', 'write'],
  });
  return {
    app,
    db,
    temporal: client,
    namespace,
    config,
    logger,
    logLines,
    adminToken,
    get workers() {
      return workers;
    },
    providers,
    stopWorkers: () => workers.shutdown(),
    restartWorkers: async () => {
      workers = await launch();
    },
    close: async () => {
      await workers.shutdown();
      await closeClient();
      await db.close();
    },
  };
}
