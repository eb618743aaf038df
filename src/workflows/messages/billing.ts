/** Billing workflows' messages: what they start with and what their `state` query answers. */
import { defineQuery, defineSignal } from '@temporalio/workflow';

export interface ActivateSubscriptionInput {
  subscriptionId: string;
  tenantId: string;
  customerId: string;
}

export type ActivationStep =
  | 'provisioning'
  | 'waiting-for-pod'
  | 'pod-failed'
  | 'starting-trial'
  | 'invoicing'
  | 'charging'
  | 'done'
  | 'failed';

export interface ActivationState {
  subscriptionId: string;
  step: ActivationStep;
  podId: string | null;
  invoiceId: string | null;
  /** the subscription's status as this workflow last set it */
  status: 'PENDING' | 'TRIALING' | 'ACTIVE' | 'PAST_DUE';
  /** why the pod is not (yet) up, or why activation ended without it */
  failure: string | null;
}

export const activationStateQuery = defineQuery<ActivationState>('state');

/** `dunning-<invoiceId>`: collects an invoice whose charge failed, on the tenant's dunning policy. */
export interface DunningInput {
  invoiceId: string;
  subscriptionId: string | null;
  tenantId: string;
  customerId: string;
  /** when the failed charge happened (ISO): retries are scheduled from it */
  failedAt: string;
}

/** Ends dunning: the invoice was paid by another path (webhook, `POST …/pay`). */
export const paymentSucceededSignal =
  defineSignal<[{ invoiceId: string; paymentId: string }]>('paymentSucceeded');

/** `subscription-renew-<subId>-<periodStart>`: bills one period, exactly once. */
export interface RenewSubscriptionInput {
  subscriptionId: string;
  tenantId: string;
  customerId: string;
  /** the start of the period being billed (ISO), i.e. the end of the one that ended */
  periodStart: string;
}

/** `stripe-event-<eventId>`: applies one stored Stripe event. */
export interface ProcessStripeEventInput {
  eventId: string;
}
