/** The pod workflow's state module: refusals, status plans, queue and retry bookkeeping, derived values. */
import { POD_STATUSES, type JobType, type PodStatus, type Resources } from '../../src/domain/cloudpods';
import {
  Pod,
  backsUpBeforeTerminate,
  podDetails,
  statusAfterFailure,
  statusPlan,
  statusSearchAttributes,
  type AtRestOperation,
} from '../../src/workflows/cloudpods-pod';
import type { CloudPodInput, CloudPodState } from '../../src/workflows/messages/cloudpods';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/shared';

const SMALL: Resources = { vcpu: 1, memoryMb: 1024, diskGb: 20 };
const LARGE: Resources = { vcpu: 2, memoryMb: 4096, diskGb: 40 };

function input(overrides: Partial<CloudPodInput> = {}): CloudPodInput {
  return {
    podId: 'pod_1',
    tenantId: 'ten_1',
    slug: 'web-1',
    resources: SMALL,
    provisionJobId: 'job_provision',
    policy: { retryInitialMs: 10, maxAttempts: 3, heartbeatTimeoutMs: 5000, retryWindowMs: 60000 },
    ...overrides,
  };
}

/** A pod in `status` with nothing queued or running. */
function podIn(status: PodStatus, resources: Resources = SMALL): Pod {
  return new Pod(input({ resume: { status, resources } }));
}

describe('Pod construction', () => {
  it('starts a new pod PENDING on its requested plan, with nothing queued', () => {
    expect(new Pod(input()).state).toEqual({
      podId: 'pod_1',
      status: 'PENDING',
      resources: SMALL,
      currentJob: null,
      queued: 0,
      awaitingRetryOf: null,
      lastFailure: null,
      provisionAttempts: 0,
    });
  });

  it('resumes a pod as the database has it', () => {
    const pod = podIn('SUSPENDED', LARGE);
    expect(pod.state).toMatchObject({ status: 'SUSPENDED', resources: LARGE });
  });

  it('carries state, queue and dead-lettered job across continueAsNew unchanged', () => {
    const state: CloudPodState = { ...new Pod(input()).state, status: 'ACTIVE', queued: 1 };
    const carried = {
      state,
      queue: [{ kind: 'SUSPEND' as const, jobId: 'job_s' }],
      deadLettered: { kind: 'BACKUP' as const, jobId: 'job_b', backupId: 'bak_1' },
    };
    const pod = new Pod(input({ carried }));
    expect(pod.state).toBe(state);
    expect(pod.carry()).toEqual(carried);
    // The carried queue is copied: the previous run's input is not mutated.
    expect(pod.next()).toEqual({ kind: 'SUSPEND', jobId: 'job_s' });
    expect(carried.queue).toHaveLength(1);
  });
});

describe('at-rest operations', () => {
  const kinds: AtRestOperation['kind'][] = ['SUSPEND', 'UNSUSPEND', 'BACKUP', 'RESTORE'];
  const refusedIn: PodStatus[] = ['FAILED', 'TERMINATED', 'TERMINATING'];
  const table = kinds.flatMap((kind) =>
    POD_STATUSES.map((status): [AtRestOperation['kind'], PodStatus, boolean] => [
      kind,
      status,
      refusedIn.includes(status),
    ]),
  );

  it.each(table)('%s on a %s pod is refused: %s', (kind, status, refused) => {
    const refusal = podIn(status).operationRefusal(kind);
    expect(refusal).toBe(refused ? `a ${status} pod cannot ${kind.toLowerCase()}` : undefined);
  });
});

