/** The mail provider's pure parts: Message-IDs from dedupe keys, MAIL_FROM, failure wording, backoff, configuration. */
import { ConfigError, parseConfig } from '../../src/config';
import { createMailer, mailFailure, messageIdFor, parseMailFrom, SmtpMailer } from '../../src/providers/mail';
import { DEFAULT_DELIVERY_POLICY, retryDelayMs } from '../../src/services/notifications';

describe('messageIdFor', () => {
  it.each([
    ['tenant.welcome:ten_01jd', '<tenant.welcome=3Aten_01jd@example.com>'],
    ['dunning:inv_1:attempt-2', '<dunning=3Ainv_1=3Aattempt-2@example.com>'],
    ['trial-reminder:sub_1:7', '<trial-reminder=3Asub_1=3A7@example.com>'],
    // dots only where a dot-atom allows them; `=` (the escape itself), spaces, brackets and non-ASCII escaped
    ['.a..b.', '<=2Ea=2E=2Eb=2E@example.com>'],
    ['a=b <c>@d', '<a=3Db=20=3Cc=3E=40d@example.com>'],
    ['é', '<=C3=A9@example.com>'],
  ])('%s → %s', (key, id) => {
    expect(messageIdFor(key, 'example.com')).toBe(id);
  });

  it('is the same for the same key and differs for different keys', () => {
    const keys = ['a:b', 'a.b', 'a=3Ab', 'a b', 'a_b', 'a-b', 'ab'];
    const ids = keys.map((k) => messageIdFor(k, 'example.com'));
    expect(new Set(ids).size).toBe(keys.length);
    expect(messageIdFor('a:b', 'example.com')).toBe(ids[0]);
  });

  it('holds only characters a msg-id may', () => {
    const id = messageIdFor('x:y/z?#{}|~!$%&\'*+^`"(),;[\\]\u0000\n', 'mail.example.com');
    expect(id).toMatch(/^<[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+@mail\.example\.com>$/);
  });
});

describe('parseMailFrom', () => {
  it.each([
    ['billing@example.com', 'billing@example.com', 'example.com'],
    ['Acme Billing <billing@Mail.Example.com>', 'billing@Mail.Example.com', 'mail.example.com'],
    ['  <noreply@example.org>  ', 'noreply@example.org', 'example.org'],
  ])('%s', (value, address, domain) => {
    expect(parseMailFrom(value)).toMatchObject({ address, domain });
  });

  it.each([
    '',
    'billing',
    'billing@',
    '@example.com',
    'a b@example.com',
    'Name <billing@exa mple.com>',
    'x@-bad-.com',
  ])('refuses %p', (value) => {
    expect(() => parseMailFrom(value)).toThrow();
  });
});

describe('mailFailure', () => {
  const nodemailerError = (code: string, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(`${code} from 10.1.2.3:587 as user admin`), { code, ...extra });

  it('keeps the receiving server’s answer about the message, and its code', () => {
    const err = mailFailure(
      nodemailerError('EENVELOPE', { responseCode: 550, response: '550 5.1.1 Mailbox unavailable\r\n' }),
    );
    expect(err.kind).toBe('REJECTED');
    expect(err.responseCode).toBe(550);
    expect(err.message).toContain('550 5.1.1 Mailbox unavailable');
    expect(err.message).not.toMatch(/\r|\n/);
  });

  it.each([
    ['EAUTH', 'AUTH'],
    ['ECONNECTION', 'UNREACHABLE'],
    ['EDNS', 'UNREACHABLE'],
    ['ETLS', 'UNREACHABLE'],
    ['ETIMEDOUT', 'TIMEOUT'],
    ['EPROTOCOL', 'PROTOCOL'],
    ['ESOMETHING', 'UNKNOWN'],
  ])('%s is %s and names nothing of ours (host, user)', (code, kind) => {
    const err = mailFailure(nodemailerError(code, { response: '535 bad login for admin' }));
    expect(err.kind).toBe(kind);
    expect(err.message).not.toMatch(/10\.1\.2\.3|admin/);
  });

  it('treats anything thrown as UNKNOWN', () => {
    expect(mailFailure('boom').kind).toBe('UNKNOWN');
    expect(mailFailure(undefined).kind).toBe('UNKNOWN');
  });
});

describe('retryDelayMs', () => {
  const policy = { ...DEFAULT_DELIVERY_POLICY, retryInitialMs: 1000, retryMaxMs: 10_000 };
  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [4, 8000],
    [5, 10_000],
    [40, 10_000],
  ])('after %i failed attempts waits %i ms', (attempts, ms) => {
    expect(retryDelayMs(attempts, policy)).toBe(ms);
  });
});

describe('mail configuration', () => {
  const configError = (env: Record<string, string>) => {
    try {
      parseConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('the configuration was accepted');
  };

  it('is optional: without SMTP_URL there is no mailer', () => {
    const config = parseConfig({});
    expect(config.SMTP_URL).toBeUndefined();
    expect(createMailer(config)).toBeNull();
    expect(config).toMatchObject({
      MAIL_POLL_INTERVAL_MS: 10_000,
      MAIL_MAX_ATTEMPTS: 8,
      MAIL_RETRY_INITIAL_MS: 60_000,
    });
  });

  it('makes an SMTP mailer from SMTP_URL and MAIL_FROM', () => {
    const config = parseConfig({
      SMTP_URL: 'smtp://user:p%40ss@mail.example.com:587',
      MAIL_FROM: 'Acme <billing@example.com>',
    });
    const mailer = createMailer(config);
    expect(mailer).toBeInstanceOf(SmtpMailer);
    mailer?.close();
  });

  it('requires MAIL_FROM with SMTP_URL', () => {
    const err = configError({ SMTP_URL: 'smtp://mail.example.com:25' });
    expect(err.variable).toBe('MAIL_FROM');
  });

  it('refuses a malformed MAIL_FROM', () => {
    expect(configError({ MAIL_FROM: 'billing' }).variable).toBe('MAIL_FROM');
  });

  it('refuses an SMTP_URL that is not smtp(s):// without echoing it (it holds a password)', () => {
    for (const url of ['http://user:hunter2@mail.example.com', 'smtp://', 'user:hunter2@mail.example.com']) {
      const err = configError({ SMTP_URL: url, MAIL_FROM: 'billing@example.com' });
      expect(err.variable).toBe('SMTP_URL');
      expect(err.message).not.toContain('hunter2');
    }
  });
});
