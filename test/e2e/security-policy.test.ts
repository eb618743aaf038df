/**
 * A tenant's security policy through HTTP: reading (defaults), replacing (validated, refusing an
 * allowlist that would shut out the caller), and what it does to sign-in — logins and refreshes
 * from outside the IP allowlist refused, sessions lasting the policy's lifetime (capped by
 * SESSION_TTL_S, open ones shortened), the strictest lockout among a user's tenants, and required
 * MFA restricting a member without it to their own account until they enable it and refresh.
 * Client addresses are set with X-Forwarded-For, which the stack believes from loopback.
 */
import { Secret, TOTP } from 'otpauth';
import request from 'supertest';
import { authSettings } from '../../src/api/routes/auth';
import { systemEm } from '../../src/db/orm';
import type { MembershipRole } from '../../src/domain/permissions';
import { addMembership, createUser } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, issueTenantToken, type ActiveTenant } from '../helpers/tenants';

let stack: TestStack;

const PASSWORD = 'correct horse battery staple';
/** the platform's session lifetime in this stack: one day */
const SESSION_TTL_S = 86_400;
const http = () => request(stack.app);
const bearer = (token: string) => `Bearer ${token}`;
const OFFICE = '198.51.100.7';
const ELSEWHERE = '203.0.113.9';

beforeAll(async () => {
  stack = await startTestStack({ TRUST_PROXY: 'loopback', SESSION_TTL_S: String(SESSION_TTL_S) });
});
afterAll(async () => {
  await stack?.close();
});

let slugs = 0;
const newTenant = async () => {
  slugs += 1;
  return createActiveTenant(stack, `tsp-${slugs}`);
};

interface TestUser {
  id: string;
  email: string;
}

let users = 0;
async function newUser(tenant: ActiveTenant, role: MembershipRole = 'OWNER'): Promise<TestUser> {
  users += 1;
  const email = `tsp-user${users}@tsp.test`;
  const { user } = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email,
    password: PASSWORD,
    membership: { tenantId: tenant.id, role },
  });
  return { id: user.id, email };
}

const login = (user: TestUser, extra: Record<string, unknown> = {}, from = OFFICE) =>
  http()
    .post('/api/v1/auth/login')
    .set('X-Forwarded-For', from)
    .send({ email: user.email, password: PASSWORD, ...extra });

async function signIn(user: TestUser, extra: Record<string, unknown> = {}, from = OFFICE) {
  const res = await login(user, extra, from);
  expect(res.status).toBe(200);
  return res.body as {
    access_token: string;
    refresh_token: string;
    session_id: string;
    mfa_setup_required?: boolean;
  };
}

const getPolicy = (auth: string, from = OFFICE) =>
  http().get('/api/v1/security/policy').set('Authorization', bearer(auth)).set('X-Forwarded-For', from);
const putPolicy = (auth: string, body: Record<string, unknown>, from = OFFICE) =>
  http()
    .put('/api/v1/security/policy')
    .set('Authorization', bearer(auth))
    .set('X-Forwarded-For', from)
    .send(body);
const refresh = (refreshToken: string, from = OFFICE) =>
  http().post('/api/v1/auth/refresh').set('X-Forwarded-For', from).send({ refresh_token: refreshToken });

async function events(tenantId: string, kind: string): Promise<Record<string, unknown>[]> {
  return stack.db.query<Record<string, unknown>>(
    'select * from security_events where tenant_id = $1 and kind = $2 order by id',
    [tenantId, kind],
  );
}

async function sessionRow(id: string): Promise<{ created_at: Date; expires_at: Date }> {
  const [row] = await stack.db.query<{ created_at: Date; expires_at: Date }>(
    'select created_at, expires_at from sessions where id = $1',
    [id],
  );
  return row as { created_at: Date; expires_at: Date };
}

const secondsBetween = (a: Date, b: Date) => (new Date(b).getTime() - new Date(a).getTime()) / 1000;

