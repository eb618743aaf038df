/**
 * `changeSubscriptionPlan` — `subscription-change-plan-<subId>-<changeId>`: its input, its `state`
 * query, and the start options the API uses, so every run looks the same in the Temporal UI.
 * Imported by both sides, so it stays deterministic.
 */
import { WorkflowIdReusePolicy, defineQuery } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../shared';

export interface ChangeSubscriptionPlanInput {
  /** the `subscription_plan_changes` row the workflow carries out */
  changeId: string;
  subscriptionId: string;
  tenantId: string;
  customerId: string;
  podId: string;
  /** the target product */
  productId: string;
  /** the moment the change was requested (ISO): the proration is computed as of it */
  asOf: string;
  /**
   * How long a dead-lettered resize is waited for (an operator's retry may still complete it); the
   * pod's workflow waits as long before it gives the job up.
   */
  deadLetterWaitMs: number;
}

export type PlanChangeStep =
  'resizing' | 'waiting-for-operator' | 'settling' | 'charging' | 'starting-dunning' | 'done' | 'failed';

/** `PodplaneStatus` of a plan change: RESIZING → CHANGED | PAST_DUE, or FAILED (nothing billed). */
export type PlanChangeWorkflowStatus =
  'RESIZING' | 'SETTLING' | 'CHARGING' | 'CHANGED' | 'PAST_DUE' | 'FAILED';

export interface PlanChangeState {
  changeId: string;
  subscriptionId: string;
  step: PlanChangeStep;
  status: PlanChangeWorkflowStatus;
  /** the pod's CHANGE_PLAN job */
  jobId: string | null;
  /** how the proration was settled, once it was */
  settlement: 'INVOICE' | 'CREDIT_NOTE' | 'NONE' | null;
  invoiceId: string | null;
  creditNoteId: string | null;
  /** why the resize did not happen (nothing was billed) */
  failure: string | null;
}

export const planChangeStateQuery = defineQuery<PlanChangeState>('state');

/** Options of the one start of a change's workflow: its id is the change's, reuse rejected. */
export function planChangeStartOptions(input: ChangeSubscriptionPlanInput, productCode: string) {
  return {
    workflowId: workflowIds.changeSubscriptionPlan(input.subscriptionId, input.changeId),
    taskQueue: TASK_QUEUES.billing,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.CustomerId, value: input.customerId },
      { key: SEARCH_ATTRIBUTES.SubscriptionId, value: input.subscriptionId },
      { key: SEARCH_ATTRIBUTES.CloudPodId, value: input.podId },
      { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'RESIZING' },
    ],
    staticSummary: `Change subscription ${input.subscriptionId} to ${productCode}`,
    staticDetails:
      `Resizes pod ${input.podId} first; only a resize that succeeded switches the subscription's plan and ` +
      `settles the proration as of ${input.asOf}: an upgrade is invoiced and charged now (a failed charge makes ` +
      "the subscription PAST_DUE and starts dunning), a downgrade becomes a credit note to the customer's " +
      'balance. A resize that fails bills nothing.',
  };
}
