/**
 * Invitations, tried as a new tenant's owner would: onboarding mails the owner an OWNER invitation
 * whose token exists only in the mail (never in an answer, a log line or the outbox as the API
 * shows it), accepting it creates the account, the membership and a sign-in; an OWNER or ADMIN
 * invites others (only an OWNER invites an OWNER), lists and revokes invitations; a token works
 * once, and an expired, revoked or superseded one is 400 with nothing written.
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import { authSettings } from '../../src/api/routes/auth';
import { systemEm } from '../../src/db/orm';
import { createUser } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { issueTenantToken } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
const http = () => request(stack.app);
const bearer = (token: string) => `Bearer ${token}`;
const PASSWORD = 'a long enough passphrase';
const INVITATION_TOKEN = /ppi_[A-Za-z0-9_-]{43}/;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.close();
});

interface Onboarded {
  id: string;
  /** a read+write API token of the tenant */
  token: string;
  ownerEmail: string;
  /** the owner's invitation token, read from the welcome mail in the outbox */
  invitation: string;
}

/** The newest mail to `recipient` in the outbox, with the invitation token it carries. */
async function mailedToken(recipient: string, template: string): Promise<{ body: string; token: string }> {
  const row = await waitFor(
    async () => {
      const [mail] = await stack.db.query<{ body: string }>(
        'select body from notifications where recipient = $1 and template = $2 order by id desc limit 1',
        [recipient, template],
      );
      return mail;
    },
    { what: `a ${template} mail to ${recipient}` },
  );
  const token = INVITATION_TOKEN.exec(row.body)?.[0];
  if (!token) throw new Error(`no invitation token in the mail to ${recipient}`);
  return { body: row.body, token };
}

/** A tenant created as a platform operator does (POST /api/v1/tenants), onboarded by its workflow. */
async function onboard(slug: string, ownerEmail = `Owner@${slug}.test`): Promise<Onboarded> {
  const admin = bearer(stack.adminToken);
  const res = await http()
    .post('/api/v1/tenants')
    .set('Authorization', admin)
    .send({ slug, name: `Tenant ${slug}`, currency: 'EUR', owner_email: ownerEmail });
  expect(res.status).toBe(202);
  expect(JSON.stringify(res.body)).not.toMatch(/ppi_/);
  const id = res.body.tenant.id as string;
  await waitFor(
    async () =>
      (await http().get(`/api/v1/tenants/${id}`).set('Authorization', admin)).body.status === 'ACTIVE',
    { what: `tenant ${slug} ACTIVE` },
  );
  const { token: invitation } = await mailedToken(ownerEmail.toLowerCase(), 'tenant.welcome');
  return { id, token: await issueTenantToken(stack, id), ownerEmail: ownerEmail.toLowerCase(), invitation };
}

const accept = (body: Record<string, unknown>) => http().post('/api/v1/auth/invitations/accept').send(body);

interface SignedIn {
  access_token: string;
  refresh_token: string;
  session_id: string;
  tenant_id: string;
}

/** Accepts and returns the sign-in the answer carries. */
async function acceptAndSignIn(token: string, password = PASSWORD): Promise<SignedIn> {
  const res = await accept({ token, password });
  expect(res.status).toBe(201);
  return res.body.session as SignedIn;
}

async function counts(tenantId: string): Promise<{ users: number; members: number; sessions: number }> {
  const [row] = await stack.db.query<{ users: number; members: number; sessions: number }>(
    `select (select count(*)::int from users) as users,
            (select count(*)::int from memberships where tenant_id = $1) as members,
            (select count(*)::int from sessions) as sessions`,
    [tenantId],
  );
  return row as { users: number; members: number; sessions: number };
}

/** Every log line the stack wrote, as one string to search. */
const logText = () => JSON.stringify(stack.logLines);

