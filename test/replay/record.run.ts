/**
 * Records the workflow histories the replay test replays. Run `npm run replay:record` after a
 * deliberate, patched() change to a workflow, and commit the new JSON beside the old ones.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TEMPORAL_CLI, resolveTool } from '../../temporal/tools';
import { temporalAddress } from '../helpers/temporal';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { waitFor } from '../helpers/wait';
import { dunningPolicyInMilliseconds } from '../../src/domain/billing/dunning';
import type { dunning } from '../../src/workflows/dunning';
import { dunningStateQuery } from '../../src/workflows/messages/dunning';
import type { advanceTestClock } from '../../src/workflows/test-clocks';
import { issueTenantToken } from '../helpers/tenants';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'replay-node');
});
afterAll(async () => {
  await stack?.close();
});

it('records provision → plan change → suspend → unsuspend → terminate', async () => {
  const t = await podTenant(stack, 'replay-co', { free: true });
  const created = await request(stack.app)
    .post('/api/v1/cloudpods')
    .set('Authorization', t.auth)
    .send({ customer_id: t.customerId, product_id: t.starter, slug: 'replay-1' });
  const podId = created.body.pod.id as string;
  await waitPod(stack, t, podId, 'ACTIVE');
  await request(stack.app)
    .post(`/api/v1/cloudpods/${podId}/plan`)
    .set('Authorization', t.auth)
    .send({ product_id: t.pro });
  await waitPod(stack, t, podId, 'ACTIVE');
  await request(stack.app).post(`/api/v1/cloudpods/${podId}/suspend`).set('Authorization', t.auth);
  await waitPod(stack, t, podId, 'SUSPENDED');
  await request(stack.app).post(`/api/v1/cloudpods/${podId}/unsuspend`).set('Authorization', t.auth);
  await waitPod(stack, t, podId, 'ACTIVE');
  await request(stack.app).delete(`/api/v1/cloudpods/${podId}`).set('Authorization', t.auth);
  const handle = stack.temporal.workflow.getHandle(`cloudpod-${podId}`);
  const result = await handle.result();
  expect(result.status).toBe('TERMINATED');
  await saveHistory(handle.workflowId, 'cloudpod-provision-plan-suspend-terminate.json');
});

it('records a failed provisioning rolled back and retried, and a terminate dead-lettered and retried', async () => {
  const t = await podTenant(stack, 'replay-fail', { free: true });
  const admin = `Bearer ${stack.adminToken}`;
  await stack.providers.faults.add({ operation: 'createVm', slugPattern: 'replay-fail-*', times: 3 });
  const created = await request(stack.app)
    .post('/api/v1/cloudpods')
    .set('Authorization', t.auth)
    .send({ customer_id: t.customerId, product_id: t.starter, slug: 'replay-fail-1' });
  const podId = created.body.pod.id as string;
  await waitPod(stack, t, podId, 'FAILED');
  const retried = await request(stack.app)
    .post(`/api/v1/ops/jobs/${created.body.job.id as string}/retry`)
    .set('Authorization', admin);
  expect(retried.status).toBe(202);
  await waitPod(stack, t, podId, 'ACTIVE');
  await stack.providers.faults.add({ operation: 'deleteA', slugPattern: 'replay-fail-*', times: 3 });
  const deleted = await request(stack.app).delete(`/api/v1/cloudpods/${podId}`).set('Authorization', t.auth);
  await waitPod(stack, t, podId, 'TERMINATING');
  const again = await request(stack.app)
    .post(`/api/v1/ops/jobs/${deleted.body.job.id as string}/retry`)
    .set('Authorization', admin);
  expect(again.status).toBe(202);
  const handle = stack.temporal.workflow.getHandle(`cloudpod-${podId}`);
  expect((await handle.result()).status).toBe('TERMINATED');
  await saveHistory(handle.workflowId, 'cloudpod-rollback-retry-terminate-retry.json');
});

/** A subscription whose first charge is declined (soft), on a dunning policy in milliseconds. */
async function pastDueSubscription(t: PodTenant, slug: string, terminateAfterMsOverdue: number) {
  const policy = dunningPolicyInMilliseconds({ retryOffsetsMs: [300, 600], terminateAfterMsOverdue });
  await stack.db.query(
    'update tenant_billing_settings set dunning_policy = $1::jsonb, net_terms_days = 0 where tenant_id = $2',
    [JSON.stringify(policy), t.id],
  );
  await request(stack.app)
    .patch(`/api/v1/customers/${t.customerId}`)
    .set('Authorization', t.auth)
    .send({ default_payment_method: 'pm_card_insufficientFunds' });
  const sub = await request(stack.app)
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', t.auth)
    .send({ customer_id: t.customerId, product_id: t.starter, pod_slug: slug });
  const subscriptionId = sub.body.id as string;
  await request(stack.app)
    .post(`/api/v1/billing/subscriptions/${subscriptionId}/activate`)
    .set('Authorization', t.auth);
  return waitFor(
    async () => {
      const rows = await stack.db.query<{ id: string }>(
        'select id from invoices where subscription_id = $1 and dunning_policy is not null',
        [subscriptionId],
      );
      return rows[0]?.id;
    },
    { what: `dunning of subscription ${subscriptionId}`, timeoutMs: 60_000 },
  );
}

