/**
 * Billing rule violations. They are the application's one error (`AppError`) with a stable
 * `reason` in its extras, so callers and tests branch on the reason, never on message text.
 */
import { AppError, type ErrorKind } from '../errors';

export const BILLING_ERROR_REASONS = [
  'unsupported_currency',
  'malformed_amount',
  'too_many_decimals',
  'amount_out_of_range',
  'division_by_zero',
  'invalid_date',
  'invalid_period',
  'invalid_period_index',
  'not_a_period_boundary',
  'as_of_outside_period',
  'currency_mismatch',
  'interval_mismatch',
  'invalid_tax_rate',
  'invalid_line',
  'invalid_credit_balance',
  'invalid_dunning_policy',
  'invalid_trial',
] as const;
export type BillingErrorReason = (typeof BILLING_ERROR_REASONS)[number];

export function billingError(kind: ErrorKind, reason: BillingErrorReason, detail: string): AppError {
  return new AppError(kind, detail, { reason });
}

/** The reason of a billing error, or undefined for any other value. */
export function billingErrorReason(error: unknown): BillingErrorReason | undefined {
  if (!(error instanceof AppError)) return undefined;
  const reason = error.extras.reason;
  return (BILLING_ERROR_REASONS as readonly unknown[]).includes(reason)
    ? (reason as BillingErrorReason)
    : undefined;
}
