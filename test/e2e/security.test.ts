/**
 * Security events and the per-account lockout through HTTP: failed logins (HIGH from the third in a
 * row, unknown emails kept without the address), the lock after the threshold (the same 401, no
 * password check, not extended by attempts, over when its time is up), refresh-token reuse,
 * refused platform calls, token and session changes; the event list (each tenant its own, the
 * platform all of them and by tenant, filters, cursor pages, hostile queries) and a user's profile.
 */
import request from 'supertest';
import { authSettings } from '../../src/api/routes/auth';
import { systemEm } from '../../src/db/orm';
import type { MembershipRole } from '../../src/domain/permissions';
import { createUser } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, issueTenantToken, type ActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let tenantA: ActiveTenant;
let tenantB: ActiveTenant;

const PASSWORD = 'security events passphrase';
const WRONG = 'not the passphrase at all';
const THRESHOLD = 4;
const LOCK_MS = 3000;
const http = () => request(stack.app);
const bearer = (token: string) => `Bearer ${token}`;

beforeAll(async () => {
  stack = await startTestStack({
    // the per-address login limit would stop this suite long before the per-account lock
    RATE_LIMIT_ENABLED: 'false',
    LOGIN_LOCKOUT_THRESHOLD: String(THRESHOLD),
    LOGIN_LOCKOUT_MS: String(LOCK_MS),
  });
  [tenantA, tenantB] = await Promise.all([
    createActiveTenant(stack, 'sec-a'),
    createActiveTenant(stack, 'sec-b'),
  ]);
});
afterAll(async () => {
  await stack?.close();
});

let users = 0;
async function newUser(
  role: MembershipRole | null,
  opts: { tenant?: ActiveTenant; platformAdmin?: boolean } = {},
): Promise<{ id: string; email: string }> {
  users += 1;
  const email = `sec${users}@security.test`;
  const { user } = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email,
    password: PASSWORD,
    platformAdmin: opts.platformAdmin ?? false,
    membership: role ? { tenantId: (opts.tenant ?? tenantA).id, role } : undefined,
  });
  return { id: user.id, email };
}

const loginAs = (email: string, password: string) =>
  http().post('/api/v1/auth/login').set('User-Agent', 'security-test').send({ email, password });

async function signIn(
  email: string,
): Promise<{ access_token: string; refresh_token: string; session_id: string }> {
  const res = await loginAs(email, PASSWORD);
  expect(res.status).toBe(200);
  return res.body;
}

