/** The customer and product lists as JSON text (see pages.ts), in the shapes of their views. */
import type { EntityManager } from '../orm';
import { PageWhere, intJson, isoJson, textJson, textPage, utc, type Page } from './pages';

interface CustomerPageRow {
  id: string;
  email: string;
  name: string;
  collection_method: string;
  default_payment_method: string | null;
  credit_balance: string;
  test_clock_id: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

/** One page of a tenant's customers, in `customerView`'s shape. */
export function customerPage(
  em: EntityManager,
  tenantId: string,
  q: { email?: string | undefined; after?: string | undefined; includeDeleted: boolean; limit: number },
): Promise<Page> {
  const where = new PageWhere(tenantId).add('e', 'email = $?', q.email).add('a', 'id > $?', q.after);
  if (!q.includeDeleted) where.add('l', 'deleted_at is null');
  return textPage<CustomerPageRow>(em, {
    name: where.name('customers_page'),
    select: `id, email, name, collection_method, default_payment_method, credit_balance, test_clock_id, ${utc('created_at')}, ${utc('updated_at')}, ${utc('deleted_at')}`,
    table: 'customers',
    where: where.where,
    values: where.values,
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"email":${textJson(r.email)},"name":${textJson(r.name)},` +
      `"collection_method":${textJson(r.collection_method)},"default_payment_method":${textJson(r.default_payment_method)},` +
      `"credit_balance":${intJson(r.credit_balance)},"test_clock_id":${textJson(r.test_clock_id)},` +
      `"created_at":${isoJson(r.created_at)},"updated_at":${isoJson(r.updated_at)},"deleted_at":${isoJson(r.deleted_at)}}`,
  });
}

interface ProductPageRow {
  id: string;
  code: string;
  name: string;
  kind: string;
  interval: string;
  unit_amount: string;
  currency: string;
  vcpu: string;
  memory_mb: string;
  disk_gb: string;
  included_bandwidth_gb: string;
  bandwidth_overage_unit_amount: string;
  trial_days: string;
  backups_included: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

/** One page of a tenant's products, in `productView`'s shape. */
export function productPage(
  em: EntityManager,
  tenantId: string,
  q: { after?: string | undefined; includeDeleted: boolean; limit: number },
): Promise<Page> {
  const where = new PageWhere(tenantId).add('a', 'id > $?', q.after);
  if (!q.includeDeleted) where.add('l', 'deleted_at is null');
  return textPage<ProductPageRow>(em, {
    name: where.name('products_page'),
    select: `id, code, name, kind, interval, unit_amount, currency, vcpu, memory_mb, disk_gb, included_bandwidth_gb,
             bandwidth_overage_unit_amount, trial_days, backups_included, ${utc('created_at')}, ${utc('updated_at')}, ${utc('deleted_at')}`,
    table: 'products',
    where: where.where,
    values: where.values,
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"code":${textJson(r.code)},"name":${textJson(r.name)},"kind":${textJson(r.kind)},` +
      `"interval":${textJson(r.interval)},"unit_amount":${intJson(r.unit_amount)},"currency":${textJson(r.currency)},` +
      `"vcpu":${intJson(r.vcpu)},"memory_mb":${intJson(r.memory_mb)},"disk_gb":${intJson(r.disk_gb)},` +
      `"included_bandwidth_gb":${intJson(r.included_bandwidth_gb)},` +
      `"bandwidth_overage_unit_amount":${intJson(r.bandwidth_overage_unit_amount)},"trial_days":${intJson(r.trial_days)},` +
      `"backups_included":${intJson(r.backups_included)},"created_at":${isoJson(r.created_at)},` +
      `"updated_at":${isoJson(r.updated_at)},"deleted_at":${isoJson(r.deleted_at)}}`,
  });
}