describe('onboarding', () => {
  it('mails the owner an OWNER invitation with the welcome; the token is only in the mail, stored as its hash', async () => {
    const tenant = await onboard('inv-onboard');
    const mails = await stack.db.query<{ template: string; recipient: string; body: string }>(
      'select template, recipient, body from notifications where tenant_id = $1',
      [tenant.id],
    );
    // one mail: the welcome, carrying the invitation
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ template: 'tenant.welcome', recipient: 'owner@inv-onboard.test' });
    expect(mails[0]?.body).toContain('is ready');
    expect(mails[0]?.body).toContain('/api/v1/auth/invitations/accept');

    const stored = await stack.db.query<Record<string, unknown>>(
      'select * from invitations where tenant_id = $1',
      [tenant.id],
    );
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      email: 'owner@inv-onboard.test',
      role: 'OWNER',
      token_hash: sha256(tenant.invitation),
      invited_by_id: null,
      accepted_at: null,
      revoked_at: null,
    });
    const ttlHours =
      ((stored[0]?.expires_at as Date).getTime() - (stored[0]?.created_at as Date).getTime()) / 3_600_000;
    expect(ttlHours).toBeCloseTo(72, 1);
    expect(JSON.stringify(stored)).not.toContain(tenant.invitation);

    // the API shows the invitation and the outbox, never the token
    const list = await http().get('/api/v1/members/invitations').set('Authorization', bearer(tenant.token));
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual([
      {
        id: stored[0]?.id,
        tenant_id: tenant.id,
        email: 'owner@inv-onboard.test',
        role: 'OWNER',
        status: 'PENDING',
        invited_by: null,
        created_at: expect.any(String),
        expires_at: (stored[0]?.expires_at as Date).toISOString(),
        accepted_at: null,
        revoked_at: null,
      },
    ]);
    const outbox = await http().get('/api/v1/notifications').set('Authorization', bearer(tenant.token));
    expect(outbox.status).toBe(200);
    expect(outbox.body.data[0].body).toContain('ppi_[redacted]');
    const one = await http()
      .get(`/api/v1/notifications/${outbox.body.data[0].id}`)
      .set('Authorization', bearer(tenant.token));
    expect(one.body.body).toContain('ppi_[redacted]');
    for (const answer of [list.text, outbox.text, one.text]) expect(answer).not.toContain(tenant.invitation);
    expect(logText()).not.toContain(tenant.invitation);

    const [event] = await stack.db.query<{ severity: string; details: Record<string, unknown> }>(
      `select severity, details from security_events where tenant_id = $1 and kind = 'INVITATION_CREATED'`,
      [tenant.id],
    );
    expect(event).toEqual({
      severity: 'MEDIUM',
      details: { invitation_id: stored[0]?.id, role: 'OWNER', by: 'onboarding' },
    });
  });
});

