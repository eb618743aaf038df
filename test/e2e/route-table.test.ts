/**
 * The route table is the one declaration of every route, so these walks cover every route there
 * is and every one added later: each declares who may call it (a permission, or why it is public),
 * /openapi.json documents exactly the served routes with the same method and path, every route
 * that needs credentials answers 401 without them, every platform route answers 403 to a tenant,
 * and every route naming a tenant's resource answers 404 to another tenant — never 403, which
 * would confirm the resource exists.
 */
import request from 'supertest';
import { systemEm } from '../../src/db/orm';
import { issueCreditNote } from '../../src/services/credit-notes';
import type { Route } from '../../src/api/http/route';
import { openApiPath } from '../../src/api/http/route';
import type { TokenScope } from '../../src/domain/api-tokens';
import {
  MEMBERSHIP_ROLES,
  PERMISSIONS,
  SELF_PERMISSIONS,
  tokenPermissions,
  userPermissions,
  type MembershipRole,
  type Permission,
} from '../../src/domain/permissions';
import { authSettings } from '../../src/api/routes/auth';
import { accessTokenSettings, signAccessToken } from '../../src/services/access-tokens';
import { createUser, login } from '../../src/services/auth';
import { issueToken } from '../../src/services/api-tokens';
import { createInvitation } from '../../src/services/invitations';
import { replacePolicy } from '../../src/services/security-policy';
import { DEFAULT_POLICY } from '../../src/domain/security-policy';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let routes: Route[];
let owner: PodTenant;
let stranger: PodTenant;
/** `:param` → an id of `owner`'s */
const ids: Record<string, string> = {};
/** A signed-in OWNER of `owner`'s, who invites (API tokens cannot). */
let inviterId: string;

beforeAll(async () => {
  stack = await startTestStack();
  routes = stack.app.locals.routes as Route[];
  await registerNode(stack, 'rt-node');
  owner = await podTenant(stack, 'rt-owner', { free: true });
  stranger = await podTenant(stack, 'rt-stranger', { free: true });
  const pod = await request(stack.app)
    .post('/api/v1/cloudpods')
    .set('Authorization', owner.auth)
    .send({ slug: 'rt-pod', customer_id: owner.customerId, product_id: owner.starter });
  expect(pod.status).toBe(202);
  await waitPod(stack, owner, pod.body.pod.id as string, 'ACTIVE');
  const backup = await request(stack.app)
    .post(`/api/v1/cloudpods/${pod.body.pod.id}/backups`)
    .set('Authorization', owner.auth);
  expect(backup.status).toBe(202);
  const backupId = backup.body.backup.id as string;
  await waitFor(
    async () => {
      const list = await request(stack.app)
        .get(`/api/v1/cloudpods/${pod.body.pod.id}/backups`)
        .set('Authorization', owner.auth);
      return list.body.data.find(
        (b: { id: string; status: string }) => b.id === backupId && b.status === 'COMPLETED',
      );
    },
    { what: 'the backup completed', timeoutMs: 30_000 },
  );
  const token = await request(stack.app)
    .post('/api/v1/tokens')
    .set('Authorization', owner.auth)
    .send({ name: 'rt-extra', scopes: ['read'] });
  expect(token.status).toBe(201);
  const invoice = await request(stack.app)
    .post('/api/v1/billing/invoices')
    .set('Authorization', owner.auth)
    .send({
      customer_id: owner.customerId,
      lines: [{ description: 'Setup', quantity: 1, unit_amount: 1000 }],
    });
  expect(invoice.status).toBe(201);
  const subscription = await request(stack.app)
    .post('/api/v1/billing/subscriptions')
    .set('Authorization', owner.auth)
    .send({ customer_id: owner.customerId, product_id: owner.starter, pod_slug: 'rt-subscribed' });
  expect(subscription.status).toBe(201);
  // the owner's welcome mail (its onboarding wrote it)
  const notifications = await request(stack.app)
    .get('/api/v1/notifications')
    .set('Authorization', owner.auth);
  expect(notifications.body.data.length).toBeGreaterThan(0);
  const creditNote = await issueCreditNote(systemEm(stack.db.orm), {
    tenantId: owner.id,
    customerId: owner.customerId,
    amount: 100,
    currency: 'EUR',
    reason: 'Route table',
    sourceKey: 'route-table',
  });
  // Test clocks are a sandbox tenant's: the owner becomes one to reach its clock's routes.
  await stack.db.query(`update tenants set mode = 'SANDBOX' where id = $1`, [owner.id]);
  const clock = await request(stack.app)
    .post('/api/v1/billing/test-clocks')
    .set('Authorization', owner.auth)
    .send({ name: 'rt-clock' });
  expect(clock.status).toBe(201);
  // a member and an invitation of the owner's, invited by a signed-in OWNER (tokens cannot invite)
  const inviter = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email: 'rt-inviter@rt.test',
    password: USER_PASSWORD,
    membership: { tenantId: owner.id, role: 'OWNER' },
  });
  inviterId = inviter.user.id;
  const member = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email: 'rt-member@rt.test',
    password: USER_PASSWORD,
    membership: { tenantId: owner.id, role: 'READONLY' },
  });
  const invitation = await createInvitation(systemEm(stack.db.orm), {
    tenantId: owner.id,
    email: 'rt-invited@rt.test',
    role: 'READONLY',
    actor: { userId: inviterId },
  });
  Object.assign(ids, {
    members: member.membership?.id,
    invitations: invitation.id,
    'test-clocks': clock.body.id,
    'credit-notes': creditNote.id,
    notifications: notifications.body.data[0].id,
    cloudpods: pod.body.pod.id,
    customers: owner.customerId,
    products: owner.starter,
    tokens: token.body.token.id,
    invoices: invoice.body.id,
    subscriptions: subscription.body.id,
    tenants: owner.id,
    backupId,
  });
});
afterAll(async () => {
  await stack?.close();
});

