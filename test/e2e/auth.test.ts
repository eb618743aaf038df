/**
 * Users signing in through HTTP: login without account enumeration, access tokens (JWT) that are
 * refused when forged, expired or for another audience, refresh-token rotation with reuse
 * detection, logout, sessions, password changes, and a user's principal on tenant routes — the
 * permission of their role, 403 without it, 404 for another tenant's resource.
 */
import { createHash, createHmac } from 'node:crypto';
import { argon2i, hash as argon2Hash } from 'argon2';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import request from 'supertest';
import { authSettings } from '../../src/api/routes/auth';
import { systemEm } from '../../src/db/orm';
import { parseStoredHash } from '../../src/domain/passwords';
import type { MembershipRole } from '../../src/domain/permissions';
import { addMembership, createUser } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let tenantA: ActiveTenant;
let tenantB: ActiveTenant;
/** a customer of tenant B, which no user of A may see */
let customerOfB: string;

const PASSWORD = 'correct horse battery staple';
const http = () => request(stack.app);
const bearer = (token: string) => `Bearer ${token}`;

beforeAll(async () => {
  // The auth limit (5 per 15 minutes per address) would stop this suite, which signs in far more often.
  stack = await startTestStack({ RATE_LIMIT_ENABLED: 'false' });
  [tenantA, tenantB] = await Promise.all([
    createActiveTenant(stack, 'auth-a'),
    createActiveTenant(stack, 'auth-b'),
  ]);
  const customer = await http()
    .post('/api/v1/customers')
    .set('Authorization', bearer(tenantB.token))
    .send({ email: 'someone@auth-b.test', name: 'Of B' });
  expect(customer.status).toBe(201);
  customerOfB = customer.body.id as string;
});
afterAll(async () => {
  await stack?.close();
});

let users = 0;
/** A user with a role in tenant A (or a platform administrator), made as `podplane user:create` makes them. */
async function newUser(
  role: MembershipRole | null,
  opts: { tenant?: ActiveTenant; platformAdmin?: boolean; password?: string } = {},
): Promise<{ id: string; email: string; password: string }> {
  users += 1;
  const email = `User${users}@Auth.test`;
  const password = opts.password ?? PASSWORD;
  const { user } = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email,
    password,
    platformAdmin: opts.platformAdmin ?? false,
    membership: role ? { tenantId: (opts.tenant ?? tenantA).id, role } : undefined,
  });
  return { id: user.id, email: email.toLowerCase(), password };
}

interface SignedIn {
  access_token: string;
  refresh_token: string;
  session_id: string;
  tenant_id: string | null;
  expires_in: number;
  token_type: string;
}

async function signIn(
  user: { email: string; password: string },
  body: Record<string, unknown> = {},
  userAgent = 'auth-test',
): Promise<SignedIn> {
  const res = await http()
    .post('/api/v1/auth/login')
    .set('User-Agent', userAgent)
    .send({ email: user.email, password: user.password, ...body });
  expect(res.status).toBe(200);
  return res.body as SignedIn;
}

const sessions = (token: string) => http().get('/api/v1/auth/sessions').set('Authorization', bearer(token));
const refreshWith = (refreshToken: string) =>
  http().post('/api/v1/auth/refresh').send({ refresh_token: refreshToken });

async function count(table: string): Promise<number> {
  const [row] = await stack.db.query<{ n: number }>(`select count(*)::int as n from ${table}`);
  return row?.n ?? -1;
}

