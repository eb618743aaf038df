/**
 * API read and write against baselines measured in the same run (docs/architecture.md,
 * "Performance budgets"). The API runs as its own process (`dist/src/cli/api.js`, as `npm run
 * start:api` runs it in production) against the test harness's PostgreSQL and Temporal; each
 * baseline is a process of its own too, and load comes from a third (autocannon, post-load.mjs):
 * - read: GET /api/v1/cloudpods (page of 50, tenant with 10 000 pods) at 50 connections vs a bare
 *   Express handler returning the same JSON;
 * - lists: the other lists (tokens, tenants, nodes, a pod's jobs and backups), 50 items each, at 50
 *   connections, each vs a bare Express handler returning its JSON, in short runs
 *   (BENCH_LIST_SECONDS, 3 by default);
 * - write: POST /api/v1/cloudpods (validate, quota check, insert, start workflow) at 20 connections
 *   vs a handler that only starts the same workflow with a Temporal client.
 * Read and write record the peak RSS of the API process under load.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import request from 'supertest';
import { TenantQuota } from '../src/db/entities';
import { systemEm } from '../src/db/orm';
import { newId } from '../src/domain/ids';
import { podPolicy } from '../src/services/cloudpods';
import { TASK_QUEUES } from '../src/workflows/shared';
import { startTestStack, type TestStack } from '../test/helpers/app';
import { podTenant, registerNode, type PodTenant } from '../test/helpers/pods';
import { temporalAddress } from '../test/helpers/temporal';
import { waitFor } from '../test/helpers/wait';
import { load, postLoad, report, versusBaseline, type Comparison } from './load';

let stack: TestStack;
let t: PodTenant;
let api: { url: string; pid: number; child: ChildProcess };
const children: ChildProcess[] = [];

/** Starts `args` with node and resolves the port it prints as `{"port": …}` on its first line. */
async function startProcess(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
    lines.on('line', (line) => {
      const m = /"port":\s*(\d+)/.exec(line);
      if (m) resolve(Number(m[1]));
    });
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

/** A bare Express process answering `body`, the baseline of a read. */
async function startBare(body: unknown): Promise<{ url: string; child: ChildProcess }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'podplane-bench-'));
  await writeFile(path.join(dir, 'page.json'), JSON.stringify(body));
  return startProcess([path.join(__dirname, 'bare-read.mjs'), path.join(dir, 'page.json')]);
}

/** The API process: the built entry point, configured like production through the environment. */
async function startApi(): Promise<typeof api> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  // BENCH_API_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/api-profile`, profiles the API under load.
  const nodeArgs = (process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.join(__dirname, '../dist/src/cli/api.js')], {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      DATABASE_URL: stack.db.appUrl,
      DATABASE_POOL_MAX: '20',
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_NAMESPACE: stack.namespace,
      // The load comes from one address and one tenant: limited, but far above what it sends.
      RATE_LIMIT_API_PER_MIN: '1000000000',
      RATE_LIMIT_ADMIN_PER_MIN: '1000000000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      const res = await fetch(`${url}/health`).catch(() => undefined);
      return res?.ok ? true : undefined;
    },
    { what: 'the API process serving', timeoutMs: 30_000, intervalMs: 100 },
  );
  return { url, pid: child.pid ?? 0, child };
}

/** Peak resident memory of `pid` in MB while load runs, sampled every 100 ms from /proc. */
function sampleRss(pid: number): { stop(): Promise<number> } {
  let peak = 0;
  const read = async () => {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    peak = Math.max(peak, kb);
  };
  const timer = setInterval(() => void read(), 100);
  return {
    stop: async () => {
      clearInterval(timer);
      await read();
      return Math.round(peak / 1024);
    },
  };
}

beforeAll(async () => {
  stack = await startTestStack({ LOG_LEVEL: 'warn', DATABASE_POOL_MAX: '20' });
  for (let i = 0; i < 4; i++) await registerNode(stack, `bench-node-${i}`, 4096);
  t = await podTenant(stack, 'bench-co', { free: true });
  await systemEm(stack.db.orm).nativeUpdate(
    TenantQuota,
    { tenant: t.id },
    { maxPods: 1_000_000, maxVcpu: 1_000_000, maxMemoryMb: 1_000_000_000, maxDiskGb: 1_000_000_000 },
  );
  // Production runs the worker in a process of its own: the created workflows wait in Temporal.
  await stack.stopWorkers();
  api = await startApi();
});
afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await stack?.close();
});