describe('POST /api/v1/auth/invitations/accept', () => {
  it('creates the owner’s account and membership and signs them in; the token then works no more', async () => {
    const tenant = await onboard('inv-accept');
    const res = await accept({ token: tenant.invitation, password: PASSWORD });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      tenant_id: tenant.id,
      user_id: expect.stringMatching(/^usr_/),
      membership_id: expect.stringMatching(/^mem_/),
      role: 'OWNER',
      new_user: true,
      session: {
        access_token: expect.any(String),
        token_type: 'Bearer',
        expires_in: 900,
        refresh_token: expect.stringMatching(/^ppr_[A-Za-z0-9_-]{43}$/),
        session_id: expect.stringMatching(/^ses_/),
        tenant_id: tenant.id,
      },
    });
    expect(res.text).not.toContain(tenant.invitation);
    const session = res.body.session as SignedIn;

    // the access token acts as the tenant's OWNER
    const members = await http().get('/api/v1/members').set('Authorization', bearer(session.access_token));
    expect(members.status).toBe(200);
    expect(members.body.data).toEqual([
      expect.objectContaining({ id: res.body.membership_id, email: tenant.ownerEmail, role: 'OWNER' }),
    ]);
    // the password works for logging in, the refresh token for refreshing
    const login = await http()
      .post('/api/v1/auth/login')
      .send({ email: tenant.ownerEmail, password: PASSWORD });
    expect(login.status).toBe(200);
    expect(login.body.tenant_id).toBe(tenant.id);
    const refreshed = await http()
      .post('/api/v1/auth/refresh')
      .send({ refresh_token: session.refresh_token });
    expect(refreshed.status).toBe(200);

    // single use: the second try is refused and writes nothing
    const before = await counts(tenant.id);
    const again = await accept({ token: tenant.invitation, password: PASSWORD });
    expectProblem(again, 400, 'validation-failed');
    expect(again.body.errors).toEqual([{ field: 'token', message: expect.any(String) }]);
    expect(await counts(tenant.id)).toEqual(before);

    const [row] = await stack.db.query<{ accepted_at: Date | null; accepted_by_id: string }>(
      'select accepted_at, accepted_by_id from invitations where tenant_id = $1',
      [tenant.id],
    );
    expect(row?.accepted_at).not.toBeNull();
    expect(row?.accepted_by_id).toBe(res.body.user_id);
    const [event] = await stack.db.query<{ user_id: string; details: Record<string, unknown> }>(
      `select user_id, details from security_events where tenant_id = $1 and kind = 'MEMBER_ADDED'`,
      [tenant.id],
    );
    expect(event).toEqual({
      user_id: res.body.user_id,
      details: expect.objectContaining({
        role: 'OWNER',
        new_user: true,
        membership_id: res.body.membership_id,
      }),
    });
    expect(logText()).not.toContain(tenant.invitation);
  });

  it('lets one of two concurrent acceptances of a token win', async () => {
    const tenant = await onboard('inv-race');
    const results = await Promise.all([
      accept({ token: tenant.invitation, password: PASSWORD }),
      accept({ token: tenant.invitation, password: PASSWORD }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 400]);
    expect((await counts(tenant.id)).members).toBe(1);
  });

  it('refuses a password that breaks the rules and leaves the token usable', async () => {
    const tenant = await onboard('inv-short');
    const before = await counts(tenant.id);
    const short = await accept({ token: tenant.invitation, password: 'too short' });
    expectProblem(short, 400, 'validation-failed');
    expect(short.body.errors).toEqual([{ field: 'password', message: expect.stringContaining('12') }]);
    expect(await counts(tenant.id)).toEqual(before);
    await acceptAndSignIn(tenant.invitation);
  });

  it('refuses an expired token and writes nothing', async () => {
    const tenant = await onboard('inv-expired');
    await stack.db.query(
      `update invitations set expires_at = now() - interval '1 minute' where tenant_id = $1`,
      [tenant.id],
    );
    const before = await counts(tenant.id);
    expectProblem(await accept({ token: tenant.invitation, password: PASSWORD }), 400, 'validation-failed');
    expect(await counts(tenant.id)).toEqual(before);
    const list = await http().get('/api/v1/members/invitations').set('Authorization', bearer(tenant.token));
    expect(list.body.data[0].status).toBe('EXPIRED');
  });

  it('refuses tokens that are malformed or were never issued, alike', async () => {
    for (const token of ['ppi_short', `ppi_${'A'.repeat(43)}`, `ppw_${'A'.repeat(43)}`, 'x'.repeat(200)]) {
      const res = await accept({ token, password: PASSWORD });
      expectProblem(res, 400, 'validation-failed');
    }
    expectProblem(await accept({ token: `ppi_${'A'.repeat(43)}` }), 400, 'validation-failed');
    expectProblem(
      await accept({ token: `ppi_${'A'.repeat(43)}`, password: PASSWORD, role: 'OWNER' }),
      400,
      'validation-failed',
    );
  });
});

