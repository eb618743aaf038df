/**
 * Password reset by email: asking answers 202 with the same body whether the account exists or
 * not (no enumeration), after comparable work; the single-use 30-minute token goes only into the
 * outbox; confirming sets the password, ends every session, clears a lockout and is recorded; a
 * used or expired token is 400 and changes nothing.
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import type { Route } from '../../src/api/http/route';
import { rateLimitOf } from '../../src/api/middleware/rate-limit';
import { authSettings } from '../../src/api/routes/auth';
import { systemEm } from '../../src/db/orm';
import { createUser } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';

let stack: TestStack;
let tenant: ActiveTenant;
const http = () => request(stack.app);
const bearer = (token: string) => `Bearer ${token}`;
const OLD_PASSWORD = 'the old passphrase';
const NEW_PASSWORD = 'a brand new passphrase';
const RESET_TOKEN = /ppw_[A-Za-z0-9_-]{43}/;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

beforeAll(async () => {
  stack = await startTestStack();
  tenant = await createActiveTenant(stack, 'pw-reset');
});
afterAll(async () => {
  await stack?.close();
});

let users = 0;
async function newUser(): Promise<{ id: string; email: string }> {
  users += 1;
  const email = `reset${users}@pw-reset.test`;
  const { user } = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email,
    password: OLD_PASSWORD,
    membership: { tenantId: tenant.id, role: 'ADMIN' },
  });
  return { id: user.id, email };
}

const ask = (email: string) => http().post('/api/v1/auth/password-reset').send({ email });
const confirm = (body: Record<string, unknown>) =>
  http().post('/api/v1/auth/password-reset/confirm').send(body);
const login = (email: string, password: string) =>
  http().post('/api/v1/auth/login').send({ email, password });

async function resetMails(email: string): Promise<string[]> {
  const rows = await stack.db.query<{ body: string }>(
    `select body from notifications where recipient = $1 and template = 'account.password_reset' order by id`,
    [email],
  );
  return rows.map((r) => r.body);
}

/** Asks for a reset and reads the token from the mail it wrote. */
async function resetToken(email: string): Promise<string> {
  expect((await ask(email)).status).toBe(202);
  const mails = await resetMails(email);
  const token = RESET_TOKEN.exec(mails[mails.length - 1] ?? '')?.[0];
  if (!token) throw new Error(`no reset mail to ${email}`);
  return token;
}

