/**
 * No priced pod runs unbilled: `POST /cloudpods` of a priced product creates the subscription that
 * pays for the pod in the same statement as the pod, and provisions it through that subscription's
 * activation (pod first, money second); a free product's pod runs without one. Terminating a
 * subscribed pod ends its subscription, and the sweeper finishes a create whose activation start
 * was lost by starting the activation, never the bare pod.
 */
import request from 'supertest';
import { systemEm } from '../../src/db/orm';
import { insertPodWithJob } from '../../src/db/repositories/cloudpods';
import { newId } from '../../src/domain/ids';
import { sweepStrandedWork } from '../../src/services/cloudpods';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let priced: PodTenant;
let free: PodTenant;

const http = () => request(stack.app);

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'priced-node-1', 32);
  [priced, free] = await Promise.all([
    podTenant(stack, 'priced-co'),
    podTenant(stack, 'free-co', { free: true }),
  ]);
  const card = await http()
    .patch(`/api/v1/customers/${priced.customerId}`)
    .set('Authorization', priced.auth)
    .send({ default_payment_method: 'pm_card_visa' });
  expect(card.status).toBe(200);
});
afterAll(async () => {
  await stack?.close();
});

function createPod(t: PodTenant, slug: string, productId = t.starter) {
  return http()
    .post('/api/v1/cloudpods')
    .set('Authorization', t.auth)
    .send({ customer_id: t.customerId, product_id: productId, slug });
}

function waitSubscription(t: PodTenant, id: string, status: string) {
  return waitFor(
    async () => {
      const res = await http().get(`/api/v1/billing/subscriptions/${id}`).set('Authorization', t.auth);
      return res.body.status === status ? res.body : undefined;
    },
    { what: `subscription ${id} ${status}`, timeoutMs: 60_000 },
  );
}

const subscriptionsOfPod = (podId: string) =>
  stack.db.query<{ id: string; status: string }>('select id, status from subscriptions where pod_id = $1', [
    podId,
  ]);

it('creates a priced pod with its subscription, provisions it through the activation and bills it once', async () => {
  const res = await createPod(priced, 'priced-web');
  expect(res.status).toBe(202);
  const sub = res.body.subscription as { id: string; status: string; activation_workflow_id: string };
  expect(sub).toEqual({
    id: expect.stringMatching(/^sub_/),
    status: 'PENDING',
    activation_workflow_id: `subscription-activate-${sub.id}`,
  });
  expect(res.body.pod).toMatchObject({ status: 'PENDING', slug: 'priced-web' });

  const active = await waitSubscription(priced, sub.id, 'ACTIVE');
  expect(active).toMatchObject({ pod_id: res.body.pod.id, unit_amount: 1000, pod_slug: 'priced-web' });
  const pod = await waitPod(stack, priced, res.body.pod.id, 'ACTIVE');
  expect(active.current_period_start).toBe(pod.activated_at);

  const invoices = await http()
    .get(`/api/v1/billing/invoices?subscription_id=${sub.id}`)
    .set('Authorization', priced.auth);
  expect(invoices.body.data).toEqual([expect.objectContaining({ status: 'PAID', total: 1000 })]);
  // the pod's own workflow was started by the activation, once
  const activation = await stack.temporal.workflow.getHandle(sub.activation_workflow_id).result();
  expect(activation).toMatchObject({ podId: res.body.pod.id, status: 'ACTIVE' });
  expect(await subscriptionsOfPod(res.body.pod.id)).toEqual([{ id: sub.id, status: 'ACTIVE' }]);
});

it('runs a free product’s pod without a subscription', async () => {
  const res = await createPod(free, 'free-web');
  expect(res.status).toBe(202);
  expect(res.body.subscription).toBeNull();
  await waitPod(stack, free, res.body.pod.id, 'ACTIVE');
  expect(await subscriptionsOfPod(res.body.pod.id)).toEqual([]);
});

