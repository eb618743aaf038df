/**
 * Request and response schemas for /api/v1/billing/invoices and /api/v1/billing/credit-notes.
 *
 * Money, in every billing view: an integer count of minor units with the ISO 4217 `currency` of the
 * document beside it (`"total": 1234, "currency": "EUR"` is 12.34 EUR; JPY has no minor unit, so
 * `1234` JPY is ¥1234). No floats and no formatted strings: clients format for their locale.
 */
import { INVOICE_LINE_KINDS } from '../../domain/billing/invoices';
import {
  BILLING_REASONS,
  COLLECTION_METHODS,
  CREDIT_NOTE_STATUSES,
  DECLINE_KINDS,
  INVOICE_STATUSES,
  PAYMENT_STATUSES,
} from '../../domain/billing/states';
import { Problem } from '../openapi';
import { z } from '../zod';
import { PaginationQuery, displayName, idCursor } from './common.schemas';
import { PaymentMethodId } from './customers.schemas';

/** The money convention, repeated on every amount so each field documents itself. */
const MINOR_UNITS =
  'integer count of minor units of `currency` (1234 EUR = 12.34 EUR); negative amounts give money back';

const money = (what: string) =>
  z
    .number()
    .int()
    .openapi({ description: `${what}: ${MINOR_UNITS}` });

/** A one-off invoice takes at most this many lines, each of at most this quantity. */
export const MAX_ONE_OFF_LINES = 100;
export const MAX_LINE_QUANTITY = 10_000;

const OneOffLine = z
  .strictObject({
    description: displayName(500).openapi({ example: 'Migration of 3 sites' }),
    quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY).openapi({ example: 1 }),
    unit_amount: z
      .number()
      .int()
      .min(-Number.MAX_SAFE_INTEGER)
      .max(Number.MAX_SAFE_INTEGER)
      .openapi({
        example: 15000,
        description: `price of one unit, ${MINOR_UNITS}; a negative amount is a credit line`,
      }),
  })
  .openapi('OneOffInvoiceLine');

export const CreateInvoiceBody = z
  .strictObject({
    customer_id: z.string().min(1).max(40).openapi({ example: 'cus_01jd0000000000000000000000' }),
    lines: z.array(OneOffLine).min(1).max(MAX_ONE_OFF_LINES),
  })
  .openapi('CreateInvoice', {
    description:
      "A one-off DRAFT invoice for one of the tenant's customers, in the tenant's currency, taxed at the " +
      "tenant's rate. Positive lines are stored as USAGE lines, negative ones as CREDIT lines.",
  });

export type CreateInvoiceBody = z.infer<typeof CreateInvoiceBody>;

export const InvoiceLineView = z
  .object({
    id: z.string(),
    kind: z.enum(INVOICE_LINE_KINDS),
    description: z.string(),
    quantity: z.number().int(),
    unit_amount: money('price of one unit'),
    amount: money('quantity × unit_amount'),
    period_start: z.string().nullable(),
    period_end: z.string().nullable(),
  })
  .openapi('InvoiceLine');

export type InvoiceLineView = z.infer<typeof InvoiceLineView>;

