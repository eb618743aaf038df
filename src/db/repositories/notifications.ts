/** The notification list as JSON text (see pages.ts) in the shape of `notificationView` (api/routes/notifications.ts). */
import type { NotificationStatus } from '../entities';
import { redactOneTimeTokens } from '../../domain/one-time-tokens';
import type { EntityManager } from '../orm';
import { PageWhere, intJson, isoJson, textJson, textPage, utc, type Page } from './pages';

interface NotificationPageRow {
  id: string;
  template: string;
  customer_id: string | null;
  recipient: string;
  subject: string;
  body: string;
  status: string;
  attempts: string;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  sent_at: string | null;
}

/** One page of a tenant's notifications, oldest first. */
export function notificationPage(
  em: EntityManager,
  tenantId: string,
  q: {
    customerId?: string | undefined;
    kind?: string | undefined;
    status?: NotificationStatus | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<Page> {
  const where = new PageWhere(tenantId)
    .add('c', 'customer_id = $?', q.customerId)
    .add('k', 'template = $?', q.kind)
    .add('s', 'status = $?', q.status)
    .add('a', 'id > $?', q.after);
  return textPage<NotificationPageRow>(em, {
    name: where.name('notifications_page'),
    select: `id, template, customer_id, recipient, subject, body, status, attempts, last_error,
             ${['next_attempt_at', 'created_at', 'sent_at'].map(utc).join(', ')}`,
    table: 'notifications',
    where: where.where,
    values: where.values,
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"kind":${textJson(r.template)},"customer_id":${textJson(r.customer_id)},` +
      `"recipient":${textJson(r.recipient)},"subject":${textJson(r.subject)},"body":${textJson(redactOneTimeTokens(r.body))},` +
      `"status":${textJson(r.status)},"attempts":${intJson(r.attempts)},"last_error":${textJson(r.last_error)},` +
      `"next_attempt_at":${isoJson(r.next_attempt_at)},"created_at":${isoJson(r.created_at)},` +
      `"sent_at":${isoJson(r.sent_at)}}`,
  });
}
