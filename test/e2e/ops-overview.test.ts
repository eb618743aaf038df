/**
 * GET /api/v1/ops/overview with job and event rows written by SQL (the states the workers leave):
 * dead letters dated and windowed by when they dead-lettered, steps failing and retrying, and
 * unresolved ops events most severe first — next to the fields it always had.
 */
import request from 'supertest';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { insertJob, insertOpsEvent, insertPod, type SqlPod } from '../helpers/sql-rows';

let stack: TestStack;
let t: PodTenant;
const admin = () => `Bearer ${stack.adminToken}`;
const overview = () => request(stack.app).get('/api/v1/ops/overview').set('Authorization', admin());
const pod = (slug: string): Promise<SqlPod> =>
  insertPod(stack.db, { tenantId: t.id, customerId: t.customerId, productId: t.starter, slug });

beforeAll(async () => {
  stack = await startTestStack();
  t = await podTenant(stack, 'ops-overview');
});
afterAll(async () => {
  await stack?.close();
});

describe('dead_letters_24h', () => {
  it('dates a dead letter by dead_lettered_at and windows on it, whatever updated_at says', async () => {
    // Started three days ago, dead-lettered an hour ago; the workers' native updates left updated_at alone.
    const recent = await insertJob(stack.db, {
      tenantId: t.id,
      pod: await pod('dl-recent'),
      status: 'DEAD_LETTER',
      failureReason: 'createVm failed: clone task failed',
      undoFailure: 'destroyVm: VM still running',
      sql: {
        created_at: "now() - interval '3 days'",
        started_at: "now() - interval '3 days'",
        updated_at: "now() - interval '3 days'",
        dead_lettered_at: "now() - interval '1 hour'",
      },
    });
    // Dead-lettered 30 hours ago but touched since: not a dead letter of the last 24 h.
    const old = await insertJob(stack.db, {
      tenantId: t.id,
      pod: await pod('dl-old'),
      status: 'DEAD_LETTER',
      failureReason: 'upsertA failed',
      sql: {
        created_at: "now() - interval '31 hours'",
        updated_at: 'now()',
        dead_lettered_at: "now() - interval '30 hours'",
      },
    });
    const [{ at }] = (await stack.db.query<{ at: string }>(
      `select to_char(dead_lettered_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at
         from provisioning_jobs where id = $1`,
      [recent],
    )) as [{ at: string }];

    const res = await overview();
    expect(res.status).toBe(200);
    const ids = res.body.dead_letters_24h.jobs.map((j: { id: string }) => j.id);
    expect(ids).toContain(recent);
    expect(ids).not.toContain(old);
    expect(res.body.dead_letters_24h.count).toBe(ids.length);
    const item = res.body.dead_letters_24h.jobs.find((j: { id: string }) => j.id === recent);
    expect(item).toMatchObject({
      tenant_id: t.id,
      type: 'PROVISION',
      failure_reason: 'createVm failed: clone task failed',
      undo_failure: 'destroyVm: VM still running',
      at,
    });
    expect(res.body.jobs_by_status.DEAD_LETTER).toBeGreaterThanOrEqual(2);
  });
});

