/**
 * API tokens with fine scopes, a lifetime, a last-used time and revocation: what a token may do is
 * what its scopes grant, a caller mints tokens within its own permissions, an expired or revoked
 * token is refused exactly like an unknown one, and last_used_at is written at most once a minute.
 */
import request from 'supertest';
import { forgetToken } from '../../src/api/middleware/auth';
import { authSettings } from '../../src/api/routes/auth';
import { MAX_TOKEN_LIFETIME_DAYS } from '../../src/domain/api-tokens';
import { AppError } from '../../src/domain/errors';
import type { MembershipRole } from '../../src/domain/permissions';
import { systemEm } from '../../src/db/orm';
import { accessTokenSettings, signAccessToken } from '../../src/services/access-tokens';
import { issueToken } from '../../src/services/api-tokens';
import { createUser, login } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let tenant: ActiveTenant;
let other: ActiveTenant;
const DAY_MS = 86_400_000;
const PASSWORD = 'token suite passphrase';

beforeAll(async () => {
  stack = await startTestStack();
  tenant = await createActiveTenant(stack, 'tok-a');
  other = await createActiveTenant(stack, 'tok-b');
});
afterAll(async () => {
  await stack?.close();
});

const bearer = (secret: string) => `Bearer ${secret}`;

/** Creates a token through the API as `auth`; returns the answer. */
function create(auth: string, body: Record<string, unknown>) {
  return request(stack.app).post('/api/v1/tokens').set('Authorization', auth).send(body);
}

async function created(auth: string, body: Record<string, unknown>): Promise<{ id: string; auth: string }> {
  const res = await create(auth, body);
  expect(res.status).toBe(201);
  return { id: res.body.token.id as string, auth: bearer(res.body.secret as string) };
}

/** A signed-in member of `tenantId` with `role` (signed in through the service: no auth rate limit spent). */
async function member(tenantId: string, role: MembershipRole, email: string): Promise<string> {
  const em = systemEm(stack.db.orm);
  const settings = authSettings(stack.config);
  await createUser(em, settings, { email, password: PASSWORD, membership: { tenantId, role } });
  const session = await login(em, settings, { email, password: PASSWORD }, { ip: null, userAgent: null });
  const { token } = await signAccessToken(accessTokenSettings(stack.config), session);
  return `Bearer ${token}`;
}

const get = (path: string, auth: string) => request(stack.app).get(path).set('Authorization', auth);

