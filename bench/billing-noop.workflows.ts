/**
 * The bench's empty-children baseline (billing.bench.ts): the real `billingRun` starting renewals
 * that do nothing at all, so the bench can show what Temporal alone costs per renewal.
 */
export { billingRun } from '../src/workflows/billing-run';

/** A renewal that returns at once: one workflow task, no activity. */
export function renewSubscription(): Promise<null> {
  return Promise.resolve(null);
}
