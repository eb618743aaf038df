/**
 * The shield and the IP allowlist through HTTP, from distinct client addresses (X-Forwarded-For
 * behind a trusted loopback proxy): MONITOR records and lets through, ENFORCE answers 403
 * `ip-blocked` and records once per address and minute (a BLOCKED row counting the hits, one
 * SHIELD_BLOCKED security event), ALLOW-list and first-match semantics, IPv6, other tenants
 * unaffected, invalid CIDRs 400, a self-lockout 422, the events list, and the tenant security
 * policy's allowlist (403 `ip-not-allowed`) for tokens and signed-in users alike.
 */
import request from 'supertest';
import { authSettings } from '../../src/api/routes/auth';
import { systemEm } from '../../src/db/orm';
import { createUser } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let tenantA: ActiveTenant;
let tenantB: ActiveTenant;

/** where the tenant's administrator sets policies from: never refused by the rules below */
const ADMIN_IP = '192.0.2.10';
const bearer = (token: string) => `Bearer ${token}`;
const http = () => request(stack.app);

beforeAll(async () => {
  stack = await startTestStack({ TRUST_PROXY: 'loopback' });
  [tenantA, tenantB] = await Promise.all([
    createActiveTenant(stack, 'shield-a'),
    createActiveTenant(stack, 'shield-b'),
  ]);
});
afterAll(async () => {
  await stack?.close();
});

afterEach(async () => {
  // every test starts from no shield and no allowlist
  for (const tenant of [tenantA, tenantB]) {
    const res = await setShield(tenant, 'OFF', []);
    expect(res.status).toBe(200);
  }
});

type Rule = { action: 'ALLOW' | 'DENY'; cidr: string; note?: string };

const setShield = (tenant: ActiveTenant, mode: string, rules: Rule[], from = ADMIN_IP) =>
  http()
    .put('/api/v1/security/shield')
    .set('Authorization', bearer(tenant.token))
    .set('X-Forwarded-For', from)
    .send({ mode, rules });

const listPods = (auth: string, from: string) =>
  http()
    .get('/api/v1/cloudpods')
    .query({ limit: '5' })
    .set('Authorization', auth)
    .set('X-Forwarded-For', from);

interface ShieldEventRow {
  id: string;
  tenant_id: string;
  ip: string;
  source: string;
  mode: string;
  action: string;
  rule_id: string | null;
  rule_cidr: string | null;
  method: string;
  path: string;
  actor_id: string;
  request_id: string;
  hits: number;
}

const shieldEvents = (tenantId: string, ip: string) =>
  stack.db.query<ShieldEventRow>(
    `select id, tenant_id, ip, source, mode, action, rule_id, rule_cidr, method, path, actor_id, request_id, hits
       from shield_events where tenant_id = $1 and ip = $2 order by id`,
    [tenantId, ip],
  );

const securityEvents = (tenantId: string, kind: string, ip: string) =>
  stack.db.query<{ severity: string; ip: string; details: Record<string, unknown> }>(
    'select severity, ip, details from security_events where tenant_id = $1 and kind = $2 and ip = $3',
    [tenantId, kind, ip],
  );

/** The rows of one address once their hits add up to `hits` (the recorder writes in the background). */
const eventsWithHits = (tenantId: string, ip: string, hits: number) =>
  waitFor(
    async () => {
      const rows = await shieldEvents(tenantId, ip);
      return rows.reduce((sum, r) => sum + r.hits, 0) === hits ? rows : undefined;
    },
    { what: `${hits} refusals of ${ip} recorded` },
  );