describe('fine scopes', () => {
  it('a pods:read token reads pods, and is refused pod changes, billing and tokens with 403', async () => {
    const podsRead = await created(bearer(tenant.token), { name: 'pods reader', scopes: ['pods:read'] });
    expect((await get('/api/v1/cloudpods', podsRead.auth)).status).toBe(200);
    expectProblem(
      await request(stack.app).post('/api/v1/cloudpods').set('Authorization', podsRead.auth).send({}),
      403,
      'forbidden',
    );
    expectProblem(await get('/api/v1/billing/invoices', podsRead.auth), 403, 'forbidden');
    expectProblem(await get('/api/v1/tokens', podsRead.auth), 403, 'forbidden');
    expectProblem(await get('/api/v1/customers', podsRead.auth), 403, 'forbidden');
  });

  it('a :write scope reads its area too; read and write keep their meaning', async () => {
    const billing = await created(bearer(tenant.token), { name: 'billing', scopes: ['billing:write'] });
    expect((await get('/api/v1/billing/invoices', billing.auth)).status).toBe(200);
    const invoice = await request(stack.app)
      .post('/api/v1/billing/invoices')
      .set('Authorization', billing.auth)
      .send({ customer_id: 'cus_00000000000000000000000000', lines: [] });
    expect(invoice.status).not.toBe(403);
    expectProblem(await get('/api/v1/cloudpods', billing.auth), 403, 'forbidden');

    const read = await created(bearer(tenant.token), { name: 'reader', scopes: ['read'] });
    for (const path of [
      '/api/v1/cloudpods',
      '/api/v1/billing/invoices',
      '/api/v1/tokens',
      '/api/v1/customers',
    ]) {
      expect({ path, status: (await get(path, read.auth)).status }).toEqual({ path, status: 200 });
    }
    // security events are not a plain read
    expectProblem(await get('/api/v1/security/events', read.auth), 403, 'forbidden');
    const admin = await created(bearer(tenant.token), { name: 'admin', scopes: ['admin'] });
    expect((await get('/api/v1/security/events', admin.auth)).status).toBe(200);
  });

  it('shows scopes, expiry, last use and revocation in the creation and the listing', async () => {
    const before = Date.now();
    const res = await create(bearer(tenant.token), { name: 'viewed', scopes: ['pods:read', 'billing:read'] });
    expect(res.status).toBe(201);
    expect(res.body.token).toEqual({
      id: expect.stringMatching(/^tok_/),
      tenant_id: tenant.id,
      name: 'viewed',
      prefix: expect.stringMatching(/^ppt_/),
      scopes: ['pods:read', 'billing:read'],
      created_at: expect.any(String),
      last_used_at: null,
      expires_at: expect.any(String),
      revoked_at: null,
    });
    // 90 days when no lifetime is asked for
    const expiresIn = new Date(res.body.token.expires_at as string).getTime() - before;
    expect(Math.abs(expiresIn - 90 * DAY_MS)).toBeLessThan(60_000);
    expect((await get('/api/v1/cloudpods', bearer(res.body.secret as string))).status).toBe(200);
    const list = await get('/api/v1/tokens', bearer(tenant.token));
    const listed = (list.body.data as { id: string; last_used_at: string | null }[]).find(
      (t) => t.id === res.body.token.id,
    );
    expect(listed).toMatchObject({ scopes: ['pods:read', 'billing:read'], last_used_at: expect.any(String) });
  });
});

describe('minting within one’s own permissions', () => {
  it('a token mints only what its scopes grant', async () => {
    const minter = await created(bearer(tenant.token), {
      name: 'minter',
      scopes: ['tokens:write', 'pods:read'],
    });
    expect((await create(minter.auth, { name: 'pods', scopes: ['pods:read'] })).status).toBe(201);
    expect((await create(minter.auth, { name: 'tokens', scopes: ['tokens:read'] })).status).toBe(201);
    for (const scopes of [['pods:write'], ['billing:read'], ['read'], ['write'], ['admin']]) {
      const res = await create(minter.auth, { name: 'too much', scopes });
      expectProblem(res, 403, 'forbidden');
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'scopes' })]);
    }
    // the default scopes (read and write) are more than it holds
    expectProblem(await create(minter.auth, { name: 'default' }), 403, 'forbidden');
  });

  it('a user mints within their role: OWNER and ADMIN anything, the others cannot create tokens', async () => {
    const ownerAuth = await member(tenant.id, 'OWNER', 'owner-minter@tok.test');
    const adminAuth = await member(tenant.id, 'ADMIN', 'admin-minter@tok.test');
    for (const auth of [ownerAuth, adminAuth]) {
      const res = await create(auth, { name: 'by a user', scopes: ['admin'] });
      expect(res.status).toBe(201);
      expect(res.body.token.scopes).toEqual(['admin']);
    }
    for (const role of ['BILLING', 'SUPPORT', 'READONLY'] as const) {
      const auth = await member(tenant.id, role, `${role.toLowerCase()}-minter@tok.test`);
      expectProblem(await create(auth, { name: 'no', scopes: ['pods:read'] }), 403, 'forbidden');
    }
  });

  it('records who created and who revoked a token', async () => {
    const ownerAuth = await member(tenant.id, 'OWNER', 'owner-events@tok.test');
    const token = await created(ownerAuth, { name: 'evented', scopes: ['audit:read'] });
    const revoked = await request(stack.app)
      .delete(`/api/v1/tokens/${token.id}`)
      .set('Authorization', ownerAuth);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).toEqual(expect.any(String));
    const events = await stack.db.query<{
      kind: string;
      tenant_id: string;
      user_id: string | null;
      details: Record<string, unknown>;
    }>(
      `select kind, tenant_id, user_id, details from security_events
        where details->>'token_id' = $1 order by created_at`,
      [token.id],
    );
    expect(events.map((e) => e.kind)).toEqual(['TOKEN_CREATED', 'TOKEN_REVOKED']);
    expect(events.every((e) => e.tenant_id === tenant.id && e.user_id !== null)).toBe(true);
    expect(events[0]?.details).toMatchObject({ scopes: ['audit:read'], expires_at: expect.any(String) });
  });
});

