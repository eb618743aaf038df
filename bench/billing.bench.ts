/**
 * The billing budgets (DESIGN.md §12, issue 9), each against a baseline measured in the same run.
 * Everything measured runs as its own process built from dist/ (`npm run bench` builds it), as
 * production runs it: code inside jest's module sandbox runs several times slower (zod parsing a
 * batch of 1 000 records takes ~14 ms there, ~3 ms in plain node), which would measure jest.
 * - billing run: 1 000 due subscriptions renewed through the real `billingRun` (pages of 100,
 *   the real page query and child starts) and the real `renewSubscription` (plan, invoice with
 *   usage overage, simulated charge, settle) in the production worker process
 *   (`dist/src/cli/worker.js`), vs the same billing run starting the same `renewSubscription`
 *   whose activities do nothing — the no-op workflow of the same shape: same pages, same starts,
 *   same workflow steps — in a worker process built the same way (bench/noop-billing-worker.mjs),
 *   each in a namespace of its own on the test harness's Temporal. Budget: renewals/s ≥ 0.5 of
 *   the baseline, zero duplicate invoices, zero misses. For context, the same run starting
 *   children that do nothing at all shows what Temporal alone costs per renewal.
 * - usage ingestion: `POST /api/v1/usage` in batches of 1 000 records to the API process
 *   (`dist/src/cli/api.js`) vs a raw multi-row `INSERT` of the same rows into the same table
 *   through pg from a process of its own (bench/raw-usage-insert.mjs), same concurrency,
 *   alternating rounds. Budget: ≥ 0.5 of the raw rate and ≥ 10 000 records/s.
 * Every pass is warmed up first; the worker's and the API's peak RSS are sampled under load.
 * Figures are printed and written to bench/results/*.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { addMonthsClamped, periodAt } from '../src/domain/billing';
import { newId } from '../src/domain/ids';
import { scheduleDefinitions } from '../src/schedules';
import type { billingRun } from '../src/workflows/billing-run';
import { TASK_QUEUES } from '../src/workflows/shared';
import { startTestStack, type TestStack } from '../test/helpers/app';
import { podTenant, type PodTenant } from '../test/helpers/pods';
import { connectClient, createNamespace, temporalAddress } from '../test/helpers/temporal';
import { waitFor } from '../test/helpers/wait';
import { report } from './load';

let stack: TestStack;
let t: PodTenant;
const children: ChildProcess[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  stack = await startTestStack({ LOG_LEVEL: 'warn' });
  // Onboarding runs on the in-process worker; then only the processes under test work.
  t = await podTenant(stack, 'bench-billing');
  await stack.stopWorkers();
});
afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  for (const close of closers.reverse()) await close();
  await stack?.close();
});

const MINUTE = 60_000;
/** Due subscriptions the measured billing run renews (BENCH_RENEWALS; 1 000 by default, the budget's figure). */
const RENEWALS = Number(process.env.BENCH_RENEWALS ?? 1000);
const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Starts `args` with node; its exit before the bench ends fails the bench. */
function launch(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  return child;
}

/** Waits until a worker polls the billing task queue of `namespace` for activities and workflows. */
async function waitForWorker(client: Client, namespace: string): Promise<void> {
  const { TaskQueueType } = temporal.api.enums.v1;
  await waitFor(
    async () => {
      for (const taskQueueType of [
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      ]) {
        const { pollers } = await client.workflowService.describeTaskQueue({
          namespace,
          taskQueue: { name: TASK_QUEUES.billing },
          taskQueueType,
        });
        if (pollers.length === 0) return false;
      }
      return true;
    },
    { what: `a worker polling ${namespace}`, timeoutMs: 120_000, intervalMs: 200 },
  );
}

/** Peak resident memory of `pid` in MB while `fn` runs, sampled every 100 ms from /proc. */
async function withPeakRss<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; rssMb: number }> {
  let peak = 0;
  const read = async () => {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    peak = Math.max(peak, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
  };
  const timer = setInterval(() => void read(), 100);
  try {
    const result = await fn();
    await read();
    return { result, rssMb: Math.round(peak / 1024) };
  } finally {
    clearInterval(timer);
  }
}

const productionEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
  ...process.env,
  NODE_ENV: 'development',
  LOG_LEVEL: 'warn',
  DATABASE_URL: stack.db.appUrl,
  TEMPORAL_ADDRESS: temporalAddress(),
  ...extra,
});

// ---------------------------------------------------------------------------------------------
// Billing run
// ---------------------------------------------------------------------------------------------