describe('the policy', () => {
  it('is OFF with no rules until set, and is stored normalised, in order', async () => {
    const empty = await http().get('/api/v1/security/shield').set('Authorization', bearer(tenantA.token));
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({
      tenant_id: tenantA.id,
      mode: 'OFF',
      rules: [],
      updated_at: null,
      updated_by: null,
    });

    const res = await setShield(tenantA, 'MONITOR', [
      { action: 'ALLOW', cidr: '192.0.2.77/24', note: 'office' },
      { action: 'DENY', cidr: '2001:DB8:0:0::/32' },
      { action: 'DENY', cidr: '::ffff:198.51.100.0/120' },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tenant_id: tenantA.id, mode: 'MONITOR' });
    expect(res.body.rules.map((r: Rule & { position: number }) => [r.position, r.action, r.cidr])).toEqual([
      [0, 'ALLOW', '192.0.2.0/24'],
      [1, 'DENY', '2001:db8::/32'],
      [2, 'DENY', '198.51.100.0/24'],
    ]);
    expect(res.body.rules[0]).toMatchObject({ note: 'office', created_by: expect.stringMatching(/^tok_/) });
    const read = await http().get('/api/v1/security/shield').set('Authorization', bearer(tenantA.token));
    expect(read.body).toEqual(res.body);

    // a rule that stays keeps its id; the list is replaced as a whole
    const again = await setShield(tenantA, 'MONITOR', [
      { action: 'DENY', cidr: '198.51.100.0/24' },
      { action: 'ALLOW', cidr: '192.0.2.0/24' },
    ]);
    expect(again.status).toBe(200);
    expect(again.body.rules.map((r: { id: string }) => r.id)).toEqual([
      res.body.rules[2].id,
      res.body.rules[0].id,
    ]);
    expect(again.body.rules[1].note).toBeNull();
  });

  it.each([
    ['10.0.0.0/33'],
    ['2001:db8::/129'],
    ['not-an-address'],
    ['10.0.0.0/8/8'],
    ['fe80::1%eth0'],
    [''],
  ])('refuses the CIDR %j with 400 and stores nothing', async (cidr) => {
    const res = await setShield(tenantA, 'ENFORCE', [
      { action: 'ALLOW', cidr: '192.0.2.0/24' },
      { action: 'DENY', cidr },
    ]);
    expectProblem(res, 400, 'validation-failed');
    expect(JSON.stringify(res.body.errors)).toContain('rules');
    const [count] = await stack.db.query<{ n: number }>(
      'select count(*)::int as n from shield_rules where tenant_id = $1',
      [tenantA.id],
    );
    expect(count?.n).toBe(0);
  });

  it('refuses malformed bodies with 400: unknown mode, unknown action, extra fields', async () => {
    for (const body of [
      { mode: 'BLOCK', rules: [] },
      { mode: 'ENFORCE', rules: [{ action: 'REJECT', cidr: '10.0.0.0/8' }] },
      { mode: 'ENFORCE', rules: [{ action: 'DENY', cidr: '10.0.0.0/8', priority: 1 }] },
      { mode: 'ENFORCE' },
    ]) {
      const res = await http()
        .put('/api/v1/security/shield')
        .set('Authorization', bearer(tenantA.token))
        .set('X-Forwarded-For', ADMIN_IP)
        .send(body);
      expectProblem(res, 400, 'validation-failed');
    }
  });

  it('refuses (422) an ENFORCE shield that would block the caller’s own address, and allows it in MONITOR', async () => {
    const own = '198.51.100.20';
    for (const rules of [
      [{ action: 'DENY' as const, cidr: '198.51.100.0/24' }],
      [{ action: 'ALLOW' as const, cidr: '203.0.113.0/24' }],
    ]) {
      const res = await setShield(tenantA, 'ENFORCE', rules, own);
      expectProblem(res, 422, 'unprocessable');
      expect(res.body.errors).toEqual([{ field: 'rules', message: expect.any(String) }]);
    }
    const unchanged = await http().get('/api/v1/security/shield').set('Authorization', bearer(tenantA.token));
    expect(unchanged.body).toMatchObject({ mode: 'OFF', rules: [] });

    expect(
      (await setShield(tenantA, 'MONITOR', [{ action: 'DENY', cidr: '198.51.100.0/24' }], own)).status,
    ).toBe(200);
    // an earlier ALLOW for the caller's address wins over the DENY: no lockout
    const allowedFirst = await setShield(
      tenantA,
      'ENFORCE',
      [
        { action: 'ALLOW', cidr: '198.51.100.20' },
        { action: 'DENY', cidr: '198.51.100.0/24' },
      ],
      own,
    );
    expect(allowedFirst.status).toBe(200);
    // that shield is an allow-list the administrator's usual address is outside of: undo it from here
    expect((await setShield(tenantA, 'OFF', [], own)).status).toBe(200);
  });
});

