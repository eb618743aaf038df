/**
 * `cloudPod` — `cloudpod-<podId>`: the entity workflow of one CloudPod for its whole life.
 *
 * First the provisioning saga (reserve → VM → running → DNS → ACTIVE). Each step registers its undo
 * *before* it runs, because a step can take effect at the provider and still fail; undos are
 * idempotent. A step that exhausts its retries rolls back in reverse — an undo whose prerequisite
 * undo failed is not run, so nothing lies about a VM that still runs — and dead-letters the job.
 * Compensation and its bookkeeping run in a non-cancellable scope.
 *
 * Then it serves one operation at a time: plan change (update), suspend, unsuspend, terminate,
 * backup, restore (signals). Any dead-lettered job waits for the operator's `retry` update.
 * Terminate is forward-only once destruction has begun, and a terminate that arrives while the pod
 * is still being provisioned stops the provisioning, rolls it back and terminates.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CloudPodActivities } from '../activities/cloudpods';
import { planChangeProblem, type PodStatus, type Resources } from '../domain/cloudpods';
import { FAILURE_TYPES } from '../domain/errors';
import { SEARCH_ATTRIBUTES } from './shared';
import {
  backupSignal,
  changePlanUpdate,
  podStateQuery,
  restoreSignal,
  retryUpdate,
  suspendSignal,
  terminateSignal,
  unsuspendSignal,
  type ChangePlanArgs,
  type ChangePlanResult,
  type CloudPodInput,
  type CloudPodState,
  type PodOperation,
  type RetryableJob,
} from './messages/cloudpods';
import { Saga } from './saga';

/** Failure types whose message is written for the tenant; anything else is summarized. */
const READABLE_TYPES: readonly string[] = Object.values(FAILURE_TYPES);

/** What an activity failure is about: the failure its last attempt raised. */
function rootCause(err: unknown): unknown {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  return cause;
}

/** A readable reason for the tenant: business and provider refusals verbatim, anything else summarized. */
function describe(err: unknown): string {
  const cause = rootCause(err);
  if (cause instanceof ApplicationFailure && cause.type && READABLE_TYPES.includes(cause.type))
    return cause.message;
  return 'it kept failing after its retries (the operator view of the job has the details)';
}

