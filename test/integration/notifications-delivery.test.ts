/**
 * Delivery of the notification outbox against a real SMTP server (smtp-server on a random port):
 * what arrives (recipient, subject, body, Message-ID from the dedupe key), that nothing is sent
 * twice, that a refusal is recorded and retried after its backoff until it is sent or FAILED, that
 * a sender dying between sending and recording resends with the same Message-ID, and that without a
 * mailer nothing leaves the outbox.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { initOrm, systemEm } from '../../src/db/orm';
import { createLogger } from '../../src/logger';
import { startMailDelivery } from '../../src/mail-delivery';
import { SmtpMailer, messageIdFor, type Mailer } from '../../src/providers/mail';
import {
  deliverPendingNotifications,
  recordNotification,
  type DeliveryPolicy,
  type OutboxRow,
} from '../../src/services/notifications';
import { seedBillingTenant, type BillingTenant } from '../helpers/billing';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { SMTP_USER, startSmtpPeer, type SmtpPeer } from '../helpers/smtp-peer';
import { waitFor } from '../helpers/wait';

const FROM = 'Podplane Billing <billing@mail.podplane.test>';
const DOMAIN = 'mail.podplane.test';
/** backoff in milliseconds, so a retry is due within the test */
const FAST: DeliveryPolicy = { maxAttempts: 3, retryInitialMs: 200, retryMaxMs: 200, leaseMs: 60_000 };

interface Row {
  id: string;
  customer_id: string | null;
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date | null;
  sent_at: Date | null;
}

let db: TestDatabase;
let peer: SmtpPeer;
let billing: BillingTenant;
let mailer: SmtpMailer;

beforeEach(async () => {
  [db, peer] = await Promise.all([createTestDatabase(), startSmtpPeer()]);
  billing = await seedBillingTenant(db.orm, `mail-${randomBytes(3).toString('hex')}`, { customers: 2 });
  mailer = new SmtpMailer({ url: peer.url, from: FROM, timeoutMs: 5_000 });
});
afterEach(async () => {
  mailer?.close();
  await Promise.all([db?.close(), peer?.close()]);
});

const customer = (i: number) => billing.customers[i]!;

/** An outbox row for customer `i` (its email as the recipient). */
function outboxRow(i: number, key: string, extra: Partial<OutboxRow> = {}): OutboxRow {
  return {
    tenantId: billing.tenant.id,
    customerId: customer(i).id,
    template: 'invoice.payment_failed',
    recipient: customer(i).email,
    subject: `Payment of invoice ${key} failed`,
    body: `We could not collect 12.00 EUR for invoice ${key}. We will try again.`,
    dedupeKey: `dunning:${key}:attempt-1`,
    ...extra,
  };
}

async function record(row: OutboxRow): Promise<void> {
  expect(await recordNotification(systemEm(db.orm), row)).toBe(true);
}

async function rowOf(dedupeKey: string): Promise<Row> {
  const [row] = await db.query<Row>(
    'select id, customer_id, status, attempts, last_error, next_attempt_at, sent_at from notifications where dedupe_key = $1',
    [dedupeKey],
  );
  if (!row) throw new Error(`no notification ${dedupeKey}`);
  return row;
}

const deliver = (with_: Mailer | null = mailer, policy: DeliveryPolicy = FAST, em = systemEm(db.orm)) =>
  deliverPendingNotifications(em, with_, 10, policy);