/**
 * `count` ACTIVE subscriptions of the bench tenant whose monthly period ended a minute ago, each
 * with its own customer paying by `pm_card_visa`: all due for one renewal.
 */
async function seedDue(count: number, label: string): Promise<string[]> {
  const anchor = addMonthsClamped(new Date(Date.now() - MINUTE), -1);
  const { end } = periodAt(anchor, 'MONTH', 0);
  const customers = Array.from({ length: count }, () => newId('customer'));
  const subscriptions = Array.from({ length: count }, () => newId('subscription'));
  await stack.db.query(
    `insert into customers (id, tenant_id, email, name, default_payment_method, created_at, updated_at)
     select c.id, $1, 'bench-' || $2 || '-' || c.n || '@bench-billing.test', 'Bench ' || c.n, 'pm_card_visa', now(), now()
       from unnest($3::varchar[]) with ordinality as c(id, n)`,
    [t.id, label, customers],
  );
  await stack.db.query(
    `insert into subscriptions (id, tenant_id, customer_id, product_id, status, unit_amount, currency, interval,
        billing_anchor, current_period_start, current_period_end, pod_slug)
     select s.id, $1, c.id, p.id, 'ACTIVE', p.unit_amount, p.currency, p.interval, $4, $4, $5,
            'bench-' || $2 || '-' || s.n
       from unnest($3::varchar[]) with ordinality as s(id, n)
       join unnest($6::varchar[]) with ordinality as c(id, n) on c.n = s.n
       join products p on p.id = $7`,
    [t.id, label, subscriptions, anchor, end, customers, t.starter],
  );
  await stack.db.query('analyze subscriptions');
  await stack.db.query('analyze customers');
  return subscriptions;
}

/** Completed `renewSubscription` executions of a namespace, as its visibility store counts them. */
async function completedRenewals(client: Client): Promise<number> {
  const { count } = await client.workflow.count(
    'WorkflowType = "renewSubscription" AND ExecutionStatus = "Completed"',
  );
  return count;
}

interface PassResult {
  renewals: number;
  seconds: number;
  renewals_per_sec: number;
}

/** One billing run in `client`'s namespace, timed from its start until `expected` more renewals there completed. */
async function billingPass(client: Client, id: string, expected: number): Promise<PassResult> {
  const before = await completedRenewals(client);
  const started = performance.now();
  const run = client.workflow.execute<typeof billingRun>('billingRun', {
    workflowId: id,
    taskQueue: TASK_QUEUES.billing,
    args: [{}],
  });
  await waitFor(async () => (await completedRenewals(client)) - before >= expected, {
    what: `${expected} renewals completed by ${id}`,
    timeoutMs: 900_000,
    intervalMs: 50,
  });
  const seconds = (performance.now() - started) / 1000;
  expect(await run).toMatchObject({ done: true, found: expected, started: expected });
  expect((await completedRenewals(client)) - before).toBe(expected);
  return { renewals: expected, seconds: round3(seconds), renewals_per_sec: round3(expected / seconds) };
}

async function namespaceClient(prefix: string): Promise<{ namespace: string; client: Client }> {
  const namespace = await createNamespace(prefix);
  const { client, close } = await connectClient(namespace);
  closers.push(close);
  return { namespace, client };
}