describe('enforcement', () => {
  it('MONITOR lets a refused address through and records it as WOULD_BLOCK, without a security event', async () => {
    expect((await setShield(tenantA, 'MONITOR', [{ action: 'DENY', cidr: '198.51.100.0/24' }])).status).toBe(
      200,
    );
    const ip = '198.51.100.7';
    const res = await listPods(bearer(tenantA.token), ip);
    expect(res.status).toBe(200);
    const [row] = await eventsWithHits(tenantA.id, ip, 1);
    expect(row).toMatchObject({
      source: 'SHIELD',
      mode: 'MONITOR',
      action: 'WOULD_BLOCK',
      rule_cidr: '198.51.100.0/24',
      rule_id: expect.stringMatching(/^shr_/),
      method: 'GET',
      path: '/api/v1/cloudpods',
      actor_id: expect.stringMatching(/^tok_/),
      request_id: res.headers['x-request-id'],
    });
    expect(await securityEvents(tenantA.id, 'SHIELD_BLOCKED', ip)).toEqual([]);
    // an address no rule refuses leaves no trace
    expect((await listPods(bearer(tenantA.token), '203.0.113.5')).status).toBe(200);
    expect(await shieldEvents(tenantA.id, '203.0.113.5')).toEqual([]);
  });

  it('ENFORCE answers 403 ip-blocked without naming the rule, and records once per address and minute', async () => {
    expect((await setShield(tenantA, 'ENFORCE', [{ action: 'DENY', cidr: '198.51.100.0/24' }])).status).toBe(
      200,
    );
    const ip = '198.51.100.8';
    const blocked = await listPods(bearer(tenantA.token), `${ip}`);
    expectProblem(blocked, 403, 'ip-blocked');
    expect(JSON.stringify(blocked.body)).not.toMatch(/198\.51\.100|shr_|DENY/);
    const [first] = await eventsWithHits(tenantA.id, ip, 1);
    expect(first).toMatchObject({
      mode: 'ENFORCE',
      action: 'BLOCKED',
      rule_cidr: '198.51.100.0/24',
      request_id: blocked.headers['x-request-id'],
    });
    const events = await waitFor(
      async () => {
        const rows = await securityEvents(tenantA.id, 'SHIELD_BLOCKED', ip);
        return rows.length === 1 ? rows : undefined;
      },
      { what: 'a SHIELD_BLOCKED security event' },
    );
    expect(events[0]).toMatchObject({
      severity: 'MEDIUM',
      details: { method: 'GET', path: '/api/v1/cloudpods' },
    });

    // more refusals of the same address add hits, not rows or security events (one more of each only
    // if the minute turned in between)
    const more = await Promise.all(Array.from({ length: 20 }, () => listPods(bearer(tenantA.token), ip)));
    for (const res of more) expectProblem(res, 403, 'ip-blocked');
    const rows = await eventsWithHits(tenantA.id, ip, 21);
    expect(rows.length).toBeLessThanOrEqual(2);
    expect(await securityEvents(tenantA.id, 'SHIELD_BLOCKED', ip)).toHaveLength(rows.length);

    // writes are refused before their body is even looked at; other addresses pass
    expectProblem(
      await http()
        .post('/api/v1/cloudpods')
        .set('Authorization', bearer(tenantA.token))
        .set('X-Forwarded-For', ip)
        .send({}),
      403,
      'ip-blocked',
    );
    expect((await listPods(bearer(tenantA.token), '198.51.101.8')).status).toBe(200);
  });

  it('leaves other tenants and the platform unaffected', async () => {
    expect((await setShield(tenantA, 'ENFORCE', [{ action: 'DENY', cidr: '198.51.100.0/24' }])).status).toBe(
      200,
    );
    const ip = '198.51.100.9';
    expectProblem(await listPods(bearer(tenantA.token), ip), 403, 'ip-blocked');
    expect((await listPods(bearer(tenantB.token), ip)).status).toBe(200);
    const b = await http().get('/api/v1/security/shield').set('Authorization', bearer(tenantB.token));
    expect(b.body).toMatchObject({ mode: 'OFF', rules: [] });
    const admin = await http()
      .get(`/api/v1/tenants/${tenantA.id}`)
      .set('Authorization', bearer(stack.adminToken))
      .set('X-Forwarded-For', ip);
    expect(admin.status).toBe(200);
    await eventsWithHits(tenantA.id, ip, 1);
    expect(await shieldEvents(tenantB.id, ip)).toEqual([]);
  });

  it('with an ALLOW rule, refuses every address no rule holds; the first matching rule decides', async () => {
    const rules: Rule[] = [
      { action: 'DENY', cidr: '192.0.2.128/25' },
      { action: 'ALLOW', cidr: '192.0.2.0/24' },
      { action: 'ALLOW', cidr: '203.0.113.0/24' },
    ];
    expect((await setShield(tenantA, 'ENFORCE', rules)).status).toBe(200);
    expect((await listPods(bearer(tenantA.token), '203.0.113.50')).status).toBe(200);
    expect((await listPods(bearer(tenantA.token), '192.0.2.11')).status).toBe(200);
    // inside the ALLOW /24 but the DENY /25 comes first
    expectProblem(await listPods(bearer(tenantA.token), '192.0.2.200'), 403, 'ip-blocked');
    const [denied] = await eventsWithHits(tenantA.id, '192.0.2.200', 1);
    expect(denied).toMatchObject({ rule_cidr: '192.0.2.128/25' });
    // outside every ALLOW rule: refused with no rule to name
    expectProblem(await listPods(bearer(tenantA.token), '198.51.100.77'), 403, 'ip-blocked');
    const [outsider] = await eventsWithHits(tenantA.id, '198.51.100.77', 1);
    expect(outsider).toMatchObject({ rule_id: null, rule_cidr: null, action: 'BLOCKED' });
    // an IPv6 client is outside IPv4-only ALLOW rules
    expectProblem(await listPods(bearer(tenantA.token), '2001:db8::1'), 403, 'ip-blocked');
  });

  it('matches IPv6 clients against IPv6 rules, in any spelling', async () => {
    const rules: Rule[] = [
      { action: 'DENY', cidr: '2001:DB8:BAD::/48' },
      { action: 'ALLOW', cidr: '::/0' },
      { action: 'ALLOW', cidr: '0.0.0.0/0' },
    ];
    const set = await setShield(tenantA, 'ENFORCE', rules);
    expect(set.status).toBe(200);
    expect(set.body.rules[0].cidr).toBe('2001:db8:bad::/48');
    expectProblem(await listPods(bearer(tenantA.token), '2001:db8:bad:0:0::1'), 403, 'ip-blocked');
    expect((await listPods(bearer(tenantA.token), '2001:db8:900d::1')).status).toBe(200);
    expect((await listPods(bearer(tenantA.token), '198.51.100.1')).status).toBe(200);
    // recorded under its canonical spelling
    const [row] = await eventsWithHits(tenantA.id, '2001:db8:bad::1', 1);
    expect(row).toMatchObject({ rule_cidr: '2001:db8:bad::/48' });
  });

  it('applies to a signed-in user of the tenant as to its tokens; OFF keeps the rules but checks nothing', async () => {
    const password = 'shield test passphrase';
    const email = 'owner@shield-user.test';
    await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
      email,
      password,
      platformAdmin: false,
      membership: { tenantId: tenantA.id, role: 'OWNER' },
    });
    const login = await http()
      .post('/api/v1/auth/login')
      .set('X-Forwarded-For', '198.51.100.30')
      .send({ email, password, tenant_id: tenantA.id });
    expect(login.status).toBe(200);
    const access = bearer(login.body.access_token as string);
    expect((await setShield(tenantA, 'ENFORCE', [{ action: 'DENY', cidr: '198.51.100.0/24' }])).status).toBe(
      200,
    );
    expectProblem(await listPods(access, '198.51.100.30'), 403, 'ip-blocked');
    const [row] = await eventsWithHits(tenantA.id, '198.51.100.30', 1);
    expect(row?.actor_id).toMatch(/^usr_/);
    const [event] = await waitFor(
      async () => {
        const rows = await securityEvents(tenantA.id, 'SHIELD_BLOCKED', '198.51.100.30');
        return rows.length > 0 ? rows : undefined;
      },
      { what: 'the user’s SHIELD_BLOCKED event' },
    );
    expect(event).toBeDefined();

    const off = await setShield(tenantA, 'OFF', [{ action: 'DENY', cidr: '198.51.100.0/24' }]);
    expect(off.body.rules).toHaveLength(1);
    expect((await listPods(access, '198.51.100.30')).status).toBe(200);
  });
});

