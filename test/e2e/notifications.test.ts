/**
 * The notification outbox through HTTP: a tenant lists and reads what was written for it (the
 * welcome mail of its onboarding, its customers' mail) with filters and cursor pages, sees each
 * mail's delivery state once the worker's delivery has run against a real SMTP server, never sees
 * another tenant's (404, never listed), and gets a 400 problem+json for invalid queries.
 */
import request from 'supertest';
import { systemEm } from '../../src/db/orm';
import { SmtpMailer } from '../../src/providers/mail';
import {
  deliverPendingNotifications,
  recordNotification,
  type OutboxRow,
} from '../../src/services/notifications';
import { startTestStack, type TestStack } from '../helpers/app';
import { apiCustomer } from '../helpers/billing';
import { expectProblem } from '../helpers/problem';
import { startSmtpPeer, type SmtpPeer } from '../helpers/smtp-peer';
import { createActiveTenant, issueTenantToken, type ActiveTenant } from '../helpers/tenants';

interface Item {
  id: string;
  kind: string;
  customer_id: string | null;
  recipient: string;
  subject: string;
  body: string;
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  sent_at: string | null;
}

let stack: TestStack;
let a: ActiveTenant & { auth: string; jane: string; joe: string };
let b: ActiveTenant & { auth: string; customerId: string };
/** ids of the rows recorded below, by dedupe key */
const ids: Record<string, string> = {};

const http = () => request(stack.app);

async function record(row: OutboxRow): Promise<void> {
  expect(await recordNotification(systemEm(stack.db.orm), row)).toBe(true);
  const [found] = await stack.db.query<{ id: string }>('select id from notifications where dedupe_key = $1', [
    row.dedupeKey,
  ]);
  ids[row.dedupeKey] = found!.id;
}

async function list(auth: string, query: Record<string, string | number> = {}): Promise<Item[]> {
  const res = await http().get('/api/v1/notifications').query(query).set('Authorization', auth);
  expect(res.status).toBe(200);
  return res.body.data as Item[];
}

beforeAll(async () => {
  stack = await startTestStack();
  const [ta, tb] = await Promise.all([
    createActiveTenant(stack, 'ntf-a'),
    createActiveTenant(stack, 'ntf-b'),
  ]);
  const authA = `Bearer ${ta.token}`;
  a = {
    ...ta,
    auth: authA,
    jane: await apiCustomer(stack, authA, 'jane@ntf-a.test'),
    joe: await apiCustomer(stack, authA, 'joe@ntf-a.test'),
  };
  b = {
    ...tb,
    auth: `Bearer ${tb.token}`,
    customerId: await apiCustomer(stack, `Bearer ${tb.token}`, 'x@ntf-b.test'),
  };

  const mail = (tenantId: string, customerId: string, recipient: string, template: string, key: string) =>
    record({
      tenantId,
      customerId,
      template,
      recipient,
      subject: `${template} for ${recipient}`,
      body: `About ${key}.`,
      dedupeKey: key,
    });
  await mail(a.id, a.jane, 'jane@ntf-a.test', 'invoice.payment_failed', 'dunning:inv_ntf1:attempt-1');
  await mail(a.id, a.jane, 'jane@ntf-a.test', 'subscription.suspended', 'dunning:inv_ntf1:suspended');
  await mail(a.id, a.joe, 'joe@ntf-a.test', 'invoice.payment_failed', 'dunning:inv_ntf2:attempt-1');
  await mail(a.id, a.joe, 'joe@ntf-a.test', 'subscription.trial_ending', 'trial-reminder:sub_ntf:3');
  await mail(b.id, b.customerId, 'x@ntf-b.test', 'invoice.payment_failed', 'dunning:inv_ntf3:attempt-1');
});
afterAll(async () => {
  await stack?.close();
});

