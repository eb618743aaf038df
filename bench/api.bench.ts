/**
 * API read and write against baselines measured in the same run (DESIGN.md §12):
 * - read: GET /api/v1/cloudpods (page of 50, tenant with 10 000 pods) at 50 connections vs a bare
 *   Express handler returning the same JSON;
 * - write: POST /api/v1/cloudpods (validate, quota check, insert, start workflow) at 20 connections
 *   vs a handler that only starts the same workflow with the same Temporal client.
 * Both record the peak RSS of the API process under load.
 */
import type { Server } from 'node:http';
import express from 'express';
import request from 'supertest';
import { TenantQuota } from '../src/db/entities';
import { systemEm } from '../src/db/orm';
import { podPolicy } from '../src/services/cloudpods';
import { SEARCH_ATTRIBUTES, TASK_QUEUES } from '../src/workflows/shared';
import { startTestStack, type TestStack } from '../test/helpers/app';
import { podTenant, registerNode, type PodTenant } from '../test/helpers/pods';
import { load, postLoad, report } from './load';

/** The API process's resident memory, sampled every 100 ms while load runs; `stop` gives the peak in MB. */
function sampleRss(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.round(peak / 1024 / 1024);
    },
  };
}

let stack: TestStack;
let t: PodTenant;
const servers: Server[] = [];

function listen(app: express.Express): Promise<string> {
  return new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      resolve(`http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`);
    });
    servers.push(s);
  });
}

beforeAll(async () => {
  stack = await startTestStack({ LOG_LEVEL: 'warn', DATABASE_POOL_MAX: '20' });
  for (let i = 0; i < 4; i++) await registerNode(stack, `bench-node-${i}`, 4096);
  t = await podTenant(stack, 'bench-co');
  await systemEm(stack.db.orm).nativeUpdate(
    TenantQuota,
    { tenant: t.id },
    {
      maxPods: 1_000_000,
      maxVcpu: 1_000_000,
      maxMemoryMb: 1_000_000_000,
      maxDiskGb: 1_000_000_000,
    },
  );
});
afterAll(async () => {
  for (const s of servers) s.close();
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
  const url = await listen(stack.app);
  const headers = { authorization: t.auth };
  const sample = await request(stack.app).get('/api/v1/cloudpods?limit=50').set('Authorization', t.auth);
  expect(sample.body.data).toHaveLength(50);
  const bare = express();
  const body = sample.body as unknown;
  bare.get('/', (_req, res) => {
    res.json(body);
  });
  const bareUrl = await listen(bare);

  await load({ url: `${url}/api/v1/cloudpods?limit=50`, connections: 50, seconds: 2, headers });
  const rss = sampleRss();
  const api = await load({ url: `${url}/api/v1/cloudpods?limit=50`, connections: 50, seconds: 10, headers });
  const rssMb = rss.stop();
  await load({ url: bareUrl, connections: 50, seconds: 2 });
  const baseline = await load({ url: bareUrl, connections: 50, seconds: 10 });
  expect(api.non2xx + api.errors).toBe(0);
  await report('api-read', {
    api,
    baseline,
    throughput_ratio: Math.round((api.requestsPerSec / baseline.requestsPerSec) * 1000) / 1000,
    rss_mb_max: rssMb,
    budget: { throughput_ratio_min: 0.3, p99_ms_max: 25, rss_mb_max: 300 },
    response_bytes: Buffer.byteLength(JSON.stringify(body)),
  });
});

it('POST /api/v1/cloudpods at 20 connections vs bare Express', async () => {
  // The API alone is measured: in production the worker is its own process, so the in-process
  // test worker stops and the started workflows wait in Temporal.
  await stack.stopWorkers();
  const url = await listen(stack.app);
  // The baseline only starts the same workflow with the same client and the same start options.
  const bare = express();
  let started = 0;
  bare.post('/', express.json(), async (_req, res) => {
    const n = ++started;
    const podId = `pod_baseline${String(n).padStart(14, '0')}`;
    await stack.temporal.workflow.start('cloudPod', {
      workflowId: `cloudpod-${podId}`,
      taskQueue: TASK_QUEUES.provisioning,
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.TenantId, value: t.id },
        { key: SEARCH_ATTRIBUTES.CloudPodId, value: podId },
        { key: SEARCH_ATTRIBUTES.CustomerId, value: t.customerId },
        { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'PENDING' },
      ],
      staticSummary: `CloudPod baseline-${n} (${podId})`,
      args: [
        {
          podId,
          tenantId: t.id,
          slug: `baseline-${n}`,
          resources: { vcpu: 1, memoryMb: 1024, diskGb: 20 },
          provisionJobId: `job_baseline${n}`,
          policy: podPolicy(stack.config),
        },
      ],
    });
    res.status(202).json({ ok: true });
  });
  const bareUrl = await listen(bare);
  const headers = { authorization: t.auth, 'content-type': 'application/json' };
  // Every request makes a new pod: "{n}" becomes a per-request counter.
  const template = JSON.stringify({ customer_id: t.customerId, product_id: t.starter, slug: 'w-{n}' });
  const rss = sampleRss();
  const api = await postLoad({
    url: `${url}/api/v1/cloudpods`,
    connections: 20,
    seconds: 10,
    headers,
    template,
  });
  const rssMb = rss.stop();
  const baseline = await postLoad({ url: bareUrl, connections: 20, seconds: 10, headers, template });
  const [created] = await stack.db.query<{ n: number }>(
    "select count(*)::int as n from cloud_pods where slug like 'w-%'",
  );
  await report('api-write', {
    api,
    baseline,
    pods_created: created?.n,
    throughput_ratio: Math.round((api.requestsPerSec / baseline.requestsPerSec) * 1000) / 1000,
    rss_mb_max: rssMb,
    budget: { throughput_ratio_min: 0.5, p99_ms_max: 60, rss_mb_max: 300 },
  });
  expect(api.errors).toBe(0);
  expect(api.non2xx).toBe(0);
});
