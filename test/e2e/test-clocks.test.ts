/**
 * Test clocks through HTTP (simulated hypervisor and payments, a real worker): a sandbox tenant's
 * customer attached to a clock is billed as of the clock's time, and advancing the clock walks a
 * year of monthly renewals (12 invoices, paid, tiling, once each), a trial's reminders and
 * conversion, and a declined card's dunning to suspension and termination, in seconds. The hourly
 * billing run leaves clock customers alone. Live tenants cannot use clocks; another tenant's clock
 * is 404; hostile input is refused with nothing stored.
 */
import request from 'supertest';
import { addMonthsClamped } from '../../src/domain/billing';
import type { billingRun } from '../../src/workflows/billing-run';
import type { dunning } from '../../src/workflows/dunning';
import { dunningStateQuery } from '../../src/workflows/messages/dunning';
import { advanceTestClockStateQuery } from '../../src/workflows/messages/test-clocks';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../../src/workflows/shared';
import type { advanceTestClock } from '../../src/workflows/test-clocks';
import { startTestStack, type TestStack } from '../helpers/app';
import { registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';
import { sandboxTenant, testClockCalls, type ClockBody } from '../helpers/test-clocks';

let stack: TestStack;
/** the sandbox tenant the scenarios run in */
let s: PodTenant;
/** another sandbox tenant: isolation */
let other: PodTenant;
/** a live tenant */
let live: { id: string; auth: string };

const http = () => request(stack.app);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'clock-node-1', 32);
  s = await sandboxTenant(stack, 'clock-a');
  other = await sandboxTenant(stack, 'clock-b');
  const l = await createActiveTenant(stack, 'clock-live');
  live = { id: l.id, auth: `Bearer ${l.token}` };
});
afterAll(async () => {
  await stack?.close();
});

const {
  createClock,
  getClock,
  advance,
  advanceTo,
  waitClockReady,
  clockCustomer,
  getSubscription,
  activated,
} = testClockCalls(
  () => stack,
  () => s,
);

interface InvoiceRow {
  id: string;
  status: string;
  billing_reason: string;
  period_start: Date;
  period_end: Date;
  finalized_at: Date;
}

const invoicesOf = (subscriptionId: string) =>
  stack.db.query<InvoiceRow>(
    `select id, status, billing_reason, period_start, period_end, finalized_at
       from invoices where subscription_id = $1 order by period_start`,
    [subscriptionId],
  );

const countClocks = async () =>
  (await stack.db.query<{ n: number }>('select count(*)::int as n from test_clocks'))[0]?.n;
const countCustomers = async () =>
  (await stack.db.query<{ n: number }>('select count(*)::int as n from customers'))[0]?.n;

describe('who may use test clocks', () => {
  it('shows each tenant’s mode, and refuses clocks to a live tenant with nothing stored', async () => {
    const admin = `Bearer ${stack.adminToken}`;
    expect((await http().get(`/api/v1/tenants/${s.id}`).set('Authorization', admin)).body.mode).toBe(
      'SANDBOX',
    );
    expect((await http().get(`/api/v1/tenants/${live.id}`).set('Authorization', admin)).body.mode).toBe(
      'LIVE',
    );
    const listed = await http().get('/api/v1/tenants?limit=100').set('Authorization', admin);
    const modes = Object.fromEntries(
      (listed.body.data as { id: string; mode: string }[]).map((t) => [t.id, t.mode]),
    );
    expect(modes).toMatchObject({ [s.id]: 'SANDBOX', [other.id]: 'SANDBOX', [live.id]: 'LIVE' });

    const clock = await createClock('for the live tenant to try');
    const before = { clocks: await countClocks(), customers: await countCustomers() };
    const created = await http()
      .post('/api/v1/billing/test-clocks')
      .set('Authorization', live.auth)
      .send({ name: 'not allowed' });
    expectProblem(created, 403, 'forbidden');
    expectProblem(
      await http().get('/api/v1/billing/test-clocks').set('Authorization', live.auth),
      403,
      'forbidden',
    );
    // a live tenant has no clocks, and another tenant's clock is no clock of its own
    expectProblem(await getClock(clock.id, live.auth), 404, 'not-found');
    expectProblem(await advance(clock.id, new Date(Date.now() + DAY), live.auth), 404, 'not-found');
    const attached = await http()
      .post('/api/v1/customers')
      .set('Authorization', live.auth)
      .send({ email: 'live@clock-live.test', name: 'Live', test_clock_id: clock.id });
    expectProblem(attached, 422, 'unprocessable');
    expect({ clocks: await countClocks(), customers: await countCustomers() }).toEqual(before);
  });
});

