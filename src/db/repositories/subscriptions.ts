/** The subscription list as JSON text (see pages.ts), in `subscriptionView`'s shape. */
import type { EntityManager } from '../orm';
import { PageWhere, intJson, isoJson, textJson, textPage, utc, type Page } from './pages';

interface SubscriptionPageRow {
  id: string;
  customer_id: string;
  product_id: string;
  status: string;
  unit_amount: string;
  currency: string;
  interval: string;
  trial_days: string;
  trial_end: string | null;
  current_period_start: string | null;
  current_period_end: string | null;
  cancel_at_period_end: string;
  canceled_at: string | null;
  pod_slug: string;
  pod_id: string | null;
  activation_workflow_id: string | null;
  created_at: string;
  updated_at: string;
}

/** One page of a tenant's subscriptions (not deleted), oldest first. */
export function subscriptionPage(
  em: EntityManager,
  tenantId: string,
  q: {
    customerId?: string | undefined;
    status?: string | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<Page> {
  const where = new PageWhere(tenantId)
    .add('c', 'customer_id = $?', q.customerId)
    .add('s', 'status = $?', q.status)
    .add('a', 'id > $?', q.after)
    .add('l', 'deleted_at is null');
  return textPage<SubscriptionPageRow>(em, {
    name: where.name('subscriptions_page'),
    select:
      'id, customer_id, product_id, status, unit_amount, currency, interval, trial_days, ' +
      `${utc('trial_end')}, ${utc('current_period_start')}, ${utc('current_period_end')}, cancel_at_period_end, ` +
      `${utc('canceled_at')}, pod_slug, pod_id, activation_workflow_id, ${utc('created_at')}, ${utc('updated_at')}`,
    table: 'subscriptions',
    where: where.where,
    values: where.values,
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"customer_id":${textJson(r.customer_id)},"product_id":${textJson(r.product_id)},` +
      `"status":${textJson(r.status)},"unit_amount":${intJson(r.unit_amount)},"currency":${textJson(r.currency)},` +
      `"interval":${textJson(r.interval)},"trial_days":${intJson(r.trial_days)},"trial_end":${isoJson(r.trial_end)},` +
      `"current_period_start":${isoJson(r.current_period_start)},"current_period_end":${isoJson(r.current_period_end)},` +
      `"cancel_at_period_end":${r.cancel_at_period_end === 't' ? 'true' : 'false'},"canceled_at":${isoJson(r.canceled_at)},` +
      `"pod_slug":${textJson(r.pod_slug)},"pod_id":${textJson(r.pod_id)},` +
      `"activation_workflow_id":${textJson(r.activation_workflow_id)},` +
      `"created_at":${isoJson(r.created_at)},"updated_at":${isoJson(r.updated_at)}}`,
  });
}
