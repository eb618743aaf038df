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
import { podTenant, registerNode, waitPod } from '../helpers/pods';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'replay-node');
});
afterAll(async () => {
  await stack?.close();
});

it('records provision → plan change → suspend → unsuspend → terminate', async () => {
  const t = await podTenant(stack, 'replay-co');
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
  const t = await podTenant(stack, 'replay-fail');
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
