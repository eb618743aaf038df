/**
 * Invoice arithmetic: lines, subtotal, tax, total and the customer's credit balance.
 *
 * Sign conventions: a line amount is positive for what the customer owes and negative for what is
 * given back (unused time, goodwill credit). A customer's credit balance is a non-negative amount
 * the platform owes the customer, spent on future invoices before any card is charged.
 */
import { assertMinorUnits, divRoundHalfEven, type MinorUnits, sumMinorUnits, toMinorUnits } from './money';
import { billingError } from './errors';
import { assertValidDate, type BillingPeriod, MS_PER_DAY } from './periods';

export const INVOICE_LINE_KINDS = ['SUBSCRIPTION', 'PRORATION', 'USAGE', 'CREDIT'] as const;
export type InvoiceLineKind = (typeof INVOICE_LINE_KINDS)[number];

/** One invoice line before it is stored: `amount` is always exactly `quantity × unitAmount`. */
export interface InvoiceLineDraft {
  kind: InvoiceLineKind;
  description: string;
  quantity: number;
  unitAmount: MinorUnits;
  amount: MinorUnits;
  /** the service time the line pays for, when it is time-based */
  period?: BillingPeriod;
}

export type InvoiceLineInput = Omit<InvoiceLineDraft, 'amount'>;

/** Basis points: 1 % = 100 bps; tax rates run from 0 to 100 %. */
export const BPS_PER_UNIT = 10_000;

/**
 * Which sign each kind's unit amount may take: charges are never negative, credits never
 * positive, and a proration line is either (credit for unused time, charge for remaining time).
 */
const SIGN_ALLOWED: Record<InvoiceLineKind, (unitAmount: number) => boolean> = {
  SUBSCRIPTION: (unit) => unit >= 0,
  USAGE: (unit) => unit >= 0,
  CREDIT: (unit) => unit <= 0,
  PRORATION: () => true,
};

function invalidLine(detail: string): Error {
  return billingError('validation_failed', 'invalid_line', detail);
}

function checkLineShape(line: InvoiceLineInput): void {
  if (!Number.isSafeInteger(line.quantity) || line.quantity < 0) {
    throw invalidLine('a line quantity is a non-negative integer');
  }
  assertMinorUnits(line.unitAmount, 'unit amount');
  if (!SIGN_ALLOWED[line.kind](line.unitAmount)) {
    throw invalidLine(`a ${line.kind} line cannot have a unit amount of ${line.unitAmount}`);
  }
  if (line.period) {
    assertValidDate(line.period.start, 'line period start');
    assertValidDate(line.period.end, 'line period end');
    if (line.period.end.getTime() < line.period.start.getTime()) {
      throw invalidLine('a line period cannot end before it starts');
    }
  }
}

/** Builds a line, computing its amount exactly as quantity × unit amount. */
export function invoiceLine(input: InvoiceLineInput): InvoiceLineDraft {
  checkLineShape(input);
  const amount = toMinorUnits(BigInt(input.quantity) * BigInt(input.unitAmount), 'line amount');
  return { ...input, amount };
}

/** Refuses a line whose stored amount disagrees with quantity × unit amount. */
export function assertLineConsistent(line: InvoiceLineDraft): InvoiceLineDraft {
  checkLineShape(line);
  if (BigInt(line.amount) !== BigInt(line.quantity) * BigInt(line.unitAmount)) {
    throw invalidLine(`line "${line.description}" amount is not quantity × unit amount`);
  }
  return line;
}

export function assertTaxRateBps(taxRateBps: number): number {
  if (!Number.isSafeInteger(taxRateBps) || taxRateBps < 0 || taxRateBps > BPS_PER_UNIT) {
    throw billingError('validation_failed', 'invalid_tax_rate', 'a tax rate is 0–10000 basis points');
  }
  return taxRateBps;
}

/**
 * Tax on a taxable amount, rounded half-even once. Tax is computed on the invoice's subtotal, not
 * per line: one rounding keeps the tax within half a minor unit of the exact figure however many
 * lines there are, and a credit line reduces the tax base exactly like a discount. A negative base
 * (an invoice that mostly gives money back) gets negative tax: the tax on the credited amount.
 */
export function taxOn(taxable: MinorUnits, taxRateBps: number): MinorUnits {
  assertMinorUnits(taxable, 'taxable amount');
  assertTaxRateBps(taxRateBps);
  return toMinorUnits(divRoundHalfEven(BigInt(taxable) * BigInt(taxRateBps), BigInt(BPS_PER_UNIT)), 'tax');
}

export interface InvoiceTotals {
  /** exact sum of every line amount; all lines are taxable */
  subtotal: MinorUnits;
  tax: MinorUnits;
  /** subtotal + tax */
  total: MinorUnits;
}

/** Subtotal (the exact sum of the lines), tax on the subtotal, and total. */
export function invoiceTotals(lines: readonly InvoiceLineDraft[], taxRateBps: number): InvoiceTotals {
  const subtotal = sumMinorUnits(lines.map((line) => assertLineConsistent(line).amount));
  const tax = taxOn(subtotal, taxRateBps);
  return { subtotal, tax, total: sumMinorUnits([subtotal, tax]) };
}

export interface CreditApplication {
  /** credit spent on this invoice: 0 ≤ appliedCredit ≤ max(total, 0), never more than the balance */
  appliedCredit: MinorUnits;
  /** what remains to be collected: total − appliedCredit, never negative */
  amountDue: MinorUnits;
  /** the customer's balance afterwards */
  creditBalanceAfter: MinorUnits;
}

/**
 * Spends the customer's credit balance on an invoice total. Credit covers as much of the total as
 * it can; the rest is due. A negative total (more given back than charged) is not a refund: like
 * Stripe, the excess is added to the balance for future invoices, and nothing is due.
 */
export function applyCreditBalance(total: MinorUnits, creditBalance: MinorUnits): CreditApplication {
  assertMinorUnits(total, 'total');
  assertMinorUnits(creditBalance, 'credit balance');
  if (creditBalance < 0) {
    throw billingError('validation_failed', 'invalid_credit_balance', 'a credit balance cannot be negative');
  }
  if (total <= 0) {
    return { appliedCredit: 0, amountDue: 0, creditBalanceAfter: sumMinorUnits([creditBalance, -total]) };
  }
  const appliedCredit = Math.min(total, creditBalance);
  return {
    appliedCredit,
    amountDue: total - appliedCredit,
    creditBalanceAfter: creditBalance - appliedCredit,
  };
}

export interface PricedInvoice extends InvoiceTotals, CreditApplication {
  lines: InvoiceLineDraft[];
}

/** Everything a draft invoice needs in one call: totals, then the credit balance applied. */
export function priceInvoice(
  lines: readonly InvoiceLineDraft[],
  settings: { taxRateBps: number; creditBalance: MinorUnits },
): PricedInvoice {
  const totals = invoiceTotals(lines, settings.taxRateBps);
  return { lines: [...lines], ...totals, ...applyCreditBalance(totals.total, settings.creditBalance) };
}

/** Due date of an invoice finalized at `issuedAt` under net-`netTermsDays` terms. */
export function invoiceDueDate(issuedAt: Date, netTermsDays: number): Date {
  assertValidDate(issuedAt, 'issue date');
  if (!Number.isSafeInteger(netTermsDays) || netTermsDays < 0) {
    throw billingError('validation_failed', 'invalid_period', 'net terms are a non-negative number of days');
  }
  return new Date(issuedAt.getTime() + netTermsDays * MS_PER_DAY);
}