const secretKey = () => new TextEncoder().encode(stack.config.JWT_SECRET);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('POST /api/v1/auth/login', () => {
  it('signs in with email (any case) and password: a JWT access token, a refresh token stored only as its hash', async () => {
    const user = await newUser('OWNER');
    const res = await http()
      .post('/api/v1/auth/login')
      .set('User-Agent', 'curl/8.0 <script>alert(1)</script>')
      .send({ email: `  ${user.email.toUpperCase()} `, password: PASSWORD });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
      refresh_token: expect.stringMatching(/^ppr_[A-Za-z0-9_-]{43}$/),
      session_id: expect.stringMatching(/^ses_/),
      tenant_id: tenantA.id,
    });
    const body = res.body as SignedIn;
    expect(decodeProtectedHeader(body.access_token)).toEqual({ alg: 'HS256', typ: 'at+jwt' });
    const claims = decodeJwt(body.access_token);
    expect(claims).toMatchObject({
      sub: user.id,
      sid: body.session_id,
      tid: tenantA.id,
      iss: 'podplane',
      aud: 'podplane-api',
    });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(900);

    const rows = await stack.db.query<Record<string, unknown>>('select * from sessions where user_id = $1', [
      user.id,
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: body.session_id,
      family_id: body.session_id,
      parent_id: null,
      tenant_id: tenantA.id,
      refresh_token_hash: createHash('sha256').update(body.refresh_token).digest('hex'),
      revoked_at: null,
      rotated_at: null,
      created_user_agent: 'curl/8.0 <script>alert(1)</script>',
    });
    expect(JSON.stringify(rows)).not.toContain(body.refresh_token);

    const listed = await sessions(body.access_token);
    expect(listed.status).toBe(200);
    expect(listed.headers['content-type']).toMatch(/^application\/json/);
    expect(listed.body.data).toEqual([
      expect.objectContaining({
        id: body.session_id,
        current: true,
        tenant_id: tenantA.id,
        user_agent: 'curl/8.0 <script>alert(1)</script>',
      }),
    ]);
  });

  it('answers a wrong password, an unknown email and a disabled account with the same 401, after the same work', async () => {
    const user = await newUser('OWNER');
    const disabled = await newUser('OWNER');
    await stack.db.query('update users set disabled_at = now() where id = $1', [disabled.id]);
    const before = await count('sessions');
    const attempt = async (email: string, password: string) => {
      const started = process.hrtime.bigint();
      const res = await http().post('/api/v1/auth/login').send({ email, password });
      return { res, ms: Number(process.hrtime.bigint() - started) / 1e6 };
    };
    const wrong = await attempt(user.email, 'not the password at all');
    const unknown = await attempt('nobody@auth.test', 'not the password at all');
    const off = await attempt(disabled.email, PASSWORD);
    for (const { res } of [wrong, unknown, off]) {
      expectProblem(res, 401, 'unauthenticated');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="podplane"');
    }
    const strip = (body: Record<string, unknown>) => ({ ...body, request_id: undefined });
    expect(strip(unknown.res.body)).toEqual(strip(wrong.res.body));
    expect(strip(off.res.body)).toEqual(strip(wrong.res.body));
    expect(await count('sessions')).toBe(before);

    // Same work: an unknown email is checked against a dummy hash. Medians of interleaved tries; a
    // lookup that skipped hashing would answer in a few milliseconds, a fraction of a hash.
    const wrongMs: number[] = [];
    const unknownMs: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      wrongMs.push((await attempt(user.email, `wrong password ${i}`)).ms);
      unknownMs.push((await attempt(`nobody${i}@auth.test`, `wrong password ${i}`)).ms);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const ratio = median(unknownMs) / median(wrongMs);
    expect(ratio).toBeGreaterThan(0.3);
    expect(ratio).toBeLessThan(3.5);
  });

  it('picks the tenant: the one named, the only one, or asks; a non-member is 403', async () => {
    const member = await newUser('READONLY');
    await addMembership(systemEm(stack.db.orm), { userId: member.id, tenantId: tenantB.id, role: 'BILLING' });
    const ask = await http().post('/api/v1/auth/login').send({ email: member.email, password: PASSWORD });
    expectProblem(ask, 400, 'validation-failed');
    expect(ask.body.errors.map((e: { field: string }) => e.field)).toEqual(['tenant_id']);
    const inB = await signIn(member, { tenant_id: tenantB.id });
    expect(inB.tenant_id).toBe(tenantB.id);
    expect(decodeJwt(inB.access_token).tid).toBe(tenantB.id);

    const only = await newUser('SUPPORT');
    expect((await signIn(only)).tenant_id).toBe(tenantA.id);
    const outsider = await http()
      .post('/api/v1/auth/login')
      .send({ email: only.email, password: PASSWORD, tenant_id: tenantB.id });
    expectProblem(outsider, 403, 'forbidden');
    const nowhere = await newUser(null);
    expectProblem(
      await http().post('/api/v1/auth/login').send({ email: nowhere.email, password: PASSWORD }),
      403,
      'forbidden',
    );
  });

  it('replaces a hash weaker than the current parameters on a successful login', async () => {
    const user = await newUser('OWNER');
    const weak = await argon2Hash(PASSWORD, { type: argon2i, memoryCost: 8192, timeCost: 1, parallelism: 1 });
    await stack.db.query('update users set password_hash = $2 where id = $1', [user.id, weak]);
    const wrong = await http()
      .post('/api/v1/auth/login')
      .send({ email: user.email, password: 'wrong password!' });
    expect(wrong.status).toBe(401);
    const [untouched] = await stack.db.query<{ password_hash: string }>(
      'select password_hash from users where id = $1',
      [user.id],
    );
    expect(untouched?.password_hash).toBe(weak);

    await signIn(user);
    const [row] = await stack.db.query<{
      password_hash: string;
      password_changed_at: Date;
      created_at: Date;
    }>('select password_hash, password_changed_at, created_at from users where id = $1', [user.id]);
    expect(parseStoredHash(row?.password_hash ?? '')).toEqual({
      algorithm: 'argon2id',
      version: 19,
      params: { memoryKib: 19456, timeCost: 2, parallelism: 1 },
    });
    await signIn(user);
  });

  it.each([
    ['no body', undefined],
    ['an unknown field', { email: 'a@auth.test', password: PASSWORD, admin: true }],
    [
      'a prototype-pollution key',
      JSON.parse(`{"email":"a@auth.test","password":"${PASSWORD}","__proto__":{"x":1}}`),
    ],
    ['a number for the email', { email: 42, password: PASSWORD }],
    ['an object for the password', { email: 'a@auth.test', password: { $ne: '' } }],
    ['an SQL injection for the email', { email: "' or 1=1 --", password: PASSWORD }],
    ['a 10 000 character password', { email: 'a@auth.test', password: 'x'.repeat(10_000) }],
    ['a NUL in the password', { email: 'a@auth.test', password: `${PASSWORD}\u0000` }],
    ['an array', [{ email: 'a@auth.test', password: PASSWORD }]],
  ])('refuses %s with a 400 and stores nothing', async (_label, body) => {
    const before = await count('sessions');
    const req = http().post('/api/v1/auth/login');
    const res = body === undefined ? await req : await req.send(body as object);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.type).toBe('https://podplane.dev/problems/validation-failed');
    expect(await count('sessions')).toBe(before);
  });
});