describe('GET and PUT /api/v1/security/policy', () => {
  it('reads the defaults, replaces the policy, and records the change', async () => {
    const tenant = await newTenant();
    const initial = await getPolicy(tenant.token);
    expect(initial.status).toBe(200);
    expect(initial.body).toEqual({
      tenant_id: tenant.id,
      require_mfa: false,
      session_lifetime_s: null,
      effective_session_lifetime_s: SESSION_TTL_S,
      ip_allowlist: [],
      lockout_threshold: null,
      lockout_duration_s: null,
      updated_at: null,
    });

    const body = {
      require_mfa: false,
      session_lifetime_s: 3600,
      ip_allowlist: ['198.51.100.0/24', '2001:db8::/32', '198.51.100.0/24'],
      lockout_threshold: 5,
      lockout_duration_s: 600,
    };
    const put = await putPolicy(tenant.token, body);
    expect(put.status).toBe(200);
    expect(put.body).toEqual({
      ...body,
      ip_allowlist: ['198.51.100.0/24', '2001:db8::/32'],
      tenant_id: tenant.id,
      effective_session_lifetime_s: 3600,
      updated_at: expect.any(String),
    });
    expect((await getPolicy(tenant.token)).body).toEqual(put.body);
    const [row] = await stack.db.query<Record<string, unknown>>(
      'select * from tenant_security_policies where tenant_id = $1',
      [tenant.id],
    );
    expect(row).toMatchObject({ ip_allowlist: ['198.51.100.0/24', '2001:db8::/32'], lockout_threshold: 5 });
    // audited like every business table, in the tenant's chain
    const audited = await stack.db.query<{ action: string }>(
      "select action from audit_events where entity_type = 'tenant_security_policies' and entity_id = $1",
      [row?.id],
    );
    expect(audited.map((a) => a.action)).toEqual(['INSERT']);

    // a lifetime beyond the platform's is kept, but what applies is the platform's
    const long = await putPolicy(tenant.token, { session_lifetime_s: 31_536_000 });
    expect(long.body).toMatchObject({
      session_lifetime_s: 31_536_000,
      effective_session_lifetime_s: SESSION_TTL_S,
      ip_allowlist: [],
      lockout_threshold: null,
    });
    const changes = await events(tenant.id, 'SECURITY_POLICY_CHANGED');
    expect(changes).toHaveLength(2);
    expect(changes[0]?.details).toMatchObject({
      changed: ['sessionLifetimeS', 'ipAllowlist', 'lockoutThreshold', 'lockoutDurationS'],
    });
  });

  it('refuses malformed policies with 400 naming the field, and changes nothing', async () => {
    const tenant = await newTenant();
    const cases: [Record<string, unknown>, string][] = [
      [{ ip_allowlist: ['198.51.100.0/24', 'not-an-ip'] }, 'ip_allowlist.1'],
      [{ ip_allowlist: ['10.0.0.0/33'] }, 'ip_allowlist.0'],
      [{ session_lifetime_s: 10 }, 'session_lifetime_s'],
      [{ lockout_threshold: 0 }, 'lockout_threshold'],
      [{ lockout_duration_s: 86_401 }, 'lockout_duration_s'],
      [{ require_mfa: 'yes' }, 'require_mfa'],
      [{ surprise: true }, ''],
    ];
    for (const [body, field] of cases) {
      const res = await putPolicy(tenant.token, body);
      expectProblem(res, 400, 'validation-failed');
      if (field) expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    expect((await getPolicy(tenant.token)).body.updated_at).toBeNull();
  });

  it('refuses (422) an allowlist that would lock the caller out, and takes one that admits them', async () => {
    const tenant = await newTenant();
    const res = await putPolicy(tenant.token, { ip_allowlist: ['198.51.100.0/24'] }, ELSEWHERE);
    expectProblem(res, 422, 'unprocessable');
    expect(res.body.errors).toEqual([{ field: 'ip_allowlist', message: expect.stringContaining(ELSEWHERE) }]);
    expect((await getPolicy(tenant.token)).body.ip_allowlist).toEqual([]);
    expect(await events(tenant.id, 'SECURITY_POLICY_CHANGED')).toEqual([]);
    // IPv4 clients as Node sees them without a proxy header (::ffff:127.0.0.1) match 127.0.0.0/8
    const direct = await http()
      .put('/api/v1/security/policy')
      .set('Authorization', bearer(tenant.token))
      .send({ ip_allowlist: ['127.0.0.0/8'] });
    expect(direct.status).toBe(200);
  });

  it('is for the tenant’s OWNER/ADMIN and write tokens, each seeing only their own tenant', async () => {
    const tenant = await newTenant();
    const other = await newTenant();
    await putPolicy(other.token, { require_mfa: true, lockout_threshold: 3 }).expect(200);
    expect((await getPolicy(tenant.token)).body).toMatchObject({ tenant_id: tenant.id, require_mfa: false });

    const admin = await signIn(await newUser(tenant, 'ADMIN'));
    expect((await getPolicy(admin.access_token)).status).toBe(200);
    const readonly = await signIn(await newUser(tenant, 'READONLY'));
    expectProblem(await getPolicy(readonly.access_token), 403, 'forbidden');
    expectProblem(await putPolicy(readonly.access_token, {}), 403, 'forbidden');
    const readToken = await issueTenantToken(stack, tenant.id, ['read']);
    expectProblem(await putPolicy(readToken, {}), 403, 'forbidden');
    // a platform administrator has no tenant to set it for
    expectProblem(await getPolicy(stack.adminToken), 403, 'forbidden');
    expectProblem(await http().get('/api/v1/security/policy'), 401, 'unauthenticated');
  });
});

describe('the IP allowlist at sign-in', () => {
  it('refuses a login and a refresh from outside it (403, recorded, no session), and admits inside', async () => {
    const tenant = await newTenant();
    const user = await newUser(tenant);
    const before = await signIn(user, {}, ELSEWHERE);
    await putPolicy(tenant.token, { ip_allowlist: ['198.51.100.0/24', '2001:db8::/32'] }).expect(200);

    const sessionsBefore = await stack.db.query('select id from sessions where user_id = $1', [user.id]);
    const refused = await login(user, {}, ELSEWHERE);
    expectProblem(refused, 403, 'ip-not-allowed');
    expect(refused.body.access_token).toBeUndefined();
    expect(await stack.db.query('select id from sessions where user_id = $1', [user.id])).toHaveLength(
      sessionsBefore.length,
    );
    expect(await events(tenant.id, 'LOGIN_IP_REFUSED')).toEqual([
      expect.objectContaining({
        user_id: user.id,
        ip: ELSEWHERE,
        severity: 'HIGH',
        details: { step: 'login' },
      }),
    ]);
    // a wrong password from outside is the plain 401: the allowlist is not revealed to a stranger
    const stranger = await http()
      .post('/api/v1/auth/login')
      .set('X-Forwarded-For', ELSEWHERE)
      .send({ email: user.email, password: 'not the password at all' });
    expectProblem(stranger, 401, 'unauthenticated');

    expect((await login(user, {}, OFFICE)).status).toBe(200);
    expect((await login(user, {}, '2001:db8:5::1')).status).toBe(200);

    // the session opened earlier elsewhere cannot be refreshed from there, and nothing is rotated
    expectProblem(await refresh(before.refresh_token, ELSEWHERE), 403, 'ip-not-allowed');
    expect((await refresh(before.refresh_token, OFFICE)).status).toBe(200);
  });
});

describe('session lifetime', () => {
  it('new sessions last the policy’s lifetime; open ones older than a shortened lifetime end at once', async () => {
    const tenant = await newTenant();
    const user = await newUser(tenant);
    const old = await signIn(user);
    // as if signed in two hours ago
    await stack.db.query("update sessions set created_at = now() - interval '2 hours' where family_id = $1", [
      old.session_id,
    ]);
    const recent = await signIn(user);
    const sessions = () =>
      http().get('/api/v1/auth/sessions').set('Authorization', bearer(recent.access_token));
    expect((await sessions()).body.data).toHaveLength(2);

    await putPolicy(tenant.token, { session_lifetime_s: 3600 }).expect(200);
    const row = await sessionRow(recent.session_id);
    expect(secondsBetween(row.created_at, row.expires_at)).toBe(3600);
    expect(new Date((await sessionRow(old.session_id)).expires_at).getTime()).toBeLessThan(Date.now());
    // the old session has ended: its tokens are refused (within the session cache's second)
    const oldRefresh = await refresh(old.refresh_token);
    expectProblem(oldRefresh, 401, 'unauthenticated');
    expect((await sessions()).body.data.map((s: { id: string }) => s.id)).toEqual([recent.session_id]);

    const fresh = await signIn(user);
    const freshRow = await sessionRow(fresh.session_id);
    expect(secondsBetween(freshRow.created_at, freshRow.expires_at)).toBeGreaterThan(3590);
    expect(secondsBetween(freshRow.created_at, freshRow.expires_at)).toBeLessThanOrEqual(3601);
    // a refresh keeps the family's end
    const next = await refresh(fresh.refresh_token);
    expect(next.status).toBe(200);
    const [child] = await stack.db.query<{ expires_at: Date }>(
      'select expires_at from sessions where family_id = $1 and parent_id is not null',
      [fresh.session_id],
    );
    expect(new Date(child?.expires_at as Date).getTime()).toBe(new Date(freshRow.expires_at).getTime());
  });

  it('never lasts longer than the platform’s SESSION_TTL_S', async () => {
    const tenant = await newTenant();
    const user = await newUser(tenant);
    await putPolicy(tenant.token, { session_lifetime_s: 31_536_000 }).expect(200);
    const signedIn = await signIn(user);
    const row = await sessionRow(signedIn.session_id);
    const lasts = secondsBetween(row.created_at, row.expires_at);
    expect(lasts).toBeGreaterThan(SESSION_TTL_S - 10);
    expect(lasts).toBeLessThanOrEqual(SESSION_TTL_S + 1);
  });
});

describe('lockout thresholds', () => {
  it('locks after the policy’s threshold, for its duration; a member of several tenants gets the strictest', async () => {
    const lenient = await newTenant();
    const strict = await newTenant();
    await putPolicy(lenient.token, { lockout_threshold: 8, lockout_duration_s: 60 }).expect(200);
    await putPolicy(strict.token, { lockout_threshold: 2, lockout_duration_s: 1800 }).expect(200);
    const user = await newUser(lenient);
    const wrong = () =>
      http()
        .post('/api/v1/auth/login')
        .set('X-Forwarded-For', OFFICE)
        .send({ email: user.email, password: 'not the password at all', tenant_id: lenient.id });

    // a member of the lenient tenant only: the second failure does not lock
    expectProblem(await wrong(), 401, 'unauthenticated');
    expectProblem(await wrong(), 401, 'unauthenticated');
    let [row] = await stack.db.query<{ failed_login_count: number; locked_until: Date | null }>(
      'select failed_login_count, locked_until from users where id = $1',
      [user.id],
    );
    expect(row).toEqual({ failed_login_count: 2, locked_until: null });
    expect((await login(user)).status).toBe(200);

    // joining the strict tenant makes its policy apply, whatever tenant the login names
    await addMembership(systemEm(stack.db.orm), { userId: user.id, tenantId: strict.id, role: 'READONLY' });
    expectProblem(await wrong(), 401, 'unauthenticated');
    expectProblem(await wrong(), 401, 'unauthenticated');
    [row] = await stack.db.query<{ failed_login_count: number; locked_until: Date | null }>(
      'select failed_login_count, locked_until from users where id = $1',
      [user.id],
    );
    const lockedFor = (new Date(row?.locked_until as Date).getTime() - Date.now()) / 1000;
    expect(lockedFor).toBeGreaterThan(1790);
    expect(lockedFor).toBeLessThanOrEqual(1800);
    // locked: the right password is refused too
    expectProblem(await login(user, { tenant_id: lenient.id }), 401, 'unauthenticated');
    expect(
      await stack.db.query("select id from security_events where user_id = $1 and kind = 'LOGIN_LOCKED'", [
        user.id,
      ]),
    ).toHaveLength(1);
  });
});

describe('required MFA', () => {
  const codeAt = (secret: string, offset = 0) =>
    new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: Date.now() + offset * 30_000 });

  it('restricts a member without MFA to their own account until they enable it and refresh', async () => {
    const tenant = await newTenant();
    const user = await newUser(tenant);
    await putPolicy(tenant.token, { require_mfa: true }).expect(200);

    const signedIn = await signIn(user);
    expect(signedIn.mfa_setup_required).toBe(true);
    const as = (token: string) => ({
      customers: () => http().get('/api/v1/customers').set('Authorization', bearer(token)),
      sessions: () => http().get('/api/v1/auth/sessions').set('Authorization', bearer(token)),
      policy: () => getPolicy(token),
    });
    const restricted = as(signedIn.access_token);
    expectProblem(await restricted.customers(), 403, 'mfa-setup-required');
    expectProblem(await restricted.policy(), 403, 'mfa-setup-required');
    expect((await restricted.sessions()).status).toBe(200);
    const profile = await http()
      .get('/api/v1/security/me/profile')
      .set('Authorization', bearer(signedIn.access_token));
    expect(profile.status).toBe(200);

    // setting MFA up is allowed
    const setup = await http()
      .post('/api/v1/auth/mfa/totp/setup')
      .set('Authorization', bearer(signedIn.access_token));
    expect(setup.status).toBe(200);
    const secret = setup.body.secret as string;
    const enabled = await http()
      .post('/api/v1/auth/mfa/totp/enable')
      .set('Authorization', bearer(signedIn.access_token))
      .send({ code: codeAt(secret, -1) });
    expect(enabled.status).toBe(200);

    // the access token in hand stays restricted; a refresh brings the role's permissions
    expectProblem(await restricted.customers(), 403, 'mfa-setup-required');
    const refreshed = await refresh(signedIn.refresh_token);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.mfa_setup_required).toBeUndefined();
    expect((await as(refreshed.body.access_token as string).customers()).status).toBe(200);

    // a new sign-in needs the code now, and is not restricted
    expectProblem(await login(user), 401, 'mfa-required');
    const again = await signIn(user, { totp_code: codeAt(secret) });
    expect(again.mfa_setup_required).toBeUndefined();
    expect((await as(again.access_token).policy()).status).toBe(200);
  });

  it('applies to members who signed in before it was required, from their next refresh; tokens are not users', async () => {
    const tenant = await newTenant();
    const user = await newUser(tenant, 'ADMIN');
    const before = await signIn(user);
    await putPolicy(tenant.token, { require_mfa: true }).expect(200);
    const refreshed = await refresh(before.refresh_token);
    expect(refreshed.body.mfa_setup_required).toBe(true);
    expectProblem(
      await http()
        .get('/api/v1/customers')
        .set('Authorization', bearer(refreshed.body.access_token as string)),
      403,
      'mfa-setup-required',
    );
    // API tokens have no second factor: the policy does not concern them
    expect((await http().get('/api/v1/customers').set('Authorization', bearer(tenant.token))).status).toBe(
      200,
    );
    // a member of another tenant without the requirement is not restricted there
    const other = await newTenant();
    const elsewhere = await newUser(other);
    expect((await signIn(elsewhere)).mfa_setup_required).toBeUndefined();
  });
});
