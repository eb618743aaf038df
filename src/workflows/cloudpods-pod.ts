/**
 * The CloudPod entity as its workflow holds it: what the `state` query answers, the operations
 * waiting their turn, the job waiting for an operator retry and the answers owed to plan-change
 * updates. It decides which requests are refused, which statuses each operation moves the pod
 * through, and the texts and search attribute values derived from its state. It makes no Temporal
 * calls: the workflow and its operations apply what it decides, so it is unit-tested on its own.
 */
import { planChangeProblem, type JobType, type PodStatus, type Resources } from '../domain/cloudpods';
import type {
  CarriedPodState,
  ChangePlanArgs,
  CloudPodInput,
  CloudPodState,
  PodOperation,
  RetryableJob,
} from './messages/cloudpods';
import { SEARCH_ATTRIBUTES } from './shared';

/** What a plan-change update is answered: the plan the pod has now, or why it did not change. */
export type PlanChangeOutcome = { ok: true; resources: Resources } | { ok: false; reason: string };

/** The operations that only a pod at rest runs: terminate and plan change check for themselves. */
export type AtRestOperation = Extract<PodOperation, { kind: 'SUSPEND' | 'UNSUSPEND' | 'BACKUP' | 'RESTORE' }>;

/** Statuses in which a pod runs no at-rest operation: it never came up, or it is going away. */
const NOT_AT_REST: readonly PodStatus[] = ['FAILED', 'TERMINATED', 'TERMINATING'];

/** Statuses whose VM holds data worth a pre-termination backup. */
const HOLDS_DATA: readonly PodStatus[] = ['ACTIVE', 'SUSPENDED', 'UPDATING'];

/** The status a pod has while an operation runs, and the one it has once the operation succeeded. */
export interface StatusPlan {
  during: PodStatus;
  succeeded: PodStatus;
}

/** Where an operation leaves the pod, given the status it started from. */
export function statusPlan(kind: JobType, before: PodStatus): StatusPlan {
  switch (kind) {
    case 'PROVISION':
      return { during: 'PROVISIONING', succeeded: 'ACTIVE' };
    case 'CHANGE_PLAN':
      return { during: 'UPDATING', succeeded: 'ACTIVE' };
    case 'SUSPEND':
      return { during: 'UPDATING', succeeded: 'SUSPENDED' };
    case 'UNSUSPEND':
      return { during: 'UPDATING', succeeded: 'ACTIVE' };
    case 'TERMINATE':
      return { during: 'TERMINATING', succeeded: 'TERMINATED' };
    case 'BACKUP':
    case 'RESTORE':
      // A backup or a restore leaves the pod as it was, while it runs too.
      return { during: before, succeeded: before };
  }
}

/** What happened before an operation failed, as far as the pod's status is concerned. */
export interface FailureFacts {
  /** its undos all succeeded (a saga operation) */
  undone?: boolean;
  /** destruction had begun (a terminate) */
  destroying?: boolean;
}

/**
 * The status an operation that failed leaves the pod in: the one that says what the VM is now.
 * A failed provisioning is FAILED; a plan change is rolled back or dead-lettered on the old plan.
 * A suspend whose stop was not undone leaves a stopped VM, which SUSPENDED describes. A terminate
 * only goes forward once destruction has begun. Anything else is back where it started.
 */
export function statusAfterFailure(kind: JobType, before: PodStatus, facts: FailureFacts = {}): PodStatus {
  switch (kind) {
    case 'PROVISION':
      return 'FAILED';
    case 'CHANGE_PLAN':
      return 'ACTIVE';
    case 'SUSPEND':
      return facts.undone ? before : 'SUSPENDED';
    case 'TERMINATE':
      return facts.destroying || before === 'TERMINATING' ? 'TERMINATING' : before;
    default:
      return before;
  }
}

/** Whether a terminate backs the pod up first: a pod that never came up has nothing to back up. */
export function backsUpBeforeTerminate(before: PodStatus): boolean {
  return HOLDS_DATA.includes(before);
}

/** The search attribute update that makes the pod's status searchable. */
export function statusSearchAttributes(
  status: PodStatus,
): [{ key: typeof SEARCH_ATTRIBUTES.PodplaneStatus; value: PodStatus }] {
  return [{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: status }];
}

/** The workflow's current details: what the Temporal UI shows the operator about the pod. */
export const podDetails = {
  /** At rest: the status and the plan the pod has now (the static details name no plan). */
  atRest: ({ status, resources: r }: CloudPodState) =>
    `${status} — plan ${r.vcpu} vCPU / ${r.memoryMb} MB / ${r.diskGb} GB`,
  rollingBack: (step: string) => `Rolling back: undoing ${step}`,
  /** a dead-lettered job, until the operator retries it */
  awaitingRetry: (reason: string) => `${reason}. Waiting for an operator retry.`,
  provisionFailed: (reason: string) => `FAILED — ${reason}. Waiting for an operator retry.`,
  retryWindowPassed: 'FAILED — the retry window passed without an operator retry',
  terminated: 'TERMINATED',
} as const;

/** The pod's workflow-side state and the rules that change it. */
export class Pod {
  /** what the `state` query answers, carried across continueAsNew */
  readonly state: CloudPodState;
  /** operations waiting their turn, oldest first */
  private readonly queue: PodOperation[];
  /** the dead-lettered job that an operator retry would run again */
  private deadLettered: RetryableJob | null;
  /** the job id whose retry the operator asked for (validated against `deadLettered`) */
  private retryRequested: string | undefined;
  private readonly planOutcomes = new Map<string, PlanChangeOutcome>();

