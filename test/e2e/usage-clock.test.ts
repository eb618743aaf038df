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
import { sandboxTenant, testClockCalls } from '../helpers/test-clocks';

let stack: TestStack;
let s: PodTenant;

const http = () => request(stack.app);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'usage-clock-node-1', 32);
  s = await sandboxTenant(stack, 'usage-clock', { bandwidth_overage_unit_amount: 5 });
});
afterAll(async () => {
  await stack?.close();
});

const { createClock, advanceTo, clockCustomer, getSubscription, activated } = testClockCalls(
  () => stack,
  () => s,
);

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
