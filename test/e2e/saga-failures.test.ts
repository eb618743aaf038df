/**
 * The CloudPod saga when things go wrong, through HTTP with real workers and simulator fault rules:
 * steps that take effect and still fail, undos that fail, terminations that dead-letter and are
 * retried, retries refused or resumed after the retry window, deletes of pods still coming up or
 * never started, backups that outlive their VM, suspensions and plan changes rolled back, a step
 * retrying as the API shows it, and a plan change while no worker polls.
 */
import request from 'supertest';
import { SimBackup, SimDnsRecord, SimVm } from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import { sweepStrandedWork } from '../../src/services/cloudpods';
import { podStateQuery } from '../../src/workflows/messages/cloudpods';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/shared';
import { startTestStack, type TestStack } from '../helpers/app';
import { allocatedCapacity, getPod, podTenant, registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { waitFor } from '../helpers/wait';

interface FaultRule {
  operation: string;
  slug_pattern: string;
  times?: number;
  mode?: 'fail' | 'after' | 'delay';
  delay_ms?: number;
  message?: string;
}

interface JobJson {
  id: string;
  type: string;
  status: string;
  attempts: number;
  failure_reason: string | null;
  current_step?: string | null;
  step_attempt?: number | null;
}

const admin = (s: TestStack) => `Bearer ${s.adminToken}`;

/** Adds a simulator fault rule through the operators' route; returns its id. */
async function addFault(s: TestStack, rule: FaultRule): Promise<string> {
  const res = await request(s.app)
    .post('/api/v1/ops/simulator/faults')
    .set('Authorization', admin(s))
    .send(rule);
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function removeFault(s: TestStack, id: string): Promise<void> {
  const res = await request(s.app)
    .delete(`/api/v1/ops/simulator/faults/${id}`)
    .set('Authorization', admin(s));
  expect(res.status).toBe(204);
}

function createPod(s: TestStack, t: PodTenant, slug: string, extra: Record<string, unknown> = {}) {
  return request(s.app)
    .post('/api/v1/cloudpods')
    .set('Authorization', t.auth)
    .send({ customer_id: t.customerId, product_id: t.starter, slug, ...extra });
}

/** Creates a pod and returns its id, its hostname and its PROVISION job id. */
async function newPod(s: TestStack, t: PodTenant, slug: string) {
  const res = await createPod(s, t, slug);
  expect(res.status).toBe(202);
  return {
    id: res.body.pod.id as string,
    hostname: res.body.pod.hostname as string,
    workflowId: res.body.pod.workflow_id as string,
    jobId: res.body.job.id as string,
  };
}

const deletePod = (s: TestStack, t: PodTenant, podId: string) =>
  request(s.app).delete(`/api/v1/cloudpods/${podId}`).set('Authorization', t.auth);

const vmOf = (s: TestStack, podId: string) => systemEm(s.db.orm).findOne(SimVm, { podId });
const dnsOf = (s: TestStack, fqdn: string) => systemEm(s.db.orm).findOne(SimDnsRecord, { fqdn });

const allocated = allocatedCapacity;

async function jobsOf(s: TestStack, t: PodTenant, podId: string): Promise<JobJson[]> {
  const res = await request(s.app).get(`/api/v1/cloudpods/${podId}/jobs`).set('Authorization', t.auth);
  expect(res.status).toBe(200);
  return res.body.data as JobJson[];
}

/** Waits until the job is neither QUEUED nor RUNNING and returns its view. */
async function waitJob(s: TestStack, t: PodTenant, podId: string, jobId: string, timeoutMs = 30000) {
  let last = 'unknown';
  try {
    return await waitFor(
      async () => {
        const job = (await jobsOf(s, t, podId)).find((j) => j.id === jobId);
        last = job?.status ?? 'missing';
        return job && !['QUEUED', 'RUNNING'].includes(job.status) ? job : undefined;
      },
      { what: `job ${jobId} finished`, timeoutMs },
    );
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)} (still ${last})`);
  }
}

async function jobRow(s: TestStack, jobId: string) {
  const [row] = await s.db.query<{
    status: string;
    failure_reason: string | null;
    undo_failure: string | null;
    current_step: string | null;
    step_attempt: number | null;
    last_error: string | null;
    dead_lettered_at: Date | null;
  }>(
    `select status, failure_reason, undo_failure, current_step, step_attempt, last_error, dead_lettered_at
       from provisioning_jobs where id = $1`,
    [jobId],
  );
  if (!row) throw new Error(`no job ${jobId}`);
  return row;
}

async function waitWorkflowCompleted(s: TestStack, workflowId: string) {
  await waitFor(
    async () => (await s.temporal.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED',
    { what: `workflow ${workflowId} COMPLETED`, timeoutMs: 20000 },
  );
}

const retryJob = (s: TestStack, jobId: string) =>
  request(s.app).post(`/api/v1/ops/jobs/${jobId}/retry`).set('Authorization', admin(s));

const STARTER = { vcpu: 1, memoryMb: 1024, diskGb: 20 };
const plus = (a: typeof STARTER, b: typeof STARTER) => ({
  vcpu: a.vcpu + b.vcpu,
  memoryMb: a.memoryMb + b.memoryMb,
  diskGb: a.diskGb + b.diskGb,
});

describe('default saga timings (retries from 20 ms, 3 attempts)', () => {
  let s: TestStack;
  let a: PodTenant;
  let b: PodTenant;

  beforeAll(async () => {
    s = await startTestStack();
    await registerNode(s, 'sf-hv-1');
    [a, b] = await Promise.all([
      podTenant(s, 'saga-a', { free: true }),
      podTenant(s, 'saga-b', { free: true }),
    ]);
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('steps that take effect and then fail', () => {
    it('createVm succeeding at the provider but failing on every attempt leaves no VM and no reservation', async () => {
      await addFault(s, { operation: 'createVm', slug_pattern: 'after-vm-*', times: 3, mode: 'after' });
      const before = await allocated(s);
      const pod = await newPod(s, a, 'after-vm-1');
      const failed = await waitPod(s, a, pod.id, 'FAILED');
      expect(failed.failure_reason).toMatch(/^create VM failed: /);
      expect(failed.current_job).toMatchObject({ id: pod.jobId, type: 'PROVISION', status: 'DEAD_LETTER' });
      expect(await vmOf(s, pod.id)).toBeNull();
      expect(await dnsOf(s, pod.hostname)).toBeNull();
      expect(await allocated(s)).toEqual(before);
      expect(failed.node_id).toBeNull();
      expect(failed.vm_id).toBeNull();
      // every attempt reached the provider (the rule is used up): the VM was made and then destroyed
      const rules = await request(s.app).get('/api/v1/ops/simulator/faults').set('Authorization', admin(s));
      expect(rules.body.data).toContainEqual(
        expect.objectContaining({ slug_pattern: 'after-vm-*', remaining: 0 }),
      );
      expect((await jobRow(s, pod.jobId)).undo_failure).toBeNull();
      // what the simulator holds, as operators see it: no leaked VM
      const vms = await request(s.app).get('/api/v1/ops/simulator/vms').set('Authorization', admin(s));
      expect(vms.status).toBe(200);
      expect(vms.body.data.map((v: { pod_id: string }) => v.pod_id)).not.toContain(pod.id);
    });

    it('upsertA succeeding at the provider but failing on every attempt leaves no DNS record, no VM, no reservation', async () => {
      await addFault(s, { operation: 'upsertA', slug_pattern: 'after-dns-*', times: 3, mode: 'after' });
      const before = await allocated(s);
      const pod = await newPod(s, a, 'after-dns-1');
      const failed = await waitPod(s, a, pod.id, 'FAILED');
      expect(failed.failure_reason).toMatch(/^create DNS record failed: /);
      expect(failed.current_job).toMatchObject({ status: 'DEAD_LETTER' });
      expect(await dnsOf(s, pod.hostname)).toBeNull();
      expect(await vmOf(s, pod.id)).toBeNull();
      expect(await allocated(s)).toEqual(before);
      expect((await jobRow(s, pod.jobId)).undo_failure).toBeNull();
      const records = await request(s.app)
        .get('/api/v1/ops/simulator/dns-records')
        .set('Authorization', admin(s));
      expect(records.status).toBe(200);
      expect(records.body.data.map((r: { fqdn: string }) => r.fqdn)).not.toContain(pod.hostname);
    });
  });

  it('an undo that keeps failing holds the capacity of the VM it could not destroy, records it and raises a CRITICAL event', async () => {
    await addFault(s, { operation: 'upsertA', slug_pattern: 'undo-fail-*', message: 'dns api down' });
    await addFault(s, {
      operation: 'destroyVm',
      slug_pattern: 'undo-fail-*',
      message: 'vm locked by a backup task',
    });
    const before = await allocated(s);
    const pod = await newPod(s, a, 'undo-fail-1');
    const failed = await waitPod(s, a, pod.id, 'FAILED', 45000);
    expect(failed.failure_reason).toMatch(/^create DNS record failed: .*dns api down$/);

    // The VM still runs, so its reservation stays; the DNS undo (nothing to delete) went through.
    expect(await allocated(s)).toEqual(plus(before, STARTER));
    expect(failed.node_id).not.toBeNull();
    expect(await vmOf(s, pod.id)).not.toBeNull();
    expect(await dnsOf(s, pod.hostname)).toBeNull();

    const job = await jobRow(s, pod.jobId);
    expect(job.status).toBe('DEAD_LETTER');
    expect(job.failure_reason).toBe(failed.failure_reason);
    expect(job.undo_failure).toMatch(/undo of create VM failed: .*vm locked by a backup task/);
    expect(job.undo_failure).toMatch(/not undone because of it: reserve capacity/);
    expect(job.undo_failure).not.toMatch(/undo of create DNS record failed/);

    const events = await s.db.query<{ severity: string; kind: string; job_id: string; message: string }>(
      "select severity, kind, job_id, message from ops_events where pod_id = $1 and kind = 'undo_failed'",
      [pod.id],
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ severity: 'CRITICAL', kind: 'undo_failed', job_id: pod.jobId });

    const overview = await request(s.app).get('/api/v1/ops/overview').set('Authorization', admin(s));
    expect(overview.status).toBe(200);
    expect(overview.body.dead_letters_24h.jobs).toContainEqual(
      expect.objectContaining({ id: pod.jobId, undo_failure: job.undo_failure }),
    );
    expect(overview.body.ops_events).toContainEqual(
      expect.objectContaining({ severity: 'CRITICAL', kind: 'undo_failed', pod_id: pod.id }),
    );
  });

  it('a terminate whose DNS delete dead-letters stays TERMINATING (never ACTIVE) and finishes on an operator retry', async () => {
    const pod = await newPod(s, a, 'term-dns-1');
    await waitPod(s, a, pod.id, 'ACTIVE');
    const before = await allocated(s);
    await addFault(s, {
      operation: 'deleteA',
      slug_pattern: 'term-dns-*',
      times: 3,
      message: 'dns api timeout',
    });

    const del = await deletePod(s, a, pod.id);
    expect(del.status).toBe(202);
    const terminateJob = del.body.job.id as string;
    const stuck = await waitPod(s, a, pod.id, 'TERMINATING');
    expect(stuck.current_job).toMatchObject({ id: terminateJob, type: 'TERMINATE', status: 'DEAD_LETTER' });
    expect(stuck.current_job.failure_reason).toMatch(
      /^terminate: delete DNS record failed: .*dns api timeout$/,
    );
    expect(await vmOf(s, pod.id)).toBeNull();
    expect(await dnsOf(s, pod.hostname)).not.toBeNull();
    expect(await allocated(s)).toEqual(before);

    // It stays TERMINATING, in the database and in the workflow, which waits for the retry.
    const handle = s.temporal.workflow.getHandle(pod.workflowId);
    // The job row dead-letters a moment before the workflow records what it waits for.
    await waitFor(async () => (await handle.query(podStateQuery)).awaitingRetryOf === terminateJob, {
      what: 'the workflow to wait for the terminate retry',
    });
    for (let i = 0; i < 5; i++) {
      expect((await getPod(s, a, pod.id)).status).toBe('TERMINATING');
      expect(await handle.query(podStateQuery)).toMatchObject({
        status: 'TERMINATING',
        awaitingRetryOf: terminateJob,
        currentJob: null,
      });
    }
    expect(await vmOf(s, pod.id)).toBeNull();

    const retry = await retryJob(s, terminateJob);
    expect(retry.status).toBe(202);
    const done = await waitPod(s, a, pod.id, 'TERMINATED');
    expect(done.current_job).toMatchObject({ id: terminateJob, status: 'COMPLETED', attempts: 2 });
    expect(await dnsOf(s, pod.hostname)).toBeNull();
    expect(await vmOf(s, pod.id)).toBeNull();
    expect(await allocated(s)).toEqual({
      vcpu: before.vcpu - STARTER.vcpu,
      memoryMb: before.memoryMb - STARTER.memoryMb,
      diskGb: before.diskGb - STARTER.diskGb,
    });
    expect((await handle.result()).status).toBe('TERMINATED');
  });

  it('refuses (409) the retry of a dead-lettered provisioning once the pod is TERMINATED', async () => {
    await addFault(s, { operation: 'createVm', slug_pattern: 'term-failed-*', times: 3 });
    const pod = await newPod(s, a, 'term-failed-1');
    await waitPod(s, a, pod.id, 'FAILED');
    expect((await deletePod(s, a, pod.id)).status).toBe(202);
    await waitPod(s, a, pod.id, 'TERMINATED');

    const retry = await retryJob(s, pod.jobId);
    expectProblem(retry, 409, 'conflict');
    expect(retry.body.detail).toMatch(/TERMINATED/);
    expect((await getPod(s, a, pod.id)).status).toBe('TERMINATED');
    expect((await jobRow(s, pod.jobId)).status).toBe('DEAD_LETTER');
    expect(await vmOf(s, pod.id)).toBeNull();
  });

  it('keeps the pre-termination backup after the VM is gone and restores a new pod from it (same tenant only)', async () => {
    const pod = await newPod(s, a, 'keep-1');
    await waitPod(s, a, pod.id, 'ACTIVE');
    expect((await deletePod(s, a, pod.id)).status).toBe(202);
    await waitPod(s, a, pod.id, 'TERMINATED');
    expect(await vmOf(s, pod.id)).toBeNull();

    const list = await request(s.app).get(`/api/v1/cloudpods/${pod.id}/backups`).set('Authorization', a.auth);
    expect(list.status).toBe(200);
    const backup = (
      list.body.data as { id: string; kind: string; status: string; expires_at: string | null }[]
    ).find((x) => x.kind === 'PRE_TERMINATION');
    expect(backup).toMatchObject({ status: 'COMPLETED', size_gb: 20 });
    const expiresIn = new Date(backup?.expires_at ?? 0).getTime() - Date.now();
    expect(Math.abs(expiresIn - 30 * 86_400_000)).toBeLessThan(3_600_000);
    // the artifact exists at the provider apart from the VM
    const [row] = await s.db.query<{ provider_snapshot_id: string }>(
      'select provider_snapshot_id from backups where id = $1',
      [backup?.id],
    );
    expect(
      await systemEm(s.db.orm).findOne(SimBackup, { id: row?.provider_snapshot_id ?? '' }),
    ).not.toBeNull();
    const held = await request(s.app).get('/api/v1/ops/simulator/backups').set('Authorization', admin(s));
    expect(held.body.data).toContainEqual(
      expect.objectContaining({ id: row?.provider_snapshot_id, pod_id: pod.id, disk_gb: 20 }),
    );

    const restored = await createPod(s, a, 'keep-restored', { restore_from_backup_id: backup?.id });
    expect(restored.status).toBe(202);
    const active = await waitPod(s, a, restored.body.pod.id as string, 'ACTIVE');
    expect(await vmOf(s, active.id)).toMatchObject({ status: 'running', diskGb: 20 });

    const stolen = await createPod(s, b, 'keep-stolen', { restore_from_backup_id: backup?.id });
    expect([404, 422]).toContain(stolen.status);
    expect(stolen.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(await s.db.query("select id from cloud_pods where slug = 'keep-stolen'")).toHaveLength(0);
  });

  it('DELETE of a pod whose VM is being created stops the provisioning, rolls it back and terminates', async () => {
    // createVm makes the VM and then answers only after 3 s: the pod is PROVISIONING meanwhile.
    await addFault(s, {
      operation: 'createVm',
      slug_pattern: 'stop-prov-*',
      times: 1,
      mode: 'delay',
      delay_ms: 3000,
    });
    const before = await allocated(s);
    const pod = await newPod(s, a, 'stop-prov-1');
    await waitFor(async () => (await vmOf(s, pod.id)) !== null, { what: 'the VM to exist', intervalMs: 20 });
    expect((await getPod(s, a, pod.id)).status).toBe('PROVISIONING');

    const del = await deletePod(s, a, pod.id);
    expect(del.status).toBe(202);
    const done = await waitPod(s, a, pod.id, 'TERMINATED');
    expect(done.current_job).toMatchObject({ id: del.body.job.id, type: 'TERMINATE', status: 'COMPLETED' });
    expect(await vmOf(s, pod.id)).toBeNull();
    expect(await dnsOf(s, pod.hostname)).toBeNull();
    expect(await allocated(s)).toEqual(before);
    const provision = (await jobsOf(s, a, pod.id)).find((j) => j.id === pod.jobId);
    expect(provision).toMatchObject({ type: 'PROVISION', status: 'CANCELED' });
  });

  it('a suspension whose lock keeps failing rolls back: job ROLLED_BACK, pod ACTIVE, VM running', async () => {
    const pod = await newPod(s, a, 'lock-fail-1');
    await waitPod(s, a, pod.id, 'ACTIVE');
    await addFault(s, { operation: 'setSuspended', slug_pattern: 'lock-fail-*', message: 'lock refused' });
    const res = await request(s.app).post(`/api/v1/cloudpods/${pod.id}/suspend`).set('Authorization', a.auth);
    expect(res.status).toBe(202);
    const job = await waitJob(s, a, pod.id, res.body.job.id as string);
    const vm = await vmOf(s, pod.id);
    // one object, so a failure shows the whole outcome
    expect({
      job: job.status,
      reason: job.failure_reason,
      undoFailure: (await jobRow(s, job.id)).undo_failure,
      pod: (await getPod(s, a, pod.id)).status,
      vm: { status: vm?.status, locked: vm?.locked },
    }).toEqual({
      job: 'ROLLED_BACK',
      reason: expect.stringMatching(/^suspend: lock VM failed: .*lock refused$/),
      undoFailure: null,
      pod: 'ACTIVE',
      vm: { status: 'running', locked: false },
    });
  });

  it('a plan change whose resize takes effect and fails rolls back to the old cores and memory', async () => {
    const pod = await newPod(s, a, 'resize-after-1');
    await waitPod(s, a, pod.id, 'ACTIVE');
    const before = await allocated(s);
    await addFault(s, { operation: 'resizeVm', slug_pattern: 'resize-after-*', times: 3, mode: 'after' });
    const res = await request(s.app)
      .post(`/api/v1/cloudpods/${pod.id}/plan`)
      .set('Authorization', a.auth)
      .send({ product_id: a.pro });
    expect(res.status).toBe(202);
    const job = await waitJob(s, a, pod.id, res.body.job.id as string);
    expect(job).toMatchObject({ type: 'CHANGE_PLAN', status: 'ROLLED_BACK' });
    expect(job.failure_reason).toMatch(/^plan change: resize VM failed: /);
    const after = await getPod(s, a, pod.id);
    expect(after.status).toBe('ACTIVE');
    expect(after.limits).toEqual({ vcpu: 1, memory_mb: 1024, disk_gb: 20 });
    expect(after.product_id).toBe(a.starter);
    const vm = await vmOf(s, pod.id);
    expect(vm).toMatchObject({ vcpu: 1, memoryMb: 1024, status: 'running' });
    // The disk may have grown (disks never shrink); the reservation matches what the VM has.
    const grownBy = (vm?.diskGb ?? 0) - 20;
    expect([0, 20]).toContain(grownBy);
    expect(await allocated(s)).toEqual({ ...before, diskGb: before.diskGb + grownBy });
    expect((await jobRow(s, job.id)).undo_failure).toBeNull();
  });
});

describe('a short retry window and a short engine deadline', () => {
  let s: TestStack;
  let t: PodTenant;

  beforeAll(async () => {
    s = await startTestStack({ PROVISION_RETRY_WINDOW_MS: '300', TEMPORAL_CALL_TIMEOUT_MS: '1000' });
    await registerNode(s, 'sf-hv-2');
    t = await podTenant(s, 'saga-window', { free: true });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('terminates a FAILED pod whose retry window has passed (its workflow has ended)', async () => {
    await addFault(s, { operation: 'createVm', slug_pattern: 'window-del-*', times: 3 });
    const pod = await newPod(s, t, 'window-del-1');
    await waitPod(s, t, pod.id, 'FAILED');
    await waitWorkflowCompleted(s, pod.workflowId);

    const del = await deletePod(s, t, pod.id);
    expect(del.status).toBe(202);
    const done = await waitPod(s, t, pod.id, 'TERMINATED');
    expect(done.current_job).toMatchObject({ id: del.body.job.id, type: 'TERMINATE', status: 'COMPLETED' });
    expect(await vmOf(s, pod.id)).toBeNull();
    expect(await dnsOf(s, pod.hostname)).toBeNull();
  });

  it('an operator retry of a FAILED pod past its window provisions it to ACTIVE', async () => {
    const faultId = await addFault(s, { operation: 'createVm', slug_pattern: 'window-retry-*' });
    const pod = await newPod(s, t, 'window-retry-1');
    await waitPod(s, t, pod.id, 'FAILED');
    await waitWorkflowCompleted(s, pod.workflowId);
    await removeFault(s, faultId);

    const retry = await retryJob(s, pod.jobId);
    expect(retry.status).toBe(202);
    const active = await waitPod(s, t, pod.id, 'ACTIVE');
    expect(active.current_job).toMatchObject({ id: pod.jobId, status: 'COMPLETED', attempts: 2 });
    expect(active.failure_reason).toBeNull();
    expect(await vmOf(s, pod.id)).toMatchObject({ status: 'running' });
    expect(await dnsOf(s, pod.hostname)).toMatchObject({ content: active.ip_address });
    // The new run carries every search attribute a first start sets (the old retry dropped two).
    // The row turns ACTIVE inside the last activity; the workflow upserts its status right after.
    const attrs = await waitFor(
      async () => {
        const { typedSearchAttributes } = await s.temporal.workflow.getHandle(pod.workflowId).describe();
        return typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus) === 'ACTIVE'
          ? typedSearchAttributes
          : undefined;
      },
      { what: 'the retried run to report ACTIVE' },
    );
    expect(attrs.get(SEARCH_ATTRIBUTES.CustomerId)).toBe(t.customerId);
    expect(attrs.get(SEARCH_ATTRIBUTES.TenantId)).toBe(t.id);
    expect(attrs.get(SEARCH_ATTRIBUTES.CloudPodId)).toBe(pod.id);
  });

  describe('pods whose workflow never ran', () => {
    /** Creates a pod while no worker polls and terminates its workflow before anything ran. */
    async function strandedPod(slug: string) {
      await s.stopWorkers();
      try {
        const pod = await newPod(s, t, slug);
        const handle = s.temporal.workflow.getHandle(pod.workflowId);
        await handle.terminate('test: the workflow start was lost');
        expect((await handle.describe()).status.name).toBe('TERMINATED');
        const view = await getPod(s, t, pod.id);
        expect(view.status).toBe('PENDING');
        expect(view.current_job).toMatchObject({ id: pod.jobId, type: 'PROVISION', status: 'QUEUED' });
        return pod;
      } catch (err) {
        await s.restartWorkers();
        throw err;
      }
    }

    it('DELETE terminates it once workers run', async () => {
      const pod = await strandedPod('stranded-del-1');
      let del: request.Response;
      try {
        del = await deletePod(s, t, pod.id);
      } finally {
        await s.restartWorkers();
      }
      expect(del.status).toBe(202);
      const done = await waitPod(s, t, pod.id, 'TERMINATED');
      expect(done.current_job).toMatchObject({ id: del.body.job.id, type: 'TERMINATE', status: 'COMPLETED' });
      const provision = (await jobsOf(s, t, pod.id)).find((j) => j.id === pod.jobId);
      expect(provision?.status).toBe('CANCELED');
      expect(await vmOf(s, pod.id)).toBeNull();
    });

    it('the sweeper starts it and it becomes ACTIVE', async () => {
      const pod = await strandedPod('stranded-sweep-1');
      await s.restartWorkers();
      const swept = await sweepStrandedWork({
        em: systemEm(s.db.orm).fork(),
        temporal: s.temporal,
        config: { ...s.config, SWEEP_MIN_AGE_MS: 1 },
      });
      expect(swept.started).toBeGreaterThanOrEqual(1);
      const active = await waitPod(s, t, pod.id, 'ACTIVE');
      expect(active.current_job).toMatchObject({ id: pod.jobId, status: 'COMPLETED' });
      expect(await vmOf(s, pod.id)).toMatchObject({ status: 'running' });
    });
  });

  it('a plan change while no worker polls answers 503 with Retry-After, cancels its job and frees its Idempotency-Key', async () => {
    const pod = await newPod(s, t, 'no-worker-plan-1');
    await waitPod(s, t, pod.id, 'ACTIVE');
    const plan = () =>
      request(s.app)
        .post(`/api/v1/cloudpods/${pod.id}/plan`)
        .set('Authorization', t.auth)
        .set('Idempotency-Key', 'no-worker-plan-1')
        .send({ product_id: t.pro });
    const planJobs = () =>
      s.db.query<{ id: string; status: string }>(
        "select id, status from provisioning_jobs where pod_id = $1 and type = 'CHANGE_PLAN' order by created_at, id",
        [pod.id],
      );

    await s.stopWorkers();
    try {
      const started = Date.now();
      const res = await plan();
      expect(Date.now() - started).toBeLessThan(5000);
      expectProblem(res, 503, 'unavailable');
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
      const jobs = await planJobs();
      expect(jobs).toHaveLength(1);
      expect(jobs[0]?.status).toBe('CANCELED');
      // Not stuck, not replayed: the same key runs again (and still finds no worker).
      const again = await plan();
      expectProblem(again, 503, 'unavailable');
      expect(again.headers['idempotent-replayed']).toBeUndefined();
      expect((await planJobs()).map((j) => j.status)).toEqual(['CANCELED', 'CANCELED']);
    } finally {
      await s.restartWorkers();
    }

    // With workers back the same key goes through (a 409 may answer while the stale updates drain).
    const ok = await waitFor(
      async () => {
        const r = await plan();
        if (r.status !== 202 && r.status !== 409)
          throw new Error(`unexpected ${r.status}: ${JSON.stringify(r.body)}`);
        return r.status === 202 ? r : undefined;
      },
      { what: 'the plan change to be accepted', timeoutMs: 30000, intervalMs: 250 },
    );
    // A 202 promises the plan change was accepted by the workflow: its job must run, not stay QUEUED.
    const job = await waitJob(s, t, pod.id, ok.body.job.id as string, 15000);
    expect(job.status).toBe('COMPLETED');
    expect((await getPod(s, t, pod.id)).limits).toEqual({ vcpu: 2, memory_mb: 4096, disk_gb: 40 });
    const statuses = (await planJobs()).map((j) => j.status);
    expect(statuses.filter((x) => x === 'COMPLETED')).toHaveLength(1);
    expect(statuses.filter((x) => x !== 'COMPLETED' && x !== 'CANCELED')).toEqual([]);
  });
});

describe('slow step retries (retries from 1.5 s)', () => {
  let s: TestStack;
  let t: PodTenant;

  beforeAll(async () => {
    s = await startTestStack({ PROVISION_RETRY_INITIAL_MS: '1500' });
    await registerNode(s, 'sf-hv-3');
    t = await podTenant(s, 'saga-slow', { free: true });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('shows a failing step retrying: the pod’s current job and the ops overview', async () => {
    await addFault(s, {
      operation: 'createVm',
      slug_pattern: 'slow-retry-*',
      times: 2,
      message: 'clone task failed: storage busy',
    });
    const pod = await newPod(s, t, 'slow-retry-1');
    const retrying = await waitFor(
      async () => {
        const p = await getPod(s, t, pod.id);
        return p.current_job?.status === 'RUNNING' && (p.current_job.step_attempt ?? 0) >= 2 ? p : undefined;
      },
      { what: 'createVm attempt 2', timeoutMs: 15000, intervalMs: 50 },
    );
    expect(retrying.status).toBe('PROVISIONING');
    expect(retrying.current_job).toMatchObject({
      id: pod.jobId,
      type: 'PROVISION',
      current_step: 'create VM',
    });
    expect(retrying.current_job.last_error_at).not.toBeNull();

    const overview = await request(s.app).get('/api/v1/ops/overview').set('Authorization', admin(s));
    expect(overview.status).toBe(200);
    const item = (overview.body.retrying as { id: string; step_attempt: number }[]).find(
      (j) => j.id === pod.jobId,
    );
    expect(item).toMatchObject({
      pod_id: pod.id,
      type: 'PROVISION',
      current_step: 'create VM',
      last_error: expect.stringContaining('clone task failed: storage busy'),
    });
    expect(item?.step_attempt).toBeGreaterThanOrEqual(2);

    const active = await waitPod(s, t, pod.id, 'ACTIVE');
    expect(active.current_job).toMatchObject({ id: pod.jobId, status: 'COMPLETED', attempts: 1 });
  });

  it('DELETE of a pod whose createVm is between retries stops it: PROVISION CANCELED, pod TERMINATED, nothing left', async () => {
    await addFault(s, { operation: 'createVm', slug_pattern: 'del-retrying-*', message: 'storage offline' });
    const before = await allocated(s);
    const pod = await newPod(s, t, 'del-retrying-1');
    await waitFor(
      async () => {
        const row = await jobRow(s, pod.jobId);
        return row.status === 'RUNNING' && row.current_step === 'create VM' && row.last_error !== null;
      },
      { what: 'createVm to have failed once', timeoutMs: 10000, intervalMs: 20 },
    );
    expect((await getPod(s, t, pod.id)).status).toBe('PROVISIONING');

    const del = await deletePod(s, t, pod.id);
    expect(del.status).toBe(202);
    const done = await waitPod(s, t, pod.id, 'TERMINATED');
    expect(done.current_job).toMatchObject({ id: del.body.job.id, type: 'TERMINATE', status: 'COMPLETED' });
    const provision = (await jobsOf(s, t, pod.id)).find((j) => j.id === pod.jobId);
    expect(provision).toMatchObject({ status: 'CANCELED' });
    expect(await vmOf(s, pod.id)).toBeNull();
    expect(await dnsOf(s, pod.hostname)).toBeNull();
    expect(await allocated(s)).toEqual(before);
  });
});
