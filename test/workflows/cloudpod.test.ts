/** cloudPod against a real Temporal server with in-memory fake activities: saga, rollback, retry, operations. */
import { Context } from '@temporalio/activity';
import {
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { CloudPodActivities } from '../../src/activities/cloudpods';
import type { Resources } from '../../src/domain/cloudpods';
import type { cloudPod } from '../../src/workflows/cloudpods';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../../src/workflows/shared';
import {
  changePlanUpdate,
  podStateQuery,
  retryUpdate,
  suspendSignal,
  terminateSignal,
  type CloudPodInput,
  type CloudPodState,
  type PodPolicy,
} from '../../src/workflows/messages/cloudpods';
import { connectClient, createNamespace, temporalAddress, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

type ActivityName = keyof CloudPodActivities;
type PodHandle = WorkflowHandle<typeof cloudPod>;

/** Milliseconds instead of minutes; the retry window is long enough never to pass during a test. */
const POLICY: PodPolicy = {
  retryInitialMs: 10,
  maxAttempts: 3,
  heartbeatTimeoutMs: 5000,
  retryWindowMs: 60000,
};
const SMALL: Resources = { vcpu: 1, memoryMb: 1024, diskGb: 20 };
const LARGE: Resources = { vcpu: 2, memoryMb: 4096, diskGb: 40 };
const PROVISION_STEPS: ActivityName[] = [
  'beginJob',
  'reserveCapacity',
  'createVm',
  'waitForVmRunning',
  'createDnsRecord',
  'markPodActive',
];

let namespace: string;
let client: Client;
let closeClient: () => Promise<void>;
let connection: NativeConnection;
let started: PodHandle[] = [];

beforeAll(async () => {
  namespace = await createNamespace('wf-pod');
  ({ client, close: closeClient } = await connectClient(namespace));
  connection = await NativeConnection.connect({ address: temporalAddress() });
});
afterEach(async () => {
  // Pods left waiting for a retry must not wake up under a later test's worker.
  for (const handle of started) {
    const { status } = await client.workflow.getHandle(handle.workflowId).describe();
    if (status.name === 'RUNNING') await client.workflow.getHandle(handle.workflowId).terminate('test over');
  }
  started = [];
});
afterAll(async () => {
  await closeClient();
  await connection.close();
});

interface FakeCloudPod {
  activities: CloudPodActivities;
  /** activity names in call order, one entry per attempt */
  calls: ActivityName[];
  /** the arguments of every call of `name`, in order */
  argsOf(name: ActivityName): unknown[][];
  /** `name` throws a plain (retryable) Error `times` times, or until healed */
  fail(name: ActivityName, times?: number): void;
  heal(name: ActivityName): void;
  /** `name` blocks (heartbeating) until the returned function is called */
  block(name: ActivityName): () => void;
  /** the job's row is CANCELED: beginJob does not take it */
  cancelJob(jobId: string): void;
}

/** In-memory CloudPod activities: every attempt recorded, a failure switch and a gate per activity. */
function fakeCloudPodActivities(): FakeCloudPod {
  const calls: ActivityName[] = [];
  const args: unknown[][] = [];
  const failing = new Map<ActivityName, number>();
  const gates = new Map<ActivityName, Promise<void>>();
  const cancelled = new Set<string>();

  async function call<T>(name: ActivityName, callArgs: unknown[], result: T): Promise<T> {
    calls.push(name);
    args.push(callArgs);
    const left = failing.get(name) ?? 0;
    if (left > 0) {
      failing.set(name, left - 1);
      throw new Error(`${name}: the fake provider is down`);
    }
    const gate = gates.get(name);
    if (gate) {
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), 500);
      try {
        // Cancellation (a worker shutting down after a failed assertion) must not hang the test.
        await Promise.race([gate, ctx.cancelled]);
      } finally {
        clearInterval(beat);
      }
    }
    return result;
  }

  const activities: CloudPodActivities = {
    // A job the API cancelled meanwhile is not taken.
    beginJob: (...a) => call('beginJob', a, !cancelled.has(a[0])),
    finishJob: (...a) => call('finishJob', a, undefined),
    reserveCapacity: (...a) => call('reserveCapacity', a, { nodeName: 'node-a' }),
    releaseCapacity: (...a) => call('releaseCapacity', a, undefined),
    adjustReservation: (...a) => call('adjustReservation', a, undefined),
    createVm: (...a) => call('createVm', a, { vmId: 'vm-100' }),
    waitForVmRunning: (...a) => call('waitForVmRunning', a, { ipAddress: '10.0.0.10' }),
    destroyVm: (...a) => call('destroyVm', a, undefined),
    createDnsRecord: (...a) => call('createDnsRecord', a, undefined),
    deleteDnsRecord: (...a) => call('deleteDnsRecord', a, undefined),
    markPodActive: (...a) => call('markPodActive', a, undefined),
    markProvisionFailed: (...a) => call('markProvisionFailed', a, undefined),
    reportUndoFailures: (...a) => call('reportUndoFailures', a, undefined),
    stopVm: (...a) => call('stopVm', a, undefined),
    lockVm: (...a) => call('lockVm', a, undefined),
    startVm: (...a) => call('startVm', a, undefined),
    unsuspendVm: (...a) => call('unsuspendVm', a, undefined),
    resizeVm: (...a) => call('resizeVm', a, undefined),
    revertResize: (...a) => call('revertResize', a, a[1]),
    applyPlan: (...a) => call('applyPlan', a, undefined),
    takeBackup: (...a) => call('takeBackup', a, 'bak_fake'),
    takePreTerminationBackup: (...a) => call('takePreTerminationBackup', a, 'bak_fake'),
    markBackupFailed: (...a) => call('markBackupFailed', a, undefined),
    restoreBackup: (...a) => call('restoreBackup', a, undefined),
    markPodTerminated: (...a) => call('markPodTerminated', a, undefined),
  };

  return {
    activities,
    calls,
    argsOf: (name) => args.filter((_, i) => calls[i] === name),
    fail: (name, times = Infinity) => failing.set(name, times),
    cancelJob: (jobId) => cancelled.add(jobId),
    heal: (name) => failing.delete(name),
    block(name) {
      let release = () => {};
      gates.set(
        name,
        new Promise<void>((resolve) => {
          release = resolve;
        }),
      );
      return () => {
        gates.delete(name);
        release();
      };
    },
  };
}

