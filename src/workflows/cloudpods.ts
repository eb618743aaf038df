/**
 * `cloudPod` — `cloudpod-<podId>`: the entity workflow of one CloudPod for its whole life.
 * First the provisioning saga (reserve → VM → running → DNS → ACTIVE) with an undo registered
 * after each step; a step that exhausts its retries rolls back in reverse and dead-letters the job,
 * then the workflow waits for an operator's retry. Once ACTIVE it serves one operation at a time:
 * plan change (update), suspend, unsuspend, terminate, backup, restore (signals).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CloudPodActivities } from '../activities/cloudpods';
import { planChangeProblem, type PodStatus, type Resources } from '../domain/cloudpods';
import { FAILURE_TYPES } from '../domain/errors';
import {
  SEARCH_ATTRIBUTES,
  backupSignal,
  changePlanUpdate,
  podStateQuery,
  restoreSignal,
  retrySignal,
  suspendSignal,
  terminateSignal,
  unsuspendSignal,
  type ChangePlanArgs,
  type ChangePlanResult,
  type CloudPodInput,
  type CloudPodState,
  type PodOperation,
} from './shared';

interface Undo {
  step: string;
  run: () => Promise<unknown>;
}

/** A readable reason: the step's own failure message, never a stack. */
function describe(err: unknown): string {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure && cause.type) return `${cause.message} (${cause.type})`;
  return cause instanceof Error ? cause.message : String(cause);
}

