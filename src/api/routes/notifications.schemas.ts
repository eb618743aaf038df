/** Request and response schemas for /api/v1/notifications: the outbox of mail sent to a tenant's customers. */
import { NOTIFICATION_STATUSES } from '../../db/entities';
import { z } from '../zod';
import { PaginationQuery, idCursor } from './common.schemas';

/** `invoice.payment_failed`, `subscription.trial_ending`, …: lower case words joined by dots. */
export const NotificationKind = z
  .string()
  .max(100)
  .regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*$/, 'must be a notification kind like invoice.payment_failed')
  .openapi({ example: 'invoice.payment_failed' });

export const NotificationView = z
  .object({
    id: z.string().openapi({ example: 'ntf_01jd0000000000000000000000' }),
    kind: z.string().openapi({
      example: 'invoice.payment_failed',
      description:
        'what it is about: tenant.welcome, cloudpod.active, subscription.activation_failed, ' +
        'subscription.trial_ending, subscription.suspended, subscription.canceled, invoice.payment_failed, ' +
        'invoice.payment_action_required, invoice.payment_reminder, …',
    }),
    customer_id: z
      .string()
      .nullable()
      .openapi({ description: "the customer it concerns; null for the tenant's own mail" }),
    recipient: z.string().openapi({ example: 'jane@example.test' }),
    subject: z.string(),
    body: z.string().openapi({ description: 'the plain-text body sent' }),
    status: z.enum(NOTIFICATION_STATUSES).openapi({
      description:
        'PENDING: not delivered yet (also when no SMTP server is configured: the outbox keeps it); ' +
        'SENT: accepted by the mail server; FAILED: given up after the last attempt',
    }),
    attempts: z.number().int().openapi({ description: 'delivery attempts begun' }),
    last_error: z
      .string()
      .nullable()
      .openapi({ description: 'why the last attempt failed (the mail server’s answer when it gave one)' }),
    next_attempt_at: z
      .string()
      .nullable()
      .openapi({ description: 'PENDING: not attempted before this time (a retry’s backoff)' }),
    created_at: z.string(),
    sent_at: z.string().nullable(),
  })
  .openapi('Notification', { description: 'A mail of the outbox and its delivery state' });

export type NotificationView = z.infer<typeof NotificationView>;

export const NotificationList = z.object({
  data: z.array(NotificationView),
  next_cursor: z.string().nullable(),
});

export const ListNotificationsQuery = PaginationQuery.extend({
  cursor: idCursor('notification'),
  customer_id: z.string().max(40).optional().openapi({ description: 'only those concerning this customer' }),
  kind: NotificationKind.optional(),
  status: z.enum(NOTIFICATION_STATUSES).optional(),
});

export const NotificationIdParams = z.object({
  id: z.string().openapi({ example: 'ntf_01jd0000000000000000000000' }),
});