describe('lifetime', () => {
  it('takes expires_in_days or expires_at within a year, and refuses anything else with 400', async () => {
    const inDays = await create(bearer(tenant.token), { name: 'week', scopes: ['read'], expires_in_days: 7 });
    expect(inDays.status).toBe(201);
    const weekAhead = new Date(inDays.body.token.expires_at as string).getTime() - Date.now();
    expect(Math.abs(weekAhead - 7 * DAY_MS)).toBeLessThan(60_000);
    const at = new Date(Date.now() + 30 * DAY_MS).toISOString();
    const atRes = await create(bearer(tenant.token), { name: 'month', scopes: ['read'], expires_at: at });
    expect(atRes.status).toBe(201);
    expect(atRes.body.token.expires_at).toBe(at);

    for (const body of [
      { expires_in_days: MAX_TOKEN_LIFETIME_DAYS + 1 },
      { expires_in_days: 0 },
      { expires_in_days: 1.5 },
      { expires_in_days: '7' },
      { expires_at: new Date(Date.now() - 1000).toISOString() },
      { expires_at: new Date(Date.now() + (MAX_TOKEN_LIFETIME_DAYS + 1) * DAY_MS).toISOString() },
      { expires_at: 'next tuesday' },
      { expires_in_days: 3, expires_at: at },
    ]) {
      expectProblem(
        await create(bearer(tenant.token), { name: 'bad', scopes: ['read'], ...body }),
        400,
        'validation-failed',
      );
    }
    // nothing was half-made
    const names = ((await get('/api/v1/tokens', bearer(tenant.token))).body.data as { name: string }[]).map(
      (t) => t.name,
    );
    expect(names).not.toContain('bad');
  });

  it('refuses an expired, a revoked and an unknown token alike: 401 with one answer', async () => {
    const expiring = await created(bearer(tenant.token), { name: 'expiring', scopes: ['read'] });
    const revoked = await created(bearer(tenant.token), { name: 'to revoke', scopes: ['read'] });
    expect((await get('/api/v1/cloudpods', expiring.auth)).status).toBe(200);
    expect((await get('/api/v1/cloudpods', revoked.auth)).status).toBe(200);
    await stack.db.query(`update api_tokens set expires_at = now() - interval '1 second' where id = $1`, [
      expiring.id,
    ]);
    // a cached row is still checked for expiry on each request; forgetting it here also shows the stored row refused
    forgetToken(expiring.id);
    const revoke = await request(stack.app)
      .delete(`/api/v1/tokens/${revoked.id}`)
      .set('Authorization', bearer(tenant.token));
    expect(revoke.status).toBe(200);
    const unknown = bearer(`ppt_${'A'.repeat(43)}`);
    const answers = [];
    for (const auth of [expiring.auth, revoked.auth, unknown]) {
      const res = await get('/api/v1/cloudpods', auth);
      expectProblem(res, 401, 'unauthenticated');
      answers.push({ type: res.body.type, title: res.body.title, detail: res.body.detail });
    }
    expect(answers[0]).toEqual(answers[2]);
    expect(answers[1]).toEqual(answers[2]);
  });

  it('refuses a token at its expiry even while its row is cached', async () => {
    const token = await created(bearer(tenant.token), { name: 'cached', scopes: ['read'] });
    // it expires well inside the lookup cache's second: the cached row is refused, not only a fresh one
    await stack.db.query(
      `update api_tokens set expires_at = now() + interval '600 milliseconds' where id = $1`,
      [token.id],
    );
    forgetToken(token.id);
    expect((await get('/api/v1/cloudpods', token.auth)).status).toBe(200);
    const refused = await waitFor(
      async () => {
        const res = await get('/api/v1/cloudpods', token.auth);
        return res.status === 200 ? undefined : res;
      },
      { what: 'the token refused at its expiry', timeoutMs: 5_000, intervalMs: 50 },
    );
    expectProblem(refused, 401, 'unauthenticated');
    const [row] = await stack.db.query<{ expired: boolean }>(
      'select expires_at <= now() as expired from api_tokens where id = $1',
      [token.id],
    );
    expect(row?.expired).toBe(true);
  });
});