describe('deliverPendingNotifications', () => {
  it('sends each due notification once, with its recipient, subject, body and a Message-ID made from its dedupe key', async () => {
    await record(outboxRow(0, 'inv_a'));
    await record(
      outboxRow(1, 'inv_b', {
        template: 'subscription.trial_ending',
        subject: 'Your trial ends in 3 days',
        body:
          'The trial of your CloudPod web-1 ends on 2026-12-01. ' +
          'Add a payment method before then. '.repeat(4),
        dedupeKey: 'trial-reminder:sub_b:3',
      }),
    );

    const report = await deliver();
    expect(report.claimed).toBe(2);
    expect(report.failed).toEqual([]);
    expect(report.sent.map((s) => s.messageId).sort()).toEqual(
      [
        messageIdFor('dunning:inv_a:attempt-1', DOMAIN),
        messageIdFor('trial-reminder:sub_b:3', DOMAIN),
      ].sort(),
    );

    expect(peer.received).toHaveLength(2);
    const byRecipient = new Map(peer.received.map((m) => [m.to[0], m]));
    const first = byRecipient.get(customer(0).email)!;
    expect(first.to).toEqual([customer(0).email]);
    expect(first.from).toBe('billing@mail.podplane.test');
    expect(first.user).toBe(SMTP_USER);
    expect(first.headers.get('to')).toBe(customer(0).email);
    expect(first.headers.get('from')).toBe(FROM);
    expect(first.headers.get('subject')).toBe('Payment of invoice inv_a failed');
    expect(first.text).toBe('We could not collect 12.00 EUR for invoice inv_a. We will try again.');
    // The dedupe key, escaped where a Message-ID may not hold its characters: stable across resends.
    expect(first.headers.get('message-id')).toBe('<dunning=3Ainv_a=3Aattempt-1@mail.podplane.test>');

    const second = byRecipient.get(customer(1).email)!;
    expect(second.headers.get('subject')).toBe('Your trial ends in 3 days');
    expect(second.text).toBe(
      'The trial of your CloudPod web-1 ends on 2026-12-01. ' +
        'Add a payment method before then. '.repeat(4),
    );
    expect(second.headers.get('message-id')).toBe('<trial-reminder=3Asub_b=3A3@mail.podplane.test>');

    for (const key of ['dunning:inv_a:attempt-1', 'trial-reminder:sub_b:3']) {
      const row = await rowOf(key);
      expect(row).toMatchObject({ status: 'SENT', attempts: 1, last_error: null, next_attempt_at: null });
      expect(row.sent_at).toBeInstanceOf(Date);
    }
    expect((await rowOf('dunning:inv_a:attempt-1')).customer_id).toBe(customer(0).id);

    // A second run finds nothing due: nothing is sent again.
    const again = await deliver();
    expect(again).toEqual({ claimed: 0, sent: [], failed: [] });
    expect(peer.received).toHaveLength(2);
  });

  it('records a refusal, waits out the backoff, and sends on the retry', async () => {
    peer.refuse.add(customer(0).email);
    await record(outboxRow(0, 'inv_refused'));

    const refused = await deliver();
    expect(refused.sent).toEqual([]);
    expect(refused.failed).toHaveLength(1);
    expect(refused.failed[0]).toMatchObject({ failure: 'REJECTED', status: 'PENDING', attempt: 1 });
    expect(peer.received).toEqual([]);
    const failed = await rowOf('dunning:inv_refused:attempt-1');
    expect(failed).toMatchObject({ status: 'PENDING', attempts: 1, sent_at: null });
    // the receiving server's answer, with its code, is what the tenant sees
    expect(failed.last_error).toContain('550');
    expect(failed.next_attempt_at).toBeInstanceOf(Date);

    // Within the backoff the row is not due: nothing is claimed.
    expect((await deliver()).claimed).toBe(0);

    peer.refuse.clear();
    const retried = await waitFor(
      async () => {
        const report = await deliver();
        return report.sent.length > 0 ? report : undefined;
      },
      { what: 'the retry after the backoff', timeoutMs: 10_000, intervalMs: 50 },
    );
    expect(retried.sent[0]).toMatchObject({ attempt: 2, recipient: customer(0).email });
    expect(peer.received).toHaveLength(1);
    expect(peer.received[0]!.headers.get('message-id')).toBe(
      messageIdFor('dunning:inv_refused:attempt-1', DOMAIN),
    );
    expect(await rowOf('dunning:inv_refused:attempt-1')).toMatchObject({
      status: 'SENT',
      attempts: 2,
      last_error: null,
      next_attempt_at: null,
    });
  });

  it('gives up after the last attempt: FAILED, with the error, and never tried again', async () => {
    peer.refuse.add(customer(1).email);
    await record(outboxRow(1, 'inv_bounce'));
    const policy: DeliveryPolicy = { ...FAST, maxAttempts: 2, retryInitialMs: 1, retryMaxMs: 1 };

    expect((await deliver(mailer, policy)).failed[0]).toMatchObject({ status: 'PENDING', attempt: 1 });
    const last = await waitFor(
      async () => {
        const report = await deliver(mailer, policy);
        return report.failed[0];
      },
      { what: 'the second and last attempt', timeoutMs: 10_000, intervalMs: 20 },
    );
    expect(last).toMatchObject({ status: 'FAILED', attempt: 2, failure: 'REJECTED', retryAt: null });
    const row = await rowOf('dunning:inv_bounce:attempt-1');
    expect(row).toMatchObject({ status: 'FAILED', attempts: 2, next_attempt_at: null, sent_at: null });
    expect(row.last_error).toContain('550');

    peer.refuse.clear();
    expect((await deliver(mailer, policy)).claimed).toBe(0);
    expect(peer.received).toEqual([]);
  });

  it('resends with the same Message-ID when the sender died between sending and recording', async () => {
    await record(outboxRow(0, 'inv_crash'));
    // A sender whose database goes away right after the server accepted the message: the outcome
    // is never recorded, as when the process dies there.
    const doomed = await initOrm({ databaseUrl: db.url, poolMax: 2 });
    const dying: Mailer = {
      async send(msg) {
        const sent = await mailer.send(msg);
        await doomed.close(true);
        return sent;
      },
      close() {},
    };
    const shortLease: DeliveryPolicy = { ...FAST, leaseMs: 300 };
    await expect(deliver(dying, shortLease, systemEm(doomed))).rejects.toThrow();
    expect(peer.received).toHaveLength(1);
    expect(await rowOf('dunning:inv_crash:attempt-1')).toMatchObject({ status: 'PENDING', attempts: 1 });

    // Once the lease has run out another sender claims it and sends it again.
    const resent = await waitFor(
      async () => {
        const report = await deliver(mailer, shortLease);
        return report.sent[0];
      },
      { what: 'the row claimed again after the lease', timeoutMs: 10_000, intervalMs: 50 },
    );
    expect(resent.attempt).toBe(2);
    expect(peer.received).toHaveLength(2);
    const [firstCopy, secondCopy] = peer.received;
    expect(secondCopy!.headers.get('message-id')).toBe(firstCopy!.headers.get('message-id'));
    expect(secondCopy!.headers.get('message-id')).toBe(messageIdFor('dunning:inv_crash:attempt-1', DOMAIN));
    expect(await rowOf('dunning:inv_crash:attempt-1')).toMatchObject({ status: 'SENT', attempts: 2 });
  });

  it('two senders at once never send the same notification twice', async () => {
    for (let i = 0; i < 12; i += 1) await record(outboxRow(i % 2, `inv_many_${i}`));
    const other = new SmtpMailer({ url: peer.url, from: FROM, timeoutMs: 5_000 });
    try {
      const reports = await Promise.all([deliver(mailer), deliver(other), deliver(mailer), deliver(other)]);
      const sent = reports.flatMap((r) => r.sent.map((s) => s.id));
      expect(new Set(sent).size).toBe(sent.length);
      expect(sent).toHaveLength(12);
    } finally {
      other.close();
    }
    expect(peer.received).toHaveLength(12);
    const ids = peer.received.map((m) => m.headers.get('message-id'));
    expect(new Set(ids).size).toBe(12);
  });

  it('without a mailer sends nothing: rows stay PENDING in the outbox, untouched', async () => {
    await record(outboxRow(0, 'inv_kept'));
    expect(await deliver(null)).toEqual({ claimed: 0, sent: [], failed: [] });
    expect(await rowOf('dunning:inv_kept:attempt-1')).toMatchObject({
      status: 'PENDING',
      attempts: 0,
      last_error: null,
      next_attempt_at: null,
      sent_at: null,
    });
    expect(peer.received).toEqual([]);
  });
});

