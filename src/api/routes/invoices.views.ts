/**
 * How invoices and credit notes look to API clients. The list pages (db/repositories/billing.ts)
 * write the same fields in the same order straight from the rows.
 */
import type { CreditNote, Invoice, InvoiceLine } from '../../db/entities';
import type { InvoiceWithLines } from '../../services/invoices';
import type { CreditNoteView, InvoiceLineView, InvoiceSummaryView, InvoiceView } from './invoices.schemas';

const iso = (date: Date | null | undefined) => date?.toISOString() ?? null;

export function invoiceSummaryView(invoice: Invoice): InvoiceSummaryView {
  return {
    id: invoice.id,
    number: invoice.number ?? null,
    status: invoice.status,
    customer_id: invoice.customer.id,
    subscription_id: invoice.subscription?.id ?? null,
    billing_reason: invoice.billingReason,
    collection_method: invoice.collectionMethod,
    currency: invoice.currency,
    tax_rate_bps: invoice.taxRateBps,
    subtotal: invoice.subtotal,
    tax: invoice.tax,
    total: invoice.total,
    credit_applied: invoice.creditApplied,
    amount_due: invoice.amountDue,
    amount_paid: invoice.amountPaid,
    period_start: iso(invoice.periodStart),
    period_end: iso(invoice.periodEnd),
    due_date: iso(invoice.dueDate),
    finalized_at: iso(invoice.finalizedAt),
    paid_at: iso(invoice.paidAt),
    voided_at: iso(invoice.voidedAt),
    created_at: invoice.createdAt.toISOString(),
    updated_at: invoice.updatedAt.toISOString(),
  };
}

export function invoiceLineView(line: InvoiceLine): InvoiceLineView {
  return {
    id: line.id,
    kind: line.kind,
    description: line.description,
    quantity: line.quantity,
    unit_amount: line.unitAmount,
    amount: line.amount,
    period_start: iso(line.periodStart),
    period_end: iso(line.periodEnd),
  };
}

export function invoiceView({ invoice, lines }: InvoiceWithLines): InvoiceView {
  return { ...invoiceSummaryView(invoice), lines: lines.map(invoiceLineView) };
}

export function creditNoteView(note: CreditNote): CreditNoteView {
  return {
    id: note.id,
    number: note.number,
    status: note.status,
    customer_id: note.customer.id,
    subscription_id: note.subscription?.id ?? null,
    amount: note.amount,
    currency: note.currency,
    reason: note.reason,
    created_at: note.createdAt.toISOString(),
  };
}
