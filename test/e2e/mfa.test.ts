/**
 * TOTP MFA through HTTP: setup (pending, secret sealed at rest), enabling with a code (ten
 * recovery codes, stored hashed), sign-in needing a code (401 `mfa-required` without one, not
 * counted; a wrong or replayed code counts toward the lockout), recovery codes used once,
 * regenerated and disabled with a code, and the security events of each. Codes are computed in
 * the test from the secret with otpauth, as an authenticator app would.
 */
import { createHash } from 'node:crypto';
import { Secret, TOTP, URI } from 'otpauth';
import request from 'supertest';
import { authSettings } from '../../src/api/routes/auth';
import { systemEm } from '../../src/db/orm';
import { createUser } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';

let stack: TestStack;
let tenant: ActiveTenant;

const PASSWORD = 'correct horse battery staple';
/** a small lockout, so that counting wrong codes shows */
const LOCKOUT_THRESHOLD = 4;
const http = () => request(stack.app);
const bearer = (token: string) => `Bearer ${token}`;

beforeAll(async () => {
  stack = await startTestStack({ LOGIN_LOCKOUT_THRESHOLD: String(LOCKOUT_THRESHOLD) });
  tenant = await createActiveTenant(stack, 'mfa-a');
});
afterAll(async () => {
  await stack?.close();
});

interface TestUser {
  id: string;
  email: string;
}

let users = 0;
async function newUser(): Promise<TestUser> {
  users += 1;
  const email = `mfa-user${users}@mfa.test`;
  const { user } = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email,
    password: PASSWORD,
    membership: { tenantId: tenant.id, role: 'OWNER' },
  });
  return { id: user.id, email };
}

const login = (user: TestUser, extra: Record<string, unknown> = {}) =>
  http()
    .post('/api/v1/auth/login')
    .send({ email: user.email, password: PASSWORD, ...extra });

async function signIn(user: TestUser, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await login(user, extra);
  expect(res.status).toBe(200);
  return res.body.access_token as string;
}

/** What an authenticator app shows `offset` time steps from now. */
const codeAt = (secret: string, offset = 0) =>
  new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: Date.now() + offset * 30_000 });

const post = (path: string, token: string, body?: Record<string, unknown>) => {
  const req = http().post(path).set('Authorization', bearer(token));
  return body ? req.send(body) : req;
};

async function userRow(id: string): Promise<Record<string, unknown>> {
  const [row] = await stack.db.query<Record<string, unknown>>('select * from users where id = $1', [id]);
  return row as Record<string, unknown>;
}

async function events(userId: string, kind: string): Promise<Record<string, unknown>[]> {
  return stack.db.query<Record<string, unknown>>(
    'select * from security_events where user_id = $1 and kind = $2 order by id',
    [userId, kind],
  );
}

const sessionCount = async (userId: string) =>
  (
    await stack.db.query<{ n: number }>('select count(*)::int as n from sessions where user_id = $1', [
      userId,
    ])
  )[0]?.n;

/**
 * A user with MFA enabled through the routes, with the code of the previous time step (accepted
 * for clock drift): the current and next steps' codes are still unused, for the test to spend.
 */
async function userWithMfa(): Promise<{
  user: TestUser;
  token: string;
  secret: string;
  recoveryCodes: string[];
}> {
  const user = await newUser();
  const token = await signIn(user);
  const setup = await post('/api/v1/auth/mfa/totp/setup', token);
  expect(setup.status).toBe(200);
  const secret = setup.body.secret as string;
  const enabled = await post('/api/v1/auth/mfa/totp/enable', token, { code: codeAt(secret, -1) });
  expect(enabled.status).toBe(200);
  return { user, token, secret, recoveryCodes: enabled.body.recovery_codes as string[] };
}

