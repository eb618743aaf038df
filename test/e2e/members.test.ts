/**
 * A tenant's members: listed with `members:read`; roles changed by an OWNER only; members removed
 * by an OWNER or ADMIN (an ADMIN never removes an OWNER), their sessions in the tenant ending; the
 * last OWNER neither demoted nor removed — not even by two demotions racing each other; another
 * tenant's member is 404; every change is a security event.
 */
import request from 'supertest';
import { authSettings } from '../../src/api/routes/auth';
import { systemEm } from '../../src/db/orm';
import type { MembershipRole } from '../../src/domain/permissions';
import { addMembership, createUser } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, issueTenantToken, type ActiveTenant } from '../helpers/tenants';

let stack: TestStack;
const http = () => request(stack.app);
const bearer = (token: string) => `Bearer ${token}`;
const PASSWORD = 'members passphrase';

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.close();
});

interface Member {
  userId: string;
  membershipId: string;
  email: string;
  /** an access token signed in to the tenant */
  auth: string;
}

let users = 0;

async function signIn(email: string, tenantId: string): Promise<string> {
  const res = await http()
    .post('/api/v1/auth/login')
    .send({ email, password: PASSWORD, tenant_id: tenantId });
  expect(res.status).toBe(200);
  return bearer(res.body.access_token as string);
}

/** A new user with `role` in the tenant, signed in to it. */
async function member(tenant: ActiveTenant, role: MembershipRole): Promise<Member> {
  users += 1;
  const email = `member${users}@members.test`;
  const { user, membership } = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email,
    password: PASSWORD,
    membership: { tenantId: tenant.id, role },
  });
  return { userId: user.id, membershipId: membership!.id, email, auth: await signIn(email, tenant.id) };
}

const patch = (auth: string, id: string, role: string) =>
  http().patch(`/api/v1/members/${id}`).set('Authorization', auth).send({ role });
const remove = (auth: string, id: string) =>
  http().delete(`/api/v1/members/${id}`).set('Authorization', auth);

async function rolesOf(tenantId: string): Promise<Record<string, string>> {
  const rows = await stack.db.query<{ id: string; role: string }>(
    'select id, role from memberships where tenant_id = $1',
    [tenantId],
  );
  return Object.fromEntries(rows.map((r) => [r.id, r.role]));
}

async function ownerCount(tenantId: string): Promise<number> {
  const [row] = await stack.db.query<{ n: number }>(
    `select count(*)::int as n from memberships where tenant_id = $1 and role = 'OWNER'`,
    [tenantId],
  );
  return row?.n ?? -1;
}

describe('GET /api/v1/members', () => {
  it('lists the tenant’s members to members, read tokens and READONLY users; nothing of another tenant', async () => {
    const [a, b] = await Promise.all([
      createActiveTenant(stack, 'mem-list-a'),
      createActiveTenant(stack, 'mem-list-b'),
    ]);
    const owner = await member(a, 'OWNER');
    const viewer = await member(a, 'READONLY');
    const outsider = await member(b, 'OWNER');
    const readToken = await issueTenantToken(stack, a.id, ['read']);
    for (const auth of [owner.auth, viewer.auth, bearer(readToken), bearer(a.token)]) {
      const res = await http().get('/api/v1/members').set('Authorization', auth);
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual([
        {
          id: owner.membershipId,
          user_id: owner.userId,
          email: owner.email,
          role: 'OWNER',
          created_at: expect.stringMatching(/Z$/),
          last_login_at: expect.stringMatching(/Z$/),
        },
        expect.objectContaining({ id: viewer.membershipId, role: 'READONLY' }),
      ]);
      expect(res.text).not.toContain(outsider.email);
      expect(res.text).not.toMatch(/password|argon2/);
    }
    // SUPPORT and BILLING have no members:read
    const support = await member(a, 'SUPPORT');
    expectProblem(await http().get('/api/v1/members').set('Authorization', support.auth), 403, 'forbidden');
    expect((await http().get('/api/v1/members')).status).toBe(401);
  });
});

