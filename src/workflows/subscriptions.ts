/**
 * `activateSubscription` — `subscription-activate-<subId>`: the pod first, money second. The
 * subscription's pod is provisioned through its own `cloudPod` workflow; only once the pod is
 * ACTIVE is the trial started, or the first invoice issued and charged. A pod that fails leaves
 * the subscription PENDING with nothing charged, the customer told, and the job in the ops
 * overview; should an operator's retry bring the pod up later, activation resumes and bills it,
 * so no pod ever runs unbilled. A first charge that fails leaves the subscription PAST_DUE and
 * hands the invoice to `dunning-<invoiceId>`, started as an abandoned child.
 */
import { proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { BillingActivities } from '../activities/billing';
import { startDunningChild } from './dunning-child';
import { SEARCH_ATTRIBUTES } from './shared';
import {
  activationStateQuery,
  type ActivateSubscriptionInput,
  type ActivationState,
} from './messages/billing';

const acts = proxyActivities<BillingActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** Waits on the pod's row (heartbeating) until its status differs from the one last seen. */
const watch = proxyActivities<BillingActivities>({
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** Pod statuses after which activation waits no more: it is up, or it will never come up. */
const SETTLED = ['ACTIVE', 'TERMINATING', 'TERMINATED'];

export async function activateSubscription(input: ActivateSubscriptionInput): Promise<ActivationState> {
  const state: ActivationState = {
    subscriptionId: input.subscriptionId,
    step: 'provisioning',
    podId: null,
    invoiceId: null,
    status: 'PENDING',
    failure: null,
  };
  setHandler(activationStateQuery, () => state);
  const show = (step: ActivationState['step'], details: string, status?: string) => {
    state.step = step;
    setCurrentDetails(details);
    if (status) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: status }]);
  };

  show('provisioning', 'Creating the subscription’s pod', 'PROVISIONING');
  const { podId } = await acts.provisionSubscriptionPod(input.subscriptionId);
  state.podId = podId;
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.CloudPodId, value: podId }]);

  let pod = { status: 'PENDING', failureReason: null as string | null };
  show('waiting-for-pod', `Waiting for pod ${podId} to become ACTIVE; nothing is charged before`);
  while (!SETTLED.includes(pod.status)) {
    pod = await watch.awaitPodChange(podId, pod.status);
    if (pod.status === 'FAILED') {
      state.failure = pod.failureReason;
      show(
        'pod-failed',
        `Pod ${podId} failed (${pod.failureReason ?? 'no reason'}); nothing charged; waiting for an operator's retry`,
        'POD_FAILED',
      );
      await acts.notifyActivationFailed(
        input.subscriptionId,
        podId,
        pod.failureReason ?? 'the pod could not be provisioned',
      );
    }
  }
  if (pod.status !== 'ACTIVE') {
    state.step = 'failed';
    state.failure = `pod ${podId} is ${pod.status}; it will not come up`;
    show('failed', `Activation ended without a pod: ${state.failure}; nothing was charged`, 'FAILED');
    return state;
  }
  state.failure = null;

  const trial = await acts.startTrialIfAny(input.subscriptionId);
  if (trial) {
    state.status = 'TRIALING';
    show('done', `Trial until ${trial.trialEnd}`, 'TRIALING');
    return state;
  }

  show('invoicing', 'Issuing the first invoice');
  const invoice = await acts.issueFirstInvoice(input.subscriptionId);
  state.invoiceId = invoice.invoiceId;
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.InvoiceId, value: invoice.invoiceId }]);

  show('charging', `Collecting invoice ${invoice.number}`);
  if (invoice.charge) await acts.chargeInvoice(invoice.invoiceId, 1);
  state.status = await acts.settleActivation(input.subscriptionId, invoice.invoiceId);
  if (state.status === 'PAST_DUE') {
    await startDunning(input, invoice.invoiceId);
    show(
      'done',
      `Subscription is PAST_DUE; dunning-${invoice.invoiceId} collects invoice ${invoice.number}`,
      'PAST_DUE',
    );
    return state;
  }
  show('done', `Subscription is ${state.status}`, state.status);
  return state;
}

/** `failedAt` is this workflow's clock right after the failed charge was settled. */
function startDunning(input: ActivateSubscriptionInput, invoiceId: string): Promise<void> {
  return startDunningChild({
    invoiceId,
    subscriptionId: input.subscriptionId,
    tenantId: input.tenantId,
    customerId: input.customerId,
    failedAt: new Date().toISOString(),
  });
}
