/** Tenant onboarding through HTTP with a real worker: the workflow takes the tenant to ACTIVE. */
import request from 'supertest';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/shared';
import { startTestStack, type TestStack } from '../helpers/app';
import { waitFor } from '../helpers/wait';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant } from '../helpers/tenants';

let stack: TestStack;
const admin = () => `Bearer ${stack.adminToken}`;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.close();
});

describe('POST /api/v1/tenants', () => {
  it('creates a PENDING tenant, answers 202 and the onboarding workflow makes it ACTIVE with its settings', async () => {
    const res = await request(stack.app)
      .post('/api/v1/tenants')
      .set('Authorization', admin())
      .send({ slug: 'acme-hosting', name: 'Acme Hosting', currency: 'EUR', owner_email: 'Owner@Acme.test' });
    expect(res.status).toBe(202);
    expect(res.body.tenant).toMatchObject({
      slug: 'acme-hosting',
      status: 'PENDING',
      currency: 'EUR',
      owner_email: 'owner@acme.test',
    });
    const tenantId = res.body.tenant.id as string;
    expect(tenantId).toMatch(/^ten_/);
    expect(res.body.workflow_id).toBe(`tenant-onboard-${tenantId}`);
    expect(res.headers.location).toBe(`/api/v1/tenants/${tenantId}`);

    const handle = stack.temporal.workflow.getHandle(res.body.workflow_id);
    const result = await handle.result();
    expect(result).toMatchObject({ tenantId, status: 'ACTIVE', step: 'done' });

    const get = await request(stack.app).get(`/api/v1/tenants/${tenantId}`).set('Authorization', admin());
    expect(get.status).toBe(200);
    expect(get.body.status).toBe('ACTIVE');
    expect(get.body.activated_at).not.toBeNull();

    const [billing] = await stack.db.query<{ tax_rate_bps: number; dunning_policy: unknown }>(
      'select * from tenant_billing_settings where tenant_id = $1',
      [tenantId],
    );
    expect(billing?.dunning_policy).toEqual({
      retryOffsetsDays: [1, 3, 5, 7],
      suspendAfterLastRetry: true,
      terminateAfterDaysOverdue: 30,
      notifyOnEveryFailure: true,
    });
    const quotas = await stack.db.query('select * from tenant_quotas where tenant_id = $1', [tenantId]);
    expect(quotas).toHaveLength(1);
    const mail = await stack.db.query<{ template: string; recipient: string; status: string }>(
      'select template, recipient, status from notifications where tenant_id = $1',
      [tenantId],
    );
    expect(mail).toEqual([{ template: 'tenant.welcome', recipient: 'owner@acme.test', status: 'PENDING' }]);

    // Operators find it in the Temporal UI by TenantId; the description carries the static summary.
    const desc = await handle.describe();
    expect(desc.typedSearchAttributes.get(SEARCH_ATTRIBUTES.TenantId)).toBe(tenantId);
    expect(desc.typedSearchAttributes.get(SEARCH_ATTRIBUTES.PodplaneStatus)).toBe('ACTIVE');
    expect(await desc.staticSummary()).toContain('acme-hosting');
    const listed = await waitFor(
      async () => {
        const found = [];
        for await (const wf of stack.temporal.workflow.list({ query: `TenantId = '${tenantId}'` }))
          found.push(wf.workflowId);
        return found.length > 0 ? found : undefined;
      },
      { what: 'visibility to index the workflow' },
    );
    expect(listed).toEqual([`tenant-onboard-${tenantId}`]);
  });

  it('answers 409 for a slug that is taken and stores nothing new', async () => {
    const body = { slug: 'dupe-slug', name: 'First', currency: 'USD', owner_email: 'a@dupe.test' };
    expect(
      (await request(stack.app).post('/api/v1/tenants').set('Authorization', admin()).send(body)).status,
    ).toBe(202);
    const again = await request(stack.app)
      .post('/api/v1/tenants')
      .set('Authorization', admin())
      .send({ ...body, name: 'Second' });
    expectProblem(again, 409, 'conflict');
    const rows = await stack.db.query('select id from tenants where slug = $1', ['dupe-slug']);
    expect(rows).toHaveLength(1);
  });

  it.each([
    [{ slug: 'A b', name: 'x', currency: 'EUR', owner_email: 'a@b.test' }, 'slug'],
    [{ slug: 'good-slug', name: '', currency: 'EUR', owner_email: 'a@b.test' }, 'name'],
    [{ slug: 'good-slug', name: 'x', currency: 'EURO', owner_email: 'a@b.test' }, 'currency'],
    [{ slug: 'good-slug', name: 'x', currency: 'eur', owner_email: 'a@b.test' }, 'currency'],
    [{ slug: 'good-slug', name: 'x', currency: 'EUR', owner_email: 'not-an-email' }, 'owner_email'],
    [{ slug: 'admin', name: 'x', currency: 'EUR', owner_email: 'a@b.test' }, 'slug'],
    [{ slug: "x'; drop table tenants;--", name: 'x', currency: 'EUR', owner_email: 'a@b.test' }, 'slug'],
    [{ slug: 'good-slug', name: 42, currency: 'EUR', owner_email: 'a@b.test' }, 'name'],
    [{ slug: 'good-slug', name: 'x', currency: 'EUR', owner_email: 'a@b.test', status: 'ACTIVE' }, 'body'],
    [{ name: 'x', currency: 'EUR', owner_email: 'a@b.test' }, 'slug'],
    [{ slug: 'good-slug', name: 'nul\u0000byte', currency: 'EUR', owner_email: 'a@b.test' }, 'name'],
  ])('rejects %j with 400 naming %s, storing nothing', async (body, field) => {
    const before = await stack.db.query('select count(*)::int as n from tenants');
    const res = await request(stack.app).post('/api/v1/tenants').set('Authorization', admin()).send(body);
    expectProblem(res, 400, 'validation-failed');
    const fields = (res.body.errors as { field: string }[]).map((e) => e.field);
    expect(fields).toContain(field);
    expect(await stack.db.query('select count(*)::int as n from tenants')).toEqual(before);
  });

  it('is for platform admins only: a tenant token gets 403, no token 401', async () => {
    const { token } = await createActiveTenant(stack, 'tenant-for-403');
    const body = { slug: 'sneaky', name: 'x', currency: 'EUR', owner_email: 'a@b.test' };
    expectProblem(
      await request(stack.app).post('/api/v1/tenants').set('Authorization', `Bearer ${token}`).send(body),
      403,
      'forbidden',
    );
    const anon = await request(stack.app).post('/api/v1/tenants').send(body);
    expectProblem(anon, 401, 'unauthenticated');
    expect(anon.headers['www-authenticate']).toMatch(/^Bearer/);
    expectProblem(
      await request(stack.app)
        .post('/api/v1/tenants')
        .set('Authorization', 'Bearer ppt_' + 'x'.repeat(43))
        .send(body),
      401,
      'unauthenticated',
    );
    expect(await stack.db.query("select id from tenants where slug = 'sneaky'")).toHaveLength(0);
  });
});