it('GET /api/v1/cloudpods (10 000 pods, page of 50) at 50 connections vs bare Express', async () => {
  await stack.db.query(
    `insert into cloud_pods (id, tenant_id, customer_id, product_id, slug, hostname, status, vcpu, memory_mb, disk_gb,
        reserved_vcpu, reserved_memory_mb, reserved_disk_gb, workflow_id, created_at, updated_at)
     select 'pod_bench' || lpad(g::text, 17, '0'), $1, $2, $3, 'bench-' || g, 'bench-' || g || '.bench-co.pods.podplane.test',
            'ACTIVE', 1, 1024, 20, 0, 0, 0, 'cloudpod-bench-' || g, now(), now()
       from generate_series(1, 10000) g`,
    [t.id, t.customerId, t.starter],
  );
  await stack.db.query('analyze cloud_pods');
  const headers = { authorization: t.auth };
  const sample = await request(api.url).get('/api/v1/cloudpods?limit=50').set('Authorization', t.auth);
  expect(sample.body.data).toHaveLength(50);
  const bare = await startBare(sample.body);

  await load({ url: `${api.url}/api/v1/cloudpods?limit=50`, connections: 50, seconds: 2, headers });
  const rss = sampleRss(api.pid);
  const measured = await load({
    url: `${api.url}/api/v1/cloudpods?limit=50`,
    connections: 50,
    seconds: 10,
    headers,
  });
  const rssMb = await rss.stop();
  await load({ url: bare.url, connections: 50, seconds: 2 });
  const baseline = await load({ url: bare.url, connections: 50, seconds: 10 });
  expect(measured.non2xx + measured.errors).toBe(0);
  await report('api-read', {
    api: measured,
    baseline,
    throughput_ratio: Math.round((measured.requestsPerSec / baseline.requestsPerSec) * 1000) / 1000,
    api_rss_mb_max: rssMb,
    budget: { throughput_ratio_min: 0.3, p99_ms_max: 25, api_rss_mb_max: 300 },
    response_bytes: Buffer.byteLength(JSON.stringify(sample.body)),
  });
});

/** 50 rows in each list the list bench reads: tokens, tenants, nodes, one pod's jobs and backups. */
async function seedLists(): Promise<{ podId: string }> {
  const podId = newId('pod');
  await stack.db.query(
    `insert into api_tokens (id, tenant_id, name, token_hash, prefix, scopes, last_used_at, created_at)
     select 'tok_' || lpad(g::text, 26, '0'), $1, 'bench ' || g, md5(g::text) || md5('bench' || g), 'pp_bench',
            '{read,write}', now(), now()
       from generate_series(1, 49) g`,
    [t.id],
  );
  await stack.db.query(
    `insert into tenants (id, slug, name, currency, status, owner_email, onboarding_workflow_id, activated_at,
        created_at, updated_at)
     select 'ten_' || lpad(g::text, 26, '0'), 'bench-list-' || g, 'Bench list ' || g, 'EUR', 'ACTIVE',
            'owner@bench-list-' || g || '.test', 'onboard-bench-list-' || g, now(), now(), now()
       from generate_series(1, 60) g`,
  );
  await stack.db.query(
    `insert into core_nodes (id, name, region, capacity_vcpu, capacity_memory_mb, capacity_disk_gb, allocated_vcpu,
        allocated_memory_mb, allocated_disk_gb, created_at)
     select 'nod_' || lpad(g::text, 26, '0'), 'bench-list-node-' || g, 'bench-1', 64, 262144, 4000, g, g * 1024,
            g * 20, now()
       from generate_series(1, 46) g`,
  );
  await stack.db.query(
    `insert into cloud_pods (id, tenant_id, customer_id, product_id, slug, hostname, status, vcpu, memory_mb, disk_gb,
        reserved_vcpu, reserved_memory_mb, reserved_disk_gb, workflow_id, created_at, updated_at)
     values ($4, $1, $2, $3, 'bench-lists', 'bench-lists.bench-co.pods.podplane.test', 'ACTIVE', 1, 1024, 20, 0, 0, 0,
             'cloudpod-bench-lists', now(), now())`,
    [t.id, t.customerId, t.starter, podId],
  );
  await stack.db.query(
    `insert into provisioning_jobs (id, tenant_id, pod_id, type, status, scheduled_for, attempts, input, failure_reason,
        workflow_id, started_at, finished_at, created_at, updated_at)
     select 'job_' || lpad(g::text, 26, '0'), $1, $2, 'BACKUP', 'COMPLETED', now(), 1, '{"backupId": "bak_x"}',
            case when g % 5 = 0 then 'the backup storage was full' end, 'cloudpod-bench-lists',
            now() - g * interval '1 minute', now() - g * interval '1 minute' + interval '5 seconds',
            now() - g * interval '1 minute', now()
       from generate_series(1, 50) g`,
    [t.id, podId],
  );
  await stack.db.query(
    `insert into backups (id, tenant_id, pod_id, kind, status, size_gb, expires_at, created_at)
     select 'bak_' || lpad(g::text, 26, '0'), $1, $2, 'SCHEDULED', 'COMPLETED', 20, now() + interval '7 days',
            now() - g * interval '1 hour'
       from generate_series(1, 50) g`,
    [t.id, podId],
  );
  await stack.db.query('analyze');
  return { podId };
}