it(`renews ${RENEWALS} due subscriptions through billingRun vs a no-op renewal of the same shape`, async () => {
  const real = await namespaceClient('bench-real');
  const sameShape = await namespaceClient('bench-noop');
  const empty = await namespaceClient('bench-empty');

  // BENCH_WORKER_NODE_ARGS profiles the production worker the same way.
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const worker = launch(
    [...nodeArgs, path.join(__dirname, '../dist/src/cli/worker.js')],
    productionEnv({ TEMPORAL_NAMESPACE: real.namespace, SIMULATED_PAYMENT_DELAY_MS: '0' }),
  );
  launch(
    [
      path.join(__dirname, 'noop-billing-worker.mjs'),
      'same-shape',
      temporalAddress(),
      sameShape.namespace,
      stack.db.url,
    ],
    process.env,
  );
  launch(
    [
      path.join(__dirname, 'noop-billing-worker.mjs'),
      'empty',
      temporalAddress(),
      empty.namespace,
      stack.db.url,
    ],
    process.env,
  );
  await waitForWorker(real.client, real.namespace);
  await waitForWorker(sameShape.client, sameShape.namespace);
  await waitForWorker(empty.client, empty.namespace);
  // The worker synced its schedules at boot: none may fire into the measurement.
  for (const def of scheduleDefinitions()) await real.client.schedule.getHandle(def.scheduleId).pause();

  // Warm-up: every worker, pool and plan once, on 100 subscriptions (the real pass renews them).
  await seedDue(100, 'warm');
  await billingPass(sameShape.client, 'bench-billing-run-warm', 100);
  await billingPass(empty.client, 'bench-billing-run-warm', 100);
  await billingPass(real.client, 'bench-billing-run-warm', 100);

  const subscriptions = await seedDue(RENEWALS, 'run');
  const baseline = await billingPass(sameShape.client, 'bench-billing-run', RENEWALS);
  const emptyChildren = await billingPass(empty.client, 'bench-billing-run', RENEWALS);
  const { result: measured, rssMb } = await withPeakRss(worker.pid ?? 0, () =>
    billingPass(real.client, 'bench-billing-run', RENEWALS),
  );

  // Zero misses, zero duplicates: each subscription renewed once, one paid invoice, one charge.
  const [renewed] = await stack.db.query<{ n: number }>(
    `select count(*)::int as n from subscriptions where id = any($1) and current_period_end > now()`,
    [subscriptions],
  );
  const invoices = await stack.db.query<{ n: number; paid: number; charges: number }>(
    `select count(distinct i.id)::int as n, count(distinct i.id) filter (where i.status = 'PAID')::int as paid,
            count(p.id) filter (where p.status = 'SUCCEEDED')::int as charges
       from invoices i left join payments p on p.invoice_id = i.id
      where i.subscription_id = any($1) and i.billing_reason = 'SUBSCRIPTION_CYCLE'
      group by i.subscription_id`,
    [subscriptions],
  );
  const duplicates = invoices.filter((r) => r.n !== 1 || r.charges !== 1).length;
  expect(renewed?.n).toBe(RENEWALS);
  expect(invoices).toHaveLength(RENEWALS);
  expect(invoices.every((r) => r.paid === 1)).toBe(true);
  expect(duplicates).toBe(0);
  // A billing run fired again finds nothing due.
  const again = await real.client.workflow.execute<typeof billingRun>('billingRun', {
    workflowId: 'bench-billing-run-again',
    taskQueue: TASK_QUEUES.billing,
    args: [{}],
  });
  expect(again).toMatchObject({ done: true, found: 0 });

  await report('billing-run', {
    renewals: measured,
    baseline_same_shape: baseline,
    throughput_ratio: round3(measured.renewals_per_sec / baseline.renewals_per_sec),
    context_empty_children: {
      ...emptyChildren,
      throughput_ratio: round3(measured.renewals_per_sec / emptyChildren.renewals_per_sec),
    },
    subscriptions_renewed: renewed?.n,
    duplicate_invoices: duplicates,
    missed: RENEWALS - (renewed?.n ?? 0),
    worker_rss_mb_max: rssMb,
    budget: { throughput_ratio_min: 0.5, duplicates: 0, misses: 0, worker_rss_mb_max: 300 },
  });
});

// ---------------------------------------------------------------------------------------------
// Usage ingestion
// ---------------------------------------------------------------------------------------------

const BATCH = 1000;
const CONCURRENCY = 4;
/** Alternating rounds of each side (BENCH_USAGE_ROUNDS; 3 by default), 20 batches each. */
const ROUNDS = Number(process.env.BENCH_USAGE_ROUNDS ?? 3);
const BATCHES_PER_ROUND = 20;
const WARMUP_BATCHES = 8;

type UsageRow = [
  id: string,
  tenantId: string,
  subscriptionId: string,
  metric: string,
  quantity: number,
  occurredAt: string,
  key: string,
];

/** One batch's rows: spread over the subscriptions and the last hour, keys of a realistic length. */
function batchRows(subscriptions: readonly string[], label: string, batch: number): UsageRow[] {
  const now = Date.now();
  return Array.from({ length: BATCH }, (_, i) => [
    newId('usage'),
    t.id,
    subscriptions[i % subscriptions.length]!,
    'bandwidth_gb',
    1 + ((batch * BATCH + i) % 97),
    new Date(now - ((i * 3_600) % 3_600_000)).toISOString(),
    `${label}-${String(batch).padStart(5, '0')}-${String(i).padStart(4, '0')}:pod-traffic-sample`,
  ]);
}

const apiBody = (rows: UsageRow[]) =>
  JSON.stringify({
    records: rows.map(([, , subscriptionId, metric, quantity, occurredAt, key]) => ({
      subscription_id: subscriptionId,
      metric,
      quantity,
      occurred_at: occurredAt,
      idempotency_key: key,
    })),
  });