it('records dunning: retries, suspension, cancellation', async () => {
  const t = await podTenant(stack, 'replay-dun');
  const invoiceId = await pastDueSubscription(t, 'replay-dun-1', 3000);
  const handle = stack.temporal.workflow.getHandle<typeof dunning>(`dunning-${invoiceId}`);
  expect((await handle.result()).status).toBe('CANCELED');
  await saveHistory(handle.workflowId, 'dunning-retries-suspend-cancel.json');
});

it('records dunning: suspended, then paid through POST …/pay', async () => {
  const t = await podTenant(stack, 'replay-dun-paid');
  const invoiceId = await pastDueSubscription(t, 'replay-dun-2', 600_000);
  await waitFor(
    async () => {
      const rows = await stack.db.query(
        "select 1 from subscriptions where status = 'SUSPENDED' and tenant_id = $1",
        [t.id],
      );
      return rows.length > 0;
    },
    { what: 'the subscription SUSPENDED', timeoutMs: 30_000 },
  );
  await request(stack.app)
    .post(`/api/v1/billing/invoices/${invoiceId}/pay`)
    .set('Authorization', t.auth)
    .set('Idempotency-Key', `pay-${invoiceId}`)
    .send({ payment_method: 'pm_card_visa' });
  const handle = stack.temporal.workflow.getHandle<typeof dunning>(`dunning-${invoiceId}`);
  expect((await handle.result()).status).toBe('PAID');
  await saveHistory(handle.workflowId, 'dunning-suspended-then-paid.json');
});

it('records dunning on a test clock, walked to termination by two advances', async () => {
  const admin = `Bearer ${stack.adminToken}`;
  const tenant = await request(stack.app).post('/api/v1/tenants').set('Authorization', admin).send({
    slug: 'replay-clock',
    name: 'Replay clock',
    currency: 'EUR',
    owner_email: 'o@replay-clock.test',
    sandbox: true,
  });
  const tenantId = tenant.body.tenant.id as string;
  await waitFor(
    async () =>
      (await request(stack.app).get(`/api/v1/tenants/${tenantId}`).set('Authorization', admin)).body
        .status === 'ACTIVE',
    { what: 'the sandbox tenant ACTIVE' },
  );
  const auth = `Bearer ${await issueTenantToken(stack, tenantId)}`;
  const product = await request(stack.app).post('/api/v1/products').set('Authorization', auth).send({
    code: 'STARTER',
    name: 'Starter',
    interval: 'MONTH',
    unit_amount: 1000,
    vcpu: 1,
    memory_mb: 1024,
    disk_gb: 20,
    included_bandwidth_gb: 100,
  });
  const clock = await request(stack.app)
    .post('/api/v1/billing/test-clocks')
    .set('Authorization', auth)
    .send({ name: 'replay' });
  const clockId = clock.body.id as string;
  const customer = await request(stack.app)
    .post('/api/v1/customers')
    .set('Authorization', auth)
    .send({ email: 'c@replay-clock.test', name: 'C', test_clock_id: clockId });
  await request(stack.app)
    .patch(`/api/v1/customers/${customer.body.id}`)
    .set('Authorization', auth)
    .send({ default_payment_method: 'pm_card_insufficientFunds' });
  const sub = await request(stack.app)
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', auth)
    .send({ customer_id: customer.body.id, product_id: product.body.id, pod_slug: 'replay-clock-1' });
  await request(stack.app)
    .post(`/api/v1/billing/subscriptions/${sub.body.id}/activate`)
    .set('Authorization', auth);
  const invoiceId = await waitFor(
    async () => {
      const rows = await stack.db.query<{ id: string }>(
        'select id from invoices where subscription_id = $1 and dunning_policy is not null',
        [sub.body.id],
      );
      return rows[0]?.id;
    },
    { what: 'dunning on the test clock', timeoutMs: 60_000 },
  );
  const handle = stack.temporal.workflow.getHandle<typeof dunning>(`dunning-${invoiceId}`);
  const begun = await waitFor(
    async () => {
      const state = await handle.query(dunningStateQuery);
      return state.waiting ? state : undefined;
    },
    { what: 'dunning waiting on the clock' },
  );
  const advanceTo = async (at: string, seq: number) => {
    await request(stack.app)
      .post(`/api/v1/billing/test-clocks/${clockId}/advance`)
      .set('Authorization', auth)
      .send({ frozen_time: at });
    return stack.temporal.workflow
      .getHandle<typeof advanceTestClock>(`test-clock-${clockId}-advance-${seq}`)
      .result();
  };
  expect(await advanceTo(begun.timeline?.suspendAt ?? '', 1)).toMatchObject({ status: 'READY' });
  expect(await advanceTo(begun.timeline?.terminateAt ?? '', 2)).toMatchObject({ status: 'READY' });
  expect((await handle.result()).status).toBe('CANCELED');
  await saveHistory(handle.workflowId, 'dunning-on-test-clock.json');
  await saveHistory(`test-clock-${clockId}-advance-2`, 'test-clock-advance-dunning.json');
});

async function saveHistory(workflowId: string, name: string): Promise<void> {
  const file = path.join(__dirname, 'histories', name);
  // The CLI writes the canonical proto3 JSON that historyFromJSON (and the Temporal UI) read.
  const cli = await resolveTool(TEMPORAL_CLI, () => undefined);
  if (cli.path === undefined) throw new Error(`temporal CLI unavailable: ${cli.why}`);
  const { stdout } = await promisify(execFile)(
    cli.path,
    [
      'workflow',
      'show',
      '--workflow-id',
      workflowId,
      '--namespace',
      stack.namespace,
      '--address',
      temporalAddress(),
      '--output',
      'json',
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  await writeFile(file, stdout);
}