async function runWith<T>(activities: CloudPodActivities, body: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: TASK_QUEUES.provisioning,
    workflowBundle: await workflowBundle(),
    activities,
  });
  return worker.runUntil(body);
}

function podInput(podId: string, policy: PodPolicy = POLICY): CloudPodInput {
  return {
    podId,
    tenantId: 'ten_wf_pods',
    slug: podId.replace(/_/g, '-'),
    resources: SMALL,
    provisionJobId: `job_${podId}_provision`,
    policy,
  };
}

async function startPod(podId: string, policy?: PodPolicy): Promise<{ handle: PodHandle; jobId: string }> {
  const input = podInput(podId, policy);
  const handle = await client.workflow.start<typeof cloudPod>('cloudPod', {
    workflowId: workflowIds.cloudPod(podId),
    taskQueue: TASK_QUEUES.provisioning,
    args: [input],
  });
  started.push(handle);
  return { handle, jobId: input.provisionJobId };
}

/** Queries the pod's state until `ready` holds. */
function stateWhen(
  handle: PodHandle,
  what: string,
  ready: (s: CloudPodState) => boolean,
  timeoutMs?: number,
): Promise<CloudPodState> {
  return waitFor(
    async () => {
      const state = await handle.query(podStateQuery);
      return ready(state) ? state : undefined;
    },
    { what, timeoutMs },
  );
}

const activeState = (handle: PodHandle) =>
  stateWhen(handle, 'the pod to be ACTIVE', (s) => s.status === 'ACTIVE');
