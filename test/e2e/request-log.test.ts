/** The request log through the full stack: a tenant's request is one line naming its tenant. */
import request from 'supertest';
import { startTestStack, type TestStack } from '../helpers/app';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';

let stack: TestStack;
let tenant: ActiveTenant;

beforeAll(async () => {
  stack = await startTestStack();
  tenant = await createActiveTenant(stack, 'request-log');
});
afterAll(async () => {
  await stack?.close();
});

describe('request log', () => {
  it("writes one line for a tenant's request, with its tenant and without headers or the token", async () => {
    const res = await request(stack.app)
      .get('/api/v1/customers?limit=5')
      .set('Authorization', `Bearer ${tenant.token}`)
      .set('X-Request-Id', 'tenant-log-1');
    expect(res.status).toBe(200);
    const lines = stack.logLines.filter((l) => l.reqId === 'tenant-log-1');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      method: 'GET',
      route: '/api/v1/customers',
      status: 200,
      tenantId: tenant.id,
      msg: expect.stringMatching(/^GET \/api\/v1\/customers 200 \d+ms$/),
    });
    expect(Object.keys(lines[0]!).sort()).toEqual(
      [
        'durationMs',
        'level',
        'method',
        'msg',
        'name',
        'pid',
        'reqId',
        'route',
        'status',
        'tenantId',
        'time',
      ].sort(),
    );
    const text = JSON.stringify(lines);
    expect(text).not.toContain(tenant.token);
    expect(text).not.toMatch(/headers|authorization|limit=5/i);
  });

  it('names no tenant for a platform admin', async () => {
    const res = await request(stack.app)
      .get(`/api/v1/tenants/${tenant.id}`)
      .set('Authorization', `Bearer ${stack.adminToken}`)
      .set('X-Request-Id', 'admin-log-1');
    expect(res.status).toBe(200);
    const lines = stack.logLines.filter((l) => l.reqId === 'admin-log-1');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ route: '/api/v1/tenants/:id', status: 200 });
    expect(lines[0]).not.toHaveProperty('tenantId');
  });
});
