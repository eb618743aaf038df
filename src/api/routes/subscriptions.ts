/**
 * /api/v1/billing/subscriptions: a customer's subscription to a product is created PENDING and
 * activated once; activation provisions its pod first and bills only a pod that came up.
 * Cancellation takes effect at the period's end (through the renewal) or at once.
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import type { Subscription, SubscriptionPlanChange } from '../../db/entities';
import type { MikroORM } from '../../db/orm';
import type { PaymentProvider } from '../../providers/payments';
import { subscriptionPage } from '../../db/repositories/subscriptions';
import { pageBody } from '../../db/repositories/pages';
import {
  cancelSubscription,
  createSubscription,
  findSubscription,
  requestActivation,
} from '../../services/subscriptions';
import {
  listSubscriptionPlanChanges,
  previewSubscriptionPlanChange,
  requestSubscriptionPlanChange,
  type PlanChangePreview as PreviewResult,
} from '../../services/subscription-plan-change';
import { route, type Route } from '../http/route';
import type { z } from '../zod';
import { tenantOf } from '../middleware/auth';
import type { ApiMetrics } from '../middleware/metrics';
import { encodeCursor } from './common.schemas';
import {
  ActivationAccepted,
  CancelSubscriptionBody,
  ChangePlanBody,
  ChangePlanPreviewQuery,
  CreateSubscriptionBody,
  ListSubscriptionsQuery,
  PlanChangeAccepted,
  PlanChangeList,
  PlanChangePreview,
  type PlanChangeView,
  SubscriptionIdParams,
  SubscriptionList,
  SubscriptionView,
} from './subscriptions.schemas';

const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;

export function subscriptionView(s: Subscription): SubscriptionView {
  return {
    id: s.id,
    customer_id: s.customer.id,
    product_id: s.product.id,
    status: s.status,
    unit_amount: s.unitAmount,
    currency: s.currency,
    interval: s.interval,
    trial_days: s.trialDays,
    trial_end: iso(s.trialEnd),
    current_period_start: iso(s.currentPeriodStart),
    current_period_end: iso(s.currentPeriodEnd),
    cancel_at_period_end: s.cancelAtPeriodEnd,
    canceled_at: iso(s.canceledAt),
    pod_slug: s.podSlug,
    pod_id: s.podId ?? null,
    activation_workflow_id: s.activationWorkflowId ?? null,
    created_at: s.createdAt.toISOString(),
    updated_at: s.updatedAt.toISOString(),
  };
}

export function planChangeView(c: SubscriptionPlanChange): PlanChangeView {
  return {
    id: c.id,
    subscription_id: c.subscription.id,
    status: c.status,
    from_product_id: c.fromProduct.id,
    to_product_id: c.toProduct.id,
    from_unit_amount: c.fromUnitAmount,
    to_unit_amount: c.toUnitAmount,
    currency: c.currency,
    as_of: c.asOf.toISOString(),
    period_start: c.periodStart.toISOString(),
    period_end: c.periodEnd.toISOString(),
    prorated: c.prorated,
    job_id: c.jobId ?? null,
    settlement: c.settlement ?? null,
    invoice_id: c.invoice?.id ?? null,
    credit_note_id: c.creditNote?.id ?? null,
    failure_reason: c.failureReason ?? null,
    workflow_id: c.workflowId,
    created_at: c.createdAt.toISOString(),
    finished_at: iso(c.finishedAt),
  };
}

/** The preview in the shape of invoice lines (without ids), so a client compares them as they are. */
export function planChangePreviewView(p: PreviewResult): PlanChangePreview {
  const priceView = (product: { id: string; code: string; name: string }, unitAmount: number) => ({
    product_id: product.id,
    code: product.code,
    name: product.name,
    unit_amount: unitAmount,
  });
  return {
    subscription_id: p.subscription.id,
    as_of: p.asOf.toISOString(),
    currency: p.from.currency,
    interval: p.from.interval,
    period_start: p.period.start.toISOString(),
    period_end: p.period.end.toISOString(),
    from: priceView(p.fromProduct, p.from.unitAmount),
    to: priceView(p.toProduct, p.to.unitAmount),
    prorated: p.prorated,
    lines: p.quote.lines.map((line) => ({
      kind: line.kind,
      description: line.description,
      quantity: line.quantity,
      unit_amount: line.unitAmount,
      amount: line.amount,
      period_start: iso(line.period?.start),
      period_end: iso(line.period?.end),
    })),
    subtotal: p.quote.subtotal,
    tax: p.quote.tax,
    total: p.quote.total,
    settlement: p.quote.settlement,
    amount: p.quote.amount,
  };
}