describe('access tokens', () => {
  let user: { id: string; email: string; password: string };
  let signedIn: SignedIn;
  beforeAll(async () => {
    user = await newUser('OWNER');
    signedIn = await signIn(user);
  });

  /** A token with our claims, signed with our secret unless told otherwise. */
  async function forge(
    overrides: { iss?: string; aud?: string; typ?: string; iat?: number; exp?: number; tid?: string } = {},
    key: Uint8Array = secretKey(),
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ sid: signedIn.session_id, tid: overrides.tid ?? tenantA.id })
      .setProtectedHeader({ alg: 'HS256', typ: overrides.typ ?? 'at+jwt' })
      .setSubject(user.id)
      .setIssuer(overrides.iss ?? 'podplane')
      .setAudience(overrides.aud ?? 'podplane-api')
      .setIssuedAt(overrides.iat ?? now)
      .setExpirationTime(overrides.exp ?? now + 60)
      .sign(key);
  }

  it('are accepted as signed, and a forged copy of the same claims is too (the control for the cases below)', async () => {
    expect((await sessions(signedIn.access_token)).status).toBe(200);
    expect((await sessions(await forge())).status).toBe(200);
  });

  it.each<[string, () => Promise<string>]>([
    [
      'expired',
      () => forge({ iat: Math.floor(Date.now() / 1000) - 1000, exp: Math.floor(Date.now() / 1000) - 100 }),
    ],
    ['older than the access TTL', () => forge({ iat: Math.floor(Date.now() / 1000) - 2000 })],
    ['for another audience', () => forge({ aud: 'another-api' })],
    ['from another issuer', () => forge({ iss: 'https://evil.test' })],
    ['of another type (an ID token)', () => forge({ typ: 'JWT' })],
    ['signed with another secret', () => forge({}, new TextEncoder().encode('x'.repeat(48)))],
    ['naming another tenant than its session', () => forge({ tid: tenantB.id })],
    [
      'unsigned (alg none)',
      async () => {
        const payload = decodeJwt(await forge());
        return `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(payload)}.`;
      },
    ],
    [
      'RS256, signed with a key of its own',
      async () => {
        const { privateKey } = await generateKeyPair('RS256');
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ sid: signedIn.session_id, tid: tenantA.id })
          .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt' })
          .setSubject(user.id)
          .setIssuer('podplane')
          .setAudience('podplane-api')
          .setIssuedAt(now)
          .setExpirationTime(now + 60)
          .sign(privateKey);
      },
    ],
    [
      'RS256 in the header, HMAC-signed with our secret (algorithm confusion)',
      async () => {
        const [, payload] = (await forge()).split('.');
        const input = `${b64({ alg: 'RS256', typ: 'at+jwt' })}.${payload}`;
        return `${input}.${createHmac('sha256', secretKey()).update(input).digest('base64url')}`;
      },
    ],
    [
      'with a tampered signature',
      async () => {
        const token = await forge();
        const last = token.at(-2) === 'A' ? 'B' : 'A';
        return `${token.slice(0, -2)}${last}${token.at(-1)}`;
      },
    ],
    [
      'with a tampered payload (another user)',
      () => {
        const [header, payload, signature] = signedIn.access_token.split('.');
        const claims = JSON.parse(Buffer.from(payload as string, 'base64url').toString('utf8'));
        return Promise.resolve(
          `${header}.${b64({ ...claims, sub: 'usr_01jzzzzzzzzzzzzzzzzzzzzzzz' })}.${signature}`,
        );
      },
    ],
    ['not a JWT at all', () => Promise.resolve('eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln')],
  ])('are refused when %s: 401', async (_label, make) => {
    const res = await sessions(await make());
    expectProblem(res, 401, 'unauthenticated');
  });

  it('refuses a refresh token or garbage presented as a bearer token', async () => {
    expectProblem(await sessions(signedIn.refresh_token), 401, 'unauthenticated');
    expectProblem(await sessions('a.b'), 401, 'unauthenticated');
    expectProblem(await sessions(`${'a'.repeat(5000)}.b.c`), 401, 'unauthenticated');
  });
});

