/**
 * Usage overage: what a period's metered usage costs beyond what the plan includes. Quantities
 * are `bigint` (usage is summed from many records, each up to a safe integer), converted to a
 * line's quantity only once the included amount is taken off.
 */
import { billingError } from './errors';
import type { InvoiceLineInput } from './invoices';
import { assertMinorUnits, type MinorUnits } from './money';
import { MS_PER_DAY, isoDate, type BillingPeriod } from './periods';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The start of a UTC day given as `YYYY-MM-DD`; a malformed or impossible date is refused. */
export function utcDayStart(day: string): Date {
  const start = new Date(`${day}T00:00:00.000Z`);
  if (!DAY.test(day) || Number.isNaN(start.getTime()) || start.toISOString().slice(0, 10) !== day) {
    throw billingError(
      'validation_failed',
      'invalid_date',
      `${JSON.stringify(day)} is not a day (YYYY-MM-DD)`,
    );
  }
  return start;
}

/** The UTC day `days` days after `day` (before it when negative), as `YYYY-MM-DD`. */
export function addUtcDays(day: string, days: number): string {
  return isoDate(new Date(utcDayStart(day).getTime() + days * MS_PER_DAY));
}

/** What a plan includes of one metered metric per period, and the price of each unit beyond. */
export interface MeteredAllowance {
  /** the usage records' `metric` */
  metric: string;
  /** how the line names it: `Bandwidth` */
  label: string;
  /** the metric's unit: `GB` */
  unit: string;
  /** units each period includes */
  included: number;
  /** price of each unit beyond `included`; 0 bills nothing */
  unitAmount: MinorUnits;
}

/**
 * One USAGE line per metric whose use in `period` exceeded its allowance and has a price: the
 * quantity is the units beyond the included ones, so the line's amount is exactly what the
 * overage costs. Metrics used within their allowance, priced at 0, or not priced by the plan
 * (absent from `allowances`) add no line.
 */
export function overageLines(
  allowances: readonly MeteredAllowance[],
  used: ReadonlyMap<string, bigint>,
  period: BillingPeriod,
): InvoiceLineInput[] {
  return allowances.flatMap((allowance) => {
    assertMinorUnits(allowance.unitAmount, 'overage unit amount');
    if (allowance.unitAmount < 0) {
      throw billingError('validation_failed', 'invalid_line', 'an overage unit amount is never negative');
    }
    if (!Number.isSafeInteger(allowance.included) || allowance.included < 0) {
      throw billingError('validation_failed', 'invalid_line', 'an included amount is a non-negative integer');
    }
    const total = used.get(allowance.metric) ?? 0n;
    const beyond = total - BigInt(allowance.included);
    if (beyond <= 0n || allowance.unitAmount === 0) return [];
    if (beyond > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw billingError(
        'validation_failed',
        'amount_out_of_range',
        `${allowance.metric} overage of ${beyond} ${allowance.unit} exceeds the safe integer range`,
      );
    }
    return [
      {
        kind: 'USAGE' as const,
        description:
          `${allowance.label} beyond the ${allowance.included} ${allowance.unit} included ` +
          `(${total} ${allowance.unit} used), ${isoDate(period.start)} – ${isoDate(period.end)}`,
        quantity: Number(beyond),
        unitAmount: allowance.unitAmount,
        period: { start: period.start, end: period.end },
      },
    ];
  });
}
