/**
 * The one start of `activateSubscription`, shared by the activate route, a priced pod's create and
 * the sweeper that finishes what a crash left between an insert and a start. The workflow id is the
 * subscription's, so every caller may start it again: the run already there is kept.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Config } from '../config';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../workflows/shared';
import type { ActivateSubscriptionInput } from '../workflows/messages/billing';
import type { activateSubscription } from '../workflows/subscriptions';

export interface ActivationTarget {
  subscriptionId: string;
  tenantId: string;
  customerId: string;
  podSlug: string;
}

/** Starts the subscription's activation, or finds it started; resolves to its workflow id. */
export async function startActivationWorkflow(
  deps: { temporal: Client; config: Pick<Config, 'TEMPORAL_CALL_TIMEOUT_MS'> },
  target: ActivationTarget,
): Promise<string> {
  const workflowId = workflowIds.activateSubscription(target.subscriptionId);
  const args: [ActivateSubscriptionInput] = [
    { subscriptionId: target.subscriptionId, tenantId: target.tenantId, customerId: target.customerId },
  ];
  try {
    await deps.temporal.withDeadline(Date.now() + deps.config.TEMPORAL_CALL_TIMEOUT_MS, () =>
      deps.temporal.workflow.start<typeof activateSubscription>('activateSubscription', {
        workflowId,
        taskQueue: TASK_QUEUES.billing,
        args,
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTES.TenantId, value: target.tenantId },
          { key: SEARCH_ATTRIBUTES.CustomerId, value: target.customerId },
          { key: SEARCH_ATTRIBUTES.SubscriptionId, value: target.subscriptionId },
          { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'PENDING' },
        ],
        staticSummary: `Activate subscription ${target.subscriptionId}`,
        staticDetails: `Provisions pod ${target.podSlug}; only once it is ACTIVE is the first invoice issued and charged, or the trial started.`,
      }),
    );
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return workflowId;
}