describe('POST /api/v1/auth/refresh', () => {
  it('rotates: the next refresh token in the same session, the presented one marked rotated', async () => {
    const user = await newUser('OWNER');
    const first = await signIn(user);
    const res = await refreshWith(first.refresh_token);
    expect(res.status).toBe(200);
    const second = res.body as SignedIn;
    expect(second.session_id).toBe(first.session_id);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);
    expect((await sessions(second.access_token)).status).toBe(200);
    // an access token of before the refresh keeps working until it expires: the session stands
    expect((await sessions(first.access_token)).status).toBe(200);

    const rows = await stack.db.query<{ id: string; parent_id: string | null; rotated_at: Date | null }>(
      'select id, parent_id, rotated_at from sessions where family_id = $1 order by id',
      [first.session_id],
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ id: first.session_id, parent_id: null, rotated_at: expect.any(Date) });
    expect(rows[1]).toMatchObject({ parent_id: first.session_id, rotated_at: null });

    const third = await refreshWith(second.refresh_token);
    expect(third.status).toBe(200);
    expect(third.body.session_id).toBe(first.session_id);
  });

  it('detects reuse: a rotated token presented again revokes its whole session, and only that one', async () => {
    const user = await newUser('OWNER');
    const stolen = await signIn(user);
    const other = await signIn(user);
    const legit = (await refreshWith(stolen.refresh_token)).body as SignedIn;
    const next = (await refreshWith(legit.refresh_token)).body as SignedIn;

    const replay = await refreshWith(stolen.refresh_token);
    expectProblem(replay, 401, 'unauthenticated');
    expect(JSON.stringify(replay.body)).not.toContain(stolen.session_id);

    const rows = await stack.db.query<{ revoked_at: Date | null; revoke_reason: string | null }>(
      'select revoked_at, revoke_reason from sessions where family_id = $1',
      [stolen.session_id],
    );
    expect(rows).toHaveLength(3);
    for (const row of rows)
      expect(row).toEqual({ revoked_at: expect.any(Date), revoke_reason: 'REFRESH_TOKEN_REUSED' });
    // every token of the family is dead, at once
    expectProblem(await refreshWith(next.refresh_token), 401, 'unauthenticated');
    expectProblem(await sessions(next.access_token), 401, 'unauthenticated');
    expectProblem(await sessions(stolen.access_token), 401, 'unauthenticated');
    // the user's other session stands
    const listed = await sessions(other.access_token);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((s: { id: string }) => s.id)).toEqual([other.session_id]);
  });

  it('lets only one of two concurrent refreshes with the same token win, and treats the other as reuse', async () => {
    const user = await newUser('OWNER');
    const signedIn = await signIn(user);
    const [a, b] = await Promise.all([
      refreshWith(signedIn.refresh_token),
      refreshWith(signedIn.refresh_token),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 401]);
    const winner = (a.status === 200 ? a : b).body as SignedIn;
    // the loser presented a token already exchanged: the family is revoked, the winner's tokens with it
    expectProblem(await refreshWith(winner.refresh_token), 401, 'unauthenticated');
    expectProblem(await sessions(winner.access_token), 401, 'unauthenticated');
    const rows = await stack.db.query<{ parent_id: string | null; revoke_reason: string | null }>(
      'select parent_id, revoke_reason from sessions where family_id = $1',
      [signedIn.session_id],
    );
    expect(rows).toHaveLength(2);
    expect(rows.map((r) => r.revoke_reason)).toEqual(['REFRESH_TOKEN_REUSED', 'REFRESH_TOKEN_REUSED']);
  });

  it('refuses unknown, malformed and expired refresh tokens with 401 and hostile bodies with 400, storing nothing', async () => {
    const user = await newUser('OWNER');
    const signedIn = await signIn(user);
    await stack.db.query(
      "update sessions set expires_at = now() - interval '1 second' where family_id = $1",
      [signedIn.session_id],
    );
    const before = await count('sessions');
    expectProblem(await refreshWith(signedIn.refresh_token), 401, 'unauthenticated');
    expectProblem(await refreshWith(`ppr_${'A'.repeat(43)}`), 401, 'unauthenticated');
    expectProblem(await refreshWith("ppr_' or 1=1 --"), 401, 'unauthenticated');
    expectProblem(
      await http().post('/api/v1/auth/refresh').send({ refresh_token: 7 }),
      400,
      'validation-failed',
    );
    expectProblem(
      await http()
        .post('/api/v1/auth/refresh')
        .send({ refresh_token: 'x'.repeat(10_000) }),
      400,
      'validation-failed',
    );
    expectProblem(await http().post('/api/v1/auth/refresh').send({}), 400, 'validation-failed');
    expect(await count('sessions')).toBe(before);
    // the expired session's access token is refused too
    expectProblem(await sessions(signedIn.access_token), 401, 'unauthenticated');
  });
});

