/** Billing workflows' messages: what they start with and what their `state` query answers. */
import { defineQuery } from '@temporalio/workflow';

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