it('GET the other lists (50 items each) at 50 connections vs bare Express', async () => {
  const { podId } = await seedLists();
  const admin = `Bearer ${stack.adminToken}`;
  const lists = [
    { path: '/api/v1/tokens', auth: t.auth },
    { path: '/api/v1/tenants?limit=50', auth: admin },
    { path: '/api/v1/nodes', auth: admin },
    { path: `/api/v1/cloudpods/${podId}/jobs`, auth: t.auth },
    { path: `/api/v1/cloudpods/${podId}/backups`, auth: t.auth },
  ];
  const seconds = Number(process.env.BENCH_LIST_SECONDS ?? 3);
  const results: Record<string, Comparison & { response_bytes: number }> = {};
  for (const list of lists) {
    const sample = await request(api.url).get(list.path).set('Authorization', list.auth);
    expect(sample.status).toBe(200);
    expect(sample.body.data).toHaveLength(50);
    const bare = await startBare(sample.body);
    const compared = await versusBaseline({
      url: `${api.url}${list.path}`,
      baselineUrl: bare.url,
      connections: 50,
      seconds,
      warmupSeconds: 1,
      headers: { authorization: list.auth },
    });
    bare.child.kill('SIGTERM');
    expect(compared.api.non2xx + compared.api.errors).toBe(0);
    results[list.path.replace(podId, ':id')] = {
      ...compared,
      response_bytes: Buffer.byteLength(sample.text),
    };
  }
  await report('api-lists', { seconds_per_run: seconds, lists: results });
});

it('POST /api/v1/cloudpods at 20 connections vs a handler that only starts the workflow', async () => {
  const bare = await startProcess([
    path.join(__dirname, 'bare-write.mjs'),
    temporalAddress(),
    stack.namespace,
    JSON.stringify({
      taskQueue: TASK_QUEUES.provisioning,
      tenantId: t.id,
      customerId: t.customerId,
      input: {
        tenantId: t.id,
        resources: { vcpu: 1, memoryMb: 1024, diskGb: 20 },
        policy: podPolicy(stack.config),
      },
    }),
  ]);
  const headers = { authorization: t.auth, 'content-type': 'application/json' };
  // Every request makes a new pod: "{n}" becomes a per-request counter.
  const template = JSON.stringify({ customer_id: t.customerId, product_id: t.starter, slug: 'w-{n}' });
  const rss = sampleRss(api.pid);
  const measured = await postLoad({
    url: `${api.url}/api/v1/cloudpods`,
    connections: 20,
    seconds: 10,
    headers,
    template,
  });
  const rssMb = await rss.stop();
  const baseline = await postLoad({ url: bare.url, connections: 20, seconds: 10, headers, template });
  const [created] = await stack.db.query<{ n: number }>(
    "select count(*)::int as n from cloud_pods where slug like 'w-%'",
  );
  await report('api-write', {
    api: measured,
    baseline,
    pods_created: created?.n,
    throughput_ratio: Math.round((measured.requestsPerSec / baseline.requestsPerSec) * 1000) / 1000,
    api_rss_mb_max: rssMb,
    budget: { throughput_ratio_min: 0.5, p99_ms_max: 60, api_rss_mb_max: 300 },
  });
  expect(measured.errors).toBe(0);
  expect(measured.non2xx).toBe(0);
});