const awaitingRetry = (handle: PodHandle, jobId: string, timeoutMs?: number) =>
  stateWhen(
    handle,
    `the pod to dead-letter ${jobId}`,
    (s) => s.status === 'FAILED' && s.awaitingRetryOf === jobId,
    timeoutMs,
  );

const times = (name: ActivityName, n: number): ActivityName[] => Array.from({ length: n }, () => name);

describe('cloudPod provisioning saga', () => {
  it('reserves, creates the VM, waits for it, publishes DNS and marks the pod ACTIVE — in that order', async () => {
    const fake = fakeCloudPodActivities();
    await runWith(fake.activities, async () => {
      const { handle, jobId } = await startPod('pod_wf_golden');
      const state = await activeState(handle);
      expect(state).toMatchObject({
        status: 'ACTIVE',
        resources: SMALL,
        currentJob: null,
        awaitingRetryOf: null,
        lastFailure: null,
        provisionAttempts: 1,
      });
      const desc = await handle.describe();
      expect(desc.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus)).toBe('ACTIVE');
      expect(desc.status.name).toBe('RUNNING');
      expect(fake.argsOf('beginJob')).toEqual([[jobId, 'PROVISIONING']]);
      expect(fake.argsOf('markPodActive')).toEqual([['pod_wf_golden', jobId]]);
    });
    expect(fake.calls).toEqual(PROVISION_STEPS);
  });

  // Each undo is registered before its step (a step can take effect and still fail), so the failing
  // step's own undo runs too; waiting for the VM has no undo.
  it.each<{ step: ActivityName; before: ActivityName[]; undos: ActivityName[]; reason: RegExp }>([
    {
      step: 'reserveCapacity',
      before: [],
      undos: ['releaseCapacity'],
      reason: /^reserve capacity failed: /,
    },
    {
      step: 'createVm',
      before: ['reserveCapacity'],
      undos: ['destroyVm', 'releaseCapacity'],
      reason: /^create VM failed: /,
    },
    {
      step: 'waitForVmRunning',
      before: ['reserveCapacity', 'createVm'],
      undos: ['destroyVm', 'releaseCapacity'],
      reason: /^wait for VM running failed: /,
    },
    {
      step: 'createDnsRecord',
      before: ['reserveCapacity', 'createVm', 'waitForVmRunning'],
      undos: ['deleteDnsRecord', 'destroyVm', 'releaseCapacity'],
      reason: /^create DNS record failed: /,
    },
  ])(
    'when $step exhausts its retries it undoes exactly the earlier steps in reverse and dead-letters the job',
    async ({ step, before, undos, reason }) => {
      const fake = fakeCloudPodActivities();
      fake.fail(step);
      const podId = `pod_wf_fail_${step}`;
      await runWith(fake.activities, async () => {
        const { handle, jobId } = await startPod(podId);
        const state = await awaitingRetry(handle, jobId);
        expect(state.currentJob).toBeNull();
        expect(state.lastFailure).toMatch(reason);
        expect(state.provisionAttempts).toBe(1);
        const desc = await handle.describe();
        expect(desc.status.name).toBe('RUNNING');
        expect(desc.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus)).toBe('FAILED');
        expect(fake.calls).toEqual([
          'beginJob',
          ...before,
          ...times(step, POLICY.maxAttempts),
          ...undos,
          'markProvisionFailed',
        ]);
        const [failed] = fake.argsOf('markProvisionFailed');
        expect(failed).toEqual([podId, jobId, expect.stringMatching(reason)]);
        expect(failed?.[2]).toBe(state.lastFailure);
      });
    },
  );

  it('runs the saga again on an operator retry and ends ACTIVE', async () => {
    const fake = fakeCloudPodActivities();
    fake.fail('createVm');
    await runWith(fake.activities, async () => {
      const { handle, jobId } = await startPod('pod_wf_retry');
      await awaitingRetry(handle, jobId);
      const firstRun = fake.calls.length;
      expect(fake.calls).not.toContain('markPodActive');

      fake.heal('createVm');
      await handle.executeUpdate(retryUpdate, { args: [{ jobId }] });
      const state = await activeState(handle);
      expect(state).toMatchObject({ provisionAttempts: 2, awaitingRetryOf: null, lastFailure: null });
      expect(fake.calls.slice(firstRun)).toEqual(PROVISION_STEPS);
      expect(fake.argsOf('markPodActive')).toEqual([['pod_wf_retry', jobId]]);
    });
  });

  it('a retry that starts a new run after the retry window makes exactly one attempt', async () => {
    const fake = fakeCloudPodActivities();
    fake.fail('reserveCapacity');
    const podId = 'pod_wf_window';
    await runWith(fake.activities, async () => {
      const { handle, jobId } = await startPod(podId, { ...POLICY, retryWindowMs: 200 });
      const closed = await handle.result();
      expect(closed).toMatchObject({ status: 'FAILED', awaitingRetryOf: null, provisionAttempts: 1 });
      const firstRun = fake.calls.length;

      // What POST /ops/jobs/:id/retry does once the workflow has completed: a new run provisions
      // the same job; the step still fails.
      await expect(handle.executeUpdate(retryUpdate, { args: [{ jobId }] })).rejects.toThrow();
      const retried = await client.workflow.start<typeof cloudPod>('cloudPod', {
        workflowId: workflowIds.cloudPod(podId),
        taskQueue: TASK_QUEUES.provisioning,
        args: [podInput(podId)],
      });
      started.push(retried);
      const state = await awaitingRetry(
        client.workflow.getHandle<typeof cloudPod>(retried.workflowId),
        jobId,
      );
      expect(state.provisionAttempts).toBe(1);
      expect(fake.calls.slice(firstRun)).toEqual([
        'beginJob',
        ...times('reserveCapacity', POLICY.maxAttempts),
        'releaseCapacity',
        'markProvisionFailed',
      ]);
    });
  });

  it('records an undo that keeps failing and does not release the capacity the undestroyed VM holds', async () => {
    const fake = fakeCloudPodActivities();
    fake.fail('waitForVmRunning');
    fake.fail('destroyVm');
    const podId = 'pod_wf_undo_fails';
    await runWith(fake.activities, async () => {
      const { handle, jobId } = await startPod(podId);
      // The undo's own, longer retry budget takes the dev server about a second per attempt.
      const state = await awaitingRetry(handle, jobId, 45000);
      // The failure reason stays the step's; the undo failure is recorded apart.
      expect(state.lastFailure).toMatch(/^wait for VM running failed: /);

      const afterStep = fake.calls.lastIndexOf('waitForVmRunning') + 1;
      const destroyAttempts = fake.calls.filter((c) => c === 'destroyVm').length;
      // Undos get a longer retry budget than forward steps before they are given up.
      expect(destroyAttempts).toBeGreaterThan(POLICY.maxAttempts);
      expect(fake.calls.slice(afterStep)).toEqual([
        ...times('destroyVm', destroyAttempts),
        'reportUndoFailures',
        'markProvisionFailed',
      ]);
      expect(fake.calls).not.toContain('releaseCapacity');
      expect(fake.argsOf('reportUndoFailures')).toEqual([
        [podId, jobId, [{ step: 'create VM', reason: expect.any(String) }], ['reserve capacity']],
      ]);
      const [failed] = fake.argsOf('markProvisionFailed');
      expect(failed?.[2]).toMatch(/^wait for VM running failed: /);
    });
  });

  it('runs the rollback to its end when the workflow is cancelled from the UI during it', async () => {
    const fake = fakeCloudPodActivities();
    fake.fail('createDnsRecord');
    const release = fake.block('destroyVm');
    const podId = 'pod_wf_cancel_rollback';
    try {
      await runWith(fake.activities, async () => {
        const { handle } = await startPod(podId);
        await waitFor(() => Promise.resolve(fake.calls.includes('destroyVm')), {
          what: 'the rollback to reach destroyVm',
        });
        await handle.cancel();
        // The undo is not cancelled: it finishes, and the ones after it still run.
        release();
        await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
        const afterStep = fake.calls.lastIndexOf('createDnsRecord') + 1;
        expect(fake.calls.slice(afterStep)).toEqual([
          'deleteDnsRecord',
          'destroyVm',
          'releaseCapacity',
          'markProvisionFailed',
        ]);
      });
    } finally {
      release();
    }
  });

  it('a terminate during provisioning stops it, rolls back what it did and terminates', async () => {
    const fake = fakeCloudPodActivities();
    const podId = 'pod_wf_terminate_provisioning';
    const terminateJob = `job_${podId}_terminate`;
    const release = fake.block('waitForVmRunning');
    try {
      const result = await runWith(fake.activities, async () => {
        const { handle, jobId } = await startPod(podId);
        await waitFor(() => Promise.resolve(fake.calls.includes('waitForVmRunning')), {
          what: 'provisioning to wait for the VM',
        });
        await handle.signal(terminateSignal, { jobId: terminateJob });
        const final = await handle.result();
        expect(fake.calls.slice(fake.calls.indexOf('waitForVmRunning') + 1)).toEqual([
          'destroyVm',
          'releaseCapacity',
          'finishJob',
          'beginJob',
          'destroyVm',
          'deleteDnsRecord',
          'releaseCapacity',
          'markPodTerminated',
        ]);
        expect(fake.argsOf('finishJob')).toEqual([
          [jobId, 'CANCELED', 'PROVISIONING', 'provisioning stopped: the pod was deleted'],
        ]);
        expect(fake.calls).not.toContain('markProvisionFailed');
        expect(fake.calls).not.toContain('takePreTerminationBackup');
        return final;
      });
      expect(result).toMatchObject({ status: 'TERMINATED' });
    } finally {
      release();
    }
  });

  it('a pod deleted before its provisioning began is terminated without being built', async () => {
    const fake = fakeCloudPodActivities();
    const podId = 'pod_wf_terminate_pending';
    const terminateJob = `job_${podId}_terminate`;
    const result = await runWith(fake.activities, async () => {
      // What DELETE does for a PENDING pod whose workflow never started.
      const input = podInput(podId);
      const handle = await client.workflow.signalWithStart<typeof cloudPod, [{ jobId: string }]>('cloudPod', {
        workflowId: workflowIds.cloudPod(podId),
        taskQueue: TASK_QUEUES.provisioning,
        args: [input],
        signal: terminateSignal,
        signalArgs: [{ jobId: terminateJob }],
      });
      started.push(handle);
      return handle.result();
    });
    expect(fake.calls).toEqual([
      'finishJob',
      'beginJob',
      'destroyVm',
      'deleteDnsRecord',
      'releaseCapacity',
      'markPodTerminated',
    ]);
    expect(fake.calls).not.toContain('reserveCapacity');
    expect(result).toMatchObject({ status: 'TERMINATED', provisionAttempts: 0 });
  });

  it('refuses a retry synchronously when the pod waits for none, and when the job is not the one waiting', async () => {
    const fake = fakeCloudPodActivities();
    fake.fail('createVm');
    const podId = 'pod_wf_retry_refused';
    await runWith(fake.activities, async () => {
      const { handle, jobId } = await startPod(podId);
      await awaitingRetry(handle, jobId);
      await expect(
        handle.executeUpdate(retryUpdate, { args: [{ jobId: 'job_someone_else' }] }),
      ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
      const before = fake.calls.length;
      fake.heal('createVm');
      await handle.executeUpdate(retryUpdate, { args: [{ jobId }] });
      await activeState(handle);
      expect(fake.calls.length).toBeGreaterThan(before);
      // ACTIVE now: nothing waits for a retry.
      const refused = handle.executeUpdate(retryUpdate, { args: [{ jobId }] });
      await expect(refused).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
      await expect(refused).rejects.toMatchObject({
        cause: { message: expect.stringMatching(/waits for no retry/) },
      });
    });
  });
});