describe('logout and sessions', () => {
  it('logs out: the access token stops at once, the refresh token too', async () => {
    const user = await newUser('OWNER');
    const signedIn = await signIn(user);
    const out = await http().post('/api/v1/auth/logout').set('Authorization', bearer(signedIn.access_token));
    expect(out.status).toBe(204);
    expectProblem(await sessions(signedIn.access_token), 401, 'unauthenticated');
    expectProblem(await refreshWith(signedIn.refresh_token), 401, 'unauthenticated');
    const [row] = await stack.db.query<{ revoke_reason: string }>(
      'select revoke_reason from sessions where id = $1',
      [signedIn.session_id],
    );
    expect(row?.revoke_reason).toBe('LOGOUT');
  });

  it('lists only your own live sessions and ends one of them; another user’s session is 404', async () => {
    const user = await newUser('OWNER');
    const laptop = await signIn(user, {}, 'laptop');
    const phone = await signIn(user, {}, 'phone');
    const stranger = await signIn(await newUser('OWNER'));
    const strangerInB = await signIn(await newUser('OWNER', { tenant: tenantB }));

    const listed = await sessions(laptop.access_token);
    expect(listed.body.data).toEqual([
      expect.objectContaining({ id: phone.session_id, current: false, user_agent: 'phone' }),
      expect.objectContaining({ id: laptop.session_id, current: true, user_agent: 'laptop' }),
    ]);

    for (const intruder of [stranger, strangerInB]) {
      const res = await http()
        .delete(`/api/v1/auth/sessions/${phone.session_id}`)
        .set('Authorization', bearer(intruder.access_token));
      expectProblem(res, 404, 'not-found');
    }
    expect((await sessions(phone.access_token)).status).toBe(200);
    for (const id of ['ses_01jzzzzzzzzzzzzzzzzzzzzzzz', 'x', "1' or '1'='1", '%00']) {
      const res = await http()
        .delete(`/api/v1/auth/sessions/${encodeURIComponent(id)}`)
        .set('Authorization', bearer(laptop.access_token));
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }

    const ended = await http()
      .delete(`/api/v1/auth/sessions/${phone.session_id}`)
      .set('Authorization', bearer(laptop.access_token));
    expect(ended.status).toBe(204);
    expectProblem(await sessions(phone.access_token), 401, 'unauthenticated');
    expectProblem(await refreshWith(phone.refresh_token), 401, 'unauthenticated');
    expect((await sessions(laptop.access_token)).body.data.map((s: { id: string }) => s.id)).toEqual([
      laptop.session_id,
    ]);
    // ending it again changes nothing
    const again = await http()
      .delete(`/api/v1/auth/sessions/${phone.session_id}`)
      .set('Authorization', bearer(laptop.access_token));
    expect(again.status).toBe(204);
  });

  it('are for users: an API token gets 403 on every route of its own sign-in, and none gets in without credentials', async () => {
    for (const [method, path] of [
      ['get', '/api/v1/auth/sessions'],
      ['post', '/api/v1/auth/logout'],
      ['post', '/api/v1/auth/password'],
      ['delete', '/api/v1/auth/sessions/ses_01jzzzzzzzzzzzzzzzzzzzzzzz'],
    ] as const) {
      expectProblem(await http()[method](path).set('Authorization', bearer(tenantA.token)), 403, 'forbidden');
      expectProblem(await http()[method](path), 401, 'unauthenticated');
    }
  });
});

