/**
 * Usage on test clocks through HTTP (simulated providers, a real worker): a customer on a sandbox
 * tenant's clock reports usage stamped at the clock's time — in the future from the wall clock's
 * view — and it is accepted (one further ahead than the clock is refused, nothing stored); the
 * clock advanced past the period's end renews the subscription with that usage's overage on the
 * renewal invoice, and `usage_daily` shows the clock customer's days, the new period's included.
 */
import request from 'supertest';
import { addMonthsClamped, isoDate } from '../../src/domain/billing';
import { startTestStack, type TestStack } from '../helpers/app';
import { registerNode, type PodTenant } from '../helpers/pods';
import { expectProblem } from '../helpers/problem';
import { issueTenantToken } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let s: PodTenant;

const http = () => request(stack.app);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A tenant made by the platform admin with `sandbox: true`, onboarded, with a token and a monthly plan. */
async function sandboxTenant(slug: string): Promise<PodTenant> {
  const admin = `Bearer ${stack.adminToken}`;
  const res = await http()
    .post('/api/v1/tenants')
    .set('Authorization', admin)
    .send({
      slug,
      name: `Tenant ${slug}`,
      currency: 'EUR',
      owner_email: `owner@${slug}.test`,
      sandbox: true,
    });
  expect(res.status).toBe(202);
  expect(res.body.tenant.mode).toBe('SANDBOX');
  const id = res.body.tenant.id as string;
  await waitFor(
    async () =>
      (await http().get(`/api/v1/tenants/${id}`).set('Authorization', admin)).body.status === 'ACTIVE',
    { what: `tenant ${slug} ACTIVE` },
  );
  const auth = `Bearer ${await issueTenantToken(stack, id)}`;
  const plan = await http().post('/api/v1/products').set('Authorization', auth).send({
    code: 'STARTER',
    name: 'Starter',
    interval: 'MONTH',
    unit_amount: 1000,
    vcpu: 1,
    memory_mb: 1024,
    disk_gb: 20,
    included_bandwidth_gb: 100,
    bandwidth_overage_unit_amount: 5,
  });
  expect(plan.status).toBe(201);
  return { id, auth, customerId: '', starter: plan.body.id as string, pro: '' };
}

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'usage-clock-node-1', 32);
  s = await sandboxTenant('usage-clock');
});
afterAll(async () => {
  await stack?.close();
});

interface ClockBody {
  id: string;
  name: string;
  frozen_time: string;
  status: string;
  advancing_to: string | null;
  advance_workflow_id: string | null;
  failure_reason: string | null;
}

async function createClock(name: string, frozenTime?: Date): Promise<ClockBody> {
  const res = await http()
    .post('/api/v1/billing/test-clocks')
    .set('Authorization', s.auth)
    .send({ name, ...(frozenTime ? { frozen_time: frozenTime.toISOString() } : {}) });
  expect(res.status).toBe(201);
  expect(res.body).toMatchObject({ name, status: 'READY', advancing_to: null, advance_workflow_id: null });
  return res.body as ClockBody;
}

async function getClock(id: string, auth = s.auth): Promise<request.Response> {
  return http().get(`/api/v1/billing/test-clocks/${id}`).set('Authorization', auth);
}

function advance(id: string, to: Date | string, auth = s.auth, key?: string) {
  const req = http()
    .post(`/api/v1/billing/test-clocks/${id}/advance`)
    .set('Authorization', auth)
    .send({ frozen_time: typeof to === 'string' ? to : to.toISOString() });
  return key ? req.set('Idempotency-Key', key) : req;
}

/** Advances the clock and waits until it is READY at the target. */
async function advanceTo(clock: ClockBody, to: Date): Promise<ClockBody> {
  const res = await advance(clock.id, to);
  expect(res.status).toBe(202);
  expect(res.body.test_clock).toMatchObject({ status: 'ADVANCING', advancing_to: to.toISOString() });
  return waitClockReady(clock.id, to);
}

function waitClockReady(id: string, to: Date): Promise<ClockBody> {
  return waitFor(
    async () => {
      const body = (await getClock(id)).body as ClockBody;
      if (body.status === 'INTERNAL_FAILURE') throw new Error(`advance failed: ${body.failure_reason}`);
      return body.status === 'READY' && body.frozen_time === to.toISOString() ? body : undefined;
    },
    { what: `test clock ${id} READY at ${to.toISOString()}`, timeoutMs: 120_000, intervalMs: 200 },
  );
}

/** A customer of the sandbox tenant on `clockId`, paying with `card`. */
async function clockCustomer(email: string, clockId: string, card: string | null): Promise<string> {
  const created = await http()
    .post('/api/v1/customers')
    .set('Authorization', s.auth)
    .send({ email, name: email, test_clock_id: clockId });
  expect(created.status).toBe(201);
  expect(created.body.test_clock_id).toBe(clockId);
  if (card) {
    const updated = await http()
      .patch(`/api/v1/customers/${created.body.id}`)
      .set('Authorization', s.auth)
      .send({ default_payment_method: card });
    expect(updated.status).toBe(200);
  }
  return created.body.id as string;
}

interface SubscriptionBody {
  id: string;
  status: string;
  pod_id: string | null;
  current_period_start: string | null;
  current_period_end: string | null;
  trial_end: string | null;
}

async function getSubscription(id: string): Promise<SubscriptionBody> {
  const res = await http().get(`/api/v1/billing/subscriptions/${id}`).set('Authorization', s.auth);
  expect(res.status).toBe(200);
  return res.body as SubscriptionBody;
}