describe('TOTP setup and enabling', () => {
  it('sets up a pending secret (sealed at rest), enables it with a code, and hands out ten hashed recovery codes once', async () => {
    const user = await newUser();
    const token = await signIn(user);

    const setup = await post('/api/v1/auth/mfa/totp/setup', token);
    expect(setup.status).toBe(200);
    expect(setup.body).toEqual({
      secret: expect.stringMatching(/^[A-Z2-7]{32}$/),
      otpauth_uri: expect.stringMatching(/^otpauth:\/\/totp\//),
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      status: 'pending',
    });
    const secret = setup.body.secret as string;
    const parsed = URI.parse(setup.body.otpauth_uri as string) as TOTP;
    expect(parsed.secret.base32).toBe(secret);
    expect(parsed.label).toBe(user.email);
    expect(parsed.issuer).toBe('Podplane');

    // pending: stored, but not in force — the password alone still signs in
    let row = await userRow(user.id);
    expect(row.mfa_enabled_at).toBeNull();
    expect(row.mfa_secret).toMatch(/^v1\./);
    expect(JSON.stringify(row)).not.toContain(secret);
    expect((await login(user)).status).toBe(200);

    // a wrong code changes nothing and is recorded
    const wrongCode = String((Number(codeAt(secret)) + 1) % 1_000_000).padStart(6, '0');
    const wrong = await post('/api/v1/auth/mfa/totp/enable', token, { code: wrongCode });
    expectProblem(wrong, 403, 'forbidden');
    expect((await userRow(user.id)).mfa_enabled_at).toBeNull();
    expect(await events(user.id, 'MFA_FAILED')).toEqual([
      expect.objectContaining({ details: expect.objectContaining({ action: 'enable' }) }),
    ]);

    const enabled = await post('/api/v1/auth/mfa/totp/enable', token, { code: codeAt(secret) });
    expect(enabled.status).toBe(200);
    const codes = enabled.body.recovery_codes as string[];
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);

    row = await userRow(user.id);
    expect(row.mfa_enabled_at).not.toBeNull();
    const stored = row.mfa_recovery_codes as string[];
    expect(stored).toHaveLength(10);
    // only hashes are stored
    expect(stored.sort()).toEqual(
      codes.map((c) => createHash('sha256').update(c.replace(/-/g, '')).digest('hex')).sort(),
    );
    for (const code of codes) expect(JSON.stringify(row)).not.toContain(code.replace(/-/g, ''));
    expect(await events(user.id, 'MFA_ENABLED')).toEqual([
      expect.objectContaining({ tenant_id: tenant.id, severity: 'MEDIUM' }),
    ]);
    // the audit trail shows that MFA changed, never the sealed secret or the recovery-code hashes
    const audited = await stack.db.query<{ before: unknown; after: unknown }>(
      "select before, after from audit_events where entity_type = 'users' and entity_id = $1",
      [user.id],
    );
    expect(audited.length).toBeGreaterThan(0);
    const trail = JSON.stringify(audited);
    expect(trail).toContain('mfa_enabled_at');
    expect(trail).not.toContain(row.mfa_secret as string);
    for (const hash of stored) expect(trail).not.toContain(hash);

    // the profile says so; setting up again, or enabling twice, is refused
    const profile = await http().get('/api/v1/security/me/profile').set('Authorization', bearer(token));
    expect(profile.body.mfa_enabled).toBe(true);
    expectProblem(await post('/api/v1/auth/mfa/totp/setup', token), 409, 'conflict');
    expectProblem(
      await post('/api/v1/auth/mfa/totp/enable', token, { code: codeAt(secret, 1) }),
      409,
      'conflict',
    );

    // the tenant's administrators see the event
    const listed = await http()
      .get('/api/v1/security/events')
      .query({ kind: 'MFA_ENABLED' })
      .set('Authorization', bearer(tenant.token));
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((e: { user_id: string }) => e.user_id)).toContain(user.id);
  });

  it('refuses enabling before setup, a malformed code, and anyone but a signed-in user', async () => {
    const user = await newUser();
    const token = await signIn(user);
    expectProblem(await post('/api/v1/auth/mfa/totp/enable', token, { code: '123456' }), 409, 'conflict');
    await post('/api/v1/auth/mfa/totp/setup', token).expect(200);
    const malformed = await post('/api/v1/auth/mfa/totp/enable', token, { code: '12345a' });
    expectProblem(malformed, 400, 'validation-failed');
    expect(malformed.body.errors.map((e: { field: string }) => e.field)).toEqual(['code']);
    expectProblem(await http().post('/api/v1/auth/mfa/totp/setup'), 401, 'unauthenticated');
    // an API token holds no `account:self`
    expectProblem(await post('/api/v1/auth/mfa/totp/setup', tenant.token), 403, 'forbidden');
  });

  it('a second setup before enabling replaces the pending secret: the first one’s codes no longer enable', async () => {
    const user = await newUser();
    const token = await signIn(user);
    const first = (await post('/api/v1/auth/mfa/totp/setup', token)).body.secret as string;
    const second = (await post('/api/v1/auth/mfa/totp/setup', token)).body.secret as string;
    expect(second).not.toBe(first);
    const code = codeAt(first);
    if (code !== codeAt(second) && code !== codeAt(second, -1) && code !== codeAt(second, 1)) {
      expectProblem(await post('/api/v1/auth/mfa/totp/enable', token, { code }), 403, 'forbidden');
    }
    expect((await post('/api/v1/auth/mfa/totp/enable', token, { code: codeAt(second) })).status).toBe(200);
  });
});