describe('tenant isolation', () => {
  let a: { id: string; token: string };
  let b: { id: string; token: string };
  beforeAll(async () => {
    [a, b] = await Promise.all([
      createActiveTenant(stack, 'tenant-a'),
      createActiveTenant(stack, 'tenant-b'),
    ]);
  });

  it('a tenant token sees its own tenant and gets 404 for another one', async () => {
    const own = await request(stack.app)
      .get(`/api/v1/tenants/${a.id}`)
      .set('Authorization', `Bearer ${a.token}`);
    expect(own.status).toBe(200);
    expect(own.body.id).toBe(a.id);
    expectProblem(
      await request(stack.app).get(`/api/v1/tenants/${b.id}`).set('Authorization', `Bearer ${a.token}`),
      404,
      'not-found',
    );
    const list = await request(stack.app).get('/api/v1/tenants').set('Authorization', `Bearer ${a.token}`);
    expect(list.body.data.map((t: { id: string }) => t.id)).toEqual([a.id]);
  });

  it('a tenant token creates tokens for itself only, secrets shown once, and cannot touch another tenant’s tokens', async () => {
    const created = await request(stack.app)
      .post('/api/v1/tokens')
      .set('Authorization', `Bearer ${a.token}`)
      .send({ name: 'storefront', scopes: ['read'] });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^ppt_[A-Za-z0-9_-]{43}$/);
    expect(created.body.token).toMatchObject({ tenant_id: a.id, scopes: ['read'], name: 'storefront' });
    const stored = await stack.db.query<{ token_hash: string }>(
      'select token_hash from api_tokens where id = $1',
      [created.body.token.id],
    );
    expect(stored[0]?.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(await stack.db.query('select * from api_tokens'))).not.toContain(
      created.body.secret,
    );

    // The new token works, only for tenant A, and a read-only token cannot mint a write token.
    const readOnly = `Bearer ${created.body.secret as string}`;
    expect(
      (await request(stack.app).get(`/api/v1/tenants/${a.id}`).set('Authorization', readOnly)).status,
    ).toBe(200);
    expectProblem(
      await request(stack.app).get(`/api/v1/tenants/${b.id}`).set('Authorization', readOnly),
      404,
      'not-found',
    );
    expectProblem(
      await request(stack.app)
        .post('/api/v1/tokens')
        .set('Authorization', readOnly)
        .send({ name: 'x', scopes: ['read'] }),
      403,
      'forbidden',
    );

    const listA = await request(stack.app).get('/api/v1/tokens').set('Authorization', `Bearer ${a.token}`);
    expect(listA.body.data.every((t: { tenant_id: string }) => t.tenant_id === a.id)).toBe(true);
    expect(JSON.stringify(listA.body)).not.toContain(created.body.secret);
    expect(JSON.stringify(listA.body)).not.toContain(a.token);

    const listB = await request(stack.app).get('/api/v1/tokens').set('Authorization', `Bearer ${b.token}`);
    const bTokenId = listB.body.data[0].id as string;
    expectProblem(
      await request(stack.app).delete(`/api/v1/tokens/${bTokenId}`).set('Authorization', `Bearer ${a.token}`),
      404,
      'not-found',
    );
    const stillValid = await request(stack.app)
      .get(`/api/v1/tenants/${b.id}`)
      .set('Authorization', `Bearer ${b.token}`);
    expect(stillValid.status).toBe(200);

    // Revoking its own token locks that token out at once.
    const revoke = await request(stack.app)
      .delete(`/api/v1/tokens/${created.body.token.id}`)
      .set('Authorization', `Bearer ${a.token}`);
    expect(revoke.status).toBe(200);
    expect(revoke.body.revoked_at).not.toBeNull();
    expectProblem(
      await request(stack.app).get(`/api/v1/tenants/${a.id}`).set('Authorization', readOnly),
      401,
      'unauthenticated',
    );
  });

  it('a token revoked outside this API process (CLI, another API) stops working once its cached lookup lapses', async () => {
    const created = await request(stack.app)
      .post('/api/v1/tokens')
      .set('Authorization', `Bearer ${a.token}`)
      .send({ name: 'revoked-elsewhere', scopes: ['read'] });
    expect(created.status).toBe(201);
    const auth = `Bearer ${created.body.secret as string}`;
    expect((await request(stack.app).get(`/api/v1/tenants/${a.id}`).set('Authorization', auth)).status).toBe(
      200,
    );
    await stack.db.query('update api_tokens set revoked_at = now() where id = $1', [created.body.token.id]);
    const refused = await waitFor(
      async () => {
        const res = await request(stack.app).get(`/api/v1/tenants/${a.id}`).set('Authorization', auth);
        return res.status === 401 ? res : undefined;
      },
      { what: 'the revoked token refused', timeoutMs: 10_000, intervalMs: 100 },
    );
    expectProblem(refused, 401, 'unauthenticated');
  });

  it('tenant-only and admin-only routes refuse the other kind of principal', async () => {
    expectProblem(
      await request(stack.app).get('/api/v1/tokens').set('Authorization', admin()),
      403,
      'forbidden',
    );
    expectProblem(
      await request(stack.app).get('/api/v1/__debug').set('Authorization', `Bearer ${a.token}`),
      403,
      'forbidden',
    );
    expectProblem(
      await request(stack.app)
        .post(`/api/v1/tenants/${b.id}/tokens`)
        .set('Authorization', `Bearer ${a.token}`)
        .send({ name: 'x' }),
      403,
      'forbidden',
    );
  });
});