describe('GET /api/v1/notifications', () => {
  it("lists the tenant's outbox oldest first — its welcome mail and its customers' mail — and nothing of another tenant", async () => {
    const items = await list(a.auth);
    expect(items.map((i) => i.kind)).toEqual([
      'tenant.welcome',
      'invoice.payment_failed',
      'subscription.suspended',
      'invoice.payment_failed',
      'subscription.trial_ending',
    ]);
    const welcome = items[0]!;
    expect(welcome).toMatchObject({
      customer_id: null,
      recipient: 'owner@ntf-a.test',
      status: 'PENDING',
      attempts: 0,
      last_error: null,
      next_attempt_at: null,
      sent_at: null,
    });
    expect(items[1]).toEqual({
      id: ids['dunning:inv_ntf1:attempt-1'],
      kind: 'invoice.payment_failed',
      customer_id: a.jane,
      recipient: 'jane@ntf-a.test',
      subject: 'invoice.payment_failed for jane@ntf-a.test',
      body: 'About dunning:inv_ntf1:attempt-1.',
      status: 'PENDING',
      attempts: 0,
      last_error: null,
      next_attempt_at: null,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      sent_at: null,
    });
    expect(items.map((i) => i.id)).not.toContain(ids['dunning:inv_ntf3:attempt-1']);

    const others = await list(b.auth);
    expect(others.map((i) => i.kind)).toEqual(['tenant.welcome', 'invoice.payment_failed']);
    expect(others.map((i) => i.id)).not.toEqual(expect.arrayContaining([ids['dunning:inv_ntf1:attempt-1']]));
  });

  it('filters by customer, kind and status, alone and together', async () => {
    expect((await list(a.auth, { customer_id: a.jane })).map((i) => i.id)).toEqual([
      ids['dunning:inv_ntf1:attempt-1'],
      ids['dunning:inv_ntf1:suspended'],
    ]);
    expect((await list(a.auth, { kind: 'invoice.payment_failed' })).map((i) => i.id)).toEqual([
      ids['dunning:inv_ntf1:attempt-1'],
      ids['dunning:inv_ntf2:attempt-1'],
    ]);
    expect(
      (await list(a.auth, { kind: 'invoice.payment_failed', customer_id: a.joe })).map((i) => i.id),
    ).toEqual([ids['dunning:inv_ntf2:attempt-1']]);
    expect(await list(a.auth, { status: 'FAILED' })).toEqual([]);
    expect(await list(a.auth, { kind: 'cloudpod.active' })).toEqual([]);
    // another tenant's customer filters to nothing rather than revealing anything
    expect(await list(a.auth, { customer_id: b.customerId })).toEqual([]);
  });

  it('pages with next_cursor until the end, each item once', async () => {
    const all = await list(a.auth);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await http()
        .get('/api/v1/notifications')
        .query(cursor ? { limit: 2, cursor } : { limit: 2 })
        .set('Authorization', a.auth);
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...(res.body.data as Item[]).map((i) => i.id));
      cursor = res.body.next_cursor as string | null;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(all.map((i) => i.id));
  });

  it('answers 400 problem+json to invalid queries', async () => {
    const bad: Record<string, string>[] = [
      { status: 'DELIVERED' },
      { kind: "x'; drop table notifications; --" },
      { kind: 'Invoice.Issued' },
      { kind: 'k'.repeat(101) },
      { limit: '0' },
      { limit: '101' },
      { limit: 'ten' },
      { cursor: 'not-a-cursor' },
      { customer_id: 'c'.repeat(41) },
      { unknown: 'x' },
    ];
    for (const query of bad) {
      const res = await http().get('/api/v1/notifications').query(query).set('Authorization', a.auth);
      expectProblem(res, 400, 'validation-failed');
    }
    const control = await http()
      .get('/api/v1/notifications?kind=invoice%00.issued')
      .set('Authorization', a.auth);
    expectProblem(control, 400, 'validation-failed');
    // nothing was written by any of it
    const [count] = await stack.db.query<{ n: number }>('select count(*)::int as n from notifications');
    expect(count!.n).toBe(7);
  });

  it('needs credentials, and a read-only token is enough', async () => {
    expectProblem(await http().get('/api/v1/notifications'), 401, 'unauthenticated');
    const readOnly = await issueTenantToken(stack, a.id, ['read']);
    const res = await http().get('/api/v1/notifications').set('Authorization', `Bearer ${readOnly}`);
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(5);
  });
});

describe('GET /api/v1/notifications/:id', () => {
  it('returns the notification exactly as the list shows it', async () => {
    const items = await list(a.auth);
    for (const item of items) {
      const res = await http().get(`/api/v1/notifications/${item.id}`).set('Authorization', a.auth);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(item);
    }
  });

  it("answers 404 for another tenant's notification, an unknown id and a malformed one", async () => {
    const theirs = ids['dunning:inv_ntf3:attempt-1']!;
    expectProblem(
      await http().get(`/api/v1/notifications/${theirs}`).set('Authorization', a.auth),
      404,
      'not-found',
    );
    // …which its own tenant reads
    expect((await http().get(`/api/v1/notifications/${theirs}`).set('Authorization', b.auth)).status).toBe(
      200,
    );
    for (const id of [
      'ntf_01jd0000000000000000000000',
      'inv_01jd0000000000000000000000',
      'x',
      "1' or '1'='1",
    ]) {
      expectProblem(
        await http()
          .get(`/api/v1/notifications/${encodeURIComponent(id)}`)
          .set('Authorization', a.auth),
        404,
        'not-found',
      );
    }
  });
});

describe('delivery state', () => {
  let peer: SmtpPeer;
  beforeAll(async () => {
    peer = await startSmtpPeer();
  });
  afterAll(async () => {
    await peer?.close();
  });

  it('shows SENT with sent_at once delivered, and a refusal with its error while it waits to be retried', async () => {
    peer.refuse.add('joe@ntf-a.test');
    const mailer = new SmtpMailer({
      url: peer.url,
      from: 'Podplane <billing@ntf.podplane.test>',
      timeoutMs: 5_000,
    });
    try {
      const report = await deliverPendingNotifications(systemEm(stack.db.orm), mailer, 50);
      expect(report.claimed).toBe(7);
      expect(report.failed.map((f) => f.recipient)).toEqual(['joe@ntf-a.test', 'joe@ntf-a.test']);
    } finally {
      mailer.close();
    }
    expect(peer.received).toHaveLength(5);

    const items = await list(a.auth);
    const jane = items.filter((i) => i.customer_id === a.jane);
    expect(jane.map((i) => i.status)).toEqual(['SENT', 'SENT']);
    for (const item of jane) {
      expect(item).toMatchObject({ attempts: 1, last_error: null, next_attempt_at: null });
      expect(Date.parse(item.sent_at!)).toBeGreaterThanOrEqual(Date.parse(item.created_at));
    }
    const joe = await list(a.auth, { customer_id: a.joe, status: 'PENDING' });
    expect(joe).toHaveLength(2);
    for (const item of joe) {
      expect(item).toMatchObject({ attempts: 1, sent_at: null });
      expect(item.last_error).toContain('550');
      expect(Date.parse(item.next_attempt_at!)).toBeGreaterThan(Date.now());
    }
    expect((await list(a.auth, { status: 'SENT' })).map((i) => i.kind)).toEqual([
      'tenant.welcome',
      'invoice.payment_failed',
      'subscription.suspended',
    ]);
    const one = await http().get(`/api/v1/notifications/${joe[0]!.id}`).set('Authorization', a.auth);
    expect(one.body).toEqual(joe[0]);
  });
});