describe('signing in with MFA', () => {
  it('needs a code: without one 401 mfa-required, no session and nothing counted', async () => {
    const { user } = await userWithMfa();
    const before = await sessionCount(user.id);
    const res = await login(user);
    expectProblem(res, 401, 'mfa-required');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="podplane"');
    expect(res.body.access_token).toBeUndefined();
    expect(await sessionCount(user.id)).toBe(before);
    expect((await userRow(user.id)).failed_login_count).toBe(0);
    expect(await events(user.id, 'MFA_FAILED')).toEqual([]);
    // a wrong password with MFA on is still the plain 401: the code is asked only of the right password
    const wrongPassword = await http()
      .post('/api/v1/auth/login')
      .send({ email: user.email, password: 'not the password at all' });
    expectProblem(wrongPassword, 401, 'unauthenticated');
  });

  it('accepts a current code once: the same code again is refused (replay) and counts as a failure', async () => {
    const { user, secret } = await userWithMfa();
    const code = codeAt(secret);
    const ok = await login(user, { totp_code: code });
    expect(ok.status).toBe(200);
    expect(ok.body.access_token).toEqual(expect.any(String));
    expect((await userRow(user.id)).failed_login_count).toBe(0);

    const replay = await login(user, { totp_code: code });
    expectProblem(replay, 401, 'unauthenticated');
    expect((await userRow(user.id)).failed_login_count).toBe(1);
    expect(await events(user.id, 'MFA_FAILED')).toEqual([
      expect.objectContaining({
        tenant_id: tenant.id,
        details: expect.objectContaining({ action: 'login', factor: 'totp', consecutive_failures: 1 }),
      }),
    ]);
    // the code enabling MFA (the previous step) is older than one accepted: refused too
    expectProblem(await login(user, { totp_code: codeAt(secret, -1) }), 401, 'unauthenticated');
    // the next step's code (a clock running ahead) is still good, and resets the count
    expect((await login(user, { totp_code: codeAt(secret, 1) })).status).toBe(200);
    expect((await userRow(user.id)).failed_login_count).toBe(0);
  });

  it('counts wrong codes toward the lockout like wrong passwords: at the threshold the account locks', async () => {
    const { user, secret } = await userWithMfa();
    const lastStep = (await userRow(user.id)).mfa_last_step;
    const good = codeAt(secret);
    const wrong = String((Number(good) + 500_000) % 1_000_000).padStart(6, '0');
    for (let i = 1; i < LOCKOUT_THRESHOLD; i += 1) {
      expectProblem(await login(user, { totp_code: wrong }), 401, 'unauthenticated');
      expect((await userRow(user.id)).failed_login_count).toBe(i);
    }
    expectProblem(await login(user, { totp_code: wrong }), 401, 'unauthenticated');
    const row = await userRow(user.id);
    expect(row.locked_until).not.toBeNull();
    expect(await events(user.id, 'LOGIN_LOCKED')).toHaveLength(1);
    const failures = await events(user.id, 'MFA_FAILED');
    expect(failures).toHaveLength(LOCKOUT_THRESHOLD);
    expect(failures.at(-1)?.severity).toBe('HIGH');
    // locked: even the right password and an unused code are refused, and the code is not spent
    expectProblem(await login(user, { totp_code: good }), 401, 'unauthenticated');
    expect((await userRow(user.id)).mfa_last_step).toBe(lastStep);
  });

  it('takes a recovery code once, in any case and with or without dashes, and records it', async () => {
    const { user, recoveryCodes } = await userWithMfa();
    const code = recoveryCodes[3] as string;
    const ok = await login(user, { recovery_code: code.toUpperCase().replace(/-/g, ' ') });
    expect(ok.status).toBe(200);
    expect((await userRow(user.id)).mfa_recovery_codes).toHaveLength(9);
    expect(await events(user.id, 'MFA_RECOVERY_CODE_USED')).toEqual([
      expect.objectContaining({ details: { action: 'login', remaining: 9 } }),
    ]);
    const again = await login(user, { recovery_code: code });
    expectProblem(again, 401, 'unauthenticated');
    expect((await userRow(user.id)).failed_login_count).toBe(1);
    // another one still works
    expect((await login(user, { recovery_code: recoveryCodes[4] as string })).status).toBe(200);
  });

  it('refuses both factors at once and a malformed code as 400, before any check', async () => {
    const { user, secret, recoveryCodes } = await userWithMfa();
    const both = await login(user, { totp_code: codeAt(secret), recovery_code: recoveryCodes[0] });
    expectProblem(both, 400, 'validation-failed');
    expectProblem(await login(user, { totp_code: '12 34 56' }), 400, 'validation-failed');
    expect((await userRow(user.id)).failed_login_count).toBe(0);
  });
});

