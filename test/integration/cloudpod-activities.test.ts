/**
 * CloudPod activities against real PostgreSQL and the PostgreSQL-backed simulator, run in Temporal's
 * activity context: a job the API cancelled is never revived, polling leaks no listeners, an outage
 * of our own database is waited out inside the attempt (it is not a provider failure), and the
 * failing step is recorded on the job.
 */
import { getEventListeners } from 'node:events';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createCloudPodActivities, type CloudPodActivities } from '../../src/activities/cloudpods';
import {
  CloudPod,
  CoreNode,
  type Customer,
  type Product,
  ProvisioningJob,
  type Tenant,
} from '../../src/db/entities';
import { initOrm, systemEm, type MikroORM } from '../../src/db/orm';
import { createLogger } from '../../src/logger';
import { ProviderError } from '../../src/providers/errors';
import { FaultInjector, SimulatedDns, SimulatedHypervisor } from '../../src/providers/simulator';
import { seedCatalog } from '../helpers/catalog';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { Relay } from '../helpers/relay';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
let tenant: Tenant;
let customer: Customer;
let product: Product;
let seq = 0;
const silent = createLogger({ level: 'silent' });
/** the mock environment's own activity log (failures are expected here) */
const quiet = { logger: new DefaultLogger('ERROR', () => undefined) };

function activitiesFor(orm: MikroORM, opts: { bootMs?: number; pollMs?: number } = {}): CloudPodActivities {
  const faults = new FaultInjector(orm);
  const sim = { orm, faults, latencyMs: 0, bootMs: opts.bootMs ?? 0 };
  return createCloudPodActivities({
    orm,
    hypervisor: new SimulatedHypervisor(sim),
    dns: new SimulatedDns(sim),
    logger: silent,
    pollMs: opts.pollMs ?? 5,
  });
}

/** Runs one activity as attempt `attempt` of `activityType`, the way a worker would. */
function run<T>(activityType: string, fn: () => Promise<T>, attempt = 1): Promise<T> {
  return new MockActivityEnvironment({ activityType, attempt, heartbeatTimeoutMs: 5000 }, quiet).run(fn);
}

async function newPod(
  status: 'PENDING' | 'ACTIVE' = 'PENDING',
): Promise<{ pod: CloudPod; job: ProvisioningJob }> {
  const em = systemEm(db.orm);
  const slug = `act-${++seq}`;
  const pod = em.create(CloudPod, {
    tenant,
    customer,
    product,
    slug,
    hostname: `${slug}.acts.pods.test`,
    status,
    vcpu: 1,
    memoryMb: 1024,
    diskGb: 10,
    workflowId: `cloudpod-${slug}`,
  });
  const job = em.create(ProvisioningJob, { tenant, pod, type: 'PROVISION', workflowId: pod.workflowId });
  await em.flush();
  return { pod, job };
}

const jobRow = async (id: string) =>
  (
    await db.query<{
      status: string;
      attempts: number;
      current_step: string | null;
      step_attempt: number | null;
      last_error: string | null;
    }>(
      'select status, attempts, current_step, step_attempt, last_error from provisioning_jobs where id = $1',
      [id],
    )
  )[0];

beforeAll(async () => {
  db = await createTestDatabase();
  ({ tenant, customer, product } = await seedCatalog(db.orm, 'acts', {
    vcpu: 1,
    memoryMb: 1024,
    diskGb: 10,
  }));
  const em = systemEm(db.orm);
  em.create(CoreNode, {
    name: 'acts-node',
    region: 'test-1',
    capacityVcpu: 64,
    capacityMemoryMb: 262144,
    capacityDiskGb: 10000,
  });
  await em.flush();
});
afterAll(() => db.close());