/** Posts `bodies` to `url`, `CONCURRENCY` in flight; returns the seconds it took. */
async function postBatches(url: string, auth: string, bodies: string[]): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const res = await fetch(url, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': 'application/json' },
          body: bodies[next++],
        });
        const json = (await res.json()) as { results?: { status: string }[] };
        if (res.status !== 200 || json.results?.some((r) => r.status !== 'accepted')) {
          throw new Error(`POST /api/v1/usage answered ${res.status}: ${JSON.stringify(json).slice(0, 300)}`);
        }
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

/** The raw-INSERT baseline in its own process: returns the seconds its measured batches took. */
async function rawBatches(dir: string, round: string, warmup: UsageRow[][], batches: UsageRow[][]) {
  const file = path.join(dir, `${round}.json`);
  await writeFile(file, JSON.stringify({ warmup, batches }));
  const child = spawn(
    process.execPath,
    [path.join(__dirname, 'raw-usage-insert.mjs'), stack.db.url, String(CONCURRENCY), file],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`raw-usage-insert.mjs exited with ${code}`);
  return (JSON.parse(out) as { seconds: number }).seconds;
}

it('ingests usage through POST /api/v1/usage in batches of 1 000 vs a raw multi-row INSERT', async () => {
  const subscriptions = await seedDue(10, 'usage');
  // Not due (a period ending in a month): no billing run renews them.
  await stack.db.query(
    `update subscriptions set current_period_end = now() + interval '1 month' where id = any($1)`,
    [subscriptions],
  );
  const port = 20000 + Math.floor(Math.random() * 20000);
  // The ingestion bench measures capacity: the per-tenant API rate limit would measure the limit.
  // BENCH_API_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/api-profile`, profiles the API under load.
  const nodeArgs = (process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const api = launch(
    [...nodeArgs, path.join(__dirname, '../dist/src/cli/api.js')],
    productionEnv({
      PORT: String(port),
      DATABASE_POOL_MAX: '20',
      TEMPORAL_NAMESPACE: stack.namespace,
      RATE_LIMIT_ENABLED: 'false',
    }),
  );
  const url = `http://127.0.0.1:${port}/api/v1/usage`;
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok, {
    what: 'the API process serving',
    timeoutMs: 30_000,
    intervalMs: 100,
  });
  const dir = await mkdtemp(path.join(tmpdir(), 'podplane-bench-usage-'));
  const prepare = (label: string, count: number) =>
    Array.from({ length: count }, (_, b) => batchRows(subscriptions, label, b));

  // Bodies and parameters are built before the clock starts: only storing them is measured.
  await postBatches(url, t.auth, prepare('warm-api', WARMUP_BATCHES).map(apiBody));

  // Alternating rounds, so the table's growth and any drift of the machine weigh on both alike.
  let apiSeconds = 0;
  let rawSeconds = 0;
  let rssMb = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const bodies = prepare(`api${round}`, BATCHES_PER_ROUND).map(apiBody);
    const measured = await withPeakRss(api.pid ?? 0, () => postBatches(url, t.auth, bodies));
    apiSeconds += measured.result;
    rssMb = Math.max(rssMb, measured.rssMb);
    // Each round's process warms up first: its connections, and pg's encoder under the JIT.
    rawSeconds += await rawBatches(
      dir,
      `raw${round}`,
      prepare(`warm-raw${round}`, WARMUP_BATCHES),
      prepare(`raw${round}`, BATCHES_PER_ROUND),
    );
  }

  const records = ROUNDS * BATCHES_PER_ROUND * BATCH;
  const [stored] = await stack.db.query<{ api: number; raw: number }>(
    `select count(*) filter (where idempotency_key like 'api%')::int as api,
            count(*) filter (where idempotency_key like 'raw%')::int as raw
       from usage_records where tenant_id = $1`,
    [t.id],
  );
  expect(stored).toEqual({ api: records, raw: records });
  const apiRate = records / apiSeconds;
  const rawRate = records / rawSeconds;
  await report('usage-ingestion', {
    api: { records, seconds: round3(apiSeconds), records_per_sec: Math.round(apiRate) },
    baseline_raw_insert: { records, seconds: round3(rawSeconds), records_per_sec: Math.round(rawRate) },
    throughput_ratio: round3(apiRate / rawRate),
    batch_size: BATCH,
    concurrency: CONCURRENCY,
    api_rss_mb_max: rssMb,
    budget: { throughput_ratio_min: 0.5, records_per_sec_min: 10_000, api_rss_mb_max: 300 },
  });
});