  /** A new pod, a pod resumed from the database, or the state carried from the previous run. */
  constructor(input: CloudPodInput) {
    this.state = input.carried?.state ?? {
      podId: input.podId,
      status: input.resume?.status ?? 'PENDING',
      resources: input.resume?.resources ?? input.resources,
      currentJob: null,
      queued: 0,
      awaitingRetryOf: null,
      lastFailure: null,
      provisionAttempts: 0,
    };
    this.queue = input.carried ? [...input.carried.queue] : [];
    this.deadLettered = input.carried?.deadLettered ?? null;
  }

  /** What the next run starts from. */
  carry(): CarriedPodState {
    return { state: this.state, queue: this.queue, deadLettered: this.deadLettered };
  }

  /**
   * Moves the pod to `status` and returns the search attribute update that records it; the
   * workflow upserts it even when the status stays the same, as it always has.
   */
  enter(status: PodStatus): ReturnType<typeof statusSearchAttributes> {
    this.state.status = status;
    return statusSearchAttributes(status);
  }

  /** Signals are delivered at least once (the sweeper re-sends queued jobs): one entry per job. */
  enqueue(op: PodOperation): void {
    if (this.queue.some((q) => q.jobId === op.jobId) || this.state.currentJob?.id === op.jobId) return;
    this.queue.push(op);
    this.state.queued = this.queue.length;
  }

  /** The oldest waiting operation, taken off the queue. */
  next(): PodOperation | undefined {
    const op = this.queue.shift();
    this.state.queued = this.queue.length;
    return op;
  }

  /**
   * Empties the queue of a terminated pod, whose late operations are closed rather than run.
   * `queued` keeps its last count: it is part of the result recorded histories return.
   */
  closeQueue(): PodOperation[] {
    return this.queue.splice(0);
  }

  /** Whether an operation or an operator retry waits to run. */
  hasWork(): boolean {
    return this.queue.length > 0 || this.retryRequested !== undefined;
  }

  /** Whether a terminate waits: a pod deleted before provisioning started is not built. */
  terminateQueued(): boolean {
    return this.queue.some((op) => op.kind === 'TERMINATE');
  }

  startJob(id: string, type: JobType): void {
    this.state.currentJob = { id, type };
  }

  endJob(): void {
    this.state.currentJob = null;
  }

  countProvisionAttempt(): void {
    this.state.provisionAttempts += 1;
  }

  /** Records the outcome of the latest provisioning: null once it succeeded. */
  recordProvisioning(failure: string | null): void {
    this.state.lastFailure = failure;
  }

  applyPlan(resources: Resources): void {
    this.state.resources = resources;
  }

  /** Why an at-rest operation is closed without running, or undefined when it runs. */
  operationRefusal(kind: AtRestOperation['kind']): string | undefined {
    const { status } = this.state;
    if (NOT_AT_REST.includes(status)) return `a ${status} pod cannot ${kind.toLowerCase()}`;
    return undefined;
  }

  /** Why the plan change `args` is refused before it is queued (an update validator). */
  planChangeRefusal(args: ChangePlanArgs): string | undefined {
    if (this.state.currentJob || this.queue.length > 0) return 'another operation is in progress on this pod';
    return this.planChangeProblem(args.resources);
  }

  /** Why the pod cannot change to `resources` now, or undefined when it can. */
  planChangeProblem(resources: Resources): string | undefined {
    return planChangeProblem(this.state.status, this.state.resources, resources);
  }

  settlePlanChange(jobId: string, outcome: PlanChangeOutcome): void {
    this.planOutcomes.set(jobId, outcome);
  }

  isPlanChangeSettled(jobId: string): boolean {
    return this.planOutcomes.has(jobId);
  }

  /** The outcome owed to the plan-change update of `jobId`, handed out once. */
  takePlanChangeOutcome(jobId: string): PlanChangeOutcome | undefined {
    const outcome = this.planOutcomes.get(jobId);
    this.planOutcomes.delete(jobId);
    return outcome;
  }

  /** Makes `job` the one an operator retry runs again, or clears it (null). */
  awaitRetry(job: RetryableJob | null): void {
    this.deadLettered = job;
    this.state.awaitingRetryOf = job?.jobId ?? null;
  }

  /** Why the operator's retry of `jobId` is refused, or undefined when it is accepted. */
  retryRefusal(jobId: string): string | undefined {
    const { status, awaitingRetryOf } = this.state;
    if (status === 'TERMINATED') return 'the pod is TERMINATED; nothing can be retried';
    if (!awaitingRetryOf) return `the pod is ${status} and waits for no retry`;
    if (awaitingRetryOf !== jobId)
      return `job ${jobId} is not the job waiting for a retry (${awaitingRetryOf} is)`;
    if (this.retryRequested !== undefined) return `a retry of job ${jobId} is already under way`;
    return undefined;
  }

  requestRetry(jobId: string): void {
    this.retryRequested = jobId;
  }

  /** The dead-lettered job the operator asked to retry, if any; the request is consumed either way. */
  takeRetry(): RetryableJob | undefined {
    const requested = this.retryRequested;
    this.retryRequested = undefined;
    if (requested !== undefined && this.deadLettered?.jobId === requested) return this.deadLettered;
    return undefined;
  }

  /** Any new job supersedes a dead-lettered one: only the latest failure can be retried. */
  supersedeRetry(): RetryableJob | null {
    const waiting = this.deadLettered;
    this.awaitRetry(null);
    return waiting;
  }

  /**
   * After `job` ran: a retry of `waiting` whose job was not taken (cancelled meanwhile) leaves the
   * failure retryable, unless the run dead-lettered something itself.
   */
  keepRetryable(waiting: RetryableJob | null, job: RetryableJob, taken: boolean): void {
    if (!taken && waiting?.jobId === job.jobId && !this.state.awaitingRetryOf) this.awaitRetry(waiting);
  }
}
