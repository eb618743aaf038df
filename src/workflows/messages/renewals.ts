/**
 * Messages of the scheduled billing workflows — `renewSubscription`, `billingRun`, `trialSweep`:
 * what they start with and what their `state` query answers. (`RenewSubscriptionInput` lives with
 * the other billing inputs in ./billing.)
 */
import { defineQuery } from '@temporalio/workflow';

export type RenewalStep =
  | 'planning'
  | 'canceling'
  | 'terminating-pod'
  | 'invoicing'
  | 'charging'
  | 'settling'
  | 'starting-dunning'
  | 'done'
  | 'skipped';

/** What a renewal did with the period it was started for. */
export type RenewalOutcome = 'RENEWED' | 'PAST_DUE' | 'CANCELED' | 'SKIPPED';

export interface RenewalState {
  subscriptionId: string;
  /** the start of the period being billed (ISO) */
  periodStart: string;
  step: RenewalStep;
  invoiceId: string | null;
  outcome: RenewalOutcome | null;
  /** the subscription's status as this renewal left it */
  status: string | null;
  /** why the renewal did nothing (not due, already renewed, no longer active) */
  reason: string | null;
}

export const renewalStateQuery = defineQuery<RenewalState>('state');

/** Running totals of one billing run, carried through `continueAsNew`. */
export interface BillingRunTotals {
  pages: number;
  /** due subscriptions found */
  found: number;
  /** renewals this run started */
  started: number;
  /** renewals already running under their workflow id: left alone */
  alreadyRunning: number;
}

/**
 * `billingRun` — started hourly by the `billing-run` schedule with no argument; the rest is how
 * it continues as new, and what tests and the bench shrink.
 */
export interface BillingRunInput {
  /** subscriptions whose period ended by then are due (ISO); fixed for the whole run */
  asOf?: string;
  /** the last subscription id handled: pages are keyset by id */
  cursor?: string | null;
  /** subscriptions per page (default 100) */
  pageSize?: number;
  /** pages per run before it continues as new (default 10) */
  pagesPerRun?: number;
  totals?: BillingRunTotals;
}

export interface BillingRunState extends BillingRunTotals {
  asOf: string;
  cursor: string | null;
  /** true once the last page has been handled */
  done: boolean;
}

export const billingRunStateQuery = defineQuery<BillingRunState>('state');

/** `trialSweep` — started hourly with no argument; the rest is how it continues as new. */
export interface TrialSweepInput {
  /** the sweep's "now" (ISO), fixed across its continuations */
  asOf?: string;
  cursor?: string | null;
  checked?: number;
  reminded?: number;
}

export interface TrialSweepState {
  asOf: string;
  /** trials ending soon that were looked at */
  checked: number;
  /** reminders recorded by this sweep */
  reminded: number;
  done: boolean;
}

export const trialSweepStateQuery = defineQuery<TrialSweepState>('state');