describe('last use', () => {
  const lastUsed = async (id: string) =>
    (
      await stack.db.query<{ last_used_at: Date | null }>(
        'select last_used_at from api_tokens where id = $1',
        [id],
      )
    )[0]?.last_used_at ?? null;

  it('is written on first use, then at most once a minute', async () => {
    const token = await created(bearer(tenant.token), { name: 'used', scopes: ['read'] });
    expect(await lastUsed(token.id)).toBeNull();
    expect((await get('/api/v1/cloudpods', token.auth)).status).toBe(200);
    const first = await lastUsed(token.id);
    expect(first).toBeInstanceOf(Date);

    // within the minute: another request (its row read afresh) writes nothing
    const recent = new Date(Date.now() - 30_000);
    await stack.db.query('update api_tokens set last_used_at = $2 where id = $1', [token.id, recent]);
    forgetToken(token.id);
    for (let i = 0; i < 3; i++) expect((await get('/api/v1/cloudpods', token.auth)).status).toBe(200);
    expect((await lastUsed(token.id))?.getTime()).toBe(recent.getTime());

    // over a minute ago: the next request writes it
    const old = new Date(Date.now() - 120_000);
    await stack.db.query('update api_tokens set last_used_at = $2 where id = $1', [token.id, old]);
    forgetToken(token.id);
    expect((await get('/api/v1/cloudpods', token.auth)).status).toBe(200);
    expect((await lastUsed(token.id))?.getTime()).toBeGreaterThan(Date.now() - 10_000);
  });
});

describe('platform tokens and tokens issued by the platform', () => {
  it('a platform token takes read, write, admin and the platform’s fine scopes, never a tenant-only one', async () => {
    const em = systemEm(stack.db.orm);
    const refused = await issueToken(em, { tenantId: null, name: 'bad', scopes: ['pods:read'] }).catch(
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).kind).toBe('validation_failed');
    const auditor = await issueToken(em, { tenantId: null, name: 'auditor', scopes: ['security:read'] });
    expect((await get('/api/v1/security/events', bearer(auditor.secret))).status).toBe(200);
    expectProblem(await get('/api/v1/tenants', bearer(auditor.secret)), 403, 'forbidden');
    const admin = await issueToken(em, { tenantId: null, name: 'admin', scopes: ['admin'] });
    expect((await get('/api/v1/tenants', bearer(admin.secret))).status).toBe(200);
  });

  it('a platform administrator issues a tenant fine-scoped, expiring tokens', async () => {
    const res = await request(stack.app)
      .post(`/api/v1/tenants/${other.id}/tokens`)
      .set('Authorization', bearer(stack.adminToken))
      .send({ name: 'issued', scopes: ['catalog:write'], expires_in_days: 10 });
    expect(res.status).toBe(201);
    expect(res.body.token).toMatchObject({ tenant_id: other.id, scopes: ['catalog:write'] });
    const expiresIn = new Date(res.body.token.expires_at as string).getTime() - Date.now();
    expect(Math.abs(expiresIn - 10 * DAY_MS)).toBeLessThan(60_000);
    const auth = bearer(res.body.secret as string);
    expect((await get('/api/v1/products', auth)).status).toBe(200);
    expectProblem(await get('/api/v1/cloudpods', auth), 403, 'forbidden');
    expectProblem(
      await request(stack.app)
        .post(`/api/v1/tenants/${other.id}/tokens`)
        .set('Authorization', bearer(stack.adminToken))
        .send({ name: 'too long', expires_in_days: MAX_TOKEN_LIFETIME_DAYS + 1 }),
      400,
      'validation-failed',
    );
  });
});