describe('the clock routes', () => {
  it('refuses hostile input with nothing stored', async () => {
    const before = await countClocks();
    const bodies: unknown[] = [
      { name: 'bad\u0000name' },
      { name: '' },
      { name: 'x'.repeat(201) },
      { name: 'ok', frozen_time: 'yesterday' },
      { name: 'ok', frozen_time: '2026-02-30T00:00:00Z' },
      { name: 'ok', frozen_time: '2026-11-23T10:00:00' },
      { name: 'ok', frozen_time: new Date(Date.now() - 400 * DAY).toISOString() },
      { name: 'ok', frozen_time: 1764000000 },
      { name: 'ok', status: 'ADVANCING' },
      { name: 'ok', tenant_id: other.id },
      ['name'],
    ];
    for (const body of bodies) {
      const res = await http()
        .post('/api/v1/billing/test-clocks')
        .set('Authorization', s.auth)
        .send(body as object);
      expectProblem(res, 400, 'validation-failed');
    }
    expect(await countClocks()).toBe(before);
  });

  it('keeps each tenant’s clocks to itself', async () => {
    const clock = await createClock('private');
    expectProblem(await getClock(clock.id, other.auth), 404, 'not-found');
    expectProblem(await advance(clock.id, new Date(Date.now() + DAY), other.auth), 404, 'not-found');
    expectProblem(
      await http().delete(`/api/v1/billing/test-clocks/${clock.id}`).set('Authorization', other.auth),
      404,
      'not-found',
    );
    const listed = await http().get('/api/v1/billing/test-clocks').set('Authorization', other.auth);
    expect(listed.status).toBe(200);
    expect((listed.body.data as ClockBody[]).map((c) => c.id)).not.toContain(clock.id);
    const before = await countCustomers();
    const attached = await http()
      .post('/api/v1/customers')
      .set('Authorization', other.auth)
      .send({ email: 'x@clock-b.test', name: 'X', test_clock_id: clock.id });
    expectProblem(attached, 422, 'unprocessable');
    expect(await countCustomers()).toBe(before);
    expect((await getClock(clock.id)).body).toMatchObject({
      status: 'READY',
      frozen_time: clock.frozen_time,
    });
  });

  it('lists the tenant’s clocks in pages, each as GET shows it', async () => {
    const a = await createClock('page one');
    const b = await createClock('page two');
    const seen: ClockBody[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await http()
        .get('/api/v1/billing/test-clocks')
        .query({ limit: 1, ...(cursor ? { cursor } : {}) })
        .set('Authorization', s.auth);
      expect(res.status).toBe(200);
      seen.push(...(res.body.data as ClockBody[]));
      cursor = res.body.next_cursor as string | null;
    } while (cursor);
    const ids = seen.map((c) => c.id);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(seen.find((c) => c.id === b.id)).toEqual((await getClock(b.id)).body);
  });

  it('refuses an advance that is not forward, or too far, and changes nothing', async () => {
    const clock = await createClock('bounded', new Date(Date.now() - DAY));
    const frozen = new Date(clock.frozen_time);
    expectProblem(await advance(clock.id, frozen), 422, 'unprocessable');
    expectProblem(await advance(clock.id, new Date(frozen.getTime() - HOUR)), 422, 'unprocessable');
    expectProblem(
      await advance(clock.id, new Date(addMonthsClamped(frozen, 24).getTime() + 1000)),
      422,
      'unprocessable',
    );
    expectProblem(await advance(clock.id, 'next week'), 400, 'validation-failed');
    const extra = await http()
      .post(`/api/v1/billing/test-clocks/${clock.id}/advance`)
      .set('Authorization', s.auth)
      .send({ frozen_time: new Date(frozen.getTime() + DAY).toISOString(), status: 'READY' });
    expectProblem(extra, 400, 'validation-failed');
    expect((await getClock(clock.id)).body).toEqual({ ...clock, updated_at: expect.any(String) });
    expect((await getClock(clock.id)).body.advance_workflow_id).toBeNull();
  });

  it('takes three customers at most, and a customer changes clocks only before its first subscription', async () => {
    const clock = await createClock('full');
    const spare = await createClock('spare');
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push(await clockCustomer(`full-${n}@clock-a.test`, clock.id, null));
    const before = await countCustomers();
    const fourth = await http()
      .post('/api/v1/customers')
      .set('Authorization', s.auth)
      .send({ email: 'full-4@clock-a.test', name: 'Fourth', test_clock_id: clock.id });
    expectProblem(fourth, 409, 'conflict');
    expect(await countCustomers()).toBe(before);

    // detach and re-attach while there is no subscription
    const moved = await http()
      .patch(`/api/v1/customers/${ids[0]}`)
      .set('Authorization', s.auth)
      .send({ test_clock_id: spare.id });
    expect(moved.status).toBe(200);
    expect(moved.body.test_clock_id).toBe(spare.id);
    const listed = await http().get('/api/v1/customers?limit=100').set('Authorization', s.auth);
    expect(listed.body.data.find((c: { id: string }) => c.id === ids[0])).toEqual(moved.body);

    const sub = await http()
      .post('/api/v1/billing/subscriptions')
      .set('Authorization', s.auth)
      .send({ customer_id: ids[1], product_id: s.starter, pod_slug: 'full-sub' });
    expect(sub.status).toBe(201);
    const refused = await http()
      .patch(`/api/v1/customers/${ids[1]}`)
      .set('Authorization', s.auth)
      .send({ test_clock_id: null });
    expectProblem(refused, 409, 'conflict');
    const kept = await http().get(`/api/v1/customers/${ids[1]}`).set('Authorization', s.auth);
    expect(kept.body.test_clock_id).toBe(clock.id);
  });
});