function waitSubscription(id: string, status: string): Promise<SubscriptionBody> {
  return waitFor(
    async () => {
      const sub = await getSubscription(id);
      return sub.status === status ? sub : undefined;
    },
    { what: `subscription ${id} ${status}`, timeoutMs: 60_000 },
  );
}

/** A subscription of `customerId` to the monthly plan, activated and waited on until `status`. */
async function activated(
  customerId: string,
  slug: string,
  status: string,
  trialDays?: number,
): Promise<SubscriptionBody> {
  const created = await http()
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', s.auth)
    .send({
      customer_id: customerId,
      product_id: s.starter,
      pod_slug: slug,
      ...(trialDays ? { trial_days: trialDays } : {}),
    });
  expect(created.status).toBe(201);
  const started = await http()
    .post(`/api/v1/billing/subscriptions/${created.body.id}/activate`)
    .set('Authorization', s.auth)
    .send();
  expect(started.status).toBe(202);
  return waitSubscription(created.body.id as string, status);
}

function report(subscriptionId: string, records: { key: string; at: Date; quantity: number }[]) {
  return http()
    .post('/api/v1/usage')
    .set('Authorization', s.auth)
    .send({
      records: records.map((r) => ({
        subscription_id: subscriptionId,
        metric: 'bandwidth_gb',
        quantity: r.quantity,
        occurred_at: r.at.toISOString(),
        idempotency_key: r.key,
      })),
    });
}

describe('usage on a test clock', () => {
  it('accepts usage at the clock’s time and bills it when the clock renews the period', async () => {
    const clock = await createClock('usage', new Date(Date.now() + 40 * DAY));
    const customerId = await clockCustomer('metered@usage-clock.test', clock.id, 'pm_card_visa');
    const sub = await activated(customerId, 'clock-metered', 'ACTIVE');
    const start = new Date(sub.current_period_start ?? '');
    const end = new Date(sub.current_period_end ?? '');
    expect(end.getTime()).toBe(addMonthsClamped(start, 1).getTime());
    const frozen = new Date(clock.frozen_time);

    // Further ahead than the clock: refused, nothing stored.
    const ahead = await report(sub.id, [
      { key: 'uc-far', at: new Date(frozen.getTime() + HOUR), quantity: 1 },
    ]);
    expectProblem(ahead, 400, 'validation-failed');
    const stored = async () =>
      (
        await stack.db.query<{ n: number }>(
          'select count(*)::int as n from usage_records where subscription_id = $1',
          [sub.id],
        )
      )[0]?.n;
    expect(await stored()).toBe(0);

    const atClock = await report(sub.id, [
      { key: 'uc-1', at: frozen, quantity: 80 },
      { key: 'uc-2', at: new Date(frozen.getTime() + 60_000), quantity: 5 },
    ]);
    expect(atClock.status).toBe(200);
    expect((atClock.body.results as { status: string }[]).map((r) => r.status)).toEqual([
      'accepted',
      'accepted',
    ]);

    // Later in the period, at the clock's new time.
    const mid = new Date(end.getTime() - 2 * DAY);
    await advanceTo(clock, mid);
    expect((await report(sub.id, [{ key: 'uc-3', at: mid, quantity: 40 }])).body.results[0].status).toBe(
      'accepted',
    );

    const past = new Date(end.getTime() + HOUR);
    await advanceTo(clock, past);
    const renewed = await getSubscription(sub.id);
    expect(renewed.current_period_start).toBe(end.toISOString());
    const [cycle] = await stack.db.query<{ id: string; status: string }>(
      `select id, status from invoices where subscription_id = $1 and billing_reason = 'SUBSCRIPTION_CYCLE'`,
      [sub.id],
    );
    expect(cycle?.status).toBe('PAID');
    const invoice = await http().get(`/api/v1/billing/invoices/${cycle?.id}`).set('Authorization', s.auth);
    const usage = (invoice.body.lines as Record<string, unknown>[]).filter((l) => l.kind === 'USAGE');
    expect(usage).toEqual([
      expect.objectContaining({
        description: `Bandwidth beyond the 100 GB included (125 GB used), ${isoDate(start)} – ${isoDate(end)}`,
        quantity: 25,
        unit_amount: 5,
        amount: 125,
        period_start: start.toISOString(),
        period_end: end.toISOString(),
      }),
    ]);

    // The new period's usage, rolled up by the next advance with the days it passed.
    expect((await report(sub.id, [{ key: 'uc-4', at: past, quantity: 9 }])).body.results[0].status).toBe(
      'accepted',
    );
    const later = new Date(past.getTime() + 2 * DAY);
    await advanceTo(clock, later);
    const days = await stack.db.query<{ day: string; quantity: string }>(
      `select day::text as day, sum(quantity)::text as quantity from usage_daily
        where subscription_id = $1 and metric = 'bandwidth_gb' group by day order by day`,
      [sub.id],
    );
    const expected = new Map<string, number>();
    for (const [at, q] of [
      [frozen, 80],
      [new Date(frozen.getTime() + 60_000), 5],
      [mid, 40],
      [past, 9],
    ] as const) {
      expected.set(isoDate(at), (expected.get(isoDate(at)) ?? 0) + q);
    }
    expect(days).toEqual([...expected].map(([day, q]) => ({ day, quantity: String(q) })));
  });
});