describe('PATCH /api/v1/members/:id', () => {
  let tenant: ActiveTenant;
  let owner: Member;
  let admin: Member;
  let viewer: Member;

  beforeAll(async () => {
    tenant = await createActiveTenant(stack, 'mem-roles');
    owner = await member(tenant, 'OWNER');
    admin = await member(tenant, 'ADMIN');
    viewer = await member(tenant, 'READONLY');
  });

  it('lets an OWNER change a role, which the member’s session acts with at once; recorded as a security event', async () => {
    expectProblem(
      await http()
        .post('/api/v1/members/invitations')
        .set('Authorization', viewer.auth)
        .send({ email: 'x@members.test', role: 'READONLY' }),
      403,
      'forbidden',
    );
    const res = await patch(owner.auth, viewer.membershipId, 'ADMIN');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: viewer.membershipId, user_id: viewer.userId, role: 'ADMIN' });
    // the viewer's existing session now holds ADMIN's permissions
    const invited = await http()
      .post('/api/v1/members/invitations')
      .set('Authorization', viewer.auth)
      .send({ email: 'promoted-invite@members.test', role: 'READONLY' });
    expect(invited.status).toBe(201);
    const [event] = await stack.db.query<{ user_id: string; severity: string; details: unknown }>(
      `select user_id, severity, details from security_events where tenant_id = $1 and kind = 'ROLE_CHANGED'`,
      [tenant.id],
    );
    expect(event).toEqual({
      user_id: owner.userId,
      severity: 'MEDIUM',
      details: {
        membership_id: viewer.membershipId,
        member_user_id: viewer.userId,
        from: 'READONLY',
        to: 'ADMIN',
      },
    });
    const back = await patch(owner.auth, viewer.membershipId, 'READONLY');
    expect(back.body.role).toBe('READONLY');
  });

  it('is 403 to anyone but an OWNER: an ADMIN, an API token, a READONLY member', async () => {
    const before = await rolesOf(tenant.id);
    expectProblem(await patch(admin.auth, viewer.membershipId, 'BILLING'), 403, 'forbidden');
    expectProblem(await patch(admin.auth, admin.membershipId, 'OWNER'), 403, 'forbidden');
    expectProblem(await patch(bearer(tenant.token), viewer.membershipId, 'BILLING'), 403, 'forbidden');
    expectProblem(await patch(viewer.auth, viewer.membershipId, 'OWNER'), 403, 'forbidden');
    expect(await rolesOf(tenant.id)).toEqual(before);
  });

  it('refuses to demote the last OWNER (409 last-owner), and refuses bad roles', async () => {
    const before = await rolesOf(tenant.id);
    expectProblem(await patch(owner.auth, owner.membershipId, 'ADMIN'), 409, 'last-owner');
    expectProblem(await patch(owner.auth, viewer.membershipId, 'ROOT'), 400, 'validation-failed');
    expectProblem(
      await http().patch(`/api/v1/members/${viewer.membershipId}`).set('Authorization', owner.auth).send({}),
      400,
      'validation-failed',
    );
    expect(await rolesOf(tenant.id)).toEqual(before);
    // the same role again changes nothing
    const same = await patch(owner.auth, owner.membershipId, 'OWNER');
    expect(same.status).toBe(200);
    expect(same.body.role).toBe('OWNER');
  });

  it('is 404 for another tenant’s member and for ids that are no member’s', async () => {
    const other = await createActiveTenant(stack, 'mem-roles-other');
    const stranger = await member(other, 'OWNER');
    const before = await rolesOf(tenant.id);
    for (const [auth, id] of [
      [stranger.auth, viewer.membershipId],
      [bearer(other.token), viewer.membershipId],
      [owner.auth, stranger.membershipId],
      [owner.auth, 'mem_01jd0000000000000000000000'],
      [owner.auth, viewer.userId],
    ] as const) {
      expectProblem(await patch(auth, id, 'ADMIN'), 404, 'not-found');
      expectProblem(await remove(auth, id), 404, 'not-found');
    }
    expect(await rolesOf(tenant.id)).toEqual(before);
    expect(await rolesOf(other.id)).toEqual({ [stranger.membershipId]: 'OWNER' });
  });
});

