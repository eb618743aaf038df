// The billing run's baselines, as their own process (built like the production worker, from
// dist/): a worker of the billing task queue whose billing run is the real one (real page query
// and child starts through the real `startDueRenewals`) and whose renewals do nothing.
// - same-shape: the production bundle; `renewSubscription` runs its real steps, each activity a
//   no-op answering as a paid renewal would.
// - empty: bench/billing-noop.workflows.ts, where `renewSubscription` returns at once.
// argv: mode, Temporal address, namespace, database URL. Prints {"ready":true} once polling.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { createRenewalActivities } from '../dist/src/activities/renewals.js';
import { parseConfig } from '../dist/src/config.js';
import { initOrm } from '../dist/src/db/orm.js';
import { createLogger } from '../dist/src/logger.js';
import { buildWorkflowBundle, installRuntime } from '../dist/src/worker.js';

const [mode, address, namespace, databaseUrl] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const logger = createLogger({ level: 'warn', name: `bench-${mode}-worker` });
installRuntime(logger);
const config = parseConfig({ NODE_ENV: 'development', DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' });
const orm = await initOrm({ databaseUrl, poolMax: config.DATABASE_POOL_MAX });
const { startDueRenewals } = createRenewalActivities({ orm, config, logger });
const period = { start: new Date().toISOString(), end: new Date().toISOString() };
const noop = {
  planRenewal: async () => ({ action: 'invoice', status: 'ACTIVE', trial: false, period }),
  issueRenewalInvoice: async () => ({ invoiceId: 'inv_noop', number: 'NOOP', amountDue: 1000, charge: true }),
  chargeInvoice: async () => ({ status: 'SUCCEEDED' }),
  settleRenewal: async () => ({ status: 'ACTIVE', advanced: true, dunning: false, failedAt: null }),
};
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };
const workflowBundle =
  mode === 'empty'
    ? await bundleWorkflowCode({ workflowsPath: path.join(here, 'billing-noop.workflows.ts'), logger: quiet })
    : await buildWorkflowBundle();
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  namespace,
  taskQueue: 'billing',
  workflowBundle,
  activities: mode === 'empty' ? { startDueRenewals } : { startDueRenewals, ...noop },
  shutdownGraceTime: 5_000,
});
const running = worker.run();
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.once('SIGTERM', () => worker.shutdown());
await running;
await connection.close();
await orm.close();