describe('a change made by another API process', () => {
  it('applies here within the cache’s bound (2 × SHIELD_CACHE_MS, under 5 s)', async () => {
    expect((await setShield(tenantA, 'ENFORCE', [{ action: 'DENY', cidr: '198.51.100.0/24' }])).status).toBe(
      200,
    );
    const ip = '203.0.113.140';
    expect((await listPods(bearer(tenantA.token), ip)).status).toBe(200);
    // written behind this process's back: nothing here forgets the cached policy
    const changedAt = Date.now();
    await stack.db.query(`update shield_rules set cidr = '203.0.113.128/25' where tenant_id = $1`, [
      tenantA.id,
    ]);
    await waitFor(async () => (await listPods(bearer(tenantA.token), ip)).status === 403, {
      what: 'the rule changed elsewhere to apply',
      timeoutMs: 10_000,
    });
    expect(Date.now() - changedAt).toBeLessThan(5000);
  });
});

describe('the events list', () => {
  it('pages a tenant’s events, filters by ip and action, and keeps tenants apart', async () => {
    expect((await setShield(tenantA, 'MONITOR', [{ action: 'DENY', cidr: '198.51.100.0/24' }])).status).toBe(
      200,
    );
    expect((await listPods(bearer(tenantA.token), '198.51.100.101')).status).toBe(200);
    expect((await setShield(tenantA, 'ENFORCE', [{ action: 'DENY', cidr: '198.51.100.0/24' }])).status).toBe(
      200,
    );
    expectProblem(await listPods(bearer(tenantA.token), '198.51.100.102'), 403, 'ip-blocked');
    await eventsWithHits(tenantA.id, '198.51.100.101', 1);
    await eventsWithHits(tenantA.id, '198.51.100.102', 1);

    const list = (auth: string, query: Record<string, string>) =>
      http()
        .get('/api/v1/security/shield/events')
        .query(query)
        .set('Authorization', auth)
        .set('X-Forwarded-For', ADMIN_IP);

    const byIp = await list(bearer(tenantA.token), { ip: '::ffff:198.51.100.101' });
    expect(byIp.status).toBe(200);
    expect(byIp.body.data).toEqual([
      expect.objectContaining({
        tenant_id: tenantA.id,
        ip: '198.51.100.101',
        source: 'SHIELD',
        action: 'WOULD_BLOCK',
        mode: 'MONITOR',
        hits: 1,
        path: '/api/v1/cloudpods',
      }),
    ]);
    const blocked = await list(bearer(tenantA.token), { action: 'BLOCKED', limit: '100' });
    expect(blocked.body.data.length).toBeGreaterThan(0);
    expect(blocked.body.data.every((e: { action: string }) => e.action === 'BLOCKED')).toBe(true);

    // cursor pages, newest first, without overlap
    const first = await list(bearer(tenantA.token), { limit: '1' });
    expect(first.body.data).toHaveLength(1);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await list(bearer(tenantA.token), {
      limit: '1',
      cursor: first.body.next_cursor as string,
    });
    expect(second.body.data).toHaveLength(1);
    expect(second.body.data[0].id < first.body.data[0].id).toBe(true);

    // tenant B sees none of A's, and may not ask for them
    const b = await list(bearer(tenantB.token), { limit: '100' });
    expect(b.body.data.filter((e: { tenant_id: string }) => e.tenant_id !== tenantB.id)).toEqual([]);
    expectProblem(await list(bearer(tenantB.token), { tenant_id: tenantA.id }), 403, 'forbidden');
    // the platform reads any tenant's
    const platform = await list(bearer(stack.adminToken), { tenant_id: tenantA.id, ip: '198.51.100.102' });
    expect(platform.body.data).toEqual([
      expect.objectContaining({ tenant_id: tenantA.id, action: 'BLOCKED' }),
    ]);

    const hostile: Record<string, string>[] = [
      { ip: 'not-an-ip' },
      { action: 'ALLOW' },
      { cursor: 'garbage' },
      { tenant_id: 'x' },
    ];
    for (const query of hostile) {
      expectProblem(await list(bearer(tenantA.token), query), 400, 'validation-failed');
    }
  });
});

