/**
 * `renewSubscription` — `subscription-renew-<subId>-<periodStart>`: bills one period of a
 * subscription whose current period ended, exactly once. A subscription set to cancel at the
 * period end is canceled and its pod terminated; otherwise the new period is invoiced in advance
 * (usage overage of the ended one in arrears, credit balance applied), finalized and charged.
 * Paid, nothing due, or a MANUAL customer → the period moves forward; a failed charge → PAST_DUE
 * and `dunning`. A trial ending converts the same way, its first paid period starting at the
 * trial's end. The workflow id is the business key and the invoice's unique period index backs
 * it, so a billing run that fires twice, or an id reused after retention, never bills twice.
 */
import {
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BillingActivities } from '../activities/billing';
import type { RenewalActivities } from '../activities/renewals';
import type { RenewSubscriptionInput } from './messages/billing';
import {
  renewalStateQuery,
  type RenewalOutcome,
  type RenewalState,
  type RenewalStep,
} from './messages/renewals';
import { SEARCH_ATTRIBUTES } from './shared';

/**
 * Steps before the subscription changes: bounded, because a renewal that gives up changes
 * nothing and the next hourly billing run starts it again (the subscription is still due).
 */
const BEFORE_CHANGE = {
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 8,
  },
} as const;

/**
 * Steps after the subscription was CANCELED or made PAST_DUE: retried until they succeed, because
 * no billing run comes back for it — a pod left running unbilled, or an invoice never dunned.
 */
const AFTER_CHANGE = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
} as const;

const acts = proxyActivities<RenewalActivities>(BEFORE_CHANGE);
const billing = proxyActivities<BillingActivities>(BEFORE_CHANGE);
const followUps = proxyActivities<RenewalActivities>(AFTER_CHANGE);

export async function renewSubscription(input: RenewSubscriptionInput): Promise<RenewalState> {
  const state: RenewalState = {
    subscriptionId: input.subscriptionId,
    periodStart: input.periodStart,
    step: 'planning',
    invoiceId: null,
    outcome: null,
    status: null,
    reason: null,
  };
  setHandler(renewalStateQuery, () => state);
  const show = (step: RenewalStep, details: string, status?: string) => {
    state.step = step;
    setCurrentDetails(details);
    if (status) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: status }]);
  };
  const finish = (outcome: RenewalOutcome, status: string | null, details: string): RenewalState => {
    state.outcome = outcome;
    state.status = status;
    show(outcome === 'SKIPPED' ? 'skipped' : 'done', details, outcome);
    return state;
  };
  // The billing run starts renewals with their search attributes (RENEWING); one started by hand
  // (the Temporal UI, a test) gets them here. Each upsert is an event and a visibility write for
  // the engine, so they are few: here, once an invoice exists, and at the end.
  if (!workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.SubscriptionId)) {
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
      { key: SEARCH_ATTRIBUTES.CustomerId, value: input.customerId },
      { key: SEARCH_ATTRIBUTES.SubscriptionId, value: input.subscriptionId },
      { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'RENEWING' },
    ]);
  }

  show('planning', `Checking that the period from ${input.periodStart} is due`);
  const plan = await acts.planRenewal(input.subscriptionId, input.periodStart);
  if (plan.action === 'skip') {
    state.reason = plan.reason;
    return finish('SKIPPED', plan.status, `Nothing to renew: ${plan.reason}`);
  }

  if (plan.action === 'cancel') {
    show('canceling', 'Canceling at the period end, as the customer asked');
    const canceled = await acts.cancelEndedSubscription(input.subscriptionId, input.periodStart);
    if (!canceled.canceled) {
      state.reason = canceled.reason;
      return finish('SKIPPED', plan.status, `Not canceled: ${canceled.reason ?? 'unknown'}`);
    }
    show('terminating-pod', 'Subscription CANCELED; terminating its pod', 'CANCELED');
    const terminated = await followUps.terminateSubscriptionPod(input.subscriptionId);
    return finish('CANCELED', 'CANCELED', `Subscription CANCELED at the period end; pod: ${terminated}`);
  }

  show(
    'invoicing',
    `${plan.trial ? 'Converting the trial: invoicing' : 'Invoicing'} ${plan.period.start} – ${plan.period.end}`,
  );
  const invoice = await acts.issueRenewalInvoice(input.subscriptionId, input.periodStart);
  if (invoice.invoiceId === null) {
    state.reason = invoice.reason;
    return finish('SKIPPED', plan.status, `Nothing invoiced: ${invoice.reason}`);
  }
  state.invoiceId = invoice.invoiceId;
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.InvoiceId, value: invoice.invoiceId },
    { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: invoice.charge ? 'CHARGING' : 'INVOICED' },
  ]);

  if (invoice.charge) {
    show('charging', `Charging invoice ${invoice.number} (${invoice.amountDue} due)`);
    await billing.chargeInvoice(invoice.invoiceId, 1);
  }
  show('settling', `Settling the period on invoice ${invoice.number}`);
  const settled = await acts.settleRenewal(input.subscriptionId, input.periodStart, invoice.invoiceId);
  if (settled.advanced) {
    return finish('RENEWED', settled.status, `Renewed until ${plan.period.end}; invoice ${invoice.number}`);
  }
  if (!settled.dunning) {
    return finish('SKIPPED', settled.status, `Subscription is ${settled.status ?? 'gone'}; period unchanged`);
  }
  show('starting-dunning', `Invoice ${invoice.number} unpaid: PAST_DUE, starting dunning`);
  await followUps.startRenewalDunning({
    invoiceId: invoice.invoiceId,
    subscriptionId: input.subscriptionId,
    tenantId: input.tenantId,
    customerId: input.customerId,
    failedAt: settled.failedAt ?? new Date().toISOString(),
  });
  return finish('PAST_DUE', settled.status, `Invoice ${invoice.number} unpaid: PAST_DUE, in dunning`);
}