async function passwordHashOf(userId: string): Promise<string> {
  const [row] = await stack.db.query<{ password_hash: string }>(
    'select password_hash from users where id = $1',
    [userId],
  );
  return row?.password_hash ?? '';
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

describe('POST /api/v1/auth/password-reset', () => {
  it('answers 202 with the same body for an account and for an unknown email, mailing only the account', async () => {
    const user = await newUser();
    const known = await ask(user.email.toUpperCase());
    const unknown = await ask('nobody@pw-reset.test');
    expect(known.status).toBe(202);
    expect(unknown.status).toBe(202);
    expect(unknown.body).toEqual(known.body);
    expect(known.body).toEqual({ status: 'accepted', detail: expect.any(String) });
    expect(known.headers['content-type']).toBe(unknown.headers['content-type']);

    const mails = await resetMails(user.email);
    expect(mails).toHaveLength(1);
    const token = RESET_TOKEN.exec(mails[0] ?? '')?.[0] as string;
    expect(token).toBeDefined();
    expect(await resetMails('nobody@pw-reset.test')).toEqual([]);
    // stored as its hash only, expiring in 30 minutes
    const [row] = await stack.db.query<{
      token_hash: string;
      created_at: Date;
      expires_at: Date;
      used_at: Date | null;
    }>('select token_hash, created_at, expires_at, used_at from password_reset_tokens where user_id = $1', [
      user.id,
    ]);
    expect(row?.token_hash).toBe(sha256(token));
    expect(row?.used_at).toBeNull();
    expect(((row?.expires_at.getTime() ?? 0) - (row?.created_at.getTime() ?? 0)) / 60_000).toBeCloseTo(30, 0);
    // not in an answer, the API's outbox, or a log line
    const outbox = await http().get('/api/v1/notifications').set('Authorization', bearer(tenant.token));
    expect(outbox.text).toContain('ppw_[redacted]');
    expect(outbox.text).not.toContain(token);
    expect(JSON.stringify(stack.logLines)).not.toContain(token);

    // both asks are security events; the unknown email only as a hash
    const events = await stack.db.query<{ user_id: string | null; details: Record<string, unknown> }>(
      `select user_id, details from security_events where kind = 'PASSWORD_RESET_REQUESTED' order by id`,
    );
    expect(events).toEqual([
      { user_id: user.id, details: { outcome: 'mailed', open_resets: 0 } },
      {
        user_id: null,
        details: {
          outcome: 'unknown_email',
          email_sha256: expect.any(String),
          email_domain: 'pw-reset.test',
        },
      },
    ]);
    expect(JSON.stringify(events)).not.toContain('nobody@');
  });

  it('takes comparable time for an account and for an unknown email', async () => {
    const user = await newUser();
    const known: number[] = [];
    const unknown: number[] = [];
    // interleaved, so load on the machine weighs on both alike; the per-account cap does not matter here
    for (let i = 0; i < 6; i++) {
      let start = performance.now();
      expect((await ask(user.email)).status).toBe(202);
      known.push(performance.now() - start);
      start = performance.now();
      expect((await ask(`nobody${i}@pw-reset.test`)).status).toBe(202);
      unknown.push(performance.now() - start);
    }
    expect(Math.abs(median(known) - median(unknown))).toBeLessThan(100);
  });

  it('mails at most three open resets of one account; further asks answer the same and mail nothing', async () => {
    const user = await newUser();
    for (let i = 0; i < 5; i++) {
      const res = await ask(user.email);
      expect(res.status).toBe(202);
    }
    expect(await resetMails(user.email)).toHaveLength(3);
    const [row] = await stack.db.query<{ details: Record<string, unknown> }>(
      `select details from security_events where kind = 'PASSWORD_RESET_REQUESTED' and user_id = $1 order by id desc limit 1`,
      [user.id],
    );
    expect(row?.details).toEqual({ outcome: 'throttled', open_resets: 3 });
  });

  it('refuses a body that is no email (400), without telling anything about accounts', async () => {
    expectProblem(await ask('not an email'), 400, 'validation-failed');
    expectProblem(await http().post('/api/v1/auth/password-reset').send({}), 400, 'validation-failed');
  });

  it('spends the password-reset budget; confirming and accepting invitations spend the sign-in one', () => {
    const routes = stack.app.locals.routes as Route[];
    const limitOf = (operationId: string) =>
      rateLimitOf(routes.find((r) => r.operationId === operationId) as Route);
    expect(limitOf('requestPasswordReset')).toBe('password-reset');
    expect(limitOf('confirmPasswordReset')).toBe('auth');
    expect(limitOf('acceptInvitation')).toBe('auth');
  });
});

describe('POST /api/v1/auth/password-reset/confirm', () => {
  it('sets the password, ends every session, and works once', async () => {
    const user = await newUser();
    const first = await login(user.email, OLD_PASSWORD);
    const second = await login(user.email, OLD_PASSWORD);
    expect([first.status, second.status]).toEqual([200, 200]);
    const token = await resetToken(user.email);

    const res = await confirm({ token, password: NEW_PASSWORD });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ revoked_sessions: 2 });
    expect(res.text).not.toContain(token);
    // every session has ended: access and refresh tokens alike
    expectProblem(
      await http()
        .get('/api/v1/auth/sessions')
        .set('Authorization', bearer(first.body.access_token as string)),
      401,
      'unauthenticated',
    );
    expect(
      (await http().post('/api/v1/auth/refresh').send({ refresh_token: second.body.refresh_token })).status,
    ).toBe(401);
    expect((await login(user.email, OLD_PASSWORD)).status).toBe(401);
    expect((await login(user.email, NEW_PASSWORD)).status).toBe(200);
    expect(await passwordHashOf(user.id)).toMatch(/^\$argon2id\$/);

    // single use: the same token again is refused and changes nothing
    const hash = await passwordHashOf(user.id);
    const again = await confirm({ token, password: 'yet another passphrase' });
    expectProblem(again, 400, 'validation-failed');
    expect(again.body.errors).toEqual([{ field: 'token', message: expect.any(String) }]);
    expect(await passwordHashOf(user.id)).toBe(hash);

    const [event] = await stack.db.query<{ severity: string; details: Record<string, unknown> }>(
      `select severity, details from security_events where kind = 'PASSWORD_RESET' and user_id = $1`,
      [user.id],
    );
    expect(event).toEqual({
      severity: 'MEDIUM',
      details: { reset_id: expect.stringMatching(/^pwr_/), revoked_sessions: 2 },
    });
    expect(JSON.stringify(stack.logLines)).not.toContain(token);
  });

  it('uses up the user’s other open resets with the one confirmed', async () => {
    const user = await newUser();
    const older = await resetToken(user.email);
    const newer = await resetToken(user.email);
    expect((await confirm({ token: newer, password: NEW_PASSWORD })).status).toBe(200);
    expectProblem(
      await confirm({ token: older, password: 'yet another passphrase' }),
      400,
      'validation-failed',
    );
    expect((await login(user.email, NEW_PASSWORD)).status).toBe(200);
  });

  it('refuses an expired token and changes nothing', async () => {
    const user = await newUser();
    const token = await resetToken(user.email);
    await stack.db.query(
      `update password_reset_tokens set expires_at = now() - interval '1 second' where user_id = $1`,
      [user.id],
    );
    const hash = await passwordHashOf(user.id);
    expectProblem(await confirm({ token, password: NEW_PASSWORD }), 400, 'validation-failed');
    expect(await passwordHashOf(user.id)).toBe(hash);
    expect((await login(user.email, OLD_PASSWORD)).status).toBe(200);
  });

  it('refuses a password that breaks the rules and leaves the token usable', async () => {
    const user = await newUser();
    const token = await resetToken(user.email);
    const short = await confirm({ token, password: 'short' });
    expectProblem(short, 400, 'validation-failed');
    expect(short.body.errors).toEqual([{ field: 'password', message: expect.stringContaining('12') }]);
    expectProblem(await confirm({ token, password: 'x'.repeat(129) }), 400, 'validation-failed');
    expect((await confirm({ token, password: NEW_PASSWORD })).status).toBe(200);
  });

  it('clears a lockout', async () => {
    const user = await newUser();
    await stack.db.query(
      `update users set locked_until = now() + interval '10 minutes', failed_login_count = 4 where id = $1`,
      [user.id],
    );
    expect((await login(user.email, OLD_PASSWORD)).status).toBe(401);
    const token = await resetToken(user.email);
    expect((await confirm({ token, password: NEW_PASSWORD })).status).toBe(200);
    const [row] = await stack.db.query<{ locked_until: Date | null; failed_login_count: number }>(
      'select locked_until, failed_login_count from users where id = $1',
      [user.id],
    );
    expect(row).toEqual({ locked_until: null, failed_login_count: 0 });
    expect((await login(user.email, NEW_PASSWORD)).status).toBe(200);
  });

  it('refuses tokens that are malformed, of another kind or never issued', async () => {
    for (const token of [
      'ppw_short',
      `ppw_${'A'.repeat(43)}`,
      `ppi_${'A'.repeat(43)}`,
      `ppr_${'A'.repeat(43)}`,
    ]) {
      expectProblem(await confirm({ token, password: NEW_PASSWORD }), 400, 'validation-failed');
    }
    expectProblem(await confirm({ token: `ppw_${'A'.repeat(43)}` }), 400, 'validation-failed');
  });
});