describe('advancing a clock', () => {
  it('walks a year of monthly renewals: 12 invoices, all paid, tiling the year, none twice', async () => {
    const clock = await createClock('a year');
    const customerId = await clockCustomer('year@clock-a.test', clock.id, 'pm_card_visa');
    const sub = await activated(customerId, 'clock-year', 'ACTIVE');
    const [first] = await invoicesOf(sub.id);
    expect(first).toMatchObject({ status: 'PAID' });
    const anchor = new Date(sub.current_period_start ?? '');

    const half = new Date(addMonthsClamped(anchor, 6).getTime() + HOUR);
    const started = await advance(clock.id, half, s.auth, `advance-${clock.id}-1`);
    expect(started.status).toBe(202);
    expect(started.body).toEqual({
      test_clock: expect.objectContaining({
        id: clock.id,
        status: 'ADVANCING',
        advancing_to: half.toISOString(),
        advance_workflow_id: workflowIds.advanceTestClock(clock.id, 1),
      }),
      workflow_id: workflowIds.advanceTestClock(clock.id, 1),
    });
    // the same request again is the stored answer; another advance while this one runs is 409
    const replayed = await advance(clock.id, half, s.auth, `advance-${clock.id}-1`);
    expect(replayed.status).toBe(202);
    expect(replayed.body.workflow_id).toBe(started.body.workflow_id);
    expectProblem(await advance(clock.id, new Date(half.getTime() + DAY)), 409, 'conflict');
    expectProblem(
      await http().delete(`/api/v1/billing/test-clocks/${clock.id}`).set('Authorization', s.auth),
      409,
      'conflict',
    );
    await waitClockReady(clock.id, half);

    const handle = stack.temporal.workflow.getHandle<typeof advanceTestClock>(
      workflowIds.advanceTestClock(clock.id, 1),
    );
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'READY', steps: 6, events: 6, frozenTime: half.toISOString() });
    expect(await handle.query(advanceTestClockStateQuery)).toEqual(result);
    const described = await handle.describe();
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.TenantId)).toBe(s.id);
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus)).toBe('READY');
    expect(await described.staticSummary()).toContain(clock.id);

    const year = new Date(addMonthsClamped(anchor, 12).getTime() + HOUR);
    await advanceTo(clock, year);

    const invoices = await invoicesOf(sub.id);
    expect(invoices).toHaveLength(13);
    expect(invoices.filter((i) => i.billing_reason === 'SUBSCRIPTION_CYCLE')).toHaveLength(12);
    expect(invoices.every((i) => i.status === 'PAID')).toBe(true);
    invoices.forEach((invoice, k) => {
      // each period starts where the previous one ended, anchored on the first period's start
      expect(invoice.period_start).toEqual(addMonthsClamped(anchor, k));
      expect(invoice.period_end).toEqual(addMonthsClamped(anchor, k + 1));
      // a renewal invoice is issued as of the clock: at its period's start, not by the wall clock
      if (k > 0) expect(invoice.finalized_at).toEqual(invoice.period_start);
    });
    const payments = await stack.db.query<{ n: number }>(
      `select count(*)::int as n from payments p join invoices i on i.id = p.invoice_id
        where i.subscription_id = $1 and p.status = 'SUCCEEDED'`,
      [sub.id],
    );
    expect(payments[0]?.n).toBe(13);
    expect(await getSubscription(sub.id)).toMatchObject({
      status: 'ACTIVE',
      current_period_start: addMonthsClamped(anchor, 12).toISOString(),
      current_period_end: addMonthsClamped(anchor, 13).toISOString(),
    });

    // the hourly billing run leaves clock customers alone, however far ahead it looks
    const run = await stack.temporal.workflow.execute<typeof billingRun>('billingRun', {
      workflowId: `billing-run-clock-test`,
      taskQueue: TASK_QUEUES.billing,
      args: [{ asOf: new Date(Date.now() + 800 * DAY).toISOString() }],
    });
    expect(run).toMatchObject({ done: true, found: 0, started: 0 });
    expect(await invoicesOf(sub.id)).toHaveLength(13);
  });

  it('sends a trial’s reminders at their times and converts it at its end', async () => {
    const clock = await createClock('a trial');
    const customerId = await clockCustomer('trial@clock-a.test', clock.id, 'pm_card_visa');
    const sub = await activated(customerId, 'clock-trial', 'TRIALING', 14);
    const trialEnd = new Date(sub.trial_end ?? '');
    expect(await invoicesOf(sub.id)).toEqual([]);

    await advanceTo(clock, new Date(trialEnd.getTime() + DAY));
    const reminders = await stack.db.query<{ dedupe_key: string; created_at: Date }>(
      `select dedupe_key from notifications where dedupe_key like $1 order by created_at`,
      [`trial-reminder:${sub.id}:%`],
    );
    expect(reminders.map((r) => r.dedupe_key)).toEqual(
      [7, 3, 1].map((days) => `trial-reminder:${sub.id}:${days}`),
    );
    const converted = await getSubscription(sub.id);
    expect(converted).toMatchObject({
      status: 'ACTIVE',
      current_period_start: trialEnd.toISOString(),
      current_period_end: addMonthsClamped(trialEnd, 1).toISOString(),
    });
    const [invoice, ...more] = await invoicesOf(sub.id);
    expect(more).toEqual([]);
    expect(invoice).toMatchObject({ status: 'PAID', billing_reason: 'SUBSCRIPTION_CYCLE' });
    expect(invoice?.period_start).toEqual(trialEnd);
    expect(invoice?.finalized_at).toEqual(trialEnd);
  });

  it('walks a declined card through dunning: retries, suspension (pod suspended), then termination', async () => {
    const clock = await createClock('dunning');
    const customerId = await clockCustomer('declined@clock-a.test', clock.id, 'pm_card_insufficientFunds');
    const sub = await activated(customerId, 'clock-dun', 'PAST_DUE');
    const [invoice] = await invoicesOf(sub.id);
    const invoiceId = invoice!.id;
    const dunningRun = stack.temporal.workflow.getHandle<typeof dunning>(workflowIds.dunning(invoiceId));
    const begun = await waitFor(
      async () => {
        const state = await dunningRun.query(dunningStateQuery);
        return state.timeline && state.waiting ? state : undefined;
      },
      { what: `dunning of ${invoiceId} waiting on the clock` },
    );
    expect(begun).toMatchObject({ testClockId: clock.id, clockNow: clock.frozen_time, status: 'DUNNING' });
    const timeline = begun.timeline!;
    expect(timeline.retries.map((r) => r.attempt)).toEqual([2, 3, 4, 5]);
    // on the clock, nothing happens by the wall clock: no retry was charged
    const attempts = () =>
      stack.db.query<{ status: string }>(
        'select status from payments where invoice_id = $1 order by attempt',
        [invoiceId],
      );
    expect(await attempts()).toEqual([{ status: 'FAILED' }]);

    const suspendAt = new Date(timeline.suspendAt ?? '');
    await advanceTo(clock, new Date(suspendAt.getTime() + HOUR));
    const suspended = await getSubscription(sub.id);
    expect(suspended.status).toBe('SUSPENDED');
    await waitPod(stack, s, suspended.pod_id ?? '', 'SUSPENDED');
    expect(await attempts()).toEqual([1, 2, 3, 4, 5].map(() => ({ status: 'FAILED' })));
    expect(await dunningRun.query(dunningStateQuery)).toMatchObject({
      status: 'SUSPENDED',
      waiting: true,
      wakeAt: timeline.terminateAt,
      clockNow: timeline.suspendAt,
    });

    const terminateAt = new Date(timeline.terminateAt ?? '');
    await advanceTo(clock, new Date(terminateAt.getTime() + HOUR));
    const canceled = await getSubscription(sub.id);
    expect(canceled.status).toBe('CANCELED');
    expect(await dunningRun.result()).toMatchObject({ status: 'CANCELED', suspended: true });
    await waitPod(stack, s, canceled.pod_id ?? '', 'TERMINATED');
    const [row] = await stack.db.query<{ canceled_at: Date }>(
      'select canceled_at from subscriptions where id = $1',
      [sub.id],
    );
    expect(row?.canceled_at).toEqual(terminateAt);
    const mails = await stack.db.query<{ dedupe_key: string }>(
      'select dedupe_key from notifications where dedupe_key like $1 order by dedupe_key',
      [`dunning:${invoiceId}:%`],
    );
    expect(mails.map((m) => m.dedupe_key)).toEqual([
      ...[1, 2, 3, 4, 5].map((n) => `dunning:${invoiceId}:attempt-${n}`),
      `dunning:${invoiceId}:canceled`,
      `dunning:${invoiceId}:suspended`,
    ]);
  });

  it('deletes a READY clock and detaches its customers', async () => {
    const clock = await createClock('to delete');
    const customerId = await clockCustomer('deleted-clock@clock-a.test', clock.id, null);
    const deleted = await http()
      .delete(`/api/v1/billing/test-clocks/${clock.id}`)
      .set('Authorization', s.auth);
    expect(deleted.status).toBe(204);
    expectProblem(await getClock(clock.id), 404, 'not-found');
    const customer = await http().get(`/api/v1/customers/${customerId}`).set('Authorization', s.auth);
    expect(customer.body.test_clock_id).toBeNull();
    const listed = await http().get('/api/v1/billing/test-clocks?limit=100').set('Authorization', s.auth);
    expect((listed.body.data as ClockBody[]).map((c) => c.id)).not.toContain(clock.id);
  });
});