describe('members inviting members', () => {
  let tenant: Onboarded;
  let owner: SignedIn;

  beforeAll(async () => {
    tenant = await onboard('inv-team');
    owner = await acceptAndSignIn(tenant.invitation);
  });

  const invite = (auth: string, body: Record<string, unknown>) =>
    http().post('/api/v1/members/invitations').set('Authorization', auth).send(body);

  it('lets an OWNER invite an ADMIN, who signs up with the mailed token; the answer never holds the token', async () => {
    const res = await invite(bearer(owner.access_token), { email: '  Admin@Inv-Team.test ', role: 'ADMIN' });
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/api/v1/members/invitations/${res.body.id}`);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^ivt_/),
      tenant_id: tenant.id,
      email: 'admin@inv-team.test',
      role: 'ADMIN',
      status: 'PENDING',
      invited_by: expect.stringMatching(/^usr_/),
      created_at: expect.any(String),
      expires_at: expect.any(String),
      accepted_at: null,
      revoked_at: null,
    });
    const { token, body } = await mailedToken('admin@inv-team.test', 'member.invitation');
    expect(body).toContain('as ADMIN');
    expect(res.text).not.toContain(token);
    expect(logText()).not.toContain(token);

    const admin = await acceptAndSignIn(token, 'the admin passphrase');
    const members = await http().get('/api/v1/members').set('Authorization', bearer(admin.access_token));
    expect(members.body.data.map((m: { email: string; role: string }) => [m.email, m.role])).toEqual([
      [tenant.ownerEmail, 'OWNER'],
      ['admin@inv-team.test', 'ADMIN'],
    ]);
    const list = await http()
      .get('/api/v1/members/invitations')
      .set('Authorization', bearer(admin.access_token));
    expect(list.body.data.find((i: { id: string }) => i.id === res.body.id).status).toBe('ACCEPTED');

    // an ADMIN invites, but not an OWNER
    const readonly = await invite(bearer(admin.access_token), {
      email: 'viewer@inv-team.test',
      role: 'READONLY',
    });
    expect(readonly.status).toBe(201);
    const newOwner = await invite(bearer(admin.access_token), { email: 'boss@inv-team.test', role: 'OWNER' });
    expectProblem(newOwner, 403, 'forbidden');
    // a member already
    expectProblem(
      await invite(bearer(owner.access_token), { email: 'ADMIN@inv-team.test', role: 'READONLY' }),
      409,
      'conflict',
    );
  });

  it('refuses API tokens and members without members:write, and bad bodies', async () => {
    expectProblem(
      await invite(bearer(tenant.token), { email: 'tok@inv-team.test', role: 'READONLY' }),
      403,
      'forbidden',
    );
    const readTokenOnly = await issueTenantToken(stack, tenant.id, ['read']);
    expectProblem(
      await invite(bearer(readTokenOnly), { email: 'r@inv-team.test', role: 'READONLY' }),
      403,
      'forbidden',
    );
    expectProblem(
      await invite(bearer(owner.access_token), { email: 'not an email', role: 'ADMIN' }),
      400,
      'validation-failed',
    );
    expectProblem(
      await invite(bearer(owner.access_token), { email: 'x@inv-team.test', role: 'KING' }),
      400,
      'validation-failed',
    );
    expectProblem(
      await invite(bearer(owner.access_token), { email: 'x@inv-team.test' }),
      400,
      'validation-failed',
    );
    expect((await http().post('/api/v1/members/invitations').send({})).status).toBe(401);
  });

  it('revokes an invitation (its token stops working), once; a newer invitation supersedes the older', async () => {
    const first = await invite(bearer(owner.access_token), {
      email: 'support@inv-team.test',
      role: 'SUPPORT',
    });
    const { token: firstToken } = await mailedToken('support@inv-team.test', 'member.invitation');
    const second = await invite(bearer(owner.access_token), {
      email: 'support@inv-team.test',
      role: 'BILLING',
    });
    const { token: secondToken } = await mailedToken('support@inv-team.test', 'member.invitation');
    expect(secondToken).not.toBe(firstToken);
    const list = await http()
      .get('/api/v1/members/invitations')
      .set('Authorization', bearer(owner.access_token));
    const status = (id: string) => list.body.data.find((i: { id: string }) => i.id === id).status as string;
    expect([status(first.body.id), status(second.body.id)]).toEqual(['REVOKED', 'PENDING']);
    expectProblem(await accept({ token: firstToken, password: PASSWORD }), 400, 'validation-failed');

    const revoke = () =>
      http()
        .delete(`/api/v1/members/invitations/${second.body.id}`)
        .set('Authorization', bearer(owner.access_token));
    const revoked = await revoke();
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({
      id: second.body.id,
      status: 'REVOKED',
      revoked_at: expect.any(String),
    });
    const again = await revoke();
    expect(again.status).toBe(200);
    expect(again.body.revoked_at).toBe(revoked.body.revoked_at);
    const before = await counts(tenant.id);
    expectProblem(await accept({ token: secondToken, password: PASSWORD }), 400, 'validation-failed');
    expect(await counts(tenant.id)).toEqual(before);
    const [event] = await stack.db.query<{ details: Record<string, unknown> }>(
      `select details from security_events where kind = 'INVITATION_REVOKED' and tenant_id = $1`,
      [tenant.id],
    );
    expect(event?.details).toEqual({ invitation_id: second.body.id, role: 'BILLING' });
  });

  it('is 409 to revoke an accepted invitation, and 404 for another tenant’s or an unknown one', async () => {
    const accepted = await http()
      .get('/api/v1/members/invitations')
      .set('Authorization', bearer(owner.access_token));
    const acceptedId = accepted.body.data.find((i: { status: string }) => i.status === 'ACCEPTED')
      .id as string;
    expectProblem(
      await http()
        .delete(`/api/v1/members/invitations/${acceptedId}`)
        .set('Authorization', bearer(owner.access_token)),
      409,
      'conflict',
    );
    const other = await onboard('inv-other');
    const otherOwner = await acceptAndSignIn(other.invitation);
    const theirs = await http().get('/api/v1/members/invitations').set('Authorization', bearer(other.token));
    const theirId = theirs.body.data[0].id as string;
    for (const [auth, id] of [
      [owner.access_token, theirId],
      [tenant.token, theirId],
      [otherOwner.access_token, acceptedId],
      [owner.access_token, 'ivt_01jd0000000000000000000000'],
      [owner.access_token, 'nonsense'],
    ] as const) {
      const res = await http().delete(`/api/v1/members/invitations/${id}`).set('Authorization', bearer(auth));
      expectProblem(res, 404, 'not-found');
    }
    // nothing of the other tenant's is listed
    const mine = await http()
      .get('/api/v1/members/invitations')
      .set('Authorization', bearer(owner.access_token));
    expect(mine.body.data.map((i: { id: string }) => i.id)).not.toContain(theirId);
  });

  it('adds an existing user with their current password, and refuses a wrong one without writing', async () => {
    // someone who has an account already (a member of another tenant)
    const elsewhere = await onboard('inv-elsewhere');
    const { user } = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
      email: 'Known@Inv-Elsewhere.test',
      password: 'the known passphrase',
      membership: { tenantId: elsewhere.id, role: 'READONLY' },
    });
    const res = await invite(bearer(owner.access_token), {
      email: 'known@inv-elsewhere.test',
      role: 'BILLING',
    });
    expect(res.status).toBe(201);
    const { token } = await mailedToken('known@inv-elsewhere.test', 'member.invitation');

    const before = await counts(tenant.id);
    const wrong = await accept({ token, password: 'not the known passphrase' });
    expectProblem(wrong, 401, 'unauthenticated');
    expect(await counts(tenant.id)).toEqual(before);

    const ok = await accept({ token, password: 'the known passphrase' });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({
      user_id: user.id,
      role: 'BILLING',
      new_user: false,
      tenant_id: tenant.id,
    });
    expect(ok.body.session.tenant_id).toBe(tenant.id);
    const memberships = await stack.db.query<{ tenant_id: string; role: string }>(
      'select tenant_id, role from memberships where user_id = $1 order by id',
      [user.id],
    );
    expect(memberships).toEqual([
      { tenant_id: elsewhere.id, role: 'READONLY' },
      { tenant_id: tenant.id, role: 'BILLING' },
    ]);
    // the password is unchanged: the old one still signs in
    const login = await http()
      .post('/api/v1/auth/login')
      .send({ email: 'known@inv-elsewhere.test', password: 'the known passphrase', tenant_id: elsewhere.id });
    expect(login.status).toBe(200);
  });
});