describe('retrying', () => {
  it('lists RUNNING jobs whose current step fails and retries, with the step, attempt and last error', async () => {
    const failing = await insertJob(stack.db, {
      tenantId: t.id,
      pod: await pod('rt-failing'),
      status: 'RUNNING',
      currentStep: 'createVm',
      stepAttempt: 3,
      lastError: 'proxmox: clone task failed (500)',
      sql: { last_error_at: "now() - interval '2 minutes'" },
    });
    const firstAttemptFailed = await insertJob(stack.db, {
      tenantId: t.id,
      pod: await pod('rt-first'),
      status: 'RUNNING',
      type: 'CHANGE_PLAN',
      currentStep: 'resizeVm',
      stepAttempt: 1,
      lastError: 'timeout',
      sql: { last_error_at: 'now()' },
    });
    const healthy = await insertJob(stack.db, {
      tenantId: t.id,
      pod: await pod('rt-healthy'),
      status: 'RUNNING',
      currentStep: 'waitRunning',
      stepAttempt: 1,
    });
    const doneAfterRetries = await insertJob(stack.db, {
      tenantId: t.id,
      pod: await pod('rt-done'),
      status: 'COMPLETED',
      currentStep: 'upsertA',
      stepAttempt: 2,
      lastError: 'dns timeout',
    });

    const res = await overview();
    expect(res.status).toBe(200);
    const ids = res.body.retrying.map((j: { id: string }) => j.id);
    expect(ids).toEqual(expect.arrayContaining([failing, firstAttemptFailed]));
    expect(ids).not.toContain(healthy);
    expect(ids).not.toContain(doneAfterRetries);
    const item = res.body.retrying.find((j: { id: string }) => j.id === failing);
    expect(item).toEqual({
      id: failing,
      pod_id: expect.any(String),
      tenant_id: t.id,
      type: 'PROVISION',
      current_step: 'createVm',
      step_attempt: 3,
      last_error: 'proxmox: clone task failed (500)',
      last_error_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      started_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });
});

describe('ops_events', () => {
  it('lists unresolved events of the last 7 days, CRITICAL and HIGH first', async () => {
    const p = await pod('ev-pod');
    const low = await insertOpsEvent(stack.db, {
      severity: 'LOW',
      kind: 'note',
      message: 'low',
      createdAt: 'now()',
    });
    const high = await insertOpsEvent(stack.db, {
      severity: 'HIGH',
      kind: 'dns_drift',
      message: 'record missing',
      createdAt: "now() - interval '2 hours'",
    });
    const critical = await insertOpsEvent(stack.db, {
      severity: 'CRITICAL',
      kind: 'undo_failed',
      message: 'destroyVm undo failed; VM left running',
      tenantId: t.id,
      podId: p.id,
      jobId: 'job_00000000000000000000000000',
      createdAt: "now() - interval '3 hours'",
    });
    const medium = await insertOpsEvent(stack.db, {
      severity: 'MEDIUM',
      kind: 'note',
      message: 'medium',
      createdAt: "now() - interval '1 minute'",
    });
    const resolved = await insertOpsEvent(stack.db, {
      severity: 'CRITICAL',
      kind: 'undo_failed',
      message: 'cleaned up by hand',
      resolved: true,
    });
    const tooOld = await insertOpsEvent(stack.db, {
      severity: 'CRITICAL',
      kind: 'undo_failed',
      message: 'last week',
      createdAt: "now() - interval '8 days'",
    });

    const res = await overview();
    expect(res.status).toBe(200);
    expect(res.body.ops_events.map((e: { id: string }) => e.id)).toEqual([critical, high, medium, low]);
    expect(res.body.ops_events).not.toContainEqual(expect.objectContaining({ id: resolved }));
    expect(res.body.ops_events).not.toContainEqual(expect.objectContaining({ id: tooOld }));
    expect(res.body.ops_events[0]).toEqual({
      id: critical,
      severity: 'CRITICAL',
      kind: 'undo_failed',
      tenant_id: t.id,
      pod_id: p.id,
      job_id: 'job_00000000000000000000000000',
      message: 'destroyVm undo failed; VM left running',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });
});

describe('the rest of the overview', () => {
  it('keeps jobs by status and type, jobs running over 15 minutes and the oldest queued job', async () => {
    const stuck = await insertJob(stack.db, {
      tenantId: t.id,
      pod: await pod('stuck-1'),
      status: 'RUNNING',
      type: 'BACKUP',
      sql: { started_at: "now() - interval '20 minutes'", created_at: "now() - interval '20 minutes'" },
    });
    const queued = await insertJob(stack.db, {
      tenantId: t.id,
      pod: await pod('queued-1'),
      status: 'QUEUED',
      sql: { started_at: 'null', created_at: "now() - interval '5 minutes'" },
    });
    const res = await overview();
    expect(res.status).toBe(200);
    expect(res.body.running_over_15_min).toContainEqual(
      expect.objectContaining({ id: stuck, type: 'BACKUP' }),
    );
    expect(res.body.oldest_queued).toMatchObject({ id: queued, type: 'PROVISION' });
    expect(res.body.oldest_queued.age_seconds).toBeGreaterThanOrEqual(299);
    expect(res.body.jobs_by_type.BACKUP.RUNNING).toBeGreaterThanOrEqual(1);
    expect(res.body.jobs_by_status.QUEUED).toBeGreaterThanOrEqual(1);
  });

  it('is for platform admins only', async () => {
    expectProblem(
      await request(stack.app).get('/api/v1/ops/overview').set('Authorization', t.auth),
      403,
      'forbidden',
    );
  });

  it('documents every field in the OpenAPI document', async () => {
    const doc = await request(stack.app).get('/openapi.json');
    const op = doc.body.paths['/api/v1/ops/overview'].get;
    const schema = JSON.stringify(op.responses['200']);
    for (const field of [
      'dead_letters_24h',
      'retrying',
      'ops_events',
      'running_over_15_min',
      'oldest_queued',
    ])
      expect(schema).toContain(field);
  });
});