describe('plan change refusals', () => {
  const args = (resources: Resources) => ({ jobId: 'job_p', productId: 'prod_pro', resources });

  it('accepts a larger plan on an idle ACTIVE pod', () => {
    expect(podIn('ACTIVE').planChangeRefusal(args(LARGE))).toBeUndefined();
  });

  it('refuses while another operation is queued or running', () => {
    const queued = podIn('ACTIVE');
    queued.enqueue({ kind: 'BACKUP', jobId: 'job_b', backupId: 'bak_1' });
    expect(queued.planChangeRefusal(args(LARGE))).toBe('another operation is in progress on this pod');
    const running = podIn('ACTIVE');
    running.startJob('job_b', 'BACKUP');
    expect(running.planChangeRefusal(args(LARGE))).toBe('another operation is in progress on this pod');
  });

  it('refuses what the domain rules refuse: a pod not ACTIVE, a shrinking disk, the same plan', () => {
    expect(podIn('SUSPENDED').planChangeRefusal(args(LARGE))).toBe(
      'the pod is SUSPENDED; plans change only on ACTIVE pods',
    );
    expect(podIn('ACTIVE', LARGE).planChangeRefusal(args(SMALL))).toMatch(/^disks cannot shrink/);
    expect(podIn('ACTIVE').planChangeRefusal(args(SMALL))).toBe(
      'the target plan has the same limits as the current one',
    );
  });

  it('hands each outcome to its update once', () => {
    const pod = podIn('ACTIVE');
    expect(pod.isPlanChangeSettled('job_p')).toBe(false);
    pod.settlePlanChange('job_p', { ok: true, resources: LARGE });
    expect(pod.isPlanChangeSettled('job_p')).toBe(true);
    expect(pod.takePlanChangeOutcome('job_p')).toEqual({ ok: true, resources: LARGE });
    expect(pod.isPlanChangeSettled('job_p')).toBe(false);
    expect(pod.takePlanChangeOutcome('job_p')).toBeUndefined();
  });
});

describe('status plans', () => {
  const table: [JobType, PodStatus, PodStatus, PodStatus][] = [
    ['PROVISION', 'PENDING', 'PROVISIONING', 'ACTIVE'],
    ['PROVISION', 'FAILED', 'PROVISIONING', 'ACTIVE'],
    ['CHANGE_PLAN', 'ACTIVE', 'UPDATING', 'ACTIVE'],
    ['SUSPEND', 'ACTIVE', 'UPDATING', 'SUSPENDED'],
    ['UNSUSPEND', 'SUSPENDED', 'UPDATING', 'ACTIVE'],
    ['TERMINATE', 'ACTIVE', 'TERMINATING', 'TERMINATED'],
    ['TERMINATE', 'FAILED', 'TERMINATING', 'TERMINATED'],
    ['BACKUP', 'ACTIVE', 'ACTIVE', 'ACTIVE'],
    ['BACKUP', 'SUSPENDED', 'SUSPENDED', 'SUSPENDED'],
    ['RESTORE', 'SUSPENDED', 'SUSPENDED', 'SUSPENDED'],
  ];

  it.each(table)('%s from %s runs %s and succeeds %s', (kind, before, during, succeeded) => {
    expect(statusPlan(kind, before)).toEqual({ during, succeeded });
  });
});

