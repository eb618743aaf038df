/**
 * The pod workflow's messages: its input, state, operations, and the signals, queries and updates
 * the API sends it. Imported by the API and the workflow, so it stays deterministic.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { JobType, PodStatus, Resources } from '../../domain/cloudpods';

/** Retry and timing policy of the pod workflow's activities; from config so tests use milliseconds. */
export interface PodPolicy {
  /** first retry interval of a saga step (1 min by default → 5 min → 15 min) */
  retryInitialMs: number;
  maxAttempts: number;
  heartbeatTimeoutMs: number;
  /** how long a dead-lettered pod waits for an operator's retry */
  retryWindowMs: number;
}

export interface CloudPodInput {
  podId: string;
  tenantId: string;
  slug: string;
  resources: Resources;
  /** the PROVISION job this run provisions (ignored when `resume` or `carried` is set) */
  provisionJobId: string;
  policy: PodPolicy;
  /** state carried across continueAsNew */
  carried?: CarriedPodState;
  /**
   * A run started for an operation on a pod whose workflow had ended (a FAILED pod past its retry
   * window, a run cancelled from the UI): no provisioning, the pod as the database has it.
   */
  resume?: { status: PodStatus; resources: Resources };
}

export type PodOperation =
  | { kind: 'SUSPEND'; jobId: string }
  | { kind: 'UNSUSPEND'; jobId: string }
  | { kind: 'TERMINATE'; jobId: string }
  | { kind: 'BACKUP'; jobId: string; backupId: string }
  | { kind: 'RESTORE'; jobId: string; backupId: string }
  | { kind: 'CHANGE_PLAN'; jobId: string; productId: string; resources: Resources };

export interface CloudPodState {
  podId: string;
  status: PodStatus;
  resources: Resources;
  currentJob: { id: string; type: JobType } | null;
  queued: number;
  /** the dead-lettered job that an operator retry would run again */
  awaitingRetryOf: string | null;
  lastFailure: string | null;
  provisionAttempts: number;
}

/** A job that can be retried by the operator: an operation, or a provisioning attempt. */
export type RetryableJob = PodOperation | { kind: 'PROVISION'; jobId: string };

export interface CarriedPodState {
  state: CloudPodState;
  queue: PodOperation[];
  /** the dead-lettered job awaiting an operator retry */
  deadLettered?: RetryableJob | null;
}

export interface ChangePlanArgs {
  jobId: string;
  productId: string;
  resources: Resources;
}

export interface ChangePlanResult {
  jobId: string;
  resources: Resources;
}

export const podStateQuery = defineQuery<CloudPodState>('state');
/**
 * Operator retry of the dead-lettered job the pod waits on (POST /ops/jobs/:id/retry). An update, so
 * its validator refuses synchronously (a TERMINATED pod, a job that is not the one waiting).
 */
export const retryUpdate = defineUpdate<{ jobId: string }, [{ jobId: string }]>('retry');
export const suspendSignal = defineSignal<[{ jobId: string }]>('suspend');
export const unsuspendSignal = defineSignal<[{ jobId: string }]>('unsuspend');
export const terminateSignal = defineSignal<[{ jobId: string }]>('terminate');
export const backupSignal = defineSignal<[{ jobId: string; backupId: string }]>('backup');
export const restoreSignal = defineSignal<[{ jobId: string; backupId: string }]>('restore');
export const changePlanUpdate = defineUpdate<ChangePlanResult, [ChangePlanArgs]>('changePlan');