/** The route's path with every parameter filled by an id of `owner`'s (`:id` after its collection). */
function concretePath(route: Route): string {
  return route.path.replace(
    /\/([a-z-]+)\/:(\w+)|:(\w+)/g,
    (match, collection?: string, param?: string, bare?: string) => {
      if (collection && param) return `/${collection}/${ids[param === 'id' ? collection : param] ?? 'x'}`;
      return ids[bare ?? ''] ?? 'x';
    },
  );
}

/** A body each route accepts, so that what answers is the lookup, not validation. */
function sampleBody(route: Route): Record<string, unknown> | undefined {
  const bodies: Record<string, Record<string, unknown>> = {
    updateCustomer: { name: 'Renamed' },
    updateProduct: { name: 'Renamed' },
    changePlan: { product_id: owner.pro },
    changeSubscriptionPlan: { product_id: owner.pro },
    advanceTestClock: { frozen_time: new Date(Date.now() + 86_400_000).toISOString() },
    // within what every holder of tokens:write holds (tokens:write grants tokens:read)
    createToken: { name: 'rt-walk', scopes: ['tokens:read'] },
    // valid bodies: what answers is the caller's right to make the change, not validation
    updateMemberRole: { role: 'SUPPORT' },
    createInvitation: { email: 'rt-invitee@rt.test', role: 'READONLY' },
  };
  return bodies[route.operationId] ?? (route.body ? {} : undefined);
}

/** A query each route accepts. */
function sampleQuery(route: Route): Record<string, string> {
  return ['previewPlanChange', 'previewSubscriptionPlanChange'].includes(route.operationId)
    ? { product_id: owner.pro }
    : {};
}

function call(route: Route, auth?: string) {
  const req = request(stack.app)[route.method](concretePath(route)).query(sampleQuery(route));
  if (auth) req.set('Authorization', auth);
  const body = sampleBody(route);
  return body === undefined ? req : req.send(body);
}

