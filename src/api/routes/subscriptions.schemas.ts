/** Request and response schemas for /api/v1/billing/subscriptions. */
import { SUBSCRIPTION_STATUSES } from '../../domain/billing/states';
import { z } from '../zod';
import { PaginationQuery, idCursor } from './common.schemas';
import { CreatePodBody } from './cloudpods.schemas';

/** Minor units of the currency: integers, never fractions, within what JSON and the tables carry exactly. */
const MinorUnits = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const CreateSubscriptionBody = z
  .strictObject({
    customer_id: z.string().min(1).max(40),
    product_id: z.string().min(1).max(40),
    pod_slug: CreatePodBody.shape.slug.openapi({ description: 'slug of the pod that activation creates' }),
    unit_amount: MinorUnits.optional().openapi({
      description:
        'price per interval in minor units of the product’s currency, instead of the product’s price',
    }),
    trial_days: z.number().int().min(0).max(365).optional().openapi({
      description: 'trial length instead of the product’s (0: none)',
    }),
  })
  .openapi('CreateSubscription');

export type CreateSubscriptionBody = z.infer<typeof CreateSubscriptionBody>;

export const SubscriptionView = z
  .object({
    id: z.string(),
    customer_id: z.string(),
    product_id: z.string(),
    status: z.enum(SUBSCRIPTION_STATUSES),
    unit_amount: z.number().int().openapi({ description: 'minor units of `currency` per interval' }),
    currency: z.string(),
    interval: z.enum(['MONTH', 'YEAR']),
    trial_days: z.number().int(),
    trial_end: z.string().nullable(),
    current_period_start: z.string().nullable(),
    current_period_end: z.string().nullable(),
    cancel_at_period_end: z.boolean(),
    canceled_at: z.string().nullable(),
    pod_slug: z.string(),
    pod_id: z.string().nullable(),
    activation_workflow_id: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('Subscription');

export type SubscriptionView = z.infer<typeof SubscriptionView>;

export const ListSubscriptionsQuery = PaginationQuery.extend({
  cursor: idCursor('subscription'),
  customer_id: z.string().min(1).max(40).optional(),
  status: z.enum(SUBSCRIPTION_STATUSES).optional(),
});

export const SubscriptionList = z.object({
  data: z.array(SubscriptionView),
  next_cursor: z.string().nullable(),
});

export const SubscriptionIdParams = z.object({
  id: z.string().openapi({ example: 'sub_01jd0000000000000000000000' }),
});

export const CancelSubscriptionBody = z
  .strictObject({
    at: z
      .enum(['period_end', 'now'])
      .optional()
      .openapi({
        description:
          '`period_end` (the default): the subscription runs to the end of the period paid for and is canceled ' +
          'by its renewal, which terminates the pod; `now`: canceled at once and the pod terminated, the ' +
          'current period not refunded. A subscription never activated is canceled at once either way',
      }),
  })
  .openapi('CancelSubscription');

export const ActivationAccepted = z
  .object({ subscription: SubscriptionView, workflow_id: z.string() })
  .openapi('SubscriptionActivation');
