/**
 * changeSubscriptionPlan against a real Temporal server with in-memory fake activities: the paths
 * the HTTP tests cannot reach quickly — a dead-lettered resize that an operator's retry completes
 * (billed) or that nobody retries within the window (failed, nothing billed), a refused resize, a
 * change withdrawn before it started, and a cancellation from the UI (the change gives its slot back).
 */
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { BillingActivities } from '../../src/activities/billing';
import type { PlanChangeActivities } from '../../src/activities/plan-change';
import type { PlanChangeSettlement } from '../../src/services/subscription-plan-change';
import {
  planChangeStartOptions,
  planChangeStateQuery,
  type ChangeSubscriptionPlanInput,
  type PlanChangeState,
} from '../../src/workflows/messages/plan-change';
import { SEARCH_ATTRIBUTES, TASK_QUEUES } from '../../src/workflows/shared';
import { connectClient, createNamespace, temporalAddress, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let namespace: string;
let client: Client;
let closeClient: () => Promise<void>;
let connection: NativeConnection;

beforeAll(async () => {
  namespace = await createNamespace('wf-plan');
  ({ client, close: closeClient } = await connectClient(namespace));
  connection = await NativeConnection.connect({ address: temporalAddress() });
});
afterAll(async () => {
  await closeClient();
  await connection.close();
});

interface Script {
  claimed?: boolean;
  /** thrown by requestPlanChangeResize */
  refusal?: Error;
  /** the job statuses the waits see, in order; after the last one the wait blocks until canceled */
  job: string[];
}

const SETTLED: PlanChangeSettlement = {
  settlement: 'INVOICE',
  invoiceId: 'inv_x',
  invoiceNumber: 'INV-2026-000001',
  amountDue: 500,
  charge: true,
  creditNoteId: null,
  amount: 500,
  status: 'ACTIVE',
};

type Fakes = Pick<
  PlanChangeActivities,
  | 'claimPlanChange'
  | 'requestPlanChangeResize'
  | 'awaitPlanChangeJob'
  | 'failPlanChange'
  | 'settlePlanChange'
  | 'settlePlanChangeCollection'
> &
  Pick<BillingActivities, 'chargeInvoice'>;

function fakeActivities(script: Script, calls: string[]): Fakes {
  const statuses = [...script.job];
  return {
    async claimPlanChange(changeId) {
      calls.push(`claim:${changeId}`);
      return Promise.resolve(script.claimed ?? true);
    },
    async requestPlanChangeResize(changeId) {
      calls.push(`request:${changeId}`);
      if (script.refusal) throw script.refusal;
      return Promise.resolve({ jobId: 'job_x' });
    },
    async awaitPlanChangeJob(jobId, lastSeen) {
      calls.push(`await:${lastSeen}`);
      const ctx = Context.current();
      for (;;) {
        const next = statuses[0];
        if (next !== undefined && next !== lastSeen) {
          statuses.shift();
          return { status: next, failureReason: next === 'COMPLETED' ? null : `job ${jobId} ${next}` };
        }
        if (next === lastSeen) statuses.shift();
        ctx.heartbeat();
        await ctx.sleep(20);
      }
    },
    async failPlanChange(changeId, reason) {
      calls.push(`fail:${reason}`);
      return Promise.resolve();
    },
    async settlePlanChange(changeId) {
      calls.push(`settle:${changeId}`);
      return Promise.resolve(SETTLED);
    },
    async settlePlanChangeCollection(changeId) {
      calls.push(`collect:${changeId}`);
      return Promise.resolve({ status: 'ACTIVE' as const, dunning: false, failedAt: null });
    },
    async chargeInvoice(invoiceId, attempt) {
      calls.push(`charge:${invoiceId}:${attempt}`);
      return Promise.resolve({ status: 'SUCCEEDED' });
    },
  };
}

let n = 0;
function input(deadLetterWaitMs = 60_000): ChangeSubscriptionPlanInput {
  n += 1;
  return {
    changeId: `pch_wf_${n}`,
    subscriptionId: `sub_wf_${n}`,
    tenantId: 'ten_wf',
    customerId: 'cus_wf',
    podId: `pod_wf_${n}`,
    productId: 'prd_pro',
    asOf: '2026-11-23T12:00:00.000Z',
    deadLetterWaitMs,
  };
}

async function run<T>(script: Script, calls: string[], body: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: TASK_QUEUES.billing,
    workflowBundle: await workflowBundle(),
    activities: fakeActivities(script, calls),
  });
  return worker.runUntil(body);
}