describe('cloudPod operations', () => {
  it('rejects invalid plan changes without touching anything, then applies a valid one', async () => {
    const fake = fakeCloudPodActivities();
    const podId = 'pod_wf_plan';
    await runWith(fake.activities, async () => {
      const { handle } = await startPod(podId);
      await activeState(handle);
      const before = fake.calls.length;

      const rejected: { name: string; resources: Resources }[] = [
        { name: 'disk shrink', resources: { vcpu: 2, memoryMb: 4096, diskGb: SMALL.diskGb - 10 } },
        { name: 'same plan', resources: SMALL },
      ];
      for (const { name, resources } of rejected) {
        const jobId = `job_${podId}_${name.replace(' ', '_')}`;
        await expect(
          handle.executeUpdate(changePlanUpdate, { args: [{ jobId, productId: 'prod_x', resources }] }),
        ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
      }
      expect(fake.calls).toHaveLength(before);
      expect(await handle.query(podStateQuery)).toMatchObject({
        status: 'ACTIVE',
        resources: SMALL,
        queued: 0,
      });

      const jobId = `job_${podId}_upgrade`;
      const result = await handle.executeUpdate(changePlanUpdate, {
        args: [{ jobId, productId: 'prod_large', resources: LARGE }],
      });
      expect(result).toEqual({ jobId, resources: LARGE });
      expect(fake.calls.slice(before)).toEqual([
        'beginJob',
        'adjustReservation',
        'resizeVm',
        'applyPlan',
        'finishJob',
      ]);
      expect(fake.argsOf('adjustReservation')).toEqual([[podId, LARGE]]);
      expect(fake.argsOf('applyPlan')).toEqual([[podId, 'prod_large', LARGE]]);
      expect(fake.argsOf('finishJob')).toEqual([[jobId, 'COMPLETED', 'ACTIVE', null]]);
      expect(await handle.query(podStateQuery)).toMatchObject({
        status: 'ACTIVE',
        resources: LARGE,
        currentJob: null,
      });
    });
  });

  it('rejects a plan change while the pod is FAILED', async () => {
    const fake = fakeCloudPodActivities();
    fake.fail('reserveCapacity');
    const podId = 'pod_wf_plan_failed';
    await runWith(fake.activities, async () => {
      const { handle, jobId } = await startPod(podId);
      await awaitingRetry(handle, jobId);
      const before = fake.calls.length;
      await expect(
        handle.executeUpdate(changePlanUpdate, {
          args: [{ jobId: `job_${podId}_upgrade`, productId: 'prod_large', resources: LARGE }],
        }),
      ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
      expect(fake.calls).toHaveLength(before);
      expect(await handle.query(podStateQuery)).toMatchObject({
        status: 'FAILED',
        resources: SMALL,
        awaitingRetryOf: jobId,
        queued: 0,
      });
    });
  });

  it('serializes operations: a terminate signalled during a suspend starts only after the suspend finishes', async () => {
    const fake = fakeCloudPodActivities();
    const podId = 'pod_wf_serial';
    const suspendJob = `job_${podId}_suspend`;
    const terminateJob = `job_${podId}_terminate`;
    const release = fake.block('stopVm');
    try {
      const result = await runWith(fake.activities, async () => {
        const { handle } = await startPod(podId);
        await activeState(handle);
        const before = fake.calls.length;

        await handle.signal(suspendSignal, { jobId: suspendJob });
        await waitFor(() => Promise.resolve(fake.calls.includes('stopVm')), {
          what: 'stopVm to start',
        });
        await handle.signal(terminateSignal, { jobId: terminateJob });
        await stateWhen(
          handle,
          'the terminate to queue behind the suspend',
          (s) => s.queued === 1 && s.currentJob?.id === suspendJob,
        );
        expect(fake.calls.slice(before)).toEqual(['beginJob', 'stopVm']);

        release();
        const final = await handle.result();
        const ops = fake.calls.slice(before);
        expect(ops).toEqual([
          'beginJob',
          'stopVm',
          'lockVm',
          'finishJob',
          'beginJob',
          'takePreTerminationBackup',
          'destroyVm',
          'deleteDnsRecord',
          'releaseCapacity',
          'markPodTerminated',
        ]);
        const jobs = fake.argsOf('beginJob').slice(1);
        expect(jobs).toEqual([
          [suspendJob, 'UPDATING'],
          [terminateJob, 'TERMINATING'],
        ]);
        expect(fake.argsOf('finishJob')).toEqual([[suspendJob, 'COMPLETED', 'SUSPENDED', null]]);
        // Terminate's first activity comes after the suspend's job was closed.
        expect(ops.lastIndexOf('beginJob')).toBeGreaterThan(ops.indexOf('finishJob'));
        expect(fake.argsOf('takePreTerminationBackup')).toEqual([[podId, terminateJob]]);
        return final;
      });
      expect(result).toMatchObject({ status: 'TERMINATED', currentJob: null, queued: 0 });
    } finally {
      release();
    }
  });

  it('terminates a FAILED pod that awaits a retry without a pre-termination backup', async () => {
    const fake = fakeCloudPodActivities();
    fake.fail('createVm');
    const podId = 'pod_wf_terminate_failed';
    const terminateJob = `job_${podId}_terminate`;
    const result = await runWith(fake.activities, async () => {
      const { handle, jobId } = await startPod(podId);
      await awaitingRetry(handle, jobId);
      const before = fake.calls.length;
      await handle.signal(terminateSignal, { jobId: terminateJob });
      const final = await handle.result();
      expect(fake.calls.slice(before)).toEqual([
        'beginJob',
        'destroyVm',
        'deleteDnsRecord',
        'releaseCapacity',
        'markPodTerminated',
      ]);
      expect(fake.argsOf('markPodTerminated')).toEqual([[podId, terminateJob]]);
      const desc = await handle.describe();
      expect(desc.status.name).toBe('COMPLETED');
      expect(desc.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus)).toBe('TERMINATED');
      return final;
    });
    expect(fake.calls).not.toContain('takePreTerminationBackup');
    expect(result).toMatchObject({ status: 'TERMINATED', awaitingRetryOf: null });
  });

  it('terminate is forward-only: a failing DNS delete dead-letters it TERMINATING, and the retry finishes it', async () => {
    const fake = fakeCloudPodActivities();
    const podId = 'pod_wf_terminate_forward';
    const terminateJob = `job_${podId}_terminate`;
    await runWith(fake.activities, async () => {
      const { handle } = await startPod(podId);
      await activeState(handle);
      fake.fail('deleteDnsRecord');
      await handle.signal(terminateSignal, { jobId: terminateJob });
      const state = await stateWhen(
        handle,
        'the terminate to dead-letter',
        (s) => s.awaitingRetryOf === terminateJob,
      );
      expect(state.status).toBe('TERMINATING');
      expect(fake.argsOf('finishJob')).toEqual([
        [
          terminateJob,
          'DEAD_LETTER',
          'TERMINATING',
          expect.stringMatching(/^terminate: delete DNS record failed: /),
        ],
      ]);
      // Other operations are refused while the pod is half destroyed; the retry is the way forward.
      await expect(
        handle.executeUpdate(retryUpdate, { args: [{ jobId: 'job_not_waiting' }] }),
      ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
      fake.heal('deleteDnsRecord');
      const before = fake.calls.length;
      await handle.executeUpdate(retryUpdate, { args: [{ jobId: terminateJob }] });
      const final = await handle.result();
      expect(final.status).toBe('TERMINATED');
      // The backup is taken again only if a VM is left; the fake's activity decides, the workflow asks.
      expect(fake.calls.slice(before)).toEqual([
        'beginJob',
        'destroyVm',
        'deleteDnsRecord',
        'releaseCapacity',
        'markPodTerminated',
      ]);
    });
  });

  it('a plan change whose resize fails reverts the resize and then the reservation to what the VM has', async () => {
    const fake = fakeCloudPodActivities();
    const podId = 'pod_wf_plan_resize_fails';
    await runWith(fake.activities, async () => {
      const { handle } = await startPod(podId);
      await activeState(handle);
      fake.fail('resizeVm');
      const jobId = `job_${podId}_upgrade`;
      const before = fake.calls.length;
      await expect(
        handle.executeUpdate(changePlanUpdate, {
          args: [{ jobId, productId: 'prod_large', resources: LARGE }],
        }),
      ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
      expect(fake.calls.slice(before)).toEqual([
        'beginJob',
        'adjustReservation',
        ...times('resizeVm', POLICY.maxAttempts),
        'revertResize',
        'adjustReservation',
        'finishJob',
      ]);
      expect(fake.argsOf('revertResize')).toEqual([[podId, SMALL]]);
      expect(fake.argsOf('adjustReservation')).toEqual([
        [podId, LARGE],
        [podId, SMALL],
      ]);
      expect(fake.argsOf('finishJob')).toEqual([
        [jobId, 'ROLLED_BACK', 'ACTIVE', expect.stringMatching(/^plan change: resize VM failed: /)],
      ]);
      expect(await handle.query(podStateQuery)).toMatchObject({ status: 'ACTIVE', resources: SMALL });
    });
  });

  it('a suspension whose lock keeps failing starts the VM again and leaves the pod ACTIVE', async () => {
    const fake = fakeCloudPodActivities();
    const podId = 'pod_wf_suspend_lock_fails';
    const jobId = `job_${podId}_suspend`;
    await runWith(fake.activities, async () => {
      const { handle } = await startPod(podId);
      await activeState(handle);
      fake.fail('lockVm');
      const before = fake.calls.length;
      await handle.signal(suspendSignal, { jobId });
      await stateWhen(
        handle,
        'the suspension to roll back',
        (s) => s.currentJob === null && s.queued === 0 && fake.calls.includes('finishJob'),
      );
      expect(fake.calls.slice(before)).toEqual([
        'beginJob',
        'stopVm',
        ...times('lockVm', POLICY.maxAttempts),
        'startVm',
        'finishJob',
      ]);
      expect(fake.argsOf('finishJob')).toEqual([
        [jobId, 'ROLLED_BACK', 'ACTIVE', expect.stringMatching(/^suspend: lock VM failed: /)],
      ]);
      expect(await handle.query(podStateQuery)).toMatchObject({ status: 'ACTIVE', awaitingRetryOf: null });
    });
  });

  it('skips a job the API cancelled before the workflow took it, and takes a signal once', async () => {
    const fake = fakeCloudPodActivities();
    const podId = 'pod_wf_cancelled_job';
    const cancelledJob = `job_${podId}_suspend_cancelled`;
    const suspendJob = `job_${podId}_suspend`;
    await runWith(fake.activities, async () => {
      const { handle } = await startPod(podId);
      await activeState(handle);
      fake.cancelJob(cancelledJob);
      const before = fake.calls.length;
      await handle.signal(suspendSignal, { jobId: cancelledJob });
      await handle.signal(suspendSignal, { jobId: suspendJob });
      await handle.signal(suspendSignal, { jobId: suspendJob });
      await stateWhen(
        handle,
        'the pod to be SUSPENDED',
        (s) => s.status === 'SUSPENDED' && s.queued === 0 && s.currentJob === null,
      );
      expect(fake.calls.slice(before)).toEqual(['beginJob', 'beginJob', 'stopVm', 'lockVm', 'finishJob']);
      expect(fake.argsOf('beginJob').slice(-2)).toEqual([
        [cancelledJob, 'UPDATING'],
        [suspendJob, 'UPDATING'],
      ]);
    });
  });
});
