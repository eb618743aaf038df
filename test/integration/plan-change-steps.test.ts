/**
 * The plan change's steps, driven one by one against the real database, pod workflow and simulated
 * providers (its own workflow is started in a namespace no worker serves, so it never runs): a
 * request the engine never confirmed is withdrawn and frees the slot; a claim is repeatable; a
 * resize request retried after a crash adopts its job instead of opening a second; settling twice
 * issues one invoice; a period renewed at the old price while the pod was resized is repriced whole;
 * a late failure never undoes a settled change.
 */
import { Client, Connection } from '@temporalio/client';
import request from 'supertest';
import { AppError } from '../../src/domain/errors';
import { tenantEm, systemEm } from '../../src/db/orm';
import { SubscriptionPlanChange } from '../../src/db/entities';
import { chargeInvoice } from '../../src/services/collection';
import {
  claimPlanChange,
  failPlanChange,
  planChangeJobState,
  planChangeQuote,
  requestPlanChangeResize,
  requestSubscriptionPlanChange,
  settlePlanChange,
  settlePlanChangeCollection,
} from '../../src/services/subscription-plan-change';
import { workflowIds } from '../../src/workflows/shared';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, type PodTenant } from '../helpers/pods';
import { connectClient, createNamespace } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let t: PodTenant;
let idle: { client: Client; close: () => Promise<void> };
let sub: {
  id: string;
  customer_id: string;
  pod_id: string;
  current_period_start: string;
  current_period_end: string;
};

const http = () => request(stack.app);
const deps = () => ({ orm: stack.db.orm, temporal: stack.temporal, config: stack.config });
const em = () => tenantEm(stack.db.orm, t.id);

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'pcs-node-1', 16);
  t = await podTenant(stack, 'pcs-a');
  idle = await connectClient(await createNamespace('idle'));
  const customer = await http()
    .post('/api/v1/customers')
    .set('Authorization', t.auth)
    .send({ email: 'steps@pcs-a.test', name: 'Steps' });
  expect(customer.status).toBe(201);
  await http()
    .patch(`/api/v1/customers/${customer.body.id}`)
    .set('Authorization', t.auth)
    .send({ default_payment_method: 'pm_card_visa' })
    .expect(200);
  const created = await http()
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', t.auth)
    .send({ customer_id: customer.body.id, product_id: t.starter, pod_slug: 'pcs-steps' });
  expect(created.status).toBe(201);
  await http()
    .post(`/api/v1/billing/subscriptions/${created.body.id}/activate`)
    .set('Authorization', t.auth)
    .send()
    .expect(202);
  sub = await waitFor(
    async () => {
      const res = await http()
        .get(`/api/v1/billing/subscriptions/${created.body.id}`)
        .set('Authorization', t.auth);
      return res.body.status === 'ACTIVE' ? res.body : undefined;
    },
    { what: 'the subscription ACTIVE', timeoutMs: 60_000 },
  );
});
afterAll(async () => {
  await idle?.close();
  await stack?.close();
});

const changeRow = (id: string) =>
  systemEm(stack.db.orm).findOneOrFail(SubscriptionPlanChange, { id }, { filters: false });

it('withdraws a change whose workflow the engine never confirmed: 503, FAILED, the slot free, no claim', async () => {
  const unreachable = new Client({
    connection: Connection.lazy({ address: '127.0.0.1:1' }),
    namespace: 'nowhere',
  });
  const failure = await requestSubscriptionPlanChange(
    { em: em(), temporal: unreachable, config: { ...stack.config, TEMPORAL_CALL_TIMEOUT_MS: 1000 } },
    t.id,
    sub.id,
    t.pro,
  ).catch((err: unknown) => err);
  expect(failure).toBeInstanceOf(AppError);
  expect((failure as AppError).kind).toBe('unavailable');
  const [row] = await stack.db.query<{ id: string; status: string; failure_reason: string }>(
    'select id, status, failure_reason from subscription_plan_changes where subscription_id = $1',
    [sub.id],
  );
  expect(row).toMatchObject({
    status: 'FAILED',
    failure_reason: expect.stringMatching(/could not be reached/),
  });
  // a start that landed after all finds the change withdrawn and runs nothing
  expect(await claimPlanChange(stack.db.orm, row!.id)).toBe(false);
  expect((await changeRow(row!.id)).status).toBe('FAILED');
});

