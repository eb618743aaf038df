/**
 * /api/v1/billing/test-clocks: a sandbox tenant's test clocks. Customers attached to a clock (at
 * their creation) are billed as of its frozen time; advancing it walks their renewals, trials and
 * dunning through the time it skips, in a workflow. Live tenants are refused (403).
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import type { TestClock } from '../../db/entities';
import { pageBody } from '../../db/repositories/pages';
import { latestAdvanceWorkflowId, testClockPage } from '../../db/repositories/test-clocks';
import {
  assertMayListTestClocks,
  createTestClock,
  deleteTestClock,
  findTestClock,
  requestAdvance,
} from '../../services/test-clocks';
import { route, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import type { ApiMetrics } from '../middleware/metrics';
import type { z } from '../zod';
import { encodeCursor } from './common.schemas';
import {
  AdvanceTestClockBody,
  CreateTestClockBody,
  ListTestClocksQuery,
  TestClockAdvanceAccepted,
  TestClockIdParams,
  TestClockList,
  TestClockView,
} from './test-clocks.schemas';

export function testClockView(clock: TestClock): TestClockView {
  return {
    id: clock.id,
    name: clock.name,
    frozen_time: clock.frozenTime.toISOString(),
    status: clock.status,
    advancing_to: clock.advancingTo?.toISOString() ?? null,
    advance_workflow_id: latestAdvanceWorkflowId(clock.id, clock.advances),
    failure_reason: clock.failureReason ?? null,
    created_at: clock.createdAt.toISOString(),
    updated_at: clock.updatedAt.toISOString(),
  };
}

const read = { caller: 'tenant', permission: 'billing:read' } as const;
const write = { caller: 'tenant', permission: 'billing:write' } as const;
const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export function testClockRoutes(deps: { temporal: Client; config: Config; metrics: ApiMetrics }): Route[] {
  return [
    route({
      operationId: 'createTestClock',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/test-clocks',
      summary:
        'Create a test clock (sandbox tenants only): time stands still at its frozen_time until advanced',
      access: write,
      body: CreateTestClockBody,
      responses: { 201: json(TestClockView, 'Test clock READY') },
      problems: [403],
      async handle({ principal, em, body, res, log }) {
        const clock = await createTestClock(em, {
          tenantId: tenantOf(principal),
          name: body.name,
          frozenTime: body.frozen_time === undefined ? undefined : new Date(body.frozen_time),
        });
        log.info({ testClockId: clock.id }, 'test clock created');
        res.status(201).location(`/api/v1/billing/test-clocks/${clock.id}`).json(testClockView(clock));
      },
    }),
    route({
      operationId: 'listTestClocks',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/test-clocks',
      summary: 'List test clocks, oldest first (sandbox tenants only)',
      access: read,
      query: ListTestClocksQuery,
      responses: { 200: json(TestClockList, 'A page of test clocks') },
      problems: [403],
      async handle({ principal, em, query, res }) {
        const tenantId = tenantOf(principal);
        await assertMayListTestClocks(em, tenantId);
        const page = await testClockPage(em, tenantId, { after: query.cursor, limit: query.limit });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'getTestClock',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/test-clocks/:id',
      summary: 'Get a test clock: its frozen_time and whether an advance is running',
      access: read,
      params: TestClockIdParams,
      responses: { 200: json(TestClockView, 'The test clock') },
      async handle({ principal, em, params, res }) {
        res.json(testClockView(await findTestClock(em, tenantOf(principal), params.id)));
      },
    }),
    route({
      operationId: 'advanceTestClock',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/billing/test-clocks/:id/advance',
      summary:
        'Advance a test clock: its customers’ renewals, trial reminders and conversions and dunning steps run at their times along the way. 409 while an advance runs',
      description:
        'Answers at once with the clock ADVANCING; the advance runs in workflow `test-clock-<id>-advance-<n>`, and the clock is READY at the new frozen_time when it is done (INTERNAL_FAILURE, with failure_reason, if it could not finish).',
      access: write,
      params: TestClockIdParams,
      body: AdvanceTestClockBody,
      idempotent: true,
      durable: true,
      responses: { 202: json(TestClockAdvanceAccepted, 'Advance started') },
      problems: [409, 422],
      async handle({ principal, em, params, body, res, log }) {
        const { clock, workflowId } = await requestAdvance(
          { em, temporal: deps.temporal, config: deps.config },
          tenantOf(principal),
          params.id,
          new Date(body.frozen_time),
        );
        deps.metrics.workflowStarts.inc({ workflow: 'advanceTestClock' });
        log.info(
          { testClockId: clock.id, workflowId, target: body.frozen_time },
          'test clock advance started',
        );
        res.status(202).json({ test_clock: testClockView(clock), workflow_id: workflowId });
      },
    }),
    route({
      operationId: 'deleteTestClock',
      tag: 'Billing',
      method: 'delete',
      path: '/api/v1/billing/test-clocks/:id',
      summary:
        'Delete a test clock (409 while it advances): its customers are detached and billed on the wall clock from then on',
      access: write,
      params: TestClockIdParams,
      responses: { 204: { description: 'Deleted' } },
      problems: [409],
      async handle({ principal, em, params, res, log }) {
        const clock = await deleteTestClock(
          { em, temporal: deps.temporal, config: deps.config },
          tenantOf(principal),
          params.id,
        );
        log.info({ testClockId: clock.id }, 'test clock deleted');
        res.status(204).end();
      },
    }),
  ];
}