export const InvoiceSummaryView = z
  .object({
    id: z.string(),
    number: z
      .string()
      .nullable()
      .openapi({ example: 'INV-2026-000042', description: 'assigned at finalization; null on a DRAFT' }),
    status: z.enum(INVOICE_STATUSES),
    customer_id: z.string(),
    subscription_id: z.string().nullable(),
    billing_reason: z.enum(BILLING_REASONS),
    collection_method: z.enum(COLLECTION_METHODS),
    currency: z.string().openapi({ example: 'EUR', description: 'ISO 4217; every amount is in it' }),
    tax_rate_bps: z.number().int().openapi({ description: 'tax rate in basis points (1 % = 100)' }),
    subtotal: money('sum of the lines'),
    tax: money('tax on the subtotal'),
    total: money('subtotal + tax'),
    credit_applied: money("the customer's credit balance spent on it at finalization"),
    amount_due: money('total − credit_applied: what is collected'),
    amount_paid: money('collected so far'),
    period_start: z.string().nullable(),
    period_end: z.string().nullable(),
    due_date: z.string().nullable(),
    finalized_at: z.string().nullable(),
    paid_at: z.string().nullable(),
    voided_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('InvoiceSummary', { description: `An invoice without its lines. Money: ${MINOR_UNITS}.` });

export type InvoiceSummaryView = z.infer<typeof InvoiceSummaryView>;

export const InvoiceView = InvoiceSummaryView.extend({ lines: z.array(InvoiceLineView) }).openapi('Invoice', {
  description: `An invoice with its lines in order. Money: ${MINOR_UNITS}.`,
});

export type InvoiceView = z.infer<typeof InvoiceView>;

export const InvoiceList = z.object({
  data: z.array(InvoiceSummaryView),
  next_cursor: z.string().nullable(),
});

export const ListInvoicesQuery = PaginationQuery.extend({
  cursor: idCursor('invoice'),
  customer_id: z.string().max(40).optional(),
  subscription_id: z.string().max(40).optional(),
  status: z.enum(INVOICE_STATUSES).optional(),
});

export const InvoiceIdParams = z.object({
  id: z.string().openapi({ example: 'inv_01jd0000000000000000000000' }),
});

export const CreditNoteView = z
  .object({
    id: z.string(),
    number: z.string().openapi({ example: 'CN-2026-000007' }),
    status: z.enum(CREDIT_NOTE_STATUSES),
    customer_id: z.string(),
    subscription_id: z.string().nullable(),
    amount: money("added to the customer's credit balance"),
    currency: z.string(),
    reason: z.string(),
    created_at: z.string(),
  })
  .openapi('CreditNote', {
    description: `Money given back to a customer's credit balance. Money: ${MINOR_UNITS}.`,
  });

export type CreditNoteView = z.infer<typeof CreditNoteView>;

export const CreditNoteList = z.object({ data: z.array(CreditNoteView), next_cursor: z.string().nullable() });

export const ListCreditNotesQuery = PaginationQuery.extend({
  cursor: idCursor('creditNote'),
  customer_id: z.string().max(40).optional(),
});

export const PayInvoiceBody = z
  .strictObject({
    payment_method: PaymentMethodId.optional().openapi({
      description:
        "charge this saved payment method instead of the customer's default; when the customer has no default and the charge succeeds, it becomes their default",
    }),
    manual_reference: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .regex(/^[\x20-\x7e]+$/, 'printable ASCII')
      .optional()
      .openapi({
        description:
          'record money collected outside the payment provider (a bank transfer, a cheque) for what is left due, under this reference, instead of charging; the same reference again returns the payment recorded the first time',
        example: 'BANK-TRF-2026-1188',
      }),
  })
  .refine((b) => !(b.payment_method && b.manual_reference), {
    message: 'send payment_method (charge) or manual_reference (record a payment made elsewhere), not both',
    path: ['manual_reference'],
  })
  .openapi('PayInvoice');

export const CreditNoteIdParams = z.object({
  id: z.string().openapi({ example: 'cn_01jd0000000000000000000000' }),
});

export const CustomerBalance = z
  .object({
    customer_id: z.string(),
    credit_balance: money('credit the customer holds, applied to their next invoices'),
    currency: z.string().openapi({ description: "the tenant's currency, in which credit is held" }),
    open_invoices: z
      .number()
      .int()
      .openapi({ description: 'invoices issued and not yet paid (OPEN or UNCOLLECTIBLE)' }),
    amount_due: money('what those invoices have left due'),
  })
  .openapi('CustomerBalance', { description: `Money: ${MINOR_UNITS}.` });

export type PayInvoiceBody = z.infer<typeof PayInvoiceBody>;

export const PaymentView = z
  .object({
    id: z.string(),
    invoice_id: z.string(),
    status: z.enum(PAYMENT_STATUSES),
    attempt: z.number().int().openapi({ description: 'the attempt number of the invoice this payment is' }),
    amount: money('charged'),
    currency: z.string(),
    payment_method: z.string().nullable(),
    decline_kind: z
      .enum(DECLINE_KINDS)
      .nullable()
      .openapi({ description: 'FAILED only: HARD (the same card will not pass) or SOFT (it may, later)' }),
    failure_code: z.string().nullable(),
    failure_message: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('Payment', { description: `One attempt to collect an invoice. Money: ${MINOR_UNITS}.` });

export type PaymentView = z.infer<typeof PaymentView>;

export const InvoiceDetail = InvoiceView.extend({
  payments: z.array(PaymentView).openapi({ description: 'every attempt to collect it, oldest first' }),
}).openapi('InvoiceDetail');

export const InvoicePayment = z
  .object({ invoice: InvoiceView, payment: PaymentView })
  .openapi('InvoicePayment');

export const PaymentDeclinedProblem = Problem.extend({
  decline_kind: z.enum(DECLINE_KINDS),
  failure_code: z.string(),
  payment_id: z.string().openapi({ description: 'the FAILED payment, recorded on the invoice' }),
}).openapi('PaymentDeclinedProblem', {
  description: 'The card was declined (`type` …/payment-declined); the attempt is recorded as FAILED',
});