it('runs each step once however often it is repeated, and reprices a period renewed during the resize', async () => {
  const { change, workflowId } = await requestSubscriptionPlanChange(
    { em: em(), temporal: idle.client, config: stack.config },
    t.id,
    sub.id,
    t.pro,
  );
  expect(workflowId).toBe(workflowIds.changeSubscriptionPlan(sub.id, change.id));
  expect(change.status).toBe('REQUESTED');
  expect(await claimPlanChange(stack.db.orm, change.id)).toBe(true);
  expect(await claimPlanChange(stack.db.orm, change.id)).toBe(true);
  expect((await changeRow(change.id)).status).toBe('RESIZING');

  const jobId = await requestPlanChangeResize(deps(), change.id);
  // The request landed but its record was lost (a crash): the retry adopts the job.
  await stack.db.query('update subscription_plan_changes set job_id = null where id = $1', [change.id]);
  expect(await requestPlanChangeResize(deps(), change.id)).toBe(jobId);
  const jobs = await stack.db.query<{ id: string }>(
    `select id from provisioning_jobs where pod_id = $1 and type = 'CHANGE_PLAN'`,
    [sub.pod_id],
  );
  expect(jobs).toEqual([{ id: jobId }]);
  await waitFor(async () => (await planChangeJobState(stack.db.orm, jobId)).status === 'COMPLETED', {
    what: 'the resize COMPLETED',
  });

  // Meanwhile the period ended and its renewal billed the next one at the old price.
  const oldEnd = new Date(sub.current_period_end);
  const nextEnd = new Date(oldEnd.getTime() + 30 * 86_400_000);
  await stack.db.query(
    'update subscriptions set current_period_start = $2, current_period_end = $3 where id = $1',
    [sub.id, oldEnd, nextEnd],
  );

  const settled = await settlePlanChange(stack.db.orm, change.id, new Date());
  expect(settled).toMatchObject({ settlement: 'INVOICE', status: 'ACTIVE', creditNoteId: null });
  const again = await settlePlanChange(stack.db.orm, change.id, new Date());
  expect(again.invoiceId).toBe(settled.invoiceId);
  const lines = await stack.db.query<{ amount: string; period_start: Date; period_end: Date }>(
    'select amount, period_start, period_end from invoice_lines where invoice_id = $1 order by position',
    [settled.invoiceId],
  );
  const asRequested = planChangeQuote({
    from: { code: 'STARTER', name: 'STARTER', interval: 'MONTH', unitAmount: 1000, currency: 'EUR' },
    to: { code: 'PRO', name: 'PRO', interval: 'MONTH', unitAmount: 2000, currency: 'EUR' },
    segments: [{ period: { start: change.periodStart, end: change.periodEnd }, asOf: change.asOf }],
    taxRateBps: 0,
  });
  expect(lines.map((l) => Number(l.amount))).toEqual([
    ...asRequested.lines.map((l) => l.amount),
    -1000,
    2000,
  ]);
  expect(lines.slice(2).map((l) => [l.period_start.getTime(), l.period_end.getTime()])).toEqual([
    [oldEnd.getTime(), nextEnd.getTime()],
    [oldEnd.getTime(), nextEnd.getTime()],
  ]);
  const updates = await stack.db.query<{ n: string }>(
    `select count(*) as n from invoices where subscription_id = $1 and billing_reason = 'SUBSCRIPTION_UPDATE'`,
    [sub.id],
  );
  expect(updates).toEqual([{ n: '1' }]);

  // A failure reported late never undoes a settled change.
  await failPlanChange(stack.db.orm, change.id, 'late', new Date());
  expect((await changeRow(change.id)).status).toBe('SUCCEEDED');

  await chargeInvoice({ orm: stack.db.orm, payments: stack.providers.payments }, settled.invoiceId!, 1);
  expect(await settlePlanChangeCollection(stack.db.orm, change.id, new Date())).toEqual({
    status: 'ACTIVE',
    dunning: false,
    failedAt: null,
  });
  await idle.client.workflow.getHandle(workflowId).terminate('the steps were driven by the test');
  // back to the period the subscription really is in
  await stack.db.query(
    'update subscriptions set current_period_start = $2, current_period_end = $3 where id = $1',
    [sub.id, new Date(sub.current_period_start), oldEnd],
  );
});

it('starts a change whose start was lost again when the next request finds it REQUESTED', async () => {
  const slim = await http().post('/api/v1/products').set('Authorization', t.auth).send({
    code: 'SLIM',
    name: 'Slim',
    interval: 'MONTH',
    unit_amount: 1500,
    vcpu: 1,
    memory_mb: 2048,
    disk_gb: 40,
    included_bandwidth_gb: 100,
  });
  expect(slim.status).toBe(201);
  // Started where no worker runs: as far as this stack's engine knows, the start never happened.
  const { change, workflowId } = await requestSubscriptionPlanChange(
    { em: em(), temporal: idle.client, config: stack.config },
    t.id,
    sub.id,
    slim.body.id as string,
  );
  await idle.client.workflow.getHandle(workflowId).terminate('stands for a start that was lost');

  const again = await http()
    .post(`/api/v1/billing/subscriptions/${sub.id}/change-plan`)
    .set('Authorization', t.auth)
    .send({ product_id: slim.body.id });
  expect(again.status).toBe(409);
  expect(again.body.plan_change_id).toBe(change.id);

  const state = await stack.temporal.workflow.getHandle(workflowId).result();
  expect(state).toMatchObject({ status: 'CHANGED', settlement: 'CREDIT_NOTE' });
  expect(await changeRow(change.id)).toMatchObject({ status: 'SUCCEEDED', settlement: 'CREDIT_NOTE' });
});
