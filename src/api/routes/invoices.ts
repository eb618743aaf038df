/**
 * /api/v1/billing/invoices and /api/v1/billing/credit-notes: a tenant's billing documents. One-off
 * invoices are drafted here and finalized (numbered, OPEN) or voided, and any issued invoice can be
 * paid now; credit notes are issued by billing itself (plan changes, overpayments) and only listed
 * here.
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import { CreditNote, Customer, Invoice, InvoiceLine, Payment, Tenant } from '../../db/entities';
import type { EntityManager, MikroORM } from '../../db/orm';
import { creditNotePage, invoicePage } from '../../db/repositories/billing';
import { pageBody } from '../../db/repositories/pages';
import type { InvoiceLineInput } from '../../domain/billing';
import { AppError, notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import type { PaymentProvider } from '../../providers/payments';
import {
  createDraftInvoice,
  finalizeInvoice,
  markUncollectible,
  voidInvoice,
  type InvoiceWithLines,
} from '../../services/invoices';
import { payInvoice, recordManualPayment, type PayInvoiceResult } from '../../services/settlement';
import { nudgeDunning } from '../../services/dunning-signals';
import { route, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import { encodeCursor } from './common.schemas';
import {
  CreateInvoiceBody,
  CreditNoteIdParams,
  CreditNoteList,
  CreditNoteView,
  CustomerBalance,
  InvoiceDetail,
  InvoiceIdParams,
  InvoiceList,
  InvoiceView,
  InvoicePayment,
  ListCreditNotesQuery,
  ListInvoicesQuery,
  PayInvoiceBody,
  PaymentDeclinedProblem,
  type PaymentView,
} from './invoices.schemas';
import { creditNoteView, invoiceView } from './invoices.views';
import { z } from '../zod';

const read = { caller: 'tenant', permission: 'billing:read' } as const;
const write = { caller: 'tenant', permission: 'billing:write' } as const;

const oneInvoice = (description: string) => ({
  200: { description, content: { 'application/json': { schema: InvoiceView } } },
});

/** One of the calling tenant's invoices with its lines: other tenants' ids are invisible through the tenant filter. */
async function findInvoice(em: EntityManager, id: string): Promise<InvoiceWithLines> {
  const invoice = isId('invoice', id) ? await em.findOne(Invoice, { id }) : null;
  if (!invoice) throw notFound('invoice');
  const lines = await em.find(InvoiceLine, { invoice: invoice.id }, { orderBy: { position: 'asc' } });
  return { invoice, lines };
}

/** A one-off line: a credit when it gives money back, otherwise a charge for what was delivered. */
function oneOffLine(line: CreateInvoiceBody['lines'][number]): InvoiceLineInput {
  return {
    kind: line.unit_amount < 0 ? 'CREDIT' : 'USAGE',
    description: line.description,
    quantity: line.quantity,
    unitAmount: line.unit_amount,
  };
}

function paymentView(payment: Payment): PaymentView {
  return {
    id: payment.id,
    invoice_id: payment.invoice.id,
    status: payment.status,
    attempt: payment.attempt,
    amount: payment.amount,
    currency: payment.currency,
    payment_method: payment.paymentMethod ?? null,
    decline_kind: payment.declineKind ?? null,
    failure_code: payment.failureCode ?? null,
    failure_message: payment.failureMessage ?? null,
    created_at: payment.createdAt.toISOString(),
  };
}

/** A declined charge as the 402 problem, naming the FAILED payment recorded for it. */
function declined({ invoice, payment }: PayInvoiceResult): AppError {
  return new AppError(
    'payment_declined',
    `the payment of invoice ${invoice.invoice.number ?? invoice.invoice.id} was declined${payment.failureMessage ? `: ${payment.failureMessage}` : ''}`,
    {
      decline_kind: payment.declineKind ?? 'SOFT',
      failure_code: payment.failureCode ?? 'payment_failed',
      payment_id: payment.id,
    },
  );
}

export interface InvoiceRouteDeps {
  orm: MikroORM;
  temporal: Client;
  config: Config;
  /** charges `POST …/pay` makes, with the provider the worker uses */
  payments: PaymentProvider;
}