describe('the security policy’s IP allowlist', () => {
  const setAllowlist = (tenant: ActiveTenant, allowlist: string[], from = ADMIN_IP) =>
    http()
      .put('/api/v1/security/policy')
      .set('Authorization', bearer(tenant.token))
      .set('X-Forwarded-For', from)
      .send({ ip_allowlist: allowlist });

  afterEach(async () => {
    expect((await setAllowlist(tenantA, [])).status).toBe(200);
  });

  it('refuses every request from outside it with 403 ip-not-allowed and a security event, before the shield', async () => {
    expect((await setAllowlist(tenantA, ['192.0.2.0/24', '2001:db8:a11::/48'])).status).toBe(200);
    const outside = '203.0.113.66';
    const refused = await listPods(bearer(tenantA.token), outside);
    expectProblem(refused, 403, 'ip-not-allowed');
    expect(JSON.stringify(refused.body)).not.toContain('192.0.2');
    expect((await listPods(bearer(tenantA.token), '192.0.2.99')).status).toBe(200);
    expect((await listPods(bearer(tenantA.token), '2001:db8:a11::9')).status).toBe(200);
    expectProblem(await listPods(bearer(tenantA.token), '2001:db8:b11::9'), 403, 'ip-not-allowed');
    // other tenants are not bound by it
    expect((await listPods(bearer(tenantB.token), outside)).status).toBe(200);

    const [row] = await eventsWithHits(tenantA.id, outside, 1);
    expect(row).toMatchObject({ source: 'ALLOWLIST', action: 'BLOCKED', rule_id: null });
    await waitFor(async () => (await securityEvents(tenantA.id, 'IP_NOT_ALLOWED', outside)).length === 1, {
      what: 'an IP_NOT_ALLOWED security event',
    });

    // inside the allowlist, the shield still applies
    expect((await setShield(tenantA, 'ENFORCE', [{ action: 'DENY', cidr: '192.0.2.200/29' }])).status).toBe(
      200,
    );
    expectProblem(await listPods(bearer(tenantA.token), '192.0.2.201'), 403, 'ip-blocked');
    expect((await listPods(bearer(tenantA.token), '192.0.2.12')).status).toBe(200);
  });
});
