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
  close(): Promise<void>;
}

export async function startTestStack(env: Record<string, string> = {}): Promise<TestStack> {
  const [db, namespace] = await Promise.all([createTestDatabase(), createNamespace('e2e')]);
  const config = parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'info', ...env });
  const logLines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ level: 'info' }, sink);
  const { client, close: closeClient } = await connectClient(namespace);
  const workers = await startWorkers({
    orm: db.orm,
    logger,
    address: temporalAddress(),
    namespace,
    workflowBundle: await workflowBundle(),
    shutdownGraceTimeMs: 5000,
  });
  const app = createApp({ config, orm: db.orm, temporal: client, logger, version: 'test', commit: 'test' });
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
    workers,
    close: async () => {
      await workers.shutdown();
      await closeClient();
      await db.close();
    },
  };
}