describe('the route table', () => {
  it('holds the routes the app serves, each declared once with a unique operationId', () => {
    expect(routes.length).toBeGreaterThan(35);
    const keys = routes.map((r) => `${r.method} ${r.path}`);
    expect(new Set(keys).size).toBe(keys.length);
    const operations = routes.map((r) => r.operationId);
    expect(new Set(operations).size).toBe(operations.length);
  });

  it('gives every route a permission, or a reason to be public', () => {
    for (const r of routes) {
      if ('public' in r.access) {
        expect({ route: r.operationId, why: r.access.public.length >= 20 }).toEqual({
          route: r.operationId,
          why: true,
        });
      } else {
        expect({ route: r.operationId, permission: PERMISSIONS.includes(r.access.permission) }).toEqual({
          route: r.operationId,
          permission: true,
        });
      }
    }
    const open = routes.filter((r) => 'public' in r.access).map((r) => r.path);
    expect(open.sort()).toEqual([
      '/api/v1/auth/invitations/accept',
      '/api/v1/auth/login',
      '/api/v1/auth/password-reset',
      '/api/v1/auth/password-reset/confirm',
      '/api/v1/auth/refresh',
      '/api/v1/billing/webhooks/stripe',
      '/health',
      '/health/ready',
      '/metrics',
      '/openapi.json',
    ]);
  });

  it('is what /openapi.json documents: the same methods and paths, each with its operationId and tag', async () => {
    const res = await request(stack.app).get('/openapi.json');
    const paths = res.body.paths as Record<string, Record<string, { operationId?: string; tags?: string[] }>>;
    const documented = Object.entries(paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => `${method} ${path} ${op.operationId} ${op.tags?.join(',')}`),
    );
    const declared = routes.map((r) => `${r.method} ${openApiPath(r.path)} ${r.operationId} ${r.tag}`);
    expect(documented.sort()).toEqual(declared.sort());
  });

  it('documents the Idempotency-Key header on every idempotent route and security on every private one', async () => {
    const res = await request(stack.app).get('/openapi.json');
    for (const r of routes) {
      const op = res.body.paths[openApiPath(r.path)][r.method] as {
        parameters?: { name: string; in: string }[];
        security?: unknown[];
        responses: Record<string, unknown>;
      };
      const hasKey = (op.parameters ?? []).some((p) => p.in === 'header' && p.name === 'Idempotency-Key');
      expect({ route: r.operationId, idempotencyKey: hasKey }).toEqual({
        route: r.operationId,
        idempotencyKey: r.idempotent,
      });
      const isPublic = 'public' in r.access;
      expect({ route: r.operationId, secured: (op.security ?? []).length > 0 }).toEqual({
        route: r.operationId,
        secured: !isPublic,
      });
      if (!isPublic) expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '403']));
    }
  });
});

describe('every route, called', () => {
  it('answers 401 without credentials when it needs them', async () => {
    for (const r of routes.filter((r) => !('public' in r.access))) {
      const res = await call(r);
      expect({ route: r.operationId, status: res.status }).toEqual({ route: r.operationId, status: 401 });
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  });

  it('answers 403 to a tenant’s token on every platform route', async () => {
    for (const r of routes.filter((r) => !('public' in r.access) && r.access.caller === 'platform')) {
      const res = await call(r, stranger.auth);
      expect({ route: r.operationId, status: res.status }).toEqual({ route: r.operationId, status: 403 });
    }
  });

  it('answers 404 to another tenant’s token on every route naming a tenant’s resource', async () => {
    // A route whose permission only signed-in users hold answers any API token 403 before it looks
    // anything up (so nothing is confirmed); it is walked with users below.
    const tenantRoutes = routes.filter(
      (r) =>
        !('public' in r.access) &&
        r.access.caller !== 'platform' &&
        r.path.includes('/:') &&
        !userOnly(r.access.permission),
    );
    expect(tenantRoutes.length).toBeGreaterThan(15);
    for (const r of tenantRoutes) {
      const res = await call(r, stranger.auth);
      expect({ route: r.operationId, path: concretePath(r), status: res.status }).toEqual({
        route: r.operationId,
        path: concretePath(r),
        status: 404,
      });
      // and the owner reaches the same resource (the 404 is about the caller, not the id)
      const own = await call(r, owner.auth);
      expect({ route: r.operationId, found: own.status !== 404 }).toEqual({
        route: r.operationId,
        found: true,
      });
    }
  });
});

/** Permissions no API token holds: a user's own sign-in. */
function userOnly(permission: Permission): boolean {
  return (SELF_PERMISSIONS as readonly Permission[]).includes(permission);
}

const USER_PASSWORD = 'route table passphrase';

/** Signs a user in through the login service (an HTTP login would spend the auth rate limit). */
async function signIn(email: string): Promise<{ auth: string; sessionId: string }> {
  const signedIn = await login(
    systemEm(stack.db.orm),
    authSettings(stack.config),
    { email, password: USER_PASSWORD },
    { ip: null, userAgent: null },
  );
  const { token } = await signAccessToken(accessTokenSettings(stack.config), signedIn);
  return { auth: `Bearer ${token}`, sessionId: signedIn.sessionId };
}

/** A new member of `tenantId` (an OWNER unless told), signed in. */
async function newUser(
  tenantId: string,
  email: string,
  role: MembershipRole = 'OWNER',
): Promise<{ auth: string; sessionId: string; userId: string; membershipId: string }> {
  const { user, membership } = await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email,
    password: USER_PASSWORD,
    membership: { tenantId, role },
  });
  return { ...(await signIn(email)), userId: user.id, membershipId: membership?.id ?? '' };
}