export async function cloudPod(input: CloudPodInput): Promise<CloudPodState> {
  const { podId, policy } = input;
  const stepRetry = {
    initialInterval: policy.retryInitialMs,
    backoffCoefficient: 5,
    maximumInterval: policy.retryInitialMs * 15,
    maximumAttempts: policy.maxAttempts,
  };
  const steps = proxyActivities<CloudPodActivities>({
    startToCloseTimeout: '15 minutes',
    heartbeatTimeout: policy.heartbeatTimeoutMs,
    retry: stepRetry,
  });
  // Undo steps get a longer budget; one that still fails is reported loudly, not swallowed.
  const undos = proxyActivities<CloudPodActivities>({
    startToCloseTimeout: '15 minutes',
    heartbeatTimeout: policy.heartbeatTimeoutMs,
    retry: { ...stepRetry, maximumAttempts: Math.max(10, policy.maxAttempts) },
  });
  // Bookkeeping writes to our own database retry until they land.
  const books = proxyActivities<CloudPodActivities>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
  });

  const state: CloudPodState = input.carried?.state ?? {
    podId,
    status: 'PENDING',
    resources: input.resources,
    currentJob: null,
    queued: 0,
    awaitingRetryOf: null,
    lastFailure: null,
    provisionAttempts: 0,
  };
  const queue: PodOperation[] = input.carried ? [...input.carried.queue] : [];
  const planResults = new Map<string, { ok: true; resources: Resources } | { ok: false; reason: string }>();
  let retryJobId: string | undefined;

  const setStatus = (status: PodStatus) => {
    state.status = status;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: status }]);
  };
  const enqueue = (op: PodOperation) => {
    queue.push(op);
    state.queued = queue.length;
  };

  setHandler(podStateQuery, () => state);
  setHandler(retrySignal, ({ jobId }) => {
    retryJobId = jobId;
  });
  setHandler(suspendSignal, ({ jobId }) => enqueue({ kind: 'SUSPEND', jobId }));
  setHandler(unsuspendSignal, ({ jobId }) => enqueue({ kind: 'UNSUSPEND', jobId }));
  setHandler(terminateSignal, ({ jobId }) => enqueue({ kind: 'TERMINATE', jobId }));
  setHandler(backupSignal, ({ jobId, backupId }) => enqueue({ kind: 'BACKUP', jobId, backupId }));
  setHandler(restoreSignal, ({ jobId, backupId }) => enqueue({ kind: 'RESTORE', jobId, backupId }));
  setHandler(
    changePlanUpdate,
    async (args): Promise<ChangePlanResult> => {
      enqueue({ kind: 'CHANGE_PLAN', ...args });
      await condition(() => planResults.has(args.jobId));
      const result = planResults.get(args.jobId);
      planResults.delete(args.jobId);
      if (!result?.ok)
        throw ApplicationFailure.nonRetryable(
          result?.reason ?? 'plan change failed',
          FAILURE_TYPES.invalidPlanChange,
        );
      return { jobId: args.jobId, resources: result.resources };
    },
    {
      // Rejected updates never reach history: nothing changes.
      validator: (args: ChangePlanArgs) => {
        if (state.currentJob || queue.length > 0)
          throw new Error('another operation is in progress on this pod');
        const problem = planChangeProblem(state.status, state.resources, args.resources);
        if (problem) throw new Error(problem);
      },
    },
  );

  async function compensate(undo: Undo[]): Promise<void> {
    for (const u of [...undo].reverse()) {
      setCurrentDetails(`Rolling back: undoing ${u.step}`);
      try {
        await u.run();
      } catch (err) {
        await books.reportUndoFailure(podId, u.step, describe(err));
      }
    }
  }

  async function provision(jobId: string): Promise<boolean> {
    state.currentJob = { id: jobId, type: 'PROVISION' };
    state.provisionAttempts += 1;
    await books.beginJob(jobId, 'PROVISIONING');
    setStatus('PROVISIONING');
    const undo: Undo[] = [];
    let step = 'reserve capacity';
    try {
      setCurrentDetails('Reserving node capacity');
      const { nodeName } = await steps.reserveCapacity(podId);
      undo.push({ step, run: () => undos.releaseCapacity(podId) });

      step = 'create VM';
      setCurrentDetails(`Creating the VM on ${nodeName}`);
      await steps.createVm(podId);
      undo.push({ step, run: () => undos.destroyVm(podId) });

      step = 'wait for VM running';
      setCurrentDetails('Waiting for the VM to run');
      await steps.waitForVmRunning(podId);

      step = 'create DNS record';
      setCurrentDetails('Publishing the DNS record');
      await steps.createDnsRecord(podId);
      undo.push({ step, run: () => undos.deleteDnsRecord(podId) });

      await books.markPodActive(podId, jobId);
      state.lastFailure = null;
      setStatus('ACTIVE');
      setCurrentDetails('ACTIVE');
      return true;
    } catch (err) {
      const reason = `${step} failed: ${describe(err)}`;
      await compensate(undo);
      await books.markProvisionFailed(podId, jobId, reason);
      state.lastFailure = reason;
      setStatus('FAILED');
      setCurrentDetails(`FAILED — ${reason}. Waiting for an operator retry.`);
      return false;
    } finally {
      state.currentJob = null;
    }
  }

  async function changePlan(op: Extract<PodOperation, { kind: 'CHANGE_PLAN' }>): Promise<void> {
    const before = state.resources;
    const problem = planChangeProblem(state.status, before, op.resources);
    if (problem) {
      await books.finishJob(op.jobId, 'CANCELED', state.status, problem);
      planResults.set(op.jobId, { ok: false, reason: problem });
      return;
    }
    await books.beginJob(op.jobId, 'UPDATING');
    setStatus('UPDATING');
    const undo: Undo[] = [];
    let step = 'reserve capacity';
    try {
      setCurrentDetails('Reserving capacity for the new plan');
      await steps.adjustReservation(podId, op.resources);
      undo.push({ step, run: () => undos.adjustReservation(podId, before) });
      step = 'resize VM';
      setCurrentDetails('Resizing the VM');
      await steps.resizeVm(podId, op.resources);
      await books.applyPlan(podId, op.productId, op.resources);
      await books.finishJob(op.jobId, 'COMPLETED', 'ACTIVE', null);
      state.resources = op.resources;
      setStatus('ACTIVE');
      planResults.set(op.jobId, { ok: true, resources: op.resources });
    } catch (err) {
      const reason = `plan change: ${step} failed: ${describe(err)}`;
      await compensate(undo);
      await books.finishJob(op.jobId, 'ROLLED_BACK', 'ACTIVE', reason);
      setStatus('ACTIVE');
      planResults.set(op.jobId, { ok: false, reason });
    }
  }

  async function terminate(jobId: string): Promise<void> {
    const before = state.status;
    await books.beginJob(jobId, 'TERMINATING');
    setStatus('TERMINATING');
    let step = 'pre-termination backup';
    try {
      // A pod that never came up has nothing to back up.
      if (before === 'ACTIVE' || before === 'SUSPENDED') {
        setCurrentDetails('Taking the pre-termination backup');
        await steps.takeBackup(podId, { preTerminationJobId: jobId });
      }
      step = 'destroy VM';
      setCurrentDetails('Destroying the VM');
      await steps.destroyVm(podId);
      step = 'delete DNS record';
      setCurrentDetails('Deleting the DNS record');
      await steps.deleteDnsRecord(podId);
      step = 'release capacity';
      await steps.releaseCapacity(podId);
      await books.markPodTerminated(podId, jobId);
      setStatus('TERMINATED');
      setCurrentDetails('TERMINATED');
    } catch (err) {
      const reason = `terminate: ${step} failed: ${describe(err)}`;
      await books.finishJob(jobId, 'DEAD_LETTER', before, reason);
      setStatus(before);
      setCurrentDetails(reason);
    }
  }

  /** Suspend, unsuspend, backup, restore: one activity each, status restored on failure. */
  async function simpleOperation(
    op: Exclude<PodOperation, { kind: 'CHANGE_PLAN' | 'TERMINATE' }>,
  ): Promise<void> {
    const before = state.status;
    const plan: Record<typeof op.kind, { during: PodStatus; after: PodStatus; details: string }> = {
      SUSPEND: { during: 'UPDATING', after: 'SUSPENDED', details: 'Stopping and locking the VM' },
      UNSUSPEND: { during: 'UPDATING', after: 'ACTIVE', details: 'Unlocking and starting the VM' },
      BACKUP: { during: before, after: before, details: 'Taking a backup' },
      RESTORE: { during: before, after: before, details: 'Restoring a backup' },
    };
    const { during, after, details } = plan[op.kind];
    await books.beginJob(op.jobId, during);
    setStatus(during);
    setCurrentDetails(details);
    try {
      if (op.kind === 'SUSPEND') await steps.suspendVm(podId);
      else if (op.kind === 'UNSUSPEND') await steps.unsuspendVm(podId);
      else if (op.kind === 'BACKUP') await steps.takeBackup(podId, { backupId: op.backupId });
      else await steps.restoreBackup(podId, op.backupId);
      await books.finishJob(op.jobId, 'COMPLETED', after, null);
      setStatus(after);
    } catch (err) {
      const reason = `${op.kind.toLowerCase()} failed: ${describe(err)}`;
      if (op.kind === 'BACKUP') await books.markBackupFailed(op.backupId);
      await books.finishJob(op.jobId, 'DEAD_LETTER', before, reason);
      setStatus(before);
    }
    setCurrentDetails(state.status);
  }

  async function runOperation(op: PodOperation): Promise<void> {
    state.currentJob = { id: op.jobId, type: op.kind };
    try {
      if (op.kind === 'CHANGE_PLAN') await changePlan(op);
      else if (op.kind === 'TERMINATE') await terminate(op.jobId);
      else if (state.status === 'FAILED' || state.status === 'TERMINATED') {
        await books.finishJob(
          op.jobId,
          'CANCELED',
          state.status,
          `a ${state.status} pod cannot ${op.kind.toLowerCase()}`,
        );
      } else await simpleOperation(op);
    } finally {
      state.currentJob = null;
    }
  }

  if (!input.carried) {
    // A retry that came with the start (signalWithStart once the retry window has passed) asks for
    // this very attempt; left set, a failure would start a second attempt nobody asked for.
    retryJobId = undefined;
    let jobId = input.provisionJobId;
    while (!(await provision(jobId))) {
      state.awaitingRetryOf = jobId;
      const woke = await condition(
        () => retryJobId !== undefined || queue.some((op) => op.kind === 'TERMINATE'),
        policy.retryWindowMs,
      );
      state.awaitingRetryOf = null;
      if (!woke) {
        setCurrentDetails('FAILED — the retry window passed without an operator retry');
        return state;
      }
      if (retryJobId === undefined) break;
      jobId = retryJobId;
      retryJobId = undefined;
    }
  }

  for (;;) {
    await condition(() => queue.length > 0 || workflowInfo().continueAsNewSuggested);
    const op = queue.shift();
    state.queued = queue.length;
    if (!op) {
      // History is long: carry the state into a fresh run once every handler is done.
      await condition(allHandlersFinished);
      return continueAsNew<typeof cloudPod>({ ...input, carried: { state, queue } });
    }
    await runOperation(op);
    if (state.status === 'TERMINATED') {
      await condition(allHandlersFinished);
      return state;
    }
  }
}
