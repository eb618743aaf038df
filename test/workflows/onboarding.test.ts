/** onboardTenant against a real Temporal server with in-memory fake activities. */
import { Worker } from '@temporalio/worker';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TenantActivities } from '../../src/activities/tenants';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../../src/workflows/shared';
import { onboardingStateQuery } from '../../src/workflows/messages/tenants';
import { connectClient, createNamespace, temporalAddress, workflowBundle } from '../helpers/temporal';
import { NativeConnection } from '@temporalio/worker';
import type { Client } from '@temporalio/client';

let namespace: string;
let client: Client;
let closeClient: () => Promise<void>;
let connection: NativeConnection;

beforeAll(async () => {
  namespace = await createNamespace('wf');
  ({ client, close: closeClient } = await connectClient(namespace));
  connection = await NativeConnection.connect({ address: temporalAddress() });
});
afterAll(async () => {
  await closeClient();
  await connection.close();
});

function fakeActivities(
  calls: string[],
  failOn?: keyof TenantActivities,
  failTimes = Infinity,
): TenantActivities {
  let failures = 0;
  const step = (name: keyof TenantActivities) => async (tenantId: string) => {
    calls.push(`${name}:${tenantId}`);
    if (name === failOn && failures < failTimes) {
      failures++;
      if (failTimes === Infinity)
        throw ApplicationFailure.nonRetryable('tenant is CLOSED', 'InvalidTenantTransition');
      throw new Error('database briefly unavailable');
    }
    await Promise.resolve();
  };
  return {
    createTenantBillingSettings: step('createTenantBillingSettings'),
    createTenantQuotas: step('createTenantQuotas'),
    recordWelcomeNotification: step('recordWelcomeNotification'),
    activateTenant: step('activateTenant'),
  };
}

async function runWith<T>(activities: TenantActivities, body: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: TASK_QUEUES.provisioning,
    workflowBundle: await workflowBundle(),
    activities,
  });
  return worker.runUntil(body);
}

describe('onboardTenant', () => {
  it('creates settings, quotas, the welcome mail, then activates — in that order', async () => {
    const calls: string[] = [];
    const tenantId = 'ten_wf_order';
    const result = await runWith(fakeActivities(calls), async () => {
      const handle = await client.workflow.start('onboardTenant', {
        workflowId: workflowIds.onboardTenant(tenantId),
        taskQueue: TASK_QUEUES.provisioning,
        args: [{ tenantId }],
        typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.TenantId, value: tenantId }],
      });
      const out = await handle.result();
      expect(await handle.query(onboardingStateQuery)).toEqual({ tenantId, step: 'done', status: 'ACTIVE' });
      const desc = await handle.describe();
      expect(desc.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus)).toBe('ACTIVE');
      return out;
    });
    expect(result.status).toBe('ACTIVE');
    expect(calls).toEqual([
      `createTenantBillingSettings:${tenantId}`,
      `createTenantQuotas:${tenantId}`,
      `recordWelcomeNotification:${tenantId}`,
      `activateTenant:${tenantId}`,
    ]);
  });

  it('retries a transient activity failure and still finishes', async () => {
    const calls: string[] = [];
    const tenantId = 'ten_wf_retry';
    await runWith(fakeActivities(calls, 'createTenantQuotas', 1), () =>
      client.workflow.execute('onboardTenant', {
        workflowId: workflowIds.onboardTenant(tenantId),
        taskQueue: TASK_QUEUES.provisioning,
        args: [{ tenantId }],
      }),
    );
    expect(calls.filter((c) => c.startsWith('createTenantQuotas'))).toHaveLength(2);
    expect(calls[calls.length - 1]).toBe(`activateTenant:${tenantId}`);
  });

  it('fails without retrying on a business error and never activates', async () => {
    const calls: string[] = [];
    const tenantId = 'ten_wf_business';
    const err = await runWith(fakeActivities(calls, 'recordWelcomeNotification'), () =>
      client.workflow
        .execute('onboardTenant', {
          workflowId: workflowIds.onboardTenant(tenantId),
          taskQueue: TASK_QUEUES.provisioning,
          args: [{ tenantId }],
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        ),
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause?.cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('InvalidTenantTransition');
    expect(calls.filter((c) => c.startsWith('recordWelcomeNotification'))).toHaveLength(1);
    expect(calls.some((c) => c.startsWith('activateTenant'))).toBe(false);
  });

  it('refuses a second onboarding run for the same tenant while one is running (id from the business key)', async () => {
    const tenantId = 'ten_wf_dupe';
    await runWith(fakeActivities([]), async () => {
      const opts = {
        workflowId: workflowIds.onboardTenant(tenantId),
        taskQueue: TASK_QUEUES.provisioning,
        args: [{ tenantId }],
      };
      const first = await client.workflow.start('onboardTenant', opts);
      await expect(client.workflow.start('onboardTenant', opts)).rejects.toThrow(/already started/i);
      await first.result();
    });
  });
});