export async function cloudPod(input: CloudPodInput): Promise<CloudPodState> {
  const { podId, policy } = input;
  const stepRetry = {
    initialInterval: policy.retryInitialMs,
    backoffCoefficient: 5,
    maximumInterval: policy.retryInitialMs * 15,
    maximumAttempts: policy.maxAttempts,
  };
  // A cancelled step is waited for: an undo must never race the step it undoes.
  const steps = proxyActivities<CloudPodActivities>({
    startToCloseTimeout: '15 minutes',
    heartbeatTimeout: policy.heartbeatTimeoutMs,
    retry: stepRetry,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
  // Undo steps get a longer budget; one that still fails is recorded and raised, never swallowed.
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
    status: input.resume?.status ?? 'PENDING',
    resources: input.resume?.resources ?? input.resources,
    currentJob: null,
    queued: 0,
    awaitingRetryOf: null,
    lastFailure: null,
    provisionAttempts: 0,
  };
  const queue: PodOperation[] = input.carried ? [...input.carried.queue] : [];
  let deadLettered: RetryableJob | null = input.carried?.deadLettered ?? null;
  const planResults = new Map<string, { ok: true; resources: Resources } | { ok: false; reason: string }>();
  /** the job id whose retry the operator asked for (validated against `deadLettered`) */
  let retryRequested: string | undefined;
  /** the scope of a running provisioning saga: a terminate cancels it */
  let provisioning: CancellationScope | null = null;
  let stoppedByTerminate = false;
  /** whether the running job was taken (its row QUEUED → RUNNING); a cancelled job is not */
  let began = false;
  const begin = async (jobId: string, podStatus: PodStatus) =>
    (began = await books.beginJob(jobId, podStatus));

  const setStatus = (status: PodStatus) => {
    state.status = status;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: status }]);
  };
  /** The current details at rest: the status and the plan the pod has now (the static details name no plan). */
  const showStatus = () => {
    const r = state.resources;
    setCurrentDetails(`${state.status} — plan ${r.vcpu} vCPU / ${r.memoryMb} MB / ${r.diskGb} GB`);
  };
  /** Signals are delivered at least once (the sweeper re-sends queued jobs): one entry per job. */
  const enqueue = (op: PodOperation) => {
    if (queue.some((q) => q.jobId === op.jobId) || state.currentJob?.id === op.jobId) return;
    queue.push(op);
    state.queued = queue.length;
  };
  const awaitRetry = (job: RetryableJob | null) => {
    deadLettered = job;
    state.awaitingRetryOf = job?.jobId ?? null;
  };

  setHandler(podStateQuery, () => state);
  setHandler(
    retryUpdate,
    ({ jobId }) => {
      retryRequested = jobId;
      return { jobId };
    },
    {
      validator: ({ jobId }: { jobId: string }) => {
        if (state.status === 'TERMINATED') throw new Error('the pod is TERMINATED; nothing can be retried');
        if (!state.awaitingRetryOf) throw new Error(`the pod is ${state.status} and waits for no retry`);
        if (state.awaitingRetryOf !== jobId)
          throw new Error(`job ${jobId} is not the job waiting for a retry (${state.awaitingRetryOf} is)`);
        if (retryRequested !== undefined) throw new Error(`a retry of job ${jobId} is already under way`);
      },
    },
  );
  setHandler(suspendSignal, ({ jobId }) => enqueue({ kind: 'SUSPEND', jobId }));
  setHandler(unsuspendSignal, ({ jobId }) => enqueue({ kind: 'UNSUSPEND', jobId }));
  setHandler(terminateSignal, ({ jobId }) => {
    enqueue({ kind: 'TERMINATE', jobId });
    // A pod still coming up: stop the provisioning; it rolls back, then the terminate runs.
    if (provisioning) {
      stoppedByTerminate = true;
      provisioning.cancel();
    }
  });
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

  /**
   * Runs the undos in reverse, each retried on its own budget. An undo whose prerequisite failed is
   * skipped; every failure is recorded on the job and raised as a CRITICAL ops event.
   * Returns whether everything was undone.
   */
  /** Undoes the saga's steps; a failed undo is recorded on the job and as an ops event. */
  async function compensate(jobId: string, saga: Saga): Promise<boolean> {
    const { failed, skipped } = await saga.compensate(
      (step) => setCurrentDetails(`Rolling back: undoing ${step}`),
      (err) => {
        // Undo bookkeeping keeps the raw message: it is operator-only.
        const cause = rootCause(err);
        return cause instanceof Error ? cause.message : String(cause);
      },
    );
    if (failed.length === 0) return true;
    await books.reportUndoFailures(podId, jobId, failed, skipped);
    return false;
  }

  async function provision(jobId: string): Promise<void> {
    state.currentJob = { id: jobId, type: 'PROVISION' };
    if (queue.some((op) => op.kind === 'TERMINATE')) {
      // Deleted before provisioning started: nothing to build, nothing to undo.
      await books.finishJob(jobId, 'CANCELED', state.status, 'the pod was deleted before it was provisioned');
      return;
    }
    if (!(await begin(jobId, 'PROVISIONING'))) return;
    state.provisionAttempts += 1;
    setStatus('PROVISIONING');
    const saga = new Saga('reserve capacity');
    const scope = new CancellationScope();
    provisioning = scope;
    stoppedByTerminate = false;
    try {
      await scope.run(async () => {
        setCurrentDetails('Reserving node capacity');
        // Capacity a VM still holds must not be released when that VM could not be destroyed.
        const { nodeName } = await saga.step('reserve capacity', () => steps.reserveCapacity(podId), {
          run: () => undos.releaseCapacity(podId),
          needs: 'create VM',
        });
        setCurrentDetails(`Creating the VM on ${nodeName}`);
        await saga.step('create VM', () => steps.createVm(podId), { run: () => undos.destroyVm(podId) });
        setCurrentDetails('Waiting for the VM to run');
        await saga.step('wait for VM running', () => steps.waitForVmRunning(podId));
        setCurrentDetails('Publishing the DNS record');
        await saga.step('create DNS record', () => steps.createDnsRecord(podId), {
          run: () => undos.deleteDnsRecord(podId),
        });
      });
      provisioning = null;
      await books.markPodActive(podId, jobId);
      state.lastFailure = null;
      setStatus('ACTIVE');
      showStatus();
    } catch (err) {
      provisioning = null;
      const byTerminate = stoppedByTerminate && isCancellation(err);
      const reason = byTerminate
        ? 'provisioning stopped: the pod was deleted'
        : isCancellation(err)
          ? `${saga.current} cancelled by an operator`
          : `${saga.current} failed: ${describe(err)}`;
      await CancellationScope.nonCancellable(async () => {
        await compensate(jobId, saga);
        if (byTerminate) {
          await books.finishJob(jobId, 'CANCELED', 'PROVISIONING', reason);
          return;
        }
        await books.markProvisionFailed(podId, jobId, reason);
        state.lastFailure = reason;
        setStatus('FAILED');
        setCurrentDetails(`FAILED — ${reason}. Waiting for an operator retry.`);
        awaitRetry({ kind: 'PROVISION', jobId });
      });
      // Cancelled from the UI: the rollback is done; the workflow ends cancelled.
      if (isCancellation(err) && !byTerminate) throw err;
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
    if (!(await begin(op.jobId, 'UPDATING'))) {
      planResults.set(op.jobId, { ok: false, reason: 'the plan change was cancelled before it started' });
      return;
    }
    setStatus('UPDATING');
    const saga = new Saga('reserve capacity');
    /** what the VM has after a reverted resize (a grown disk cannot shrink back) */
    let revertedTo: Resources = before;
    try {
      setCurrentDetails('Reserving capacity for the new plan');
      await saga.step('reserve capacity', () => steps.adjustReservation(podId, op.resources), {
        run: () => undos.adjustReservation(podId, revertedTo),
        needs: 'resize VM',
      });
      setCurrentDetails('Resizing the VM');
      await saga.step('resize VM', () => steps.resizeVm(podId, op.resources), {
        run: async () => {
          revertedTo = await undos.revertResize(podId, before);
        },
      });
      await books.applyPlan(podId, op.productId, op.resources);
      await books.finishJob(op.jobId, 'COMPLETED', 'ACTIVE', null);
      state.resources = op.resources;
      setStatus('ACTIVE');
      showStatus();
      planResults.set(op.jobId, { ok: true, resources: op.resources });
    } catch (err) {
      const reason = `plan change: ${saga.current} failed: ${describe(err)}`;
      await CancellationScope.nonCancellable(async () => {
        const undone = await compensate(op.jobId, saga);
        await books.finishJob(op.jobId, undone ? 'ROLLED_BACK' : 'DEAD_LETTER', 'ACTIVE', reason);
        setStatus('ACTIVE');
        if (!undone) awaitRetry(op);
      });
      planResults.set(op.jobId, { ok: false, reason });
    }
  }

  async function terminate(jobId: string): Promise<void> {
    const before = state.status;
    if (!(await begin(jobId, 'TERMINATING'))) return;
    setStatus('TERMINATING');
    let step = 'pre-termination backup';
    let destroying = false;
    try {
      // A pod that never came up has nothing to back up; the activity also skips a missing VM.
      if (before === 'ACTIVE' || before === 'SUSPENDED' || before === 'UPDATING') {
        setCurrentDetails('Taking the pre-termination backup');
        await steps.takePreTerminationBackup(podId, jobId);
      }
      // From here on terminate only goes forward: the pod never becomes ACTIVE again.
      destroying = true;
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
      const after = destroying || before === 'TERMINATING' ? 'TERMINATING' : before;
      await CancellationScope.nonCancellable(async () => {
        await books.finishJob(jobId, 'DEAD_LETTER', after, reason);
        setStatus(after);
        setCurrentDetails(`${reason}. Waiting for an operator retry.`);
        awaitRetry({ kind: 'TERMINATE', jobId });
      });
    }
  }

  /** Suspend: stop, then lock; a lock that keeps failing undoes the stop, so status says what the VM is. */
  async function suspend(jobId: string): Promise<void> {
    const before = state.status;
    if (!(await begin(jobId, 'UPDATING'))) return;
    setStatus('UPDATING');
    setCurrentDetails('Stopping and locking the VM');
    const saga = new Saga('stop VM');
    try {
      await saga.step('stop VM', () => steps.stopVm(podId), { run: () => undos.startVm(podId) });
      await saga.step('lock VM', () => steps.lockVm(podId));
      await books.finishJob(jobId, 'COMPLETED', 'SUSPENDED', null);
      setStatus('SUSPENDED');
    } catch (err) {
      const reason = `suspend: ${saga.current} failed: ${describe(err)}`;
      await CancellationScope.nonCancellable(async () => {
        const undone = await compensate(jobId, saga);
        // Not undone: the VM stays stopped, which SUSPENDED describes; the operator retries the lock.
        const after = undone ? before : 'SUSPENDED';
        await books.finishJob(jobId, undone ? 'ROLLED_BACK' : 'DEAD_LETTER', after, reason);
        setStatus(after);
        if (!undone) awaitRetry({ kind: 'SUSPEND', jobId });
      });
    }
    showStatus();
  }

  /** Unsuspend, backup, restore: one step each, dead-lettered for an operator retry on failure. */
  async function simpleOperation(op: Extract<PodOperation, { kind: 'UNSUSPEND' | 'BACKUP' | 'RESTORE' }>) {
    const before = state.status;
    const plan = {
      UNSUSPEND: { during: 'UPDATING', after: 'ACTIVE', details: 'Unlocking and starting the VM' },
      BACKUP: { during: before, after: before, details: 'Taking a backup' },
      RESTORE: { during: before, after: before, details: 'Restoring a backup' },
    } as const satisfies Record<string, { during: PodStatus; after: PodStatus; details: string }>;
    const { during, after, details } = plan[op.kind];
    if (!(await begin(op.jobId, during))) return;
    setStatus(during);
    setCurrentDetails(details);
    try {
      if (op.kind === 'UNSUSPEND') await steps.unsuspendVm(podId);
      else if (op.kind === 'BACKUP') await steps.takeBackup(podId, op.backupId);
      else await steps.restoreBackup(podId, op.backupId);
      await books.finishJob(op.jobId, 'COMPLETED', after, null);
      setStatus(after);
    } catch (err) {
      const reason = `${op.kind.toLowerCase()} failed: ${describe(err)}`;
      await CancellationScope.nonCancellable(async () => {
        if (op.kind === 'BACKUP') await books.markBackupFailed(op.backupId);
        await books.finishJob(op.jobId, 'DEAD_LETTER', before, reason);
        setStatus(before);
        awaitRetry(op);
      });
    }
    showStatus();
  }

  async function run(op: RetryableJob): Promise<void> {
    // Any new job supersedes a dead-lettered one: only the latest failure can be retried.
    const waiting = deadLettered;
    awaitRetry(null);
    began = false;
    try {
      await dispatch(op);
    } finally {
      // A retry whose job was not taken (cancelled meanwhile) leaves the failure retryable.
      if (!began && waiting?.jobId === op.jobId && !state.awaitingRetryOf) awaitRetry(waiting);
    }
  }

  async function dispatch(op: RetryableJob): Promise<void> {
    if (op.kind === 'PROVISION') return provision(op.jobId);
    state.currentJob = { id: op.jobId, type: op.kind };
    try {
      if (op.kind === 'TERMINATE') await terminate(op.jobId);
      else if (op.kind === 'CHANGE_PLAN') await changePlan(op);
      else if (state.status === 'FAILED' || state.status === 'TERMINATED' || state.status === 'TERMINATING') {
        await books.finishJob(
          op.jobId,
          'CANCELED',
          state.status,
          `a ${state.status} pod cannot ${op.kind.toLowerCase()}`,
        );
      } else if (op.kind === 'SUSPEND') await suspend(op.jobId);
      else await simpleOperation(op);
    } finally {
      state.currentJob = null;
    }
  }

  if (!input.carried && !input.resume) await run({ kind: 'PROVISION', jobId: input.provisionJobId });

  for (;;) {
    if (state.status === 'TERMINATED') {
      // Late operations of a terminated pod are closed, not left queued.
      for (const op of queue.splice(0)) {
        await books.finishJob(op.jobId, 'CANCELED', 'TERMINATED', 'the pod is TERMINATED');
      }
      await condition(allHandlersFinished);
      return state;
    }
    const wake = () =>
      queue.length > 0 || retryRequested !== undefined || workflowInfo().continueAsNewSuggested;
    // A FAILED pod waits for its retry (or a terminate) only so long; its workflow then ends.
    if (state.status === 'FAILED') {
      if (!(await condition(wake, policy.retryWindowMs))) {
        setCurrentDetails('FAILED — the retry window passed without an operator retry');
        awaitRetry(null);
        return state;
      }
    } else await condition(wake);

    if (retryRequested !== undefined && deadLettered?.jobId === retryRequested) {
      const op = deadLettered;
      retryRequested = undefined;
      await run(op);
      continue;
    }
    retryRequested = undefined;
    const op = queue.shift();
    state.queued = queue.length;
    if (op) {
      await run(op);
      continue;
    }
    // History is long: carry the state into a fresh run once every handler is done.
    await condition(allHandlersFinished);
    return continueAsNew<typeof cloudPod>({ ...input, carried: { state, queue, deadLettered } });
  }
}