const read = { caller: 'tenant', permission: 'billing:read' } as const;
const write = { caller: 'tenant', permission: 'billing:write' } as const;
const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export function subscriptionRoutes(deps: {
  temporal: Client;
  metrics: ApiMetrics;
  config: Config;
  /** `cancel now` charges the final invoice with them */
  orm?: MikroORM;
  payments?: PaymentProvider;
}): Route[] {
  return [
    route({
      operationId: 'createSubscription',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/subscriptions',
      summary:
        'Create a PENDING subscription of a customer to a product, priced now; nothing runs or is billed before activation',
      access: write,
      body: CreateSubscriptionBody,
      responses: { 201: json(SubscriptionView, 'Subscription PENDING') },
      problems: [422],
      async handle({ principal, em, body, res, log }) {
        const subscription = await createSubscription(em, {
          tenantId: tenantOf(principal),
          customerId: body.customer_id,
          productId: body.product_id,
          podSlug: body.pod_slug,
          unitAmount: body.unit_amount,
          trialDays: body.trial_days,
        });
        log.info({ subscriptionId: subscription.id }, 'subscription created');
        res
          .status(201)
          .location(`/api/v1/billing/subscriptions/${subscription.id}`)
          .json(subscriptionView(subscription));
      },
    }),
    route({
      operationId: 'listSubscriptions',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/subscriptions',
      summary: 'List subscriptions, oldest first',
      access: read,
      query: ListSubscriptionsQuery,
      responses: { 200: json(SubscriptionList, 'A page of subscriptions') },
      async handle({ principal, em, query, res }) {
        const page = await subscriptionPage(em, tenantOf(principal), {
          customerId: query.customer_id,
          status: query.status,
          after: query.cursor,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'getSubscription',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/subscriptions/:id',
      summary: 'Get a subscription',
      access: read,
      params: SubscriptionIdParams,
      responses: { 200: json(SubscriptionView, 'The subscription') },
      async handle({ principal, em, params, res }) {
        res.json(subscriptionView(await findSubscription(em, tenantOf(principal), params.id)));
      },
    }),
    route({
      operationId: 'activateSubscription',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/subscriptions/:id/activate',
      summary:
        'Activate a PENDING subscription once: its pod is provisioned, and only once it is ACTIVE is the first invoice issued and charged (or the trial started). A second activation is 409',
      access: write,
      params: SubscriptionIdParams,
      idempotent: true,
      durable: true,
      responses: {
        202: json(ActivationAccepted, 'Activation runs in workflow `subscription-activate-<id>`'),
      },
      problems: [409],
      async handle({ principal, em, params, res, log }) {
        const { subscription, workflowId } = await requestActivation(
          { em, temporal: deps.temporal, config: deps.config },
          tenantOf(principal),
          params.id,
        );
        deps.metrics.workflowStarts.inc({ workflow: 'activateSubscription' });
        log.info({ subscriptionId: subscription.id, workflowId }, 'subscription activation started');
        res.status(202).json({ subscription: subscriptionView(subscription), workflow_id: workflowId });
      },
    }),
    route({
      operationId: 'cancelSubscription',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/subscriptions/:id/cancel',
      summary:
        'Cancel a subscription at the end of its period (default) or now (the pod terminated, the current period not refunded); a subscription never activated is canceled at once, one being activated is 409, a canceled one is returned as it is',
      access: write,
      params: SubscriptionIdParams,
      body: CancelSubscriptionBody,
      idempotent: true,
      durable: true,
      responses: {
        200: json(
          SubscriptionView,
          'The subscription: CANCELED, or still running with `cancel_at_period_end` set',
        ),
      },
      problems: [409],
      async handle({ principal, em, params, body, res, log }) {
        const { orm, payments } = deps;
        const subscription = await cancelSubscription(
          {
            em,
            temporal: deps.temporal,
            config: deps.config,
            ...(orm && payments ? { collect: { orm, payments } } : {}),
          },
          tenantOf(principal),
          params.id,
          body.at,
        );
        log.info(
          { subscriptionId: subscription.id, at: body.at ?? 'period_end', status: subscription.status },
          'subscription cancellation requested',
        );
        res.json(subscriptionView(subscription));
      },
    }),
    route({
      operationId: 'changeSubscriptionPlan',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/subscriptions/:id/change-plan',
      summary:
        'Change the plan of an ACTIVE or TRIALING subscription: its pod is resized first; only a resize that succeeded switches the plan and settles the proration as of now (an upgrade invoiced and charged, a downgrade credited to the customer’s balance; a trial only switched). A resize that fails bills nothing',
      access: write,
      params: SubscriptionIdParams,
      body: ChangePlanBody,
      idempotent: true,
      durable: true,
      responses: {
        202: json(
          PlanChangeAccepted,
          'The change runs in workflow `subscription-change-plan-<id>-<changeId>`; `plan_change` says how it ends',
        ),
      },
      problems: [409, 422],
      async handle({ principal, em, params, body, res, log }) {
        const { subscription, change, workflowId } = await requestSubscriptionPlanChange(
          { em, temporal: deps.temporal, config: deps.config },
          tenantOf(principal),
          params.id,
          body.product_id,
        );
        deps.metrics.workflowStarts.inc({ workflow: 'changeSubscriptionPlan' });
        log.info(
          { subscriptionId: subscription.id, planChangeId: change.id, workflowId },
          'subscription plan change started',
        );
        res.status(202).json({
          subscription: subscriptionView(subscription),
          plan_change: planChangeView(change),
          workflow_id: workflowId,
        });
      },
    }),
    route({
      operationId: 'previewSubscriptionPlanChange',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/subscriptions/:id/change-plan/preview',
      summary:
        'The exact lines, totals and settlement (invoice now, credit note, or nothing) that changing the plan at `as_of` (default now) would produce, computed by the function the change’s invoice uses',
      access: read,
      params: SubscriptionIdParams,
      query: ChangePlanPreviewQuery,
      responses: { 200: json(PlanChangePreview, 'What the change would settle') },
      problems: [409, 422],
      async handle({ principal, em, params, query, res }) {
        const preview = await previewSubscriptionPlanChange(
          em,
          tenantOf(principal),
          params.id,
          query.product_id,
          query.as_of === undefined ? new Date() : new Date(query.as_of),
        );
        res.json(planChangePreviewView(preview));
      },
    }),
    route({
      operationId: 'listSubscriptionPlanChanges',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/subscriptions/:id/plan-changes',
      summary:
        'A subscription’s plan changes, newest first (the last 100): how each ended and what it billed',
      access: read,
      params: SubscriptionIdParams,
      responses: { 200: json(PlanChangeList, 'Plan changes') },
      async handle({ principal, em, params, res }) {
        const changes = await listSubscriptionPlanChanges(em, tenantOf(principal), params.id);
        res.json({ data: changes.map(planChangeView) });
      },
    }),
  ];
}
