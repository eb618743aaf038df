/**
 * Test clocks through HTTP for e2e tests: a sandbox tenant, and the calls a scenario makes on its
 * clocks, customers and subscriptions (each waits for what it started, with a deadline).
 */
import request from 'supertest';
import type { TestStack } from './app';
import type { PodTenant } from './pods';
import { issueTenantToken } from './tenants';
import { waitFor } from './wait';

/**
 * A tenant made by the platform admin with `sandbox: true`, onboarded, with a token and a monthly
 * plan (100 GB of bandwidth included; `planFields` adds to or overrides its fields).
 */
export async function sandboxTenant(
  stack: TestStack,
  slug: string,
  planFields: Record<string, unknown> = {},
): Promise<PodTenant> {
  const http = () => request(stack.app);
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
  const plan = await http()
    .post('/api/v1/products')
    .set('Authorization', auth)
    .send({
      code: 'STARTER',
      name: 'Starter',
      interval: 'MONTH',
      unit_amount: 1000,
      vcpu: 1,
      memory_mb: 1024,
      disk_gb: 20,
      included_bandwidth_gb: 100,
      ...planFields,
    });
  expect(plan.status).toBe(201);
  return { id, auth, customerId: '', starter: plan.body.id as string, pro: '' };
}

export interface ClockBody {
  id: string;
  name: string;
  frozen_time: string;
  status: string;
  advancing_to: string | null;
  advance_workflow_id: string | null;
  failure_reason: string | null;
}
export interface SubscriptionBody {
  id: string;
  status: string;
  pod_id: string | null;
  current_period_start: string | null;
  current_period_end: string | null;
  trial_end: string | null;
}

/** The clock calls of the sandbox tenant `tenant()` (default credentials) on `stack()`. */
export function testClockCalls(stack: () => TestStack, tenant: () => PodTenant) {
  const http = () => request(stack().app);
  // a getter, so the calls can be made before beforeAll has set the tenant
  const s = {
    get auth() {
      return tenant().auth;
    },
    get starter() {
      return tenant().starter;
    },
  };

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

  return {
    createClock,
    getClock,
    advance,
    advanceTo,
    waitClockReady,
    clockCustomer,
    getSubscription,
    waitSubscription,
    activated,
  };
}