function start(args: ChangeSubscriptionPlanInput) {
  return client.workflow.start('changeSubscriptionPlan', {
    ...planChangeStartOptions(args, 'PRO'),
    args: [args],
  });
}

it('settles a resize an operator’s retry completes after it was dead-lettered', async () => {
  const calls: string[] = [];
  const args = input();
  const state = await run({ job: ['RUNNING', 'DEAD_LETTER', 'RUNNING', 'COMPLETED'] }, calls, async () => {
    const handle = await start(args);
    return (await handle.result()) as PlanChangeState;
  });
  expect(state).toMatchObject({
    status: 'CHANGED',
    settlement: 'INVOICE',
    invoiceId: 'inv_x',
    failure: null,
  });
  expect(calls.filter((c) => !c.startsWith('await:'))).toEqual([
    `claim:${args.changeId}`,
    `request:${args.changeId}`,
    `settle:${args.changeId}`,
    'charge:inv_x:1',
    `collect:${args.changeId}`,
  ]);
});

it('bills nothing for a dead-lettered resize nobody retries within the window', async () => {
  const calls: string[] = [];
  const args = input(2000);
  const { state, status } = await run({ job: ['RUNNING', 'DEAD_LETTER'] }, calls, async () => {
    const handle = await start(args);
    await waitFor(async () => (await handle.query(planChangeStateQuery)).step === 'waiting-for-operator', {
      what: 'the change waiting for an operator',
    });
    const result = (await handle.result()) as PlanChangeState;
    const described = await handle.describe();
    return { state: result, status: described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus) };
  });
  expect(state).toMatchObject({ status: 'FAILED', step: 'failed', settlement: null, jobId: 'job_x' });
  expect(state.failure).toMatch(/not retried within the retry window/);
  expect(status).toBe('FAILED');
  expect(calls.some((c) => c.startsWith('settle:') || c.startsWith('charge:'))).toBe(false);
  expect(calls.filter((c) => c.startsWith('fail:'))).toHaveLength(1);
});

it('records a refused resize as failed without waiting or billing', async () => {
  const calls: string[] = [];
  const args = input();
  const refusal = ApplicationFailure.nonRetryable(
    'another operation is in progress on this pod',
    'billing.conflict',
  );
  const state = await run(
    { job: [], refusal },
    calls,
    async () => (await (await start(args)).result()) as PlanChangeState,
  );
  expect(state).toMatchObject({ status: 'FAILED', jobId: null });
  expect(calls).toEqual([
    `claim:${args.changeId}`,
    `request:${args.changeId}`,
    'fail:the pod refused the plan change: another operation is in progress on this pod',
  ]);
});

it('does nothing for a change the API withdrew before its workflow claimed it', async () => {
  const calls: string[] = [];
  const args = input();
  const state = await run(
    { job: [], claimed: false },
    calls,
    async () => (await (await start(args)).result()) as PlanChangeState,
  );
  expect(state).toMatchObject({ status: 'FAILED', jobId: null });
  expect(calls).toEqual([`claim:${args.changeId}`]);
});

it('gives the change’s slot back when it is canceled from the UI while the pod resizes', async () => {
  const calls: string[] = [];
  const args = input();
  const outcome = await run({ job: ['RUNNING'] }, calls, async () => {
    const handle = await start(args);
    await waitFor(async () => Promise.resolve(calls.includes('await:RUNNING')), {
      what: 'the resize running',
    });
    await handle.cancel();
    return handle.result().catch((err: unknown) => err);
  });
  expect(outcome).toBeInstanceOf(WorkflowFailedError);
  expect(calls.filter((c) => c.startsWith('fail:'))).toEqual([
    "fail:the change was canceled by an operator while the pod's job job_x ran",
  ]);
  expect(calls.some((c) => c.startsWith('settle:'))).toBe(false);
});
