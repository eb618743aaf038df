/**
 * continueAsNew: on a server that suggests it early, an ACTIVE pod's workflow rolls over into a
 * new run between operations, carrying its state, and keeps serving operations.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import {
  createCloudPodActivities,
  type CloudPodActivities,
  type CloudPodActivityDeps,
} from '../../src/activities/cloudpods';
import { SEARCH_ATTRIBUTE_NAMES, TASK_QUEUES, workflowIds } from '../../src/workflows/shared';
import { backupSignal, podStateQuery } from '../../src/workflows/messages/cloudpods';
import { freePort, startDevServer, type DevServerHandle } from '../../temporal/dev-server';
import { workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let server: DevServerHandle;
let connection: Connection;
let client: Client;
let native: NativeConnection;

beforeAll(async () => {
  // Its own dev server: the threshold would change every other workflow test's histories.
  server = await startDevServer({
    searchAttributes: SEARCH_ATTRIBUTE_NAMES,
    port: await freePort(),
    log: () => undefined,
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 60 },
  });
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection });
  native = await NativeConnection.connect({ address: server.address });
});
afterAll(async () => {
  await connection?.close();
  await native?.close();
  await server?.stop();
});

function fakeActivities(calls: string[]): CloudPodActivities {
  const results: Record<string, unknown> = {
    beginJob: true,
    reserveCapacity: { nodeName: 'node-1' },
    createVm: { vmId: 'vm-1' },
    waitForVmRunning: { ipAddress: '10.0.0.2' },
    takeBackup: 'bak_x',
  };
  // The worker registers activities by their own keys: take the real names, fake the bodies.
  const names = Object.keys(createCloudPodActivities({} as CloudPodActivityDeps));
  return Object.fromEntries(
    names.map((name) => [
      name,
      (...args: unknown[]) => {
        calls.push(`${name}:${typeof args[1] === 'string' ? args[1] : ''}`);
        return Promise.resolve(results[name]);
      },
    ]),
  ) as unknown as CloudPodActivities;
}

it('continues as new between operations with its state and keeps serving', async () => {
  const calls: string[] = [];
  const podId = 'pod_can_1';
  const worker = await Worker.create({
    connection: native,
    taskQueue: TASK_QUEUES.provisioning,
    workflowBundle: await workflowBundle(),
    activities: fakeActivities(calls),
  });
  await worker.runUntil(async () => {
    const handle = await client.workflow.start('cloudPod', {
      workflowId: workflowIds.cloudPod(podId),
      taskQueue: TASK_QUEUES.provisioning,
      args: [
        {
          podId,
          tenantId: 'ten_can',
          slug: 'can-1',
          resources: { vcpu: 2, memoryMb: 2048, diskGb: 40 },
          provisionJobId: 'job_provision',
          policy: { retryInitialMs: 10, maxAttempts: 3, heartbeatTimeoutMs: 5000, retryWindowMs: 60000 },
        },
      ],
    });
    const firstRun = handle.firstExecutionRunId;
    await waitFor(async () => (await handle.query(podStateQuery)).status === 'ACTIVE', { what: 'ACTIVE' });

    // Each backup adds a handful of events; the server soon suggests continuing as new.
    let rolledOver = false;
    for (let i = 0; i < 40 && !rolledOver; i++) {
      await handle.signal(backupSignal, { jobId: `job_backup_${i}`, backupId: `bak_${i}` });
      await waitFor(() => Promise.resolve(calls.filter((c) => c.startsWith('finishJob:')).length >= i + 1), {
        what: `backup ${i} to finish`,
      });
      const latest = await client.workflow.getHandle(handle.workflowId).describe();
      rolledOver = latest.runId !== firstRun;
    }
    expect(rolledOver).toBe(true);

    const latest = client.workflow.getHandle(handle.workflowId);
    const state = await latest.query(podStateQuery);
    expect(state).toMatchObject({
      podId,
      status: 'ACTIVE',
      resources: { vcpu: 2, memoryMb: 2048, diskGb: 40 },
      currentJob: null,
    });
    expect(state.provisionAttempts).toBe(1);

    // The new run serves operations without provisioning again.
    const begins = calls.filter((c) => c.startsWith('beginJob:')).length;
    await latest.signal(backupSignal, { jobId: 'job_after', backupId: 'bak_after' });
    await waitFor(
      () => Promise.resolve(calls.filter((c) => c.startsWith('beginJob:')).length === begins + 1),
      {
        what: 'a backup in the new run',
      },
    );
    expect(calls.filter((c) => c.startsWith('reserveCapacity'))).toHaveLength(1);
    await latest.terminate('test done');
  });
});
