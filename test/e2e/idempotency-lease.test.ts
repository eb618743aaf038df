/**
 * Idempotency-Key leases and what is kept: a claim left behind by a crashed request is taken over
 * once its lease lapses (not after 24 h); a claim still within its lease answers 409; transient
 * answers (409, 503) are not stored, so the same key works once the cause is gone; expired keys
 * are purged by the `maintenanceCleanup` workflow.
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { canonicalJson } from '../../src/api/middleware/idempotency';
import { createMaintenanceActivities } from '../../src/activities/maintenance';
import { newId } from '../../src/domain/ids';
import { TASK_QUEUES } from '../../src/workflows/shared';
import type { maintenanceCleanup } from '../../src/workflows/maintenance';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { connectClient } from '../helpers/temporal';

let stack: TestStack;
let t: PodTenant;
/** what the middleware keys a tenant's `POST /api/v1/cloudpods` on (learnt from a real request) */
let keyScope: { scope: string; principal_id: string; path: string };

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const podBody = (slug: string) => ({ customer_id: t.customerId, product_id: t.starter, slug });
const createPod = (slug: string, key: string) =>
  request(stack.app)
    .post('/api/v1/cloudpods')
    .set('Authorization', t.auth)
    .set('Idempotency-Key', key)
    .send(podBody(slug));
const keyRows = (key: string) =>
  stack.db.query<{ id: string; state: string; response_status: number | null; locked_until: Date | null }>(
    'select id, state, response_status, locked_until from idempotency_keys where key_hash = $1',
    [sha256(key)],
  );
const podsWithSlug = (slug: string) =>
  stack.db.query('select id from cloud_pods where tenant_id = $1 and slug = $2', [t.id, slug]);

/** The row a request leaves when its process dies right after the claim. */
async function leaveClaim(key: string, body: unknown, lockedUntilSql: string, createdAtSql = 'now()') {
  await stack.db.query(
    `insert into idempotency_keys (id, scope, principal_id, method, path, key_hash, fingerprint, state, expires_at, locked_until, created_at)
     values ($1, $2, $3, 'POST', $4, $5, $6, 'IN_PROGRESS', now() + interval '24 hours', ${lockedUntilSql}, ${createdAtSql})`,
    [
      newId('idempotency'),
      keyScope.scope,
      keyScope.principal_id,
      keyScope.path,
      sha256(key),
      sha256(canonicalJson(body)),
    ],
  );
}

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'idem-hv-1');
  t = await podTenant(stack, 'idem-lease', { free: true });
  const probe = await createPod('probe-1', 'probe-key');
  expect(probe.status).toBe(202);
  const [row] = await stack.db.query<typeof keyScope>(
    'select scope, principal_id, path from idempotency_keys where key_hash = $1',
    [sha256('probe-key')],
  );
  expect(row).toBeDefined();
  keyScope = row!;
});
afterAll(async () => {
  await stack?.close();
});

describe('a claim left IN_PROGRESS by a crashed request', () => {
  it('is taken over once its lease has lapsed: the retry runs and its answer is stored and replayed', async () => {
    await leaveClaim(
      'crashed-1',
      podBody('lease-1'),
      "now() - interval '1 second'",
      "now() - interval '2 minutes'",
    );
    const res = await createPod('lease-1', 'crashed-1');
    expect(res.status).toBe(202);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    expect(await podsWithSlug('lease-1')).toHaveLength(1);
    const [row] = await keyRows('crashed-1');
    expect(row).toMatchObject({ state: 'COMPLETED', response_status: 202 });

    const replay = await createPod('lease-1', 'crashed-1');
    expect(replay.status).toBe(202);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body.pod.id).toBe(res.body.pod.id);
    expect(await podsWithSlug('lease-1')).toHaveLength(1);
  });

  it('is taken over when it predates leases (no locked_until) and is older than a lease', async () => {
    await leaveClaim('crashed-legacy', podBody('lease-legacy'), 'null', "now() - interval '10 minutes'");
    const res = await createPod('lease-legacy', 'crashed-legacy');
    expect(res.status).toBe(202);
    expect(await podsWithSlug('lease-legacy')).toHaveLength(1);
  });

  it('is taken over by exactly one of two simultaneous retries', async () => {
    await leaveClaim('crashed-race', podBody('lease-race'), "now() - interval '5 seconds'");
    const [r1, r2] = await Promise.all([
      createPod('lease-race', 'crashed-race'),
      createPod('lease-race', 'crashed-race'),
    ]);
    const statuses = [r1.status, r2.status].sort();
    // The loser either finds the winner still running (409) or its stored answer (202 replayed).
    expect([
      [202, 409],
      [202, 202],
    ]).toContainEqual(statuses);
    if (statuses[1] === 202)
      expect([r1, r2].some((r) => r.headers['idempotent-replayed'] === 'true')).toBe(true);
    expect(await podsWithSlug('lease-race')).toHaveLength(1);
  });

  it('answers 409 with Retry-After while the lease holds, and changes nothing', async () => {
    await leaveClaim('running-1', podBody('lease-2'), "now() + interval '60 seconds'");
    const [before] = await keyRows('running-1');
    const res = await createPod('lease-2', 'running-1');
    expectProblem(res, 409, 'conflict');
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(await podsWithSlug('lease-2')).toHaveLength(0);
    expect(await keyRows('running-1')).toEqual([before]);
  });

  it('is not taken over by a request with another payload (422)', async () => {
    await leaveClaim('crashed-2', podBody('lease-3'), "now() - interval '1 second'");
    const res = await createPod('lease-3-other', 'crashed-2');
    expectProblem(res, 422, 'unprocessable');
    expect(await podsWithSlug('lease-3-other')).toHaveLength(0);
    expect(await keyRows('crashed-2')).toEqual([expect.objectContaining({ state: 'IN_PROGRESS' })]);
  });
});