describe('API shell', () => {
  it('lists tenants with cursor pagination', async () => {
    for (const slug of ['page-one', 'page-two', 'page-three']) {
      await request(stack.app)
        .post('/api/v1/tenants')
        .set('Authorization', admin())
        .send({ slug, name: slug, currency: 'GBP', owner_email: `o@${slug}.test` });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await request(stack.app)
        .get('/api/v1/tenants')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set('Authorization', admin());
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((t: { id: string }) => t.id));
      cursor = res.body.next_cursor;
    } while (cursor);
    const all = await stack.db.query<{ id: string }>('select id from tenants order by id');
    expect(seen).toEqual(all.map((r) => r.id));
    expectProblem(
      await request(stack.app).get('/api/v1/tenants?limit=1000').set('Authorization', admin()),
      400,
      'validation-failed',
    );
    // A forged cursor (here: NUL bytes, which PostgreSQL would refuse) is a 400, never a 500.
    const forged = Buffer.from('\u0000\u0000').toString('base64url');
    expectProblem(
      await request(stack.app).get(`/api/v1/tenants?cursor=${forged}`).set('Authorization', admin()),
      400,
      'validation-failed',
    );
  });

  it('answers malformed JSON 400, wrong media type 415, too large 413, unknown route 404 — all problem+json', async () => {
    const malformed = await request(stack.app)
      .post('/api/v1/tenants')
      .set('Authorization', admin())
      .set('Content-Type', 'application/json')
      .send('{"slug": ');
    expectProblem(malformed, 400, 'malformed-request');
    const form = await request(stack.app)
      .post('/api/v1/tenants')
      .set('Authorization', admin())
      .type('form')
      .send('slug=x');
    expectProblem(form, 415, 'unsupported-media-type');
    const huge = await request(stack.app)
      .post('/api/v1/tenants')
      .set('Authorization', admin())
      .send({ slug: 'huge', name: 'x'.repeat(200_000), currency: 'EUR', owner_email: 'a@b.test' });
    expectProblem(huge, 413, 'payload-too-large');
    expectProblem(await request(stack.app).get('/nowhere'), 404, 'not-found');
    expectProblem(
      await request(stack.app)
        .get(`/api/v1/tenants/ten_${'0'.repeat(26)}`)
        .set('Authorization', admin()),
      404,
      'not-found',
    );
  });

  it('sends security headers, CORS only for allowed origins, and a request id', async () => {
    const res = await request(stack.app)
      .get('/health')
      .set('Origin', 'http://localhost:3000')
      .set('X-Request-Id', 'trace-abc-123');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok' });
    expect(res.headers['x-request-id']).toBe('trace-abc-123');
    expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['strict-transport-security']).toMatch(/max-age=/);
    expect(res.headers['access-control-allow-origin']).toBe('http://localhost:3000');
    const evil = await request(stack.app).get('/health').set('Origin', 'https://evil.example');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    const forged = await request(stack.app).get('/health').set('X-Request-Id', 'bad id with spaces <script>');
    expect(forged.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('is ready when PostgreSQL and Temporal answer', async () => {
    const res = await request(stack.app).get('/health/ready');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ready',
      checks: { database: { status: 'up' }, temporal: { status: 'up' } },
    });
  });

  it('logs every line of a request with its request id and never the bearer secret', async () => {
    await request(stack.app)
      .get('/api/v1/tenants')
      .set('Authorization', admin())
      .set('X-Request-Id', 'log-check-1');
    const lines = stack.logLines.filter((l) => l.reqId === 'log-check-1');
    expect(lines.length).toBeGreaterThan(0);
    expect(JSON.stringify(stack.logLines)).not.toContain(stack.adminToken);
    const completed = lines.find((l) => l.route === '/api/v1/tenants');
    expect(completed).toMatchObject({ method: 'GET', status: 200 });
    expect(completed).not.toHaveProperty('req');
  });

  it('exposes metrics, the OpenAPI document, the docs UI and the admin debug summary', async () => {
    const metrics = await request(stack.app).get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(
      /podplane_http_request_duration_seconds_bucket\{.*route="\/api\/v1\/tenants\/:id".*status_code="200"/,
    );
    const doc = await request(stack.app).get('/openapi.json');
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/api/v1/tenants', '/api/v1/tenants/{id}', '/api/v1/tokens']),
    );
    expect(doc.body.components.schemas.CreateTenant.required).toEqual(
      expect.arrayContaining(['slug', 'name', 'currency', 'owner_email']),
    );
    const docs = await request(stack.app).get('/docs/');
    expect(docs.status).toBe(200);
    expect(docs.text).toContain('swagger-ui');
    expect(docs.headers['content-security-policy']).toContain("script-src 'self'");
    const debug = await request(stack.app).get('/api/v1/__debug').set('Authorization', admin());
    expect(debug.status).toBe(200);
    expect(debug.body).toMatchObject({ version: 'test', config: { jwt_secret: '[set]' } });
    expect(JSON.stringify(debug.body)).not.toContain(stack.config.JWT_SECRET);
  });
});
