/** Request and response schemas for /api/v1/billing/subscriptions. */
import { INVOICE_LINE_KINDS } from '../../domain/billing/invoices';
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

/** A product id in a plan change: the product the subscription moves to. */
const TargetProductId = z.string().min(1).max(40).openapi({
  example: 'prd_01jd0000000000000000000000',
  description:
    'the product to move to: a live product of the tenant, not the current one, in the same currency and interval',
});

export const ChangePlanBody = z
  .strictObject({ product_id: TargetProductId })
  .openapi('ChangeSubscriptionPlan');

export const ChangePlanPreviewQuery = z.strictObject({
  product_id: TargetProductId,
  as_of: z.iso.datetime({ offset: true }).optional().openapi({
    example: '2026-11-23T20:00:00Z',
    description:
      'the moment the change takes effect (ISO 8601; default now); must lie in the current period. A change requested at this moment invoices exactly these lines',
  }),
});

const PlanChangeLine = z
  .object({
    kind: z.enum(INVOICE_LINE_KINDS),
    description: z.string(),
    quantity: z.number().int(),
    unit_amount: z.number().int().openapi({ description: 'minor units; negative for a credit' }),
    amount: z.number().int().openapi({ description: 'quantity × unit_amount' }),
    period_start: z.string().nullable(),
    period_end: z.string().nullable(),
  })
  .openapi('PlanChangeLine');

const PlanChangePrice = z.object({
  product_id: z.string(),
  code: z.string(),
  name: z.string(),
  unit_amount: z.number().int().openapi({ description: 'minor units of `currency` per interval' }),
});

const PLAN_CHANGE_SETTLEMENTS = ['INVOICE', 'CREDIT_NOTE', 'NONE'] as const;

export const PlanChangePreview = z
  .object({
    subscription_id: z.string(),
    as_of: z.string(),
    currency: z.string(),
    interval: z.enum(['MONTH', 'YEAR']),
    period_start: z.string(),
    period_end: z.string(),
    from: PlanChangePrice,
    to: PlanChangePrice,
    prorated: z.boolean().openapi({
      description: 'false during a trial: the plan is switched and nothing is prorated',
    }),
    lines: z.array(PlanChangeLine).openapi({
      description:
        'the credit for unused time on the current plan and the charge for the rest of the period on the new one, from `as_of` (second-based, rounded half-even)',
    }),
    subtotal: z.number().int(),
    tax: z.number().int(),
    total: z.number().int(),
    settlement: z.enum(PLAN_CHANGE_SETTLEMENTS).openapi({
      description:
        "INVOICE: invoiced and charged now (the customer's credit balance is spent first); CREDIT_NOTE: credited to the customer's balance, spent on the next invoice; NONE: nothing to settle",
    }),
    amount: z.number().int().min(0).openapi({ description: 'what is invoiced or credited' }),
  })
  .openapi('SubscriptionPlanChangePreview');

export type PlanChangePreview = z.infer<typeof PlanChangePreview>;

export const PlanChangeView = z
  .object({
    id: z.string(),
    subscription_id: z.string(),
    status: z.enum(['REQUESTED', 'RESIZING', 'SUCCEEDED', 'FAILED']).openapi({
      description:
        'REQUESTED → RESIZING (the pod is resized first) → SUCCEEDED (switched and settled) or FAILED (nothing billed)',
    }),
    from_product_id: z.string(),
    to_product_id: z.string(),
    from_unit_amount: z.number().int(),
    to_unit_amount: z.number().int(),
    currency: z.string(),
    as_of: z
      .string()
      .openapi({ description: 'the moment the change was requested: the proration is as of it' }),
    period_start: z.string(),
    period_end: z.string(),
    prorated: z.boolean(),
    job_id: z.string().nullable().openapi({ description: "the pod's CHANGE_PLAN job" }),
    settlement: z.enum(PLAN_CHANGE_SETTLEMENTS).nullable(),
    invoice_id: z.string().nullable(),
    credit_note_id: z.string().nullable(),
    failure_reason: z.string().nullable(),
    workflow_id: z.string(),
    created_at: z.string(),
    finished_at: z.string().nullable(),
  })
  .openapi('SubscriptionPlanChange');

export type PlanChangeView = z.infer<typeof PlanChangeView>;

export const PlanChangeAccepted = z
  .object({ subscription: SubscriptionView, plan_change: PlanChangeView, workflow_id: z.string() })
  .openapi('SubscriptionPlanChangeAccepted');

export const PlanChangeList = z.object({ data: z.array(PlanChangeView) });