describe('status after a failure', () => {
  const table: [string, JobType, PodStatus, Parameters<typeof statusAfterFailure>[2], PodStatus][] = [
    ['a failed provisioning', 'PROVISION', 'PROVISIONING', {}, 'FAILED'],
    ['a rolled-back plan change', 'CHANGE_PLAN', 'UPDATING', { undone: true }, 'ACTIVE'],
    ['a dead-lettered plan change', 'CHANGE_PLAN', 'UPDATING', { undone: false }, 'ACTIVE'],
    ['a rolled-back suspend', 'SUSPEND', 'ACTIVE', { undone: true }, 'ACTIVE'],
    ['a suspend whose stop was not undone', 'SUSPEND', 'ACTIVE', { undone: false }, 'SUSPENDED'],
    ['a terminate failing before destruction', 'TERMINATE', 'ACTIVE', { destroying: false }, 'ACTIVE'],
    ['a terminate failing during destruction', 'TERMINATE', 'ACTIVE', { destroying: true }, 'TERMINATING'],
    ['a retried terminate', 'TERMINATE', 'TERMINATING', { destroying: false }, 'TERMINATING'],
    ['a failed unsuspend', 'UNSUSPEND', 'SUSPENDED', {}, 'SUSPENDED'],
    ['a failed backup', 'BACKUP', 'ACTIVE', {}, 'ACTIVE'],
    ['a failed restore', 'RESTORE', 'SUSPENDED', {}, 'SUSPENDED'],
  ];

  it.each(table)('%s leaves the pod as the VM is', (_name, kind, before, facts, after) => {
    expect(statusAfterFailure(kind, before, facts)).toBe(after);
  });

  it.each(
    POD_STATUSES.map((s): [PodStatus, boolean] => [s, ['ACTIVE', 'SUSPENDED', 'UPDATING'].includes(s)]),
  )('a terminate of a %s pod backs it up first: %s', (status, backsUp) => {
    expect(backsUpBeforeTerminate(status)).toBe(backsUp);
  });
});

describe('queue', () => {
  it('keeps one entry per job: signals are delivered at least once', () => {
    const pod = podIn('ACTIVE');
    pod.enqueue({ kind: 'SUSPEND', jobId: 'job_s' });
    pod.enqueue({ kind: 'SUSPEND', jobId: 'job_s' });
    expect(pod.state.queued).toBe(1);
    pod.startJob('job_u', 'UNSUSPEND');
    pod.enqueue({ kind: 'UNSUSPEND', jobId: 'job_u' });
    expect(pod.state.queued).toBe(1);
  });

  it('hands operations out oldest first and counts what waits', () => {
    const pod = podIn('ACTIVE');
    pod.enqueue({ kind: 'BACKUP', jobId: 'job_b', backupId: 'bak_1' });
    pod.enqueue({ kind: 'TERMINATE', jobId: 'job_t' });
    expect(pod.hasWork()).toBe(true);
    expect(pod.terminateQueued()).toBe(true);
    expect(pod.next()?.jobId).toBe('job_b');
    expect(pod.state.queued).toBe(1);
    expect(pod.next()?.jobId).toBe('job_t');
    expect(pod.next()).toBeUndefined();
    expect(pod.state.queued).toBe(0);
    expect(pod.hasWork()).toBe(false);
  });

  it('closes the queue of a terminated pod, leaving the recorded count as it was', () => {
    const pod = podIn('TERMINATED');
    pod.enqueue({ kind: 'SUSPEND', jobId: 'job_s' });
    pod.enqueue({ kind: 'BACKUP', jobId: 'job_b', backupId: 'bak_1' });
    expect(pod.closeQueue().map((op) => op.jobId)).toEqual(['job_s', 'job_b']);
    expect(pod.hasWork()).toBe(false);
    expect(pod.state.queued).toBe(2);
  });
});