describe('POST /api/v1/auth/password', () => {
  it('changes the password after checking the current one, and ends every other session', async () => {
    const user = await newUser('OWNER');
    const here = await signIn(user);
    const elsewhere = await signIn(user);
    const change = (body: Record<string, unknown>) =>
      http().post('/api/v1/auth/password').set('Authorization', bearer(here.access_token)).send(body);

    expectProblem(
      await change({ current_password: 'not my password', new_password: 'a brand new passphrase' }),
      403,
      'forbidden',
    );
    const short = await change({ current_password: PASSWORD, new_password: 'too short' });
    expectProblem(short, 400, 'validation-failed');
    expect(short.body.errors.map((e: { field: string }) => e.field)).toEqual(['new_password']);
    expect((await sessions(elsewhere.access_token)).status).toBe(200);

    const [before] = await stack.db.query<{ password_changed_at: Date }>(
      'select password_changed_at from users where id = $1',
      [user.id],
    );
    const changed = await change({ current_password: PASSWORD, new_password: 'a brand new passphrase' });
    expect(changed.status).toBe(200);
    expect(changed.body).toEqual({ revoked_sessions: 1 });
    const [after] = await stack.db.query<{ password_changed_at: Date }>(
      'select password_changed_at from users where id = $1',
      [user.id],
    );
    expect(after?.password_changed_at.getTime()).toBeGreaterThan(before?.password_changed_at.getTime() ?? 0);

    expectProblem(await sessions(elsewhere.access_token), 401, 'unauthenticated');
    expectProblem(await refreshWith(elsewhere.refresh_token), 401, 'unauthenticated');
    expect((await sessions(here.access_token)).status).toBe(200);
    expect((await refreshWith(here.refresh_token)).status).toBe(200);

    expect(
      (await http().post('/api/v1/auth/login').send({ email: user.email, password: PASSWORD })).status,
    ).toBe(401);
    await signIn({ email: user.email, password: 'a brand new passphrase' });
  });
});

