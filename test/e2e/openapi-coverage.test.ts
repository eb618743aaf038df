/**
 * /openapi.json describes exactly what the app serves: every route mounted on the Express app,
 * nested routers included, is documented with the same method and path, and nothing documented
 * is missing from the app.
 */
import type { Express } from 'express';
import request from 'supertest';
import { startTestStack, type TestStack } from '../helpers/app';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.close();
});

/** The parts of Express 5's router layers this walk reads. */
interface Layer {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean | undefined> };
  handle?: { stack?: unknown };
}

function joinPaths(prefix: string, path: string): string {
  const joined = `${prefix}/${path}`.replace(/\/{2,}/g, '/');
  return joined.length > 1 ? joined.replace(/\/$/, '') : joined;
}

/** `/cloudpods/:id/backups/:backupId` → `/cloudpods/{id}/backups/{backupId}` */
const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** Every `METHOD /path` mounted on the app, walking nested routers. */
function mountedRoutes(app: Express): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths) {
          if (typeof path !== 'string') throw new Error(`route with a non-string path under ${prefix}`);
          for (const [method, on] of Object.entries(layer.route.methods)) {
            if (on && method !== '_all')
              found.push(`${method.toUpperCase()} ${toOpenApiPath(joinPaths(prefix, path))}`);
          }
        }
      } else if (Array.isArray(layer.handle?.stack)) {
        if (typeof layer.rawPath !== 'string')
          throw new Error(`router mounted on a non-string path under ${prefix}`);
        walk(layer.handle.stack as Layer[], joinPaths(prefix, layer.rawPath));
      }
    }
  };
  const router = (app as unknown as { router: { stack: Layer[] } }).router;
  walk(router.stack, '');
  return [...new Set(found)].sort();
}

async function documentedRoutes(): Promise<string[]> {
  const res = await request(stack.app).get('/openapi.json');
  expect(res.status).toBe(200);
  const paths = res.body.paths as Record<string, Record<string, unknown>>;
  const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
  return Object.entries(paths)
    .flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => methods.includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    )
    .sort();
}

describe('/openapi.json covers the mounted routes', () => {
  it('the walk sees nested routers (sanity check of the test itself)', () => {
    const mounted = mountedRoutes(stack.app);
    expect(mounted).toEqual(
      expect.arrayContaining([
        'GET /health',
        'GET /api/v1/customers/{id}',
        'POST /api/v1/tenants/{id}/tokens',
        'POST /api/v1/cloudpods/{id}/backups/{backupId}/restore',
      ]),
    );
    expect(mounted.length).toBeGreaterThan(30);
  });

  it('documents every mounted route with the same method and path', async () => {
    const documented = new Set(await documentedRoutes());
    const missing = mountedRoutes(stack.app).filter((route) => !documented.has(route));
    expect(missing).toEqual([]);
  });

  it('documents the edge answers every route can give: 400, and under /api/v1 503 with Retry-After', async () => {
    const res = await request(stack.app).get('/openapi.json');
    const paths = res.body.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    const lacking: string[] = [];
    for (const [path, item] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!op.responses['400']) lacking.push(`${method} ${path}: 400`);
        const unavailable = op.responses['503'] as { headers?: Record<string, unknown> } | undefined;
        if (path.startsWith('/api/v1/') && !unavailable?.headers?.['Retry-After'])
          lacking.push(`${method} ${path}: 503 with Retry-After`);
      }
    }
    expect(lacking).toEqual([]);
  });

  it('documents no route that is not mounted', async () => {
    const mounted = new Set(mountedRoutes(stack.app));
    const phantom = (await documentedRoutes()).filter((route) => !mounted.has(route));
    expect(phantom).toEqual([]);
  });
});