describe('operator retry', () => {
  /** A FAILED pod whose provisioning job `job_p` waits for a retry. */
  function failedPod(): Pod {
    const pod = podIn('FAILED');
    pod.awaitRetry({ kind: 'PROVISION', jobId: 'job_p' });
    return pod;
  }

  it('accepts the retry of the job that waits, once', () => {
    const pod = failedPod();
    expect(pod.state.awaitingRetryOf).toBe('job_p');
    expect(pod.retryRefusal('job_p')).toBeUndefined();
    pod.requestRetry('job_p');
    expect(pod.hasWork()).toBe(true);
    expect(pod.retryRefusal('job_p')).toBe('a retry of job job_p is already under way');
    expect(pod.takeRetry()).toEqual({ kind: 'PROVISION', jobId: 'job_p' });
    expect(pod.hasWork()).toBe(false);
  });

  it('refuses a retry on a terminated pod, a pod waiting for none, and of another job', () => {
    expect(podIn('TERMINATED').retryRefusal('job_p')).toBe('the pod is TERMINATED; nothing can be retried');
    expect(podIn('ACTIVE').retryRefusal('job_p')).toBe('the pod is ACTIVE and waits for no retry');
    expect(failedPod().retryRefusal('job_x')).toBe('job job_x is not the job waiting for a retry (job_p is)');
  });

  it('consumes a request whose job no longer waits without running anything', () => {
    const pod = failedPod();
    pod.requestRetry('job_p');
    pod.awaitRetry(null);
    expect(pod.takeRetry()).toBeUndefined();
    expect(pod.hasWork()).toBe(false);
  });

  it('lets a new job supersede the dead-lettered one', () => {
    const pod = failedPod();
    const waiting = pod.supersedeRetry();
    expect(waiting).toEqual({ kind: 'PROVISION', jobId: 'job_p' });
    expect(pod.state.awaitingRetryOf).toBeNull();
    pod.keepRetryable(waiting, { kind: 'TERMINATE', jobId: 'job_t' }, false);
    expect(pod.state.awaitingRetryOf).toBeNull();
  });

  it('keeps a retried job retryable when its row was not taken (cancelled meanwhile)', () => {
    const pod = failedPod();
    const waiting = pod.supersedeRetry();
    pod.keepRetryable(waiting, { kind: 'PROVISION', jobId: 'job_p' }, false);
    expect(pod.state.awaitingRetryOf).toBe('job_p');
    expect(pod.carry().deadLettered).toEqual({ kind: 'PROVISION', jobId: 'job_p' });
  });

  it('does not restore a retried job that was taken', () => {
    const pod = failedPod();
    const waiting = pod.supersedeRetry();
    pod.keepRetryable(waiting, { kind: 'PROVISION', jobId: 'job_p' }, true);
    expect(pod.state.awaitingRetryOf).toBeNull();
  });
});

describe('state changes', () => {
  it('moves to a status and returns the search attribute update recording it', () => {
    const pod = podIn('ACTIVE');
    expect(pod.enter('UPDATING')).toEqual([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'UPDATING' }]);
    expect(pod.state.status).toBe('UPDATING');
  });

  it('tracks the current job, provisioning attempts, the last failure and the plan', () => {
    const pod = new Pod(input());
    pod.startJob('job_p', 'PROVISION');
    expect(pod.state.currentJob).toEqual({ id: 'job_p', type: 'PROVISION' });
    pod.countProvisionAttempt();
    pod.recordProvisioning('create VM failed');
    expect(pod.state).toMatchObject({ provisionAttempts: 1, lastFailure: 'create VM failed' });
    pod.recordProvisioning(null);
    pod.applyPlan(LARGE);
    pod.endJob();
    expect(pod.state).toMatchObject({ currentJob: null, lastFailure: null, resources: LARGE });
  });
});

describe('derived values', () => {
  it('makes the status searchable under PodplaneStatus', () => {
    expect(statusSearchAttributes('SUSPENDED')).toEqual([
      { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'SUSPENDED' },
    ]);
    expect(SEARCH_ATTRIBUTES.PodplaneStatus.name).toBe('PodplaneStatus');
  });

  it('words the current details as the Temporal UI shows them', () => {
    expect(podDetails.atRest(podIn('ACTIVE', LARGE).state)).toBe('ACTIVE — plan 2 vCPU / 4096 MB / 40 GB');
    expect(podDetails.rollingBack('create VM')).toBe('Rolling back: undoing create VM');
    expect(podDetails.provisionFailed('create VM failed: boom')).toBe(
      'FAILED — create VM failed: boom. Waiting for an operator retry.',
    );
    expect(podDetails.awaitingRetry('terminate: destroy VM failed: boom')).toBe(
      'terminate: destroy VM failed: boom. Waiting for an operator retry.',
    );
    expect(podDetails.retryWindowPassed).toBe('FAILED — the retry window passed without an operator retry');
    expect(podDetails.terminated).toBe('TERMINATED');
  });
});