describe('a user’s principal on the API', () => {
  it('reaches what the role allows, gets 403 for what it lacks and 404 for another tenant’s resource', async () => {
    const owner = await signIn(await newUser('OWNER'));
    const readonly = await signIn(await newUser('READONLY'));
    const billing = await signIn(await newUser('BILLING'));
    const as = (s: SignedIn) => bearer(s.access_token);

    const created = await http()
      .post('/api/v1/customers')
      .set('Authorization', as(owner))
      .send({ email: 'by-owner@auth-a.test', name: 'By the owner' });
    expect(created.status).toBe(201);
    const [row] = await stack.db.query<{ tenant_id: string }>(
      'select tenant_id from customers where id = $1',
      [created.body.id],
    );
    expect(row?.tenant_id).toBe(tenantA.id);

    const list = await http().get('/api/v1/customers').set('Authorization', as(readonly));
    expect(list.status).toBe(200);
    expect(list.body.data.map((c: { id: string }) => c.id)).toContain(created.body.id);
    expect(list.body.data.map((c: { id: string }) => c.id)).not.toContain(customerOfB);

    const before = await count('customers');
    const refused = await http()
      .post('/api/v1/customers')
      .set('Authorization', as(readonly))
      .send({ email: 'by-readonly@auth-a.test', name: 'Not allowed' });
    expectProblem(refused, 403, 'forbidden');
    expectProblem(await http().get('/api/v1/tokens').set('Authorization', as(billing)), 403, 'forbidden');
    expect(await count('customers')).toBe(before);
    expect((await http().get('/api/v1/cloudpods').set('Authorization', as(billing))).status).toBe(200);

    for (const s of [owner, readonly]) {
      expectProblem(
        await http().get(`/api/v1/customers/${customerOfB}`).set('Authorization', as(s)),
        404,
        'not-found',
      );
    }
    expectProblem(
      await http()
        .patch(`/api/v1/customers/${customerOfB}`)
        .set('Authorization', as(owner))
        .send({ name: 'Mine' }),
      404,
      'not-found',
    );
    // a tenant's user on a platform route
    expectProblem(await http().get('/api/v1/nodes').set('Authorization', as(owner)), 403, 'forbidden');
  });

  it('makes a platform administrator without a tenant a platform principal', async () => {
    const admin = await signIn(await newUser(null, { platformAdmin: true }));
    expect(admin.tenant_id).toBeNull();
    expect(decodeJwt(admin.access_token).tid).toBeUndefined();
    const tenants = await http().get('/api/v1/tenants').set('Authorization', bearer(admin.access_token));
    expect(tenants.status).toBe(200);
    expect(tenants.body.data.map((t: { id: string }) => t.id)).toEqual(
      expect.arrayContaining([tenantA.id, tenantB.id]),
    );
    expectProblem(
      await http().get('/api/v1/customers').set('Authorization', bearer(admin.access_token)),
      403,
      'forbidden',
    );
  });

  it('follows the membership: a changed role within a second, a removed one ends the session', async () => {
    const user = await newUser('READONLY');
    const signedIn = await signIn(user);
    const tryWrite = () =>
      http()
        .post('/api/v1/customers')
        .set('Authorization', bearer(signedIn.access_token))
        .send({ email: `promoted-${Date.now()}@auth-a.test`, name: 'After promotion' });
    expect((await tryWrite()).status).toBe(403);
    await stack.db.query("update memberships set role = 'ADMIN' where user_id = $1", [user.id]);
    await waitFor(async () => (await tryWrite()).status === 201, {
      what: 'the promotion to take effect',
      timeoutMs: 5000,
    });
    await stack.db.query('delete from memberships where user_id = $1', [user.id]);
    await waitFor(async () => (await sessions(signedIn.access_token)).status === 401, {
      what: 'the removed membership to end the session',
      timeoutMs: 5000,
    });
    expectProblem(await refreshWith(signedIn.refresh_token), 401, 'unauthenticated');
  });
});

describe('what the log keeps', () => {
  it('never holds a password, a refresh token or an access token', async () => {
    const user = await newUser('OWNER', { password: 'a passphrase for the log test' });
    const signedIn = await signIn(user);
    await refreshWith(signedIn.refresh_token);
    await http()
      .post('/api/v1/auth/login')
      .send({ email: user.email, password: 'a wrong passphrase for logs' });
    const log = JSON.stringify(stack.logLines);
    expect(log).toContain(signedIn.session_id);
    for (const secret of [
      PASSWORD,
      'a passphrase for the log test',
      'a wrong passphrase for logs',
      signedIn.refresh_token,
      signedIn.access_token,
    ]) {
      expect(log).not.toContain(secret);
    }
    expect(log).not.toMatch(/ppr_[A-Za-z0-9_-]{43}|eyJ[A-Za-z0-9_-]+\.eyJ/);
  });
});
