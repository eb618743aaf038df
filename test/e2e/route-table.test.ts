/**
 * The route table is the one declaration of every route, so these walks cover every route there
 * is and every one added later: each declares who may call it (a permission, or why it is public),
 * /openapi.json documents exactly the served routes with the same method and path, every route
 * that needs credentials answers 401 without them, every platform route answers 403 to a tenant,
 * and every route naming a tenant's resource answers 404 to another tenant — never 403, which
 * would confirm the resource exists.
 */
import request from 'supertest';
import type { Route } from '../../src/api/http/route';
import { openApiPath } from '../../src/api/http/route';
import { PERMISSIONS } from '../../src/domain/permissions';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let routes: Route[];
let owner: PodTenant;
let stranger: PodTenant;
/** `:param` → an id of `owner`'s */
const ids: Record<string, string> = {};

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
  Object.assign(ids, {
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
  };
  return bodies[route.operationId] ?? (route.body ? {} : undefined);
}

/** A query each route accepts. */
function sampleQuery(route: Route): Record<string, string> {
  return route.operationId === 'previewPlanChange' ? { product_id: owner.pro } : {};
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
    const tenantRoutes = routes.filter(
      (r) => !('public' in r.access) && r.access.caller !== 'platform' && r.path.includes('/:'),
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
