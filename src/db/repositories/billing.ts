/**
 * Billing queries that are more than a lookup: the gapless document counter, the row locks billing
 * changes take, and the invoice and credit-note lists as JSON text (see pages.ts) in the shapes of
 * their views (api/routes/invoices.views.ts).
 */
import { LockMode } from '@mikro-orm/core';
import { Customer, Invoice } from '../entities';
import { SOFT_DELETED, type EntityManager } from '../orm';
import { documentNumber, type DocumentSeries, type InvoiceStatus } from '../../domain/billing/states';
import { isId } from '../../domain/ids';
import { PageWhere, intJson, isoJson, textJson, textPage, utc, type Page } from './pages';

/**
 * Takes the next number of a tenant's series for `year` with one statement. The upsert leaves the
 * counter row locked until the caller's transaction ends: concurrent finalizations of the tenant
 * queue behind it, and a rollback gives the number back, so numbers are gapless and unique.
 * Must run inside the transaction that stores the numbered document.
 */
export async function nextDocumentNumber(
  tx: EntityManager,
  tenantId: string,
  series: DocumentSeries,
  year: number,
): Promise<string> {
  const [row] = await tx.execute<{ last_value: number }[]>(
    `insert into document_counters (tenant_id, series, year, last_value) values (?, ?, ?, 1)
     on conflict (tenant_id, series, year) do update set last_value = document_counters.last_value + 1
     returning last_value`,
    [tenantId, series, year],
  );
  if (!row) throw new Error(`the ${series} counter of tenant ${tenantId} returned no value`);
  return documentNumber(series, year, row.last_value);
}

/**
 * An invoice locked FOR UPDATE until the transaction ends, read afresh (never from the identity
 * map, which may hold a version from before the lock was granted); null for any other id.
 */
export async function lockInvoice(tx: EntityManager, invoiceId: string): Promise<Invoice | null> {
  if (!isId('invoice', invoiceId)) return null;
  return tx.findOne(Invoice, { id: invoiceId }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
}

/**
 * A customer of the tenant locked FOR UPDATE, read afresh: its credit balance is only changed under
 * this lock. `live` refuses soft-deleted customers (new business); settling existing documents
 * (finalization, credit) reaches deleted ones too, as their billing history stays.
 */
export async function lockCustomer(
  tx: EntityManager,
  tenantId: string,
  customerId: string,
  opts: { live: boolean },
): Promise<Customer | null> {
  if (!isId('customer', customerId)) return null;
  return tx.findOne(
    Customer,
    { id: customerId, tenant: tenantId, ...(opts.live ? { deletedAt: null } : {}) },
    { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true, filters: { [SOFT_DELETED]: false } },
  );
}

interface InvoicePageRow {
  id: string;
  number: string | null;
  status: string;
  customer_id: string;
  subscription_id: string | null;
  billing_reason: string;
  collection_method: string;
  currency: string;
  tax_rate_bps: string;
  subtotal: string;
  tax: string;
  total: string;
  credit_applied: string;
  amount_due: string;
  amount_paid: string;
  period_start: string | null;
  period_end: string | null;
  due_date: string | null;
  finalized_at: string | null;
  paid_at: string | null;
  voided_at: string | null;
  created_at: string;
  updated_at: string;
}

const INVOICE_TIMES = [
  'period_start',
  'period_end',
  'due_date',
  'finalized_at',
  'paid_at',
  'voided_at',
  'created_at',
  'updated_at',
] as const;

/** One page of a tenant's invoices, oldest first, in `invoiceSummaryView`'s shape. */
export function invoicePage(
  em: EntityManager,
  tenantId: string,
  q: {
    customerId?: string | undefined;
    subscriptionId?: string | undefined;
    status?: InvoiceStatus | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<Page> {
  const where = new PageWhere(tenantId)
    .add('c', 'customer_id = $?', q.customerId)
    .add('u', 'subscription_id = $?', q.subscriptionId)
    .add('s', 'status = $?', q.status)
    .add('a', 'id > $?', q.after);
  return textPage<InvoicePageRow>(em, {
    name: where.name('invoices_page'),
    select: `id, number, status, customer_id, subscription_id, billing_reason, collection_method, currency,
             tax_rate_bps, subtotal, tax, total, credit_applied, amount_due, amount_paid,
             ${INVOICE_TIMES.map(utc).join(', ')}`,
    table: 'invoices',
    where: where.where,
    values: where.values,
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"number":${textJson(r.number)},"status":${textJson(r.status)},` +
      `"customer_id":${textJson(r.customer_id)},"subscription_id":${textJson(r.subscription_id)},` +
      `"billing_reason":${textJson(r.billing_reason)},"collection_method":${textJson(r.collection_method)},` +
      `"currency":${textJson(r.currency)},"tax_rate_bps":${intJson(r.tax_rate_bps)},` +
      `"subtotal":${intJson(r.subtotal)},"tax":${intJson(r.tax)},"total":${intJson(r.total)},` +
      `"credit_applied":${intJson(r.credit_applied)},"amount_due":${intJson(r.amount_due)},` +
      `"amount_paid":${intJson(r.amount_paid)},` +
      INVOICE_TIMES.map((column) => `"${column}":${isoJson(r[column])}`).join(',') +
      '}',
  });
}

interface CreditNotePageRow {
  id: string;
  number: string;
  status: string;
  customer_id: string;
  subscription_id: string | null;
  amount: string;
  currency: string;
  reason: string;
  created_at: string;
}

/** One page of a tenant's credit notes, oldest first, in `creditNoteView`'s shape. */
export function creditNotePage(
  em: EntityManager,
  tenantId: string,
  q: { customerId?: string | undefined; after?: string | undefined; limit: number },
): Promise<Page> {
  const where = new PageWhere(tenantId)
    .add('c', 'customer_id = $?', q.customerId)
    .add('a', 'id > $?', q.after);
  return textPage<CreditNotePageRow>(em, {
    name: where.name('credit_notes_page'),
    select: `id, number, status, customer_id, subscription_id, amount, currency, reason, ${utc('created_at')}`,
    table: 'credit_notes',
    where: where.where,
    values: where.values,
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"number":${textJson(r.number)},"status":${textJson(r.status)},` +
      `"customer_id":${textJson(r.customer_id)},"subscription_id":${textJson(r.subscription_id)},` +
      `"amount":${intJson(r.amount)},"currency":${textJson(r.currency)},"reason":${textJson(r.reason)},` +
      `"created_at":${isoJson(r.created_at)}}`,
  });
}