export function invoiceRoutes(deps: InvoiceRouteDeps): Route[] {
  return [
    route({
      operationId: 'listInvoices',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/invoices',
      summary: 'List invoices, oldest first, without their lines',
      access: read,
      query: ListInvoicesQuery,
      responses: {
        200: { description: 'A page of invoices', content: { 'application/json': { schema: InvoiceList } } },
      },
      async handle({ principal, query, res }) {
        const page = await invoicePage(deps.orm.em, tenantOf(principal), {
          customerId: query.customer_id,
          subscriptionId: query.subscription_id,
          status: query.status,
          after: query.cursor,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'getInvoice',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/invoices/:id',
      summary: 'Get an invoice with its lines and its payments',
      access: read,
      params: InvoiceIdParams,
      responses: {
        200: {
          description: 'The invoice, its lines and every attempt to collect it',
          content: { 'application/json': { schema: InvoiceDetail } },
        },
      },
      async handle({ em, params, res }) {
        const found = await findInvoice(em, params.id);
        const payments = await em.find(
          Payment,
          { invoice: found.invoice.id },
          { orderBy: { attempt: 'asc', createdAt: 'asc' } },
        );
        res.json({ ...invoiceView(found), payments: payments.map(paymentView) });
      },
    }),
    route({
      operationId: 'createInvoice',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/invoices',
      summary:
        "Draft a one-off invoice for one of the tenant's customers; finalize it to number and issue it",
      access: write,
      body: CreateInvoiceBody,
      idempotent: true,
      responses: {
        201: { description: 'The DRAFT invoice', content: { 'application/json': { schema: InvoiceView } } },
      },
      problems: [409, 422],
      async handle({ principal, em, body, res, log }) {
        const drafted = await createDraftInvoice(em, {
          tenantId: tenantOf(principal),
          customerId: body.customer_id,
          billingReason: 'MANUAL',
          lines: body.lines.map(oneOffLine),
        });
        log.info({ invoiceId: drafted.invoice.id }, 'invoice drafted');
        res.status(201).location(`/api/v1/billing/invoices/${drafted.invoice.id}`).json(invoiceView(drafted));
      },
    }),
    route({
      operationId: 'finalizeInvoice',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/invoices/:id/finalize',
      summary:
        "Finalize a DRAFT: number it, set its due date by the tenant's net terms and apply the customer's credit balance (PAID at once when nothing is left due)",
      description:
        'Idempotent: an invoice that is already finalized is returned as it is, with the number it has.',
      access: write,
      params: InvoiceIdParams,
      idempotent: true,
      responses: oneInvoice('The finalized invoice'),
      problems: [409],
      async handle({ em, params, res, log }) {
        const finalized = await finalizeInvoice(em, params.id, new Date());
        log.info({ invoiceId: finalized.invoice.id, number: finalized.invoice.number }, 'invoice finalized');
        res.json(invoiceView(finalized));
      },
    }),
    route({
      operationId: 'voidInvoice',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/invoices/:id/void',
      summary:
        'Void an OPEN or UNCOLLECTIBLE invoice; it keeps its number, and the credit it spent goes back to the customer',
      description:
        'A DRAFT cannot be voided (it has no number: it was never issued), nor can a PAID or partly paid invoice: 409. ' +
        'Voiding a VOID invoice returns it unchanged.',
      access: write,
      params: InvoiceIdParams,
      idempotent: true,
      responses: oneInvoice('The voided invoice'),
      problems: [409],
      async handle({ em, params, res, log }) {
        const voided = await voidInvoice(em, params.id, new Date());
        await nudgeDunning(deps.temporal, [voided.invoice.id], 'invoice voided');
        log.info({ invoiceId: voided.invoice.id }, 'invoice voided');
        res.json(invoiceView(voided));
      },
    }),
    route({
      operationId: 'payInvoice',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/invoices/:id/pay',
      summary:
        "Charge what an OPEN or UNCOLLECTIBLE invoice has left due now, to the payment method given or the customer's default, or record a payment made outside the provider (`manual_reference`)",
      description:
        '200: paid — the invoice is PAID and settled: a PAST_DUE or SUSPENDED subscription it bills is ACTIVE again, ' +
        'its suspended pod is being unsuspended, and its dunning ends. 402 (`payment-declined`, with `decline_kind`, ' +
        '`failure_code` and `payment_id`): declined, the attempt recorded as FAILED. 202: the payment needs the ' +
        "customer's authentication (REQUIRES_ACTION) or is still processing (PENDING). 409: a DRAFT, PAID or VOID " +
        'invoice, or one with nothing left due. 422: no `payment_method` and no default. Each call is the next ' +
        'attempt of the invoice (a still PENDING attempt with the same method is retried instead, never charged ' +
        'twice). A `payment_method` that succeeds becomes the default of a customer who has none; an existing ' +
        'default is never replaced here. With `manual_reference` nothing is charged: a SUCCEEDED payment of what is ' +
        'left due is recorded under that reference (the same reference again returns it) and the invoice settled.',
      access: write,
      params: InvoiceIdParams,
      body: PayInvoiceBody,
      idempotent: true,
      responses: {
        200: { description: 'Paid', content: { 'application/json': { schema: InvoicePayment } } },
        202: {
          description: 'Needs the customer’s action, or still processing',
          content: { 'application/json': { schema: InvoicePayment } },
        },
        402: {
          description: 'Declined; the payment is recorded as FAILED',
          content: { 'application/problem+json': { schema: PaymentDeclinedProblem } },
        },
      },
      problems: [409, 422],
      async handle({ em, params, body, res, log }) {
        const paid = body.manual_reference
          ? await recordManualPayment(
              { ...deps, em },
              { invoiceId: params.id, reference: body.manual_reference },
            )
          : await payInvoice({ ...deps, em }, { invoiceId: params.id, paymentMethod: body.payment_method });
        log.info(
          {
            invoiceId: params.id,
            paymentId: paid.payment.id,
            status: paid.status,
            settlement: paid.settlement,
          },
          'invoice payment attempted',
        );
        if (paid.status === 'FAILED') throw declined(paid);
        res
          .status(paid.status === 'SUCCEEDED' ? 200 : 202)
          .json({ invoice: invoiceView(paid.invoice), payment: paymentView(paid.payment) });
      },
    }),
    route({
      operationId: 'listCreditNotes',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/credit-notes',
      summary: 'List credit notes, oldest first',
      access: read,
      query: ListCreditNotesQuery,
      responses: {
        200: {
          description: 'A page of credit notes',
          content: { 'application/json': { schema: CreditNoteList } },
        },
      },
      async handle({ principal, query, res }) {
        const page = await creditNotePage(deps.orm.em, tenantOf(principal), {
          customerId: query.customer_id,
          after: query.cursor,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'markInvoiceUncollectible',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/invoices/:id/mark-uncollectible',
      summary:
        'Write an OPEN invoice off as UNCOLLECTIBLE; it keeps its number and can still be paid or voided, and its dunning goes on',
      description:
        'Writing a debt off is an accounting decision: the invoice is still owed, so a payment settles it and dunning keeps ' +
        'collecting it. An UNCOLLECTIBLE invoice is returned as it is; a DRAFT, PAID or VOID one is 409.',
      access: write,
      params: InvoiceIdParams,
      idempotent: true,
      responses: oneInvoice('The UNCOLLECTIBLE invoice'),
      problems: [409],
      async handle({ em, params, res, log }) {
        await findInvoice(em, params.id);
        const written = await markUncollectible(em, params.id);
        log.info({ invoiceId: written.invoice.id }, 'invoice marked uncollectible');
        res.json(invoiceView(written));
      },
    }),
    route({
      operationId: 'getCreditNote',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/credit-notes/:id',
      summary: 'Get a credit note',
      access: read,
      params: CreditNoteIdParams,
      responses: {
        200: { description: 'The credit note', content: { 'application/json': { schema: CreditNoteView } } },
      },
      async handle({ em, params, res }) {
        const note = isId('creditNote', params.id) ? await em.findOne(CreditNote, { id: params.id }) : null;
        if (!note) throw notFound('credit note');
        res.json(creditNoteView(note));
      },
    }),
    route({
      operationId: 'getCustomerBalance',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/customers/:id/balance',
      summary: "A customer's credit balance and what their issued invoices have left due",
      access: read,
      params: CreditNoteIdParams.extend({
        id: z.string().openapi({ example: 'cus_01jd0000000000000000000000' }),
      }),
      responses: {
        200: { description: 'The balance', content: { 'application/json': { schema: CustomerBalance } } },
      },
      async handle({ principal, em, params, res }) {
        const tenantId = tenantOf(principal);
        const customer = isId('customer', params.id) ? await em.findOne(Customer, { id: params.id }) : null;
        if (!customer) throw notFound('customer');
        const [due] = await em.execute<{ n: number; due: string | null }[]>(
          `select count(*)::int as n, sum(amount_due - amount_paid)::text as due from invoices
            where tenant_id = ? and customer_id = ? and status in ('OPEN', 'UNCOLLECTIBLE')`,
          [tenantId, customer.id],
        );
        const tenant = await em.findOneOrFail(Tenant, { id: tenantId }, { fields: ['currency'] });
        res.json({
          customer_id: customer.id,
          credit_balance: customer.creditBalance,
          currency: tenant.currency,
          open_invoices: due?.n ?? 0,
          amount_due: Number(due?.due ?? 0),
        });
      },
    }),
  ];
}