describe('every route for signed-in users only, called', () => {
  it('answers 404 to any other user on every one naming a user’s resource, and the user reaches it', async () => {
    const userRoutes = routes.filter(
      (r) => !('public' in r.access) && userOnly(r.access.permission) && r.path.includes('/:'),
    );
    expect(userRoutes.length).toBeGreaterThan(0);
    const user = await newUser(owner.id, 'rt-user@rt.test');
    const colleague = await newUser(owner.id, 'rt-colleague@rt.test');
    const outsider = await newUser(stranger.id, 'rt-outsider@rt.test');
    // the routes name the user's other session, which a call may end
    ids.sessions = (await signIn('rt-user@rt.test')).sessionId;
    for (const r of userRoutes) {
      for (const intruder of [outsider, colleague]) {
        const res = await call(r, intruder.auth);
        expect({ route: r.operationId, status: res.status }).toEqual({ route: r.operationId, status: 404 });
      }
      const own = await call(r, user.auth);
      expect({ route: r.operationId, found: own.status !== 404 }).toEqual({
        route: r.operationId,
        found: true,
      });
    }
  });
});

/**
 * Who walks the routes below: a signed-in member of `owner` with one role, or one of its tokens
 * with some scopes. Either holds exactly the permissions the one table gives it.
 */
interface Walker {
  name: string;
  auth: string;
  kind: 'user' | 'token';
  /** a platform token: tenant routes are not for it */
  platform?: boolean;
  role?: MembershipRole;
  permissions: ReadonlySet<Permission>;
}

/**
 * Routes that ask more than their permission of the caller, each with why: they answer 403 to
 * some holders of it. Every other route answers 403 exactly to those lacking its permission.
 */
const REFINED: Record<string, { why: string; refuses: (w: Walker) => boolean }> = {
  updateMemberRole: { why: 'only a signed-in OWNER changes roles', refuses: (w) => w.role !== 'OWNER' },
  removeMember: { why: 'a person removes members, never an API token', refuses: (w) => w.kind === 'token' },
  createInvitation: { why: 'a person invites, never an API token', refuses: (w) => w.kind === 'token' },
  revokeInvitation: {
    why: 'a person revokes invitations, never an API token',
    refuses: (w) => w.kind === 'token',
  },
};

/** Routes that end the caller's own sign-in: walked last, so the calls before them keep a credential. */
const ENDS_OWN_SESSION = new Set(['logout']);

/** What `w` calling `r` must get: 403 when it may not, anything but 401 and 403 when it may. */
function expectedFor(r: Route, w: Walker): 403 | 'allowed' {
  if ('public' in r.access) return 'allowed';
  if (r.access.caller === (w.platform ? 'tenant' : 'platform')) return 403;
  if (!w.permissions.has(r.access.permission)) return 403;
  return REFINED[r.operationId]?.refuses(w) ? 403 : 'allowed';
}

/**
 * Calls every private route as `w`. Calls that are allowed may really change things (a pod ended,
 * a token revoked, a member removed): authorization answers before any lookup, so a resource gone
 * since answers 404 or 409, never 401 or 403, and the walk stays valid. Members and invitations,
 * whose refusals depend on the target, get fresh throwaway ones for each walker.
 */
async function walk(w: Walker): Promise<void> {
  const em = systemEm(stack.db.orm);
  const n = ++walkers;
  const throwaway = await createUser(em, authSettings(stack.config), {
    email: `rt-throwaway-${n}@rt.test`,
    password: USER_PASSWORD,
    membership: { tenantId: owner.id, role: 'READONLY' },
  });
  ids.members = throwaway.membership?.id ?? 'x';
  const invitation = await createInvitation(em, {
    tenantId: owner.id,
    email: `rt-invited-${n}@rt.test`,
    role: 'READONLY',
    actor: { userId: inviterId },
  });
  ids.invitations = invitation.id;
  const walked = routes
    .filter((r) => !('public' in r.access))
    .sort(
      (a, b) => Number(ENDS_OWN_SESSION.has(a.operationId)) - Number(ENDS_OWN_SESSION.has(b.operationId)),
    );
  const wrong: { route: string; expected: 403 | 'allowed'; status: number }[] = [];
  for (const r of walked) {
    const res = await call(r, w.auth);
    const expected = expectedFor(r, w);
    const ok =
      expected === 403
        ? res.status === 403 && /^application\/problem\+json/.test(res.headers['content-type'] ?? '')
        : res.status !== 401 && res.status !== 403;
    if (!ok) wrong.push({ route: r.operationId, expected, status: res.status });
  }
  expect({ walker: w.name, wrong }).toEqual({ walker: w.name, wrong: [] });
  // and the walk saw both answers (the walker is neither everything nor nothing)
  const expectations = walked.map((r) => expectedFor(r, w));
  expect(expectations).toContain(403);
}
let walkers = 0;

