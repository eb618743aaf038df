/**
 * /api/v1/notifications: what was sent (or is waiting to be sent) to a tenant's customers and to the
 * tenant itself — the outbox, read-only, with each mail's delivery state.
 */
import { Notification } from '../../db/entities';
import type { EntityManager, MikroORM } from '../../db/orm';
import { notificationPage } from '../../db/repositories/notifications';
import { pageBody } from '../../db/repositories/pages';
import { notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { redactOneTimeTokens } from '../../domain/one-time-tokens';
import { route, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import { encodeCursor } from './common.schemas';
import {
  ListNotificationsQuery,
  NotificationIdParams,
  NotificationList,
  NotificationView,
} from './notifications.schemas';

const read = { caller: 'tenant', permission: 'billing:read' } as const;

const iso = (date: Date | null | undefined) => date?.toISOString() ?? null;

/** How a notification looks to API clients; the list page writes the same fields straight from the rows. */
export function notificationView(n: Notification): NotificationView {
  return {
    id: n.id,
    kind: n.template,
    customer_id: n.customer?.id ?? null,
    recipient: n.recipient,
    subject: n.subject,
    // the mail's one-time token (an invitation, a password reset) is for its recipient only
    body: redactOneTimeTokens(n.body),
    status: n.status,
    attempts: n.attempts,
    last_error: n.lastError ?? null,
    next_attempt_at: iso(n.nextAttemptAt),
    created_at: n.createdAt.toISOString(),
    sent_at: iso(n.sentAt),
  };
}

/** One of the calling tenant's notifications: other tenants' ids are invisible through the tenant filter. */
async function findNotification(em: EntityManager, id: string): Promise<Notification> {
  const notification = isId('notification', id) ? await em.findOne(Notification, { id }) : null;
  if (!notification) throw notFound('notification');
  return notification;
}

export function notificationRoutes(deps: { orm: MikroORM }): Route[] {
  return [
    route({
      operationId: 'listNotifications',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/notifications',
      summary: 'List the notification outbox, oldest first, with each mail’s delivery state',
      description:
        'Every mail Podplane wrote for the tenant: to its customers (invoices, payments, trials, ' +
        'suspension, cancellation, pods) and to the tenant itself. Without an SMTP server configured ' +
        'they stay PENDING here. Filter by `customer_id`, `kind` and `status`.',
      access: read,
      query: ListNotificationsQuery,
      responses: {
        200: {
          description: 'A page of notifications',
          content: { 'application/json': { schema: NotificationList } },
        },
      },
      async handle({ principal, query, res }) {
        const page = await notificationPage(deps.orm.em, tenantOf(principal), {
          customerId: query.customer_id,
          kind: query.kind,
          status: query.status,
          after: query.cursor,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'getNotification',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/notifications/:id',
      summary: 'Get a notification with its delivery state',
      access: read,
      params: NotificationIdParams,
      responses: {
        200: {
          description: 'The notification',
          content: { 'application/json': { schema: NotificationView } },
        },
      },
      async handle({ em, params, res }) {
        res.json(notificationView(await findNotification(em, params.id)));
      },
    }),
  ];
}