describe('transient answers are not stored', () => {
  it('frees the key after a 409, so the same key succeeds once the conflict is gone', async () => {
    const first = await createPod('busy-1', 'busy-1-first');
    expect(first.status).toBe(202);
    const refused = await createPod('busy-1', 'busy-1-second');
    expectProblem(refused, 409, 'conflict');
    expect(await keyRows('busy-1-second')).toEqual([]);

    // The conflict goes away (the slug is free again); the same key now does the work.
    await stack.db.query("update cloud_pods set slug = 'busy-1-renamed' where id = $1", [first.body.pod.id]);
    const accepted = await createPod('busy-1', 'busy-1-second');
    expect(accepted.status).toBe(202);
    expect(accepted.headers['idempotent-replayed']).toBeUndefined();
    expect(accepted.body.pod.id).not.toBe(first.body.pod.id);
    expect(await keyRows('busy-1-second')).toEqual([
      expect.objectContaining({ state: 'COMPLETED', response_status: 202 }),
    ]);
  });

  it('frees the key after a 503 (workflow engine unreachable), so the same key succeeds later', async () => {
    // The same app, but its Temporal connection is closed: every start fails.
    const dead = await connectClient(stack.namespace);
    await dead.close();
    const downApp = createApp({
      config: stack.config,
      orm: stack.db.orm,
      temporal: dead.client,
      logger: stack.logger,
      version: 'test',
      commit: 'test',
      faults: stack.providers.faults,
    });
    const down = await request(downApp)
      .post('/api/v1/cloudpods')
      .set('Authorization', t.auth)
      .set('Idempotency-Key', 'down-1')
      .send(podBody('down-1'));
    expectProblem(down, 503, 'unavailable');
    expect(await keyRows('down-1')).toEqual([]);
    expect(await podsWithSlug('down-1')).toHaveLength(0);

    const res = await createPod('down-1', 'down-1');
    expect(res.status).toBe(202);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    expect(await podsWithSlug('down-1')).toHaveLength(1);
  });
});

describe('expired keys', () => {
  async function insertKey(key: string, expiresSql: string, state = 'COMPLETED') {
    const id = newId('idempotency');
    await stack.db.query(
      `insert into idempotency_keys (id, scope, principal_id, method, path, key_hash, fingerprint, state, response_status,
          expires_at, created_at)
       values ($1, $2, $3, 'POST', $4, $5, $6, $7, 202, ${expiresSql}, now() - interval '25 hours')`,
      [id, keyScope.scope, keyScope.principal_id, keyScope.path, sha256(key), sha256('{}'), state],
    );
    return id;
  }

  it('are purged by the cleanup activity; live keys stay', async () => {
    const old1 = await insertKey('expired-a', "now() - interval '1 hour'");
    const old2 = await insertKey('expired-b', "now() - interval '1 minute'", 'IN_PROGRESS');
    const live = await insertKey('live-a', "now() + interval '1 hour'");
    const purged = await createMaintenanceActivities({
      orm: stack.db.orm,
      tokenRetentionDays: 30,
    }).purgeExpiredIdempotencyKeys();
    expect(purged).toBeGreaterThanOrEqual(2);
    const left = (await stack.db.query<{ id: string }>('select id from idempotency_keys')).map((r) => r.id);
    expect(left).not.toContain(old1);
    expect(left).not.toContain(old2);
    expect(left).toContain(live);
  });

  it('are purged by the maintenance-cleanup workflow the schedule starts', async () => {
    const old = await insertKey('expired-c', "now() - interval '2 hours'");
    const result = await stack.temporal.workflow.execute<typeof maintenanceCleanup>('maintenanceCleanup', {
      workflowId: `maintenance-cleanup-test-${old}`,
      taskQueue: TASK_QUEUES.maintenance,
      args: [],
    });
    expect(result.purgedIdempotencyKeys).toBeGreaterThanOrEqual(1);
    expect(await stack.db.query('select id from idempotency_keys where id = $1', [old])).toHaveLength(0);
  });
});
