/**
 * A worker that dies in the middle of the provisioning saga: the VM was created but the activity
 * never reported back. A new worker retries the step, adopts the VM, and the pod ends ACTIVE with
 * exactly one VM.
 */
import request from 'supertest';
import { SimVm } from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, waitPod } from '../helpers/pods';
import { waitFor } from '../helpers/wait';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({
    // Every simulated call takes 1.5 s, so the test can stop the worker inside createVm.
    SIMULATOR_LATENCY_MS: '1500',
    PROVISION_HEARTBEAT_TIMEOUT_MS: '2000',
    TEST_WORKER_GRACE_MS: '10',
  });
  await registerNode(stack, 'crash-node');
});
afterAll(async () => {
  await stack?.close();
});

it('finishes the saga on a new worker with exactly one VM', async () => {
  const t = await podTenant(stack, 'crash-co', { free: true });
  const res = await request(stack.app)
    .post('/api/v1/cloudpods')
    .set('Authorization', t.auth)
    .send({ customer_id: t.customerId, product_id: t.starter, slug: 'crash-1' });
  expect(res.status).toBe(202);
  const podId = res.body.pod.id as string;
  const em = () => systemEm(stack.db.orm);

  // The VM row exists while createVm is still inside its (simulated) provider call: kill now.
  await waitFor(async () => (await em().count(SimVm, { podId })) === 1, {
    what: 'the VM to be created',
    intervalMs: 20,
  });
  await stack.stopWorkers();
  const orphaned = await request(stack.app).get(`/api/v1/cloudpods/${podId}`).set('Authorization', t.auth);
  expect(orphaned.body.status).toBe('PROVISIONING');

  await stack.restartWorkers();
  const pod = await waitPod(stack, t, podId, 'ACTIVE', 60000);
  expect(await em().count(SimVm, { podId })).toBe(1);
  expect(pod.vm_id).toBe(`sim-${podId.slice(4)}`);
  expect(pod.current_job).toMatchObject({ status: 'COMPLETED', attempts: 1 });

  // The history shows createVm ran a second attempt (on the new worker) instead of a second VM.
  const history = await stack.temporal.workflow.getHandle(`cloudpod-${podId}`).fetchHistory();
  const scheduled = history.events?.find(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'createVm',
  );
  const started = history.events?.find(
    (e) =>
      e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === scheduled?.eventId?.toString(),
  );
  expect(started?.activityTaskStartedEventAttributes?.attempt).toBeGreaterThanOrEqual(2);
});