describe('every route, called by each membership role and by tokens of fine scopes', () => {
  it.each(MEMBERSHIP_ROLES.map((role) => [role]))(
    'answers a signed-in %s 403 exactly where the role lacks the permission',
    async (role) => {
      const user = await newUser(owner.id, `rt-walk-${role.toLowerCase()}@rt.test`, role);
      await walk({ name: role, auth: user.auth, kind: 'user', role, permissions: userPermissions(role) });
    },
  );

  it.each<[TokenScope[]]>([
    [['pods:read']],
    [['pods:write']],
    [['billing:read']],
    [['billing:write', 'catalog:read']],
    [['catalog:write']],
    [['tokens:write']],
    [['members:read', 'security:read', 'audit:read']],
    [['members:write']],
    [['security:write']],
    [['read']],
    [['admin']],
  ])('answers a token with %j 403 exactly where its scopes lack the permission', async (scopes) => {
    const created = await request(stack.app)
      .post('/api/v1/tokens')
      .set('Authorization', owner.auth)
      .send({ name: `rt-walk ${scopes.join(' ')}`, scopes });
    expect(created.status).toBe(201);
    await walk({
      name: scopes.join(' '),
      auth: `Bearer ${created.body.secret as string}`,
      kind: 'token',
      permissions: tokenPermissions('tenant', scopes),
    });
  });

  it.each<[TokenScope[]]>([[['read']], [['security:read', 'audit:read']], [['tenants:read']]])(
    'answers a platform token with %j 403 exactly where its scopes lack the permission, and on tenant routes',
    async (scopes) => {
      const { secret } = await issueToken(systemEm(stack.db.orm), {
        tenantId: null,
        name: 'rt-walk',
        scopes,
      });
      await walk({
        name: `platform ${scopes.join(' ')}`,
        auth: `Bearer ${secret}`,
        kind: 'token',
        platform: true,
        permissions: tokenPermissions('platform', scopes),
      });
    },
  );

  it('answers a member who must still set up MFA 403 on every route but their own account’s', async () => {
    // the stranger's policy: the owner's members walk above unhindered
    await replacePolicy(
      systemEm(stack.db.orm),
      stranger.id,
      { ...DEFAULT_POLICY, requireMfa: true },
      { userId: null, tokenId: null, ip: null, userAgent: null },
    );
    const user = await newUser(stranger.id, 'rt-walk-mfa@rt.test', 'OWNER');
    await walk({
      name: 'OWNER without the MFA its tenant requires',
      auth: user.auth,
      kind: 'user',
      role: 'OWNER',
      permissions: new Set(SELF_PERMISSIONS),
    });
  });

  it('refines only routes that exist', () => {
    const served = new Set(routes.map((r) => r.operationId));
    for (const operationId of [...Object.keys(REFINED), ...ENDS_OWN_SESSION]) {
      expect({ operationId, served: served.has(operationId) }).toEqual({ operationId, served: true });
    }
  });

  it('refuses a pods:read token pod changes and billing reads, and lets it read pods', async () => {
    const created = await request(stack.app)
      .post('/api/v1/tokens')
      .set('Authorization', owner.auth)
      .send({ name: 'rt pods reader', scopes: ['pods:read'] });
    const auth = `Bearer ${created.body.secret as string}`;
    const podRoutes = routes.filter((r) => r.path.startsWith('/api/v1/cloudpods'));
    for (const r of podRoutes) {
      const res = await call(r, auth);
      const reads = r.method === 'get';
      expect({ route: r.operationId, refused: res.status === 403 }).toEqual({
        route: r.operationId,
        refused: !reads,
      });
    }
    const billingReads = routes.filter((r) => r.path.startsWith('/api/v1/billing/') && r.method === 'get');
    expect(billingReads.length).toBeGreaterThan(3);
    for (const r of billingReads) {
      expect({ route: r.operationId, status: (await call(r, auth)).status }).toEqual({
        route: r.operationId,
        status: 403,
      });
    }
  });
});