interface EventRow {
  id: string;
  tenant_id: string | null;
  user_id: string | null;
  kind: string;
  severity: string;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

function eventsOf(userId: string): Promise<EventRow[]> {
  return stack.db.query<EventRow>(
    'select id, tenant_id, user_id, kind, severity, ip, user_agent, details from security_events where user_id = $1 order by id',
    [userId],
  );
}

async function userRow(id: string): Promise<{ failed_login_count: number; locked_until: Date | null }> {
  const [row] = await stack.db.query<{ failed_login_count: number; locked_until: Date | null }>(
    'select failed_login_count, locked_until from users where id = $1',
    [id],
  );
  if (!row) throw new Error(`no user ${id}`);
  return row;
}

const listEvents = (auth: string, query: Record<string, string> = {}) =>
  http().get('/api/v1/security/events').query(query).set('Authorization', auth);

describe('failed logins', () => {
  it('records each wrong password, HIGH from the third in a row, and a success starts the count afresh', async () => {
    const user = await newUser('OWNER');
    for (let i = 0; i < 3; i += 1) expectProblem(await loginAs(user.email, WRONG), 401, 'unauthenticated');
    let events = await eventsOf(user.id);
    expect(events.map((e) => [e.kind, e.severity, e.details.consecutive_failures])).toEqual([
      ['LOGIN_FAILED', 'LOW', 1],
      ['LOGIN_FAILED', 'LOW', 2],
      ['LOGIN_FAILED', 'HIGH', 3],
    ]);
    expect(events[0]).toMatchObject({ user_agent: 'security-test', details: { reason: 'wrong_password' } });
    expect(typeof events[0]?.ip).toBe('string');
    expect(JSON.stringify(events)).not.toContain(WRONG);
    expect((await userRow(user.id)).failed_login_count).toBe(3);

    await signIn(user.email);
    expect(await userRow(user.id)).toEqual({ failed_login_count: 0, locked_until: null });
    expectProblem(await loginAs(user.email, WRONG), 401, 'unauthenticated');
    events = await eventsOf(user.id);
    expect(events.at(-1)).toMatchObject({
      kind: 'LOGIN_FAILED',
      severity: 'LOW',
      details: { consecutive_failures: 1 },
    });
  });

  it('records an unknown email without a user, by a hash of the address, never the address or password', async () => {
    const email = `Nobody-${Date.now()}@Unknown.test`;
    expectProblem(await loginAs(email, WRONG), 401, 'unauthenticated');
    const rows = await stack.db.query<EventRow>(
      `select id, tenant_id, user_id, kind, severity, details from security_events
        where kind = 'LOGIN_FAILED' and details->>'reason' = 'unknown_email' order by id desc limit 1`,
    );
    const [event] = rows;
    expect(event).toMatchObject({ tenant_id: null, user_id: null, severity: 'LOW' });
    expect(event?.details).toEqual({
      reason: 'unknown_email',
      email_sha256: expect.stringMatching(/^[0-9a-f]{16}$/),
      email_domain: 'unknown.test',
    });
    const text = JSON.stringify(event).toLowerCase();
    expect(text).not.toContain('nobody-');
    expect(text).not.toContain(WRONG);
  });
});

describe('per-account lockout', () => {
  it('locks after the threshold: the same 401, no extension by attempts, and open again when the lock ends', async () => {
    const user = await newUser('OWNER');
    const wrong = await loginAs(user.email, WRONG);
    for (let i = 1; i < THRESHOLD; i += 1)
      expectProblem(await loginAs(user.email, WRONG), 401, 'unauthenticated');
    const locked = await userRow(user.id);
    expect(locked.locked_until).not.toBeNull();
    const kinds = (await eventsOf(user.id)).map((e) => `${e.kind}:${e.severity}`);
    expect(kinds.slice(-2)).toEqual(['LOGIN_FAILED:HIGH', 'LOGIN_LOCKED:HIGH']);

    // the right password during the lock: the same answer as a wrong one, and the lock stays as it was
    const during = await loginAs(user.email, PASSWORD);
    expectProblem(during, 401, 'unauthenticated');
    expect(during.body.detail).toBe(wrong.body.detail);
    expectProblem(await loginAs(user.email, WRONG), 401, 'unauthenticated');
    expect((await userRow(user.id)).locked_until).toEqual(locked.locked_until);
    expect((await eventsOf(user.id)).at(-1)).toMatchObject({
      kind: 'LOGIN_FAILED',
      details: { reason: 'locked' },
    });
    expect((await eventsOf(user.id)).filter((e) => e.kind === 'LOGIN_LOCKED')).toHaveLength(1);

    // a stranger cannot keep it locked: once the time is up the owner signs in
    const res = await waitFor(
      async () => {
        const attempt = await loginAs(user.email, PASSWORD);
        return attempt.status === 200 ? attempt : null;
      },
      { what: 'the lock to end', timeoutMs: LOCK_MS * 5, intervalMs: 250 },
    );
    expect(res.body.access_token).toEqual(expect.any(String));
    expect(await userRow(user.id)).toEqual({ failed_login_count: 0, locked_until: null });
  });

  it('counts failures of one account from any address alike', async () => {
    const user = await newUser('OWNER');
    for (let i = 0; i < THRESHOLD; i += 1) {
      const res = await http()
        .post('/api/v1/auth/login')
        .set('X-Forwarded-For', `203.0.113.${i + 1}`)
        .send({ email: user.email, password: WRONG });
      expectProblem(res, 401, 'unauthenticated');
    }
    expect((await userRow(user.id)).locked_until).not.toBeNull();
  });
});

describe('recorded changes', () => {
  it('records refresh-token reuse as HIGH in the user’s tenant', async () => {
    const user = await newUser('OWNER');
    const first = await signIn(user.email);
    const rotated = await http().post('/api/v1/auth/refresh').send({ refresh_token: first.refresh_token });
    expect(rotated.status).toBe(200);
    expectProblem(
      await http().post('/api/v1/auth/refresh').send({ refresh_token: first.refresh_token }),
      401,
      'unauthenticated',
    );
    const reuse = (await eventsOf(user.id)).filter((e) => e.kind === 'REFRESH_REUSE_DETECTED');
    expect(reuse).toEqual([
      expect.objectContaining({
        severity: 'HIGH',
        tenant_id: tenantA.id,
        details: { session_id: first.session_id },
      }),
    ]);
    expect(JSON.stringify(reuse)).not.toContain(first.refresh_token);
  });

  it('records a tenant’s refusal on a platform route as MEDIUM, and nothing on the allowed path', async () => {
    const before = await listEvents(bearer(tenantA.token), { kind: 'PERMISSION_DENIED' });
    expectProblem(
      await http().get('/api/v1/nodes').set('Authorization', bearer(tenantA.token)),
      403,
      'forbidden',
    );
    const after = await listEvents(bearer(tenantA.token), { kind: 'PERMISSION_DENIED' });
    expect(after.body.data).toHaveLength(before.body.data.length + 1);
    expect(after.body.data[0]).toMatchObject({
      tenant_id: tenantA.id,
      user_id: null,
      severity: 'MEDIUM',
      details: { method: 'GET', path: '/api/v1/nodes', permission: 'nodes:read' },
    });
    expect((await http().get('/api/v1/nodes').set('Authorization', bearer(stack.adminToken))).status).toBe(
      200,
    );
    const [{ n }] = (await stack.db.query<{ n: number }>(
      `select count(*)::int as n from security_events where kind = 'PERMISSION_DENIED' and tenant_id is null`,
    )) as [{ n: number }];
    expect(n).toBe(0);
  });

  it('records tokens created and revoked, sessions revoked and passwords changed, never their secrets', async () => {
    const user = await newUser('OWNER');
    const a = await signIn(user.email);
    const b = await signIn(user.email);
    const created = await http()
      .post('/api/v1/tokens')
      .set('Authorization', bearer(a.access_token))
      .send({ name: 'sec token' });
    expect(created.status).toBe(201);
    const revoked = await http()
      .delete(`/api/v1/tokens/${created.body.token.id}`)
      .set('Authorization', bearer(a.access_token));
    expect(revoked.status).toBe(200);
    const ended = await http()
      .delete(`/api/v1/auth/sessions/${b.session_id}`)
      .set('Authorization', bearer(a.access_token));
    expect(ended.status).toBe(204);
    const changed = await http()
      .post('/api/v1/auth/password')
      .set('Authorization', bearer(a.access_token))
      .send({ current_password: PASSWORD, new_password: 'a brand new passphrase' });
    expect(changed.status).toBe(200);
    const events = await eventsOf(user.id);
    expect(events.map((e) => `${e.kind}:${e.severity}`)).toEqual([
      'TOKEN_CREATED:LOW',
      'TOKEN_REVOKED:LOW',
      'SESSION_REVOKED:LOW',
      'PASSWORD_CHANGED:MEDIUM',
    ]);
    expect(events.every((e) => e.tenant_id === tenantA.id)).toBe(true);
    expect(events[0]?.details).toMatchObject({ token_id: created.body.token.id });
    expect(events[2]?.details).toEqual({ session_id: b.session_id, reason: 'REVOKED' });
    const text = JSON.stringify(events);
    expect(text).not.toContain(created.body.secret);
    expect(text).not.toContain('a brand new passphrase');
    expect(text).not.toContain(PASSWORD);
  });
});

describe('GET /api/v1/security/events', () => {
  it('shows a tenant its own events only, and the platform every event or one tenant’s', async () => {
    const userB = await newUser('OWNER', { tenant: tenantB });
    expectProblem(await loginAs(userB.email, WRONG), 401, 'unauthenticated');
    // a denial in A, so that A has events of its own
    await http().get('/api/v1/nodes').set('Authorization', bearer(tenantA.token));

    const ofA = await listEvents(bearer(tenantA.token), { limit: '100' });
    expect(ofA.status).toBe(200);
    expect(ofA.body.data.length).toBeGreaterThan(0);
    expect(ofA.body.data.every((e: EventRow) => e.tenant_id === tenantA.id)).toBe(true);
    const ofB = await listEvents(bearer(tenantB.token), { limit: '100' });
    expect(ofB.body.data.every((e: EventRow) => e.tenant_id === tenantB.id)).toBe(true);
    expect(ofB.body.data.map((e: EventRow) => e.id)).not.toEqual(
      expect.arrayContaining([ofA.body.data[0].id]),
    );
    // naming another tenant is refused, not quietly answered
    expectProblem(await listEvents(bearer(tenantB.token), { tenant_id: tenantA.id }), 403, 'forbidden');

    const admin = bearer(stack.adminToken);
    const filtered = await listEvents(admin, { tenant_id: tenantA.id, limit: '100' });
    expect(filtered.body.data.map((e: EventRow) => e.id)).toEqual(ofA.body.data.map((e: EventRow) => e.id));
    const all = await listEvents(admin, { limit: '100' });
    const tenants = new Set(all.body.data.map((e: EventRow) => e.tenant_id));
    expect(tenants.has(tenantA.id) && tenants.has(tenantB.id)).toBe(true);
    const high = await listEvents(admin, { severity: 'HIGH', kind: 'LOGIN_FAILED' });
    expect(high.body.data.length).toBeGreaterThan(0);
    expect(high.body.data.every((e: EventRow) => e.severity === 'HIGH' && e.kind === 'LOGIN_FAILED')).toBe(
      true,
    );
  });

  it('pages newest first with a cursor, and each page item equals the stored row', async () => {
    const first = await listEvents(bearer(tenantA.token), { limit: '1' });
    expect(first.body.data).toHaveLength(1);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await listEvents(bearer(tenantA.token), { limit: '1', cursor: first.body.next_cursor });
    expect(second.body.data).toHaveLength(1);
    expect(second.body.data[0].id < first.body.data[0].id).toBe(true);
    const [row] = await stack.db.query<EventRow>(
      'select id, kind, severity, details from security_events where id = $1',
      [first.body.data[0].id],
    );
    expect(first.body.data[0]).toMatchObject({
      kind: row?.kind,
      severity: row?.severity,
      details: row?.details,
    });
  });

  it('is refused to a read token, a READONLY member and callers without credentials', async () => {
    const readToken = await issueTenantToken(stack, tenantA.id, ['read']);
    expectProblem(await listEvents(bearer(readToken)), 403, 'forbidden');
    const viewer = await newUser('READONLY');
    const signedIn = await signIn(viewer.email);
    expectProblem(await listEvents(bearer(signedIn.access_token)), 403, 'forbidden');
    const owner = await newUser('ADMIN');
    const ownerIn = await signIn(owner.email);
    expect((await listEvents(bearer(ownerIn.access_token))).status).toBe(200);
    expectProblem(await http().get('/api/v1/security/events'), 401, 'unauthenticated');
  });

  it.each([
    [{ kind: "LOGIN_FAILED' or 1=1 --" }],
    [{ severity: 'low' }],
    [{ limit: '1000' }],
    [{ cursor: 'not-a-cursor' }],
    [{ tenant_id: "ten_x' or '1'='1" }],
    [{ unexpected: 'x' }],
  ])('answers 400 to the hostile query %j', async (query) => {
    const res = await listEvents(bearer(stack.adminToken), query);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

describe('GET /api/v1/security/me/profile', () => {
  it('shows the signed-in user their memberships, sessions, last login and own events only', async () => {
    const user = await newUser('ADMIN');
    expectProblem(await loginAs(user.email, WRONG), 401, 'unauthenticated');
    const signedIn = await signIn(user.email);
    const res = await http()
      .get('/api/v1/security/me/profile')
      .set('Authorization', bearer(signedIn.access_token));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      user_id: user.id,
      email: user.email,
      memberships: [{ tenant_id: tenantA.id, tenant_name: 'Tenant sec-a', role: 'ADMIN' }],
      platform_admin: false,
      active_sessions: 1,
      mfa_enabled: false,
      last_login_at: expect.any(String),
    });
    expect(res.body.recent_events.map((e: EventRow) => e.kind)).toEqual(['LOGIN_FAILED']);
    expect(res.body.recent_events.every((e: EventRow) => e.user_id === user.id)).toBe(true);
    // an API token has no profile
    expectProblem(
      await http().get('/api/v1/security/me/profile').set('Authorization', bearer(tenantA.token)),
      403,
      'forbidden',
    );
  });
});