describe('beginJob', () => {
  it('takes a QUEUED job once, and never revives one the API cancelled', async () => {
    const acts = activitiesFor(db.orm);
    const { pod, job } = await newPod();
    expect(await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'))).toBe(true);
    // A retried beginJob (its answer was lost) is the same job, not a second attempt.
    expect(await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'))).toBe(true);
    expect(await jobRow(job.id)).toMatchObject({ status: 'RUNNING', attempts: 1 });

    const { job: cancelled } = await newPod();
    await db.query(`update provisioning_jobs set status = 'CANCELED' where id = $1`, [cancelled.id]);
    expect(await run('beginJob', () => acts.beginJob(cancelled.id, 'PROVISIONING'))).toBe(false);
    expect(await jobRow(cancelled.id)).toMatchObject({ status: 'CANCELED', attempts: 0 });
    const [podRow] = await db.query<{ status: string }>('select status from cloud_pods where id = $1', [
      pod.id,
    ]);
    expect(podRow?.status).toBe('PROVISIONING');
  });
});

describe('step activities', () => {
  it('poll without leaving an abort listener behind per poll', async () => {
    const acts = activitiesFor(db.orm, { bootMs: 400, pollMs: 5 });
    const { pod, job } = await newPod();
    await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'));
    await run('reserveCapacity', () => acts.reserveCapacity(pod.id));
    await run('createVm', () => acts.createVm(pod.id));
    const env = new MockActivityEnvironment(
      { activityType: 'waitForVmRunning', heartbeatTimeoutMs: 5000 },
      quiet,
    );
    let polls = 0;
    env.on('heartbeat', (d: unknown) => {
      if (d && typeof d === 'object' && 'poll' in d) polls = Number((d as { poll: number }).poll);
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      await env.run(() => acts.waitForVmRunning(pod.id));
    } finally {
      process.off('warning', onWarning);
    }
    expect(polls).toBeGreaterThan(11);
    expect(getEventListeners(env.context.cancellationSignal, 'abort').length).toBeLessThanOrEqual(1);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('record the step, its attempt and the last raw error on the running job', async () => {
    const acts = activitiesFor(db.orm);
    const { pod, job } = await newPod();
    await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'));
    await run('reserveCapacity', () => acts.reserveCapacity(pod.id));
    await new FaultInjector(db.orm).add({
      operation: 'createVm',
      slugPattern: pod.slug,
      times: 1,
      message: 'clone task failed',
    });
    await expect(run('createVm', () => acts.createVm(pod.id), 2)).rejects.toThrow(/clone task failed/);
    expect(await jobRow(job.id)).toMatchObject({
      current_step: 'create VM',
      step_attempt: 2,
      last_error: expect.stringMatching(/clone task failed/),
    });
  });

  it('record the VM id on the pod before the VM is made, and reuse it on the retry', async () => {
    const acts = activitiesFor(db.orm);
    const { pod, job } = await newPod();
    await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'));
    await run('reserveCapacity', () => acts.reserveCapacity(pod.id));
    await new FaultInjector(db.orm).add({ operation: 'createVm', slugPattern: pod.slug, times: 1 });
    await expect(run('createVm', () => acts.createVm(pod.id))).rejects.toThrow(/injected createVm failure/);
    const recorded = (
      await db.query<{ vm_id: string | null }>('select vm_id from cloud_pods where id = $1', [pod.id])
    )[0]?.vm_id;
    expect(recorded).toEqual(expect.any(String));
    expect(await run('createVm', () => acts.createVm(pod.id), 2)).toEqual({ vmId: recorded });
  });

  it('reserve and record a new VM id when someone else took the recorded one', async () => {
    const acts = activitiesFor(db.orm);
    const { pod, job } = await newPod();
    await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'));
    await run('reserveCapacity', () => acts.reserveCapacity(pod.id));
    await db.query('update cloud_pods set vm_id = $1 where id = $2', ['sim-taken-by-another', pod.id]);
    await db.query(
      `insert into sim_vms (vm_id, pod_id, node, name, status, locked, vcpu, memory_mb, disk_gb, ip_address, snapshots, created_at)
       values ('sim-taken-by-another', 'pod_someone_else', 'node-a', 'other', 'running', false, 1, 1024, 10, '10.9.9.9', '[]', now())`,
    );
    const { vmId } = await run('createVm', () => acts.createVm(pod.id));
    expect(vmId).not.toBe('sim-taken-by-another');
    expect(
      (await db.query<{ vm_id: string }>('select vm_id from cloud_pods where id = $1', [pod.id]))[0]?.vm_id,
    ).toBe(vmId);
  });

  it("keep a network failure's address out of the tenant-visible message and in the operator's last error", async () => {
    const faults = new FaultInjector(db.orm);
    const sim = new SimulatedHypervisor({ orm: db.orm, faults, latencyMs: 0, bootMs: 0 });
    // A hypervisor that cannot be reached answers the way ProviderHttp reports a refused connection.
    const unreachable = Object.assign(Object.create(sim) as SimulatedHypervisor, {
      createVm: () =>
        Promise.reject(
          new ProviderError(
            'proxmox',
            'createVm',
            'POST /nodes/pve1/qemu/9000/clone: fetch failed: connect ECONNREFUSED 10.20.30.40:8006',
            true,
            'NETWORK',
          ),
        ),
    });
    const acts = createCloudPodActivities({
      orm: db.orm,
      hypervisor: unreachable,
      dns: new SimulatedDns({ orm: db.orm, faults, latencyMs: 0, bootMs: 0 }),
      logger: silent,
    });
    const { pod, job } = await newPod();
    await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'));
    await run('reserveCapacity', () => acts.reserveCapacity(pod.id));
    const failure = await run('createVm', () => acts.createVm(pod.id)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toBe('proxmox createVm: the provider could not be reached');
    expect((await jobRow(job.id))?.last_error).toMatch(/ECONNREFUSED 10\.20\.30\.40:8006/);
  });

  it('wait out an outage of our own database inside the attempt instead of failing it', async () => {
    const target = new URL(db.url);
    const relay = new Relay({ host: target.hostname, port: Number(target.port || 5432) });
    await relay.up();
    const relayed = new URL(db.url);
    relayed.hostname = '127.0.0.1';
    relayed.port = String(relay.port);
    const orm = await initOrm({ databaseUrl: relayed.toString(), poolMax: 2 });
    try {
      const acts = activitiesFor(orm);
      const { pod, job } = await newPod();
      await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'));
      await relay.down();
      const beats: unknown[] = [];
      const env = new MockActivityEnvironment(
        { activityType: 'reserveCapacity', heartbeatTimeoutMs: 5000 },
        quiet,
      );
      env.on('heartbeat', (d: unknown) => beats.push(d));
      const reserving = env.run(() => acts.reserveCapacity(pod.id));
      let settled = false;
      void reserving.then(
        () => (settled = true),
        () => (settled = true),
      );
      // It keeps heartbeating while the database is away, and neither fails nor finishes.
      await waitFor(() => Promise.resolve(beats.length >= 2), { what: 'heartbeats during the outage' });
      expect(settled).toBe(false);
      await relay.up();
      await expect(reserving).resolves.toEqual({ nodeName: 'acts-node' });
      const [row] = await db.query<{ node_id: string | null }>(
        'select node_id from cloud_pods where id = $1',
        [pod.id],
      );
      expect(row?.node_id).not.toBeNull();
    } finally {
      await relay.down();
      await orm.close();
    }
  });
});

describe('bookkeeping activities', () => {
  /** The rows a bookkeeping activity writes, with every timestamp it sets. */
  async function snapshot(podId: string, jobId: string) {
    const [pod] = await db.query<Record<string, unknown>>(
      `select status, failure_reason, activated_at, terminated_at, vm_id, ip_address, vcpu, product_id, updated_at
         from cloud_pods where id = $1`,
      [podId],
    );
    const [job] = await db.query<Record<string, unknown>>(
      `select status, failure_reason, undo_failure, finished_at, dead_lettered_at, updated_at
         from provisioning_jobs where id = $1`,
      [jobId],
    );
    const [counts] = await db.query<{ notifications: string; events: string }>(
      `select (select count(*) from notifications where dedupe_key like '%' || $1) as notifications,
              (select count(*) from ops_events where job_id = $1) as events`,
      [jobId],
    );
    return { pod, job, counts };
  }

  /** Backdates the pod's and job's `updated_at` so a write that moves it is seen to. */
  async function backdate(podId: string, jobId: string): Promise<void> {
    await db.query(`update cloud_pods set updated_at = now() - interval '1 hour' where id = $1`, [podId]);
    await db.query(`update provisioning_jobs set updated_at = now() - interval '1 hour' where id = $1`, [
      jobId,
    ]);
  }

  const recent = (value: unknown) => Date.now() - (value as Date).getTime() < 60_000;

  /** Runs `activity` twice, as a retry after a lost answer would: the second run changes nothing. */
  async function twice(podId: string, jobId: string, name: string, activity: () => Promise<unknown>) {
    await backdate(podId, jobId);
    await run(name, activity);
    const first = await snapshot(podId, jobId);
    await run(name, activity, 2);
    expect(await snapshot(podId, jobId)).toEqual(first);
    return first;
  }

  it('markPodActive is repeatable: one activation time, one completion time, one notification', async () => {
    const acts = activitiesFor(db.orm);
    const { pod, job } = await newPod();
    await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'));
    const done = await twice(pod.id, job.id, 'markPodActive', () => acts.markPodActive(pod.id, job.id));
    expect(done.pod).toMatchObject({ status: 'ACTIVE', failure_reason: null });
    expect(done.job).toMatchObject({ status: 'COMPLETED' });
    expect(recent(done.pod?.updated_at) && recent(done.job?.updated_at)).toBe(true);
    expect(done.counts).toEqual({ notifications: '1', events: '0' });
  });

  it('markProvisionFailed is repeatable: the dead letter keeps its first time', async () => {
    const acts = activitiesFor(db.orm);
    const { pod, job } = await newPod();
    await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'));
    const done = await twice(pod.id, job.id, 'markProvisionFailed', () =>
      acts.markProvisionFailed(pod.id, job.id, 'no capacity'),
    );
    expect(done.pod).toMatchObject({ status: 'FAILED', failure_reason: 'no capacity' });
    expect(done.job).toMatchObject({ status: 'DEAD_LETTER', failure_reason: 'no capacity' });
    expect(recent(done.pod?.updated_at) && recent(done.job?.dead_lettered_at)).toBe(true);
  });

  it('finishJob and markPodTerminated are repeatable: the finish and termination times stay the first', async () => {
    const acts = activitiesFor(db.orm);
    const { pod, job } = await newPod('ACTIVE');
    await run('beginJob', () => acts.beginJob(job.id, 'UPDATING'));
    const finished = await twice(pod.id, job.id, 'finishJob', () =>
      acts.finishJob(job.id, 'ROLLED_BACK', 'ACTIVE', 'resize refused'),
    );
    expect(finished.job).toMatchObject({ status: 'ROLLED_BACK', failure_reason: 'resize refused' });
    expect(recent(finished.pod?.updated_at)).toBe(true);

    const { pod: gone, job: terminate } = await newPod('ACTIVE');
    await run('beginJob', () => acts.beginJob(terminate.id, 'TERMINATING'));
    const terminated = await twice(gone.id, terminate.id, 'markPodTerminated', () =>
      acts.markPodTerminated(gone.id, terminate.id),
    );
    expect(terminated.pod).toMatchObject({ status: 'TERMINATED', vm_id: null, ip_address: null });
    expect(terminated.job).toMatchObject({ status: 'COMPLETED' });
    expect(recent(terminated.pod?.terminated_at) && recent(terminated.job?.finished_at)).toBe(true);
  });

  it('reportUndoFailures is repeatable: one CRITICAL event and the summary on the job', async () => {
    const acts = activitiesFor(db.orm);
    const { pod, job } = await newPod();
    await run('beginJob', () => acts.beginJob(job.id, 'PROVISIONING'));
    const done = await twice(pod.id, job.id, 'reportUndoFailures', () =>
      acts.reportUndoFailures(
        pod.id,
        job.id,
        [{ step: 'destroyVm', reason: 'node unreachable' }],
        ['releaseCapacity'],
      ),
    );
    expect(done.job?.undo_failure).toContain('undo of destroyVm failed: node unreachable');
    expect(done.counts).toEqual({ notifications: '0', events: '1' });
  });

  it('applyPlan records the plan and moves the pod’s updated_at', async () => {
    const acts = activitiesFor(db.orm);
    const { pod, job } = await newPod('ACTIVE');
    const done = await twice(pod.id, job.id, 'applyPlan', () =>
      acts.applyPlan(pod.id, product.id, { vcpu: 2, memoryMb: 2048, diskGb: 20 }),
    );
    expect(done.pod).toMatchObject({ vcpu: 2, product_id: product.id });
    expect(recent(done.pod?.updated_at)).toBe(true);
  });
});
