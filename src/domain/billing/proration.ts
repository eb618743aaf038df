/**
 * Second-based proration of a plan change inside the current period.
 *
 * Changing from `from` to `to` at `asOf` within [start, end) produces two lines over [asOf, end):
 * a credit of `from × remaining / period` and a charge of `to × remaining / period`, each rounded
 * half-even once from the exact fraction. The plan-change preview and the invoice call the same
 * function with the same explicit `asOf`, so the preview shows exactly the lines that are billed.
 */
import { billingError } from './errors';
import { invoiceLine, type InvoiceLineDraft } from './invoices';
import { assertMinorUnits, mulDivRoundHalfEven, type MinorUnits } from './money';
import {
  assertValidDate,
  type BillingInterval,
  type BillingPeriod,
  isoDate,
  MS_PER_SECOND,
  periodSeconds,
} from './periods';

/** A price as the catalog holds it; a Product satisfies this shape. */
export interface PlanPrice {
  code: string;
  name: string;
  interval: BillingInterval;
  /** price per interval, in minor units of `currency` */
  unitAmount: MinorUnits;
  currency: string;
}

export interface PlanChangeInput {
  /** the subscription's current period */
  period: BillingPeriod;
  /** the moment the change takes effect (a preview passes the same value the change will use) */
  asOf: Date;
  from: PlanPrice;
  to: PlanPrice;
}

/**
 * How the net amount is settled: a positive net is invoiced and charged now, a negative net
 * becomes a credit note to the customer's balance, zero needs nothing.
 */
export type ProrationSettlement = 'INVOICE' | 'CREDIT_NOTE' | 'NONE';

export interface PlanChangeProration {
  currency: string;
  /** whole seconds in the current period */
  periodSeconds: number;
  /** whole seconds from `asOf` to the end of the period */
  remainingSeconds: number;
  /** [asOf, end): the service time both lines cover */
  covered: BillingPeriod;
  /** PRORATION line with a non-positive amount: unused time on the old plan */
  credit: InvoiceLineDraft;
  /** PRORATION line with a non-negative amount: remaining time on the new plan */
  charge: InvoiceLineDraft;
  /** credit and charge, in that order, as they appear on the invoice or credit note */
  lines: [InvoiceLineDraft, InvoiceLineDraft];
  /** credit.amount + charge.amount */
  net: MinorUnits;
  settlement: ProrationSettlement;
}

/**
 * `amount × remainingSeconds / periodSeconds`, rounded half-even once. Durations are whole
 * seconds so the fraction is exact and independent of millisecond jitter in `asOf`.
 */
export function prorate(amount: MinorUnits, remainingSeconds: number, totalSeconds: number): MinorUnits {
  assertMinorUnits(amount);
  if (
    !Number.isSafeInteger(remainingSeconds) ||
    !Number.isSafeInteger(totalSeconds) ||
    totalSeconds <= 0 ||
    remainingSeconds < 0 ||
    remainingSeconds > totalSeconds
  ) {
    throw billingError('validation_failed', 'invalid_period', 'remaining time must lie within the period');
  }
  return mulDivRoundHalfEven(amount, remainingSeconds, totalSeconds);
}

export function settlementOf(net: MinorUnits): ProrationSettlement {
  if (net > 0) return 'INVOICE';
  if (net < 0) return 'CREDIT_NOTE';
  return 'NONE';
}

function checkPlans(from: PlanPrice, to: PlanPrice): void {
  assertMinorUnits(from.unitAmount, `${from.code} price`);
  assertMinorUnits(to.unitAmount, `${to.code} price`);
  if (from.unitAmount < 0 || to.unitAmount < 0) {
    throw billingError('validation_failed', 'invalid_line', 'plan prices cannot be negative');
  }
  if (from.currency !== to.currency) {
    throw billingError(
      'unprocessable',
      'currency_mismatch',
      `cannot prorate from ${from.currency} to ${to.currency}; a plan change keeps the currency`,
    );
  }
  // Both prices must be for the same span of time, or `price × remaining / period` mixes units.
  if (from.interval !== to.interval) {
    throw billingError(
      'unprocessable',
      'interval_mismatch',
      `cannot prorate from a ${from.interval} to a ${to.interval} price; an interval change starts a new period`,
    );
  }
}

/** The credit and charge lines for changing plans at `asOf` inside `period`. */
export function planChangeProration(input: PlanChangeInput): PlanChangeProration {
  const { period, asOf, from, to } = input;
  checkPlans(from, to);
  assertValidDate(asOf, 'asOf');
  const total = periodSeconds(period.start, period.end);
  if (total <= 0) {
    throw billingError('validation_failed', 'invalid_period', 'the period is shorter than one second');
  }
  if (asOf.getTime() < period.start.getTime() || asOf.getTime() >= period.end.getTime()) {
    throw billingError(
      'unprocessable',
      'as_of_outside_period',
      'the change time is outside the current period',
    );
  }
  // Remaining time is measured to the whole second, rounding the partial second in progress away.
  const remaining = Math.floor((period.end.getTime() - asOf.getTime()) / MS_PER_SECOND);
  const covered: BillingPeriod = { start: new Date(asOf.getTime()), end: new Date(period.end.getTime()) };
  const since = isoDate(asOf);
  // `0 - x` rather than `-x`: a zero credit must be +0, which serializes and compares as 0.
  const credit = invoiceLine({
    kind: 'PRORATION',
    description: `Unused time on ${from.name} after ${since}`,
    quantity: 1,
    unitAmount: 0 - prorate(from.unitAmount, remaining, total),
    period: covered,
  });
  const charge = invoiceLine({
    kind: 'PRORATION',
    description: `Remaining time on ${to.name} after ${since}`,
    quantity: 1,
    unitAmount: prorate(to.unitAmount, remaining, total),
    period: { start: new Date(covered.start.getTime()), end: new Date(covered.end.getTime()) },
  });
  const net = credit.amount + charge.amount;
  return {
    currency: from.currency,
    periodSeconds: total,
    remainingSeconds: remaining,
    covered,
    credit,
    charge,
    lines: [credit, charge],
    net,
    settlement: settlementOf(net),
  };
}
