/**
 * Delivers the notification outbox from the worker process: once at start, then every
 * MAIL_POLL_INTERVAL_MS, one pass at a time (a pass never overlaps the next). Each send and each
 * failure is logged; the delivery state is on the rows, which `GET /api/v1/notifications` shows.
 * Without a mailer (no SMTP_URL) nothing is sent: the outbox keeps its rows, and each new one is
 * logged once so an operator sees what would have gone out.
 */
import type { Config } from './config';
import { systemEm, type MikroORM } from './db/orm';
import type { Logger } from './logger';
import type { Mailer } from './providers/mail';
import {
  DEFAULT_DELIVERY_POLICY,
  deliverPendingNotifications,
  undeliveredAfter,
  type DeliveryPolicy,
} from './services/notifications';

/** Rows claimed per batch: small, so a slow server holds few leases and other workers share the work. */
const BATCH_SIZE = 10;
/** Batches per pass at most, so a large backlog never keeps a pass (and shutdown) waiting long. */
const BATCHES_PER_PASS = 10;

export interface MailDelivery {
  /** one pass now (also what the timer runs); resolves when it is done */
  deliver(): Promise<void>;
  /** stops the timer, waits for a pass in progress, closes the mailer */
  stop(): Promise<void>;
}

export function deliveryPolicy(
  config: Pick<Config, 'MAIL_MAX_ATTEMPTS' | 'MAIL_RETRY_INITIAL_MS'>,
): DeliveryPolicy {
  return {
    ...DEFAULT_DELIVERY_POLICY,
    maxAttempts: config.MAIL_MAX_ATTEMPTS,
    retryInitialMs: config.MAIL_RETRY_INITIAL_MS,
    retryMaxMs: Math.max(DEFAULT_DELIVERY_POLICY.retryMaxMs, config.MAIL_RETRY_INITIAL_MS),
  };
}

export function startMailDelivery(deps: {
  orm: MikroORM;
  mailer: Mailer | null;
  config: Pick<Config, 'MAIL_POLL_INTERVAL_MS' | 'MAIL_MAX_ATTEMPTS' | 'MAIL_RETRY_INITIAL_MS'>;
  logger: Logger;
}): MailDelivery {
  const { mailer, logger } = deps;
  const policy = deliveryPolicy(deps.config);
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  /** the last outbox row logged when there is no mailer */
  let lastLogged: string | null = null;

  const send = async () => {
    if (!mailer) return;
    for (let batch = 0; batch < BATCHES_PER_PASS && !stopped; batch += 1) {
      const report = await deliverPendingNotifications(systemEm(deps.orm), mailer, BATCH_SIZE, policy);
      for (const sent of report.sent) logger.info({ notification: sent }, 'notification sent');
      for (const failed of report.failed) {
        if (failed.status === 'FAILED') {
          logger.error({ notification: failed }, 'notification failed for good after its last attempt');
        } else {
          logger.warn({ notification: failed }, 'notification not sent; it is retried later');
        }
      }
      if (report.claimed < BATCH_SIZE) return;
    }
  };

  const logOutbox = async () => {
    for (;;) {
      const rows = await undeliveredAfter(systemEm(deps.orm), lastLogged, BATCH_SIZE * BATCHES_PER_PASS);
      for (const row of rows)
        logger.info({ notification: row }, 'notification kept in the outbox (no SMTP_URL)');
      lastLogged = rows.at(-1)?.id ?? lastLogged;
      if (rows.length < BATCH_SIZE * BATCHES_PER_PASS || stopped) return;
    }
  };

  const pass = async () => {
    try {
      await (mailer ? send() : logOutbox());
    } catch (err) {
      logger.warn({ err }, 'notification delivery pass failed; the next pass tries again');
    }
  };
  /** passes started or waiting: the timer adds none while one is, so a slow server never queues them up */
  let queued = 0;
  const deliver = () => {
    if (stopped) return running;
    queued += 1;
    running = running.then(pass).finally(() => {
      queued -= 1;
    });
    return running;
  };

  if (!mailer) {
    logger.info('SMTP_URL is unset: notifications stay in the outbox (GET /api/v1/notifications lists them)');
  }
  const timer = setInterval(() => {
    if (queued === 0) void deliver();
  }, deps.config.MAIL_POLL_INTERVAL_MS);
  timer.unref();
  void deliver();
  return {
    deliver,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      mailer?.close();
    },
  };
}