/** A logger writing parsed lines into `lines`. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'info' }, sink) };
}

const loopConfig = { MAIL_POLL_INTERVAL_MS: 50, MAIL_MAX_ATTEMPTS: 3, MAIL_RETRY_INITIAL_MS: 100 };

describe('the delivery loop', () => {
  it('sends what is recorded while it runs, logs each send, and stops cleanly', async () => {
    const { lines, logger } = capturingLogger();
    const loopMailer = new SmtpMailer({ url: peer.url, from: FROM, timeoutMs: 5_000 });
    const loop = startMailDelivery({ orm: db.orm, mailer: loopMailer, config: loopConfig, logger });
    try {
      await record(outboxRow(0, 'inv_loop'));
      await waitFor(() => Promise.resolve(peer.received.length === 1), {
        what: 'the loop to send it',
        timeoutMs: 10_000,
      });
      await waitFor(async () => (await rowOf('dunning:inv_loop:attempt-1')).status === 'SENT', {
        what: 'the row SENT',
      });
      const sent = lines.find((l) => l.msg === 'notification sent');
      expect(sent?.notification).toMatchObject({
        kind: 'invoice.payment_failed',
        recipient: customer(0).email,
        messageId: messageIdFor('dunning:inv_loop:attempt-1', DOMAIN),
      });

      peer.refuse.add(customer(1).email);
      await record(outboxRow(1, 'inv_loop_refused'));
      await waitFor(
        () => Promise.resolve(lines.find((l) => l.msg === 'notification not sent; it is retried later')),
        {
          what: 'the failure logged',
          timeoutMs: 10_000,
        },
      );
    } finally {
      await loop.stop();
    }
    // The password of SMTP_URL is never logged.
    expect(JSON.stringify(lines)).not.toContain('peer-password');
  });

  it('without a mailer keeps the outbox and logs each notification once', async () => {
    const { lines, logger } = capturingLogger();
    await record(outboxRow(0, 'inv_logged'));
    const loop = startMailDelivery({ orm: db.orm, mailer: null, config: loopConfig, logger });
    try {
      await waitFor(
        () => Promise.resolve(lines.some((l) => l.msg === 'notification kept in the outbox (no SMTP_URL)')),
        {
          what: 'the kept notification logged',
        },
      );
      await record(outboxRow(1, 'inv_logged_later'));
      await waitFor(
        () =>
          Promise.resolve(
            lines.filter((l) => l.msg === 'notification kept in the outbox (no SMTP_URL)').length === 2,
          ),
        { what: 'the second one logged' },
      );
      // Further passes log nothing new.
      await loop.deliver();
      await loop.deliver();
    } finally {
      await loop.stop();
    }
    const kept = lines.filter((l) => l.msg === 'notification kept in the outbox (no SMTP_URL)');
    expect(kept.map((l) => (l.notification as { recipient: string }).recipient)).toEqual([
      customer(0).email,
      customer(1).email,
    ]);
    expect(await rowOf('dunning:inv_logged:attempt-1')).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect(peer.received).toEqual([]);
  });
});