describe('managing MFA', () => {
  it('regenerates recovery codes with a code: the old ones stop working, the new ones work', async () => {
    const { user, token, secret, recoveryCodes } = await userWithMfa();
    expectProblem(await post('/api/v1/auth/mfa/recovery-codes', token, {}), 400, 'validation-failed');
    const wrong = await post('/api/v1/auth/mfa/recovery-codes', token, {
      recovery_code: 'aaaa-bbbb-cccc-dddd',
    });
    expectProblem(wrong, 403, 'forbidden');
    const res = await post('/api/v1/auth/mfa/recovery-codes', token, { code: codeAt(secret) });
    expect(res.status).toBe(200);
    const fresh = res.body.recovery_codes as string[];
    expect(fresh).toHaveLength(10);
    expect(fresh.filter((c) => recoveryCodes.includes(c))).toEqual([]);
    expect(await events(user.id, 'MFA_RECOVERY_CODES_REGENERATED')).toHaveLength(1);
    expectProblem(await login(user, { recovery_code: recoveryCodes[0] }), 401, 'unauthenticated');
    expect((await login(user, { recovery_code: fresh[0] })).status).toBe(200);
  });

  it('disables MFA only with a code; then the password alone signs in again', async () => {
    const { user, token, secret, recoveryCodes } = await userWithMfa();
    expectProblem(await post('/api/v1/auth/mfa/totp/disable', token, {}), 400, 'validation-failed');
    expectProblem(
      await post('/api/v1/auth/mfa/totp/disable', token, {
        code: codeAt(secret),
        recovery_code: recoveryCodes[0],
      }),
      400,
      'validation-failed',
    );
    const code = codeAt(secret);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    expectProblem(await post('/api/v1/auth/mfa/totp/disable', token, { code: wrong }), 403, 'forbidden');
    expect((await userRow(user.id)).mfa_enabled_at).not.toBeNull();

    const off = await post('/api/v1/auth/mfa/totp/disable', token, { code });
    expect(off.status).toBe(204);
    const row = await userRow(user.id);
    expect(row).toMatchObject({
      mfa_enabled_at: null,
      mfa_secret: null,
      mfa_last_step: null,
      mfa_recovery_codes: [],
    });
    expect(await events(user.id, 'MFA_DISABLED')).toEqual([
      expect.objectContaining({ severity: 'HIGH', details: { confirmed_with: 'totp' } }),
    ]);
    expect((await login(user)).status).toBe(200);
    expectProblem(
      await post('/api/v1/auth/mfa/totp/disable', token, { code: codeAt(secret, 1) }),
      409,
      'conflict',
    );
  });

  it('disables MFA with a recovery code (the authenticator lost)', async () => {
    const { user, token, recoveryCodes } = await userWithMfa();
    const off = await post('/api/v1/auth/mfa/totp/disable', token, { recovery_code: recoveryCodes[9] });
    expect(off.status).toBe(204);
    expect(await events(user.id, 'MFA_DISABLED')).toEqual([
      expect.objectContaining({ details: { confirmed_with: 'recovery_code' } }),
    ]);
    expect(await events(user.id, 'MFA_RECOVERY_CODE_USED')).toHaveLength(1);
  });
});