describe('the last OWNER under concurrent demotions', () => {
  it('keeps exactly one OWNER when two OWNERs demote each other at the same moment', async () => {
    const tenant = await createActiveTenant(stack, 'mem-race');
    const one = await member(tenant, 'OWNER');
    const two = await member(tenant, 'OWNER');
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all([
        patch(one.auth, two.membershipId, 'ADMIN'),
        patch(two.auth, one.membershipId, 'ADMIN'),
      ]);
      const statuses = results.map((r) => r.status).sort();
      // one wins; the other finds itself demoted (403) or the last OWNER (409)
      expect(statuses[0]).toBe(200);
      expect([403, 409]).toContain(statuses[1]);
      expect(await ownerCount(tenant.id)).toBe(1);
      // the survivor makes the other OWNER again for the next round
      const survivor = results[0]?.status === 200 ? one : two;
      const demoted = survivor === one ? two : one;
      expect((await patch(survivor.auth, demoted.membershipId, 'OWNER')).status).toBe(200);
    }
  });

  it('keeps exactly one OWNER when one OWNER demotes the other and itself at once', async () => {
    const tenant = await createActiveTenant(stack, 'mem-race-self');
    const one = await member(tenant, 'OWNER');
    const two = await member(tenant, 'OWNER');
    const results = await Promise.all([
      patch(one.auth, two.membershipId, 'READONLY'),
      patch(one.auth, one.membershipId, 'READONLY'),
      remove(two.auth, one.membershipId),
    ]);
    expect(results.filter((r) => r.status >= 500)).toEqual([]);
    expect(await ownerCount(tenant.id)).toBe(1);
    for (const r of results) {
      if (r.status >= 400) expect([403, 404, 409]).toContain(r.status);
    }
  });
});

describe('DELETE /api/v1/members/:id', () => {
  it('lets an ADMIN remove a member but not an OWNER; the removed member’s sessions in the tenant end', async () => {
    const [tenant, other] = await Promise.all([
      createActiveTenant(stack, 'mem-remove'),
      createActiveTenant(stack, 'mem-remove-other'),
    ]);
    const owner = await member(tenant, 'OWNER');
    const admin = await member(tenant, 'ADMIN');
    const viewer = await member(tenant, 'READONLY');
    // the viewer belongs to another tenant too, and is signed in there
    await addMembership(systemEm(stack.db.orm), {
      userId: viewer.userId,
      tenantId: other.id,
      role: 'BILLING',
    });
    const viewerElsewhere = await signIn(viewer.email, other.id);

    expectProblem(await remove(admin.auth, owner.membershipId), 403, 'forbidden');
    expectProblem(await remove(bearer(tenant.token), viewer.membershipId), 403, 'forbidden');
    expectProblem(await remove(viewer.auth, admin.membershipId), 403, 'forbidden');

    const removed = await remove(admin.auth, viewer.membershipId);
    expect(removed.status).toBe(204);
    expect(await rolesOf(tenant.id)).toEqual({
      [owner.membershipId]: 'OWNER',
      [admin.membershipId]: 'ADMIN',
    });
    // its session in this tenant has ended; the one in the other tenant stands
    expectProblem(
      await http().get('/api/v1/members').set('Authorization', viewer.auth),
      401,
      'unauthenticated',
    );
    const [sessions] = await stack.db.query<{ revoked: number; live: number }>(
      `select count(*) filter (where tenant_id = $2 and revoked_at is not null)::int as revoked,
              count(*) filter (where tenant_id = $3 and revoked_at is null)::int as live
         from sessions where user_id = $1 and parent_id is null`,
      [viewer.userId, tenant.id, other.id],
    );
    expect(sessions).toEqual({ revoked: 1, live: 1 });
    expect((await http().get('/api/v1/billing/invoices').set('Authorization', viewerElsewhere)).status).toBe(
      200,
    );
    // signing in to the tenant again is refused: no longer a member
    expect(
      (
        await http()
          .post('/api/v1/auth/login')
          .send({ email: viewer.email, password: PASSWORD, tenant_id: tenant.id })
      ).status,
    ).toBe(403);

    const [event] = await stack.db.query<{ user_id: string; details: Record<string, unknown> }>(
      `select user_id, details from security_events where tenant_id = $1 and kind = 'MEMBER_REMOVED'`,
      [tenant.id],
    );
    expect(event).toEqual({
      user_id: admin.userId,
      details: {
        membership_id: viewer.membershipId,
        member_user_id: viewer.userId,
        role: 'READONLY',
        revoked_sessions: 1,
      },
    });
    // removing it again is 404
    expectProblem(await remove(admin.auth, viewer.membershipId), 404, 'not-found');
  });

  it('refuses to remove the last OWNER, and lets an OWNER remove another OWNER', async () => {
    const tenant = await createActiveTenant(stack, 'mem-remove-owner');
    const owner = await member(tenant, 'OWNER');
    expectProblem(await remove(owner.auth, owner.membershipId), 409, 'last-owner');
    const second = await member(tenant, 'OWNER');
    expect((await remove(owner.auth, second.membershipId)).status).toBe(204);
    expect(await rolesOf(tenant.id)).toEqual({ [owner.membershipId]: 'OWNER' });
    expectProblem(await remove(owner.auth, owner.membershipId), 409, 'last-owner');
  });
});
