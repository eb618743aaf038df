/**
 * Mail: the `Mailer` the worker delivers the notification outbox with. `SmtpMailer` sends through
 * any SMTP server with nodemailer (`SMTP_URL`); without `SMTP_URL` there is no mailer and the
 * outbox keeps its rows (DESIGN §9). A failure is a `MailDeliveryError` whose message is safe to
 * show the tenant: the receiving server's answer about the message, never our SMTP host or login.
 */
import type { Transporter } from 'nodemailer';
import type { Config } from '../config';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /**
   * stable per notification (its dedupe key): the Message-ID is made from it, so a resend after a
   * crash between sending and recording it carries the same Message-ID as the first copy
   */
  key: string;
}

export interface Mailer {
  send(msg: MailMessage): Promise<{ messageId: string }>;
  /** closes open connections; sending after it is an error */
  close(): void;
}

/** Why a message was not accepted: what the delivery records and whether a retry may help. */
export type MailFailureKind =
  | 'REJECTED' // the server refused the recipient, the sender or the message (5xx/4xx answer)
  | 'UNREACHABLE' // no connection, TLS or DNS failure
  | 'TIMEOUT'
  | 'AUTH' // the server refused our login
  | 'PROTOCOL' // the server answered something we could not understand
  | 'UNKNOWN';

export class MailDeliveryError extends Error {
  constructor(
    readonly kind: MailFailureKind,
    message: string,
    readonly responseCode?: number,
  ) {
    super(message);
    this.name = 'MailDeliveryError';
  }
}

/** A sender as MAIL_FROM gives it: `Name <address>` or `address`. */
export interface MailFrom {
  /** the header value as given */
  header: string;
  address: string;
  /** right of the `@`: also the right side of our Message-IDs */
  domain: string;
}

const ADDRESS =
  /^[^\s<>@"]+@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)$/;

/** Parses MAIL_FROM; throws an Error naming what is wrong. */
export function parseMailFrom(value: string): MailFrom {
  const trimmed = value.trim();
  const named = /^(.*?)\s*<([^<>]+)>$/.exec(trimmed);
  const address = named ? (named[2] ?? '') : trimmed;
  const match = ADDRESS.exec(address);
  if (!match?.[1])
    throw new Error('must be an address like billing@example.com or Name <billing@example.com>');
  if (named && /[<>\r\n]/.test(named[1] ?? ''))
    throw new Error('the display name must not contain <, > or line breaks');
  return { header: trimmed, address, domain: match[1].toLowerCase() };
}

/** Characters a Message-ID's left side may hold as they are (RFC 5322 atext, less `=`, our escape). */
const ATEXT = /[A-Za-z0-9!#$%&'*+\-/?^_`{|}~]/;

/**
 * `<key@domain>` with every character of `key` that is not atext escaped as `=XX` (dots kept where a
 * dot-atom allows them): the same key always gives the same Message-ID, and two keys never share one.
 */
export function messageIdFor(key: string, domain: string): string {
  const bytes = [...Buffer.from(key, 'utf8')];
  const left = bytes
    .map((byte, i) => {
      const c = String.fromCharCode(byte);
      if (byte < 0x80 && ATEXT.test(c)) return c;
      const dotAllowed =
        c === '.' && i > 0 && i < bytes.length - 1 && bytes[i - 1] !== 0x2e && bytes[i + 1] !== 0x2e;
      return dotAllowed ? c : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  return `<${left}@${domain}>`;
}

/** A nodemailer failure in words safe to store and show: the kind, and the server's answer about the message. */
export function mailFailure(err: unknown): MailDeliveryError {
  if (err instanceof MailDeliveryError) return err;
  const e = (err ?? {}) as { code?: unknown; responseCode?: unknown; response?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  // The answer is the receiving server's verdict on this message: useful to the tenant, and it
  // names nothing of ours. Control characters are dropped, the length bounded.
  const answer =
    typeof e.response === 'string'
      ? e.response
          .replace(/\p{Cc}+/gu, ' ')
          .trim()
          .slice(0, 300)
      : undefined;
  switch (code) {
    case 'EENVELOPE':
    case 'EMESSAGE':
      return new MailDeliveryError(
        'REJECTED',
        `the mail server refused the message${answer ? `: ${answer}` : ''}`,
        responseCode,
      );
    case 'EAUTH':
    case 'ENOAUTH':
      return new MailDeliveryError('AUTH', 'the mail server refused our login', responseCode);
    case 'ETIMEDOUT':
      return new MailDeliveryError('TIMEOUT', 'the mail server did not answer in time');
    case 'ECONNECTION':
    case 'ESOCKET':
    case 'EDNS':
    case 'ETLS':
    case 'EREQUIRETLS':
    case 'EPROXY':
      return new MailDeliveryError('UNREACHABLE', 'the mail server could not be reached');
    case 'EPROTOCOL':
      return new MailDeliveryError('PROTOCOL', 'the mail server answered unexpectedly', responseCode);
    default:
      return new MailDeliveryError('UNKNOWN', 'the message could not be sent', responseCode);
  }
}

export interface SmtpMailerOptions {
  /** smtp://user:pass@host:587 (STARTTLS when offered) or smtps://… (TLS from the start) */
  url: string;
  /** MAIL_FROM */
  from: string;
  /** bounds each connection, greeting and silence, so a stalled server cannot hold a delivery */
  timeoutMs?: number;
}

/**
 * Sends with nodemailer over SMTP, one connection per message. nodemailer is loaded with the first
 * mailer, so the processes that never send (the API) do not carry it.
 */
export class SmtpMailer implements Mailer {
  private readonly transport: Promise<Transporter>;
  private readonly from: MailFrom;

  constructor(opts: SmtpMailerOptions) {
    this.from = parseMailFrom(opts.from);
    const timeout = opts.timeoutMs ?? 30_000;
    this.transport = import('nodemailer').then(({ default: nodemailer }) =>
      nodemailer.createTransport({
        url: opts.url,
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
      }),
    );
    // a transport that cannot be made fails each send, where the failure is recorded; never the process
    this.transport.catch(() => undefined);
  }

  async send(msg: MailMessage): Promise<{ messageId: string }> {
    const messageId = messageIdFor(msg.key, this.from.domain);
    const transport = await this.transport;
    try {
      await transport.sendMail({
        from: this.from.header,
        to: msg.to,
        subject: msg.subject,
        text: msg.text,
        messageId,
      });
    } catch (err) {
      throw mailFailure(err);
    }
    return { messageId };
  }

  close(): void {
    void this.transport.then((transport) => transport.close());
  }
}

/** The configured mailer, or null without SMTP_URL: notifications then stay in the outbox. */
export function createMailer(config: Pick<Config, 'SMTP_URL' | 'MAIL_FROM'>): Mailer | null {
  if (!config.SMTP_URL) return null;
  if (!config.MAIL_FROM) throw new Error('MAIL_FROM is required with SMTP_URL');
  return new SmtpMailer({ url: config.SMTP_URL, from: config.MAIL_FROM });
}