it('stores neither pod nor subscription when the create is refused', async () => {
  const [before] = await stack.db.query<{ n: string }>('select count(*) as n from subscriptions');
  expectProblem(await createPod(priced, 'priced-web'), 409, 'conflict');
  expectProblem(await createPod(priced, 'priced-other', free.starter), 422, 'unprocessable');
  expectProblem(await createPod(priced, 'Not A Slug'), 400, 'validation-failed');
  const [after] = await stack.db.query<{ n: string }>('select count(*) as n from subscriptions');
  expect(after).toEqual(before);
});

it('cancels the subscription of a pod terminated through the pod route, and renews it no more', async () => {
  const res = await createPod(priced, 'priced-gone');
  expect(res.status).toBe(202);
  const subId = res.body.subscription.id as string;
  await waitSubscription(priced, subId, 'ACTIVE');
  await waitPod(stack, priced, res.body.pod.id, 'ACTIVE');

  const gone = await http().delete(`/api/v1/cloudpods/${res.body.pod.id}`).set('Authorization', priced.auth);
  expect(gone.status).toBe(202);
  expect(gone.body.job).toMatchObject({ type: 'TERMINATE' });
  const canceled = await waitSubscription(priced, subId, 'CANCELED');
  expect(canceled.canceled_at).not.toBeNull();
  await waitPod(stack, priced, res.body.pod.id, 'TERMINATED');
});

it('cancels a subscription whose pod never came up when the pod is terminated, with nothing billed', async () => {
  const fault = await http()
    .post('/api/v1/ops/simulator/faults')
    .set('Authorization', `Bearer ${stack.adminToken}`)
    .send({ operation: 'createVm', slug_pattern: 'priced-broken-*' });
  expect(fault.status).toBe(201);
  const res = await createPod(priced, 'priced-broken-1');
  expect(res.status).toBe(202);
  const subId = res.body.subscription.id as string;
  await waitPod(stack, priced, res.body.pod.id, 'FAILED');

  const gone = await http().delete(`/api/v1/cloudpods/${res.body.pod.id}`).set('Authorization', priced.auth);
  expect(gone.status).toBe(202);
  await waitSubscription(priced, subId, 'CANCELED');
  const activation = await stack.temporal.workflow
    .getHandle(res.body.subscription.activation_workflow_id)
    .result();
  expect(activation).toMatchObject({ step: 'failed', invoiceId: null });
  const invoices = await http()
    .get(`/api/v1/billing/invoices?subscription_id=${subId}`)
    .set('Authorization', priced.auth);
  expect(invoices.body.data).toEqual([]);
});

it('sweeps a priced pod whose activation never started by starting the activation, not the bare pod', async () => {
  const podId = newId('pod');
  const subscriptionId = newId('subscription');
  const stranded = await insertPodWithJob(stack.db.orm.em.fork(), {
    podId,
    jobId: newId('job'),
    tenantId: priced.id,
    customerId: priced.customerId,
    productId: priced.starter,
    slug: 'priced-stranded',
    zone: stack.config.DNS_ZONE,
    workflowId: `cloudpod-${podId}`,
    restoreFromBackupId: null,
    queueName: 'provisioning',
    maxAttempts: 3,
    now: new Date(Date.now() - 60_000),
    subscriptionId,
    activationWorkflowId: `subscription-activate-${subscriptionId}`,
  });
  expect(stranded).toMatchObject({ ok: true, subscription: { id: subscriptionId, status: 'PENDING' } });

  const swept = await sweepStrandedWork({
    em: systemEm(stack.db.orm),
    temporal: stack.temporal,
    config: stack.config,
  });
  expect(swept.started).toBeGreaterThanOrEqual(1);
  await waitSubscription(priced, subscriptionId, 'ACTIVE');
  const activation = await stack.temporal.workflow
    .getHandle(`subscription-activate-${subscriptionId}`)
    .result();
  expect(activation).toMatchObject({ podId, status: 'ACTIVE' });
});
