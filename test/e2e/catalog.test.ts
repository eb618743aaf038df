/** Customers and products through HTTP: CRUD, validation, soft delete, uniqueness, tenant isolation. */
import request from 'supertest';
import { startTestStack, type TestStack } from '../helpers/app';
import { createActiveTenant, issueTenantToken, type ActiveTenant } from '../helpers/tenants';
import { expectProblem } from '../helpers/problem';

let stack: TestStack;
let a: ActiveTenant;
let b: ActiveTenant;

beforeAll(async () => {
  stack = await startTestStack();
  [a, b] = await Promise.all([
    createActiveTenant(stack, 'catalog-a', { currency: 'EUR' }),
    createActiveTenant(stack, 'catalog-b', { currency: 'USD' }),
  ]);
});
afterAll(async () => {
  await stack?.close();
});

const bearer = (token: string) => `Bearer ${token}`;
const http = () => request(stack.app);

function problemFields(res: request.Response): string[] {
  return ((res.body.errors ?? []) as { field: string }[]).map((e) => e.field);
}

const PRODUCT = {
  code: 'POD-S',
  name: 'CloudPod S',
  interval: 'MONTH',
  unit_amount: 1500,
  vcpu: 2,
  memory_mb: 4096,
  disk_gb: 80,
  included_bandwidth_gb: 1000,
};

async function createCustomer(tenant: ActiveTenant, email: string, name = 'Someone') {
  const res = await http()
    .post('/api/v1/customers')
    .set('Authorization', bearer(tenant.token))
    .send({ email, name });
  expect(res.status).toBe(201);
  return res.body as { id: string; email: string; name: string };
}

async function createProduct(tenant: ActiveTenant, overrides: Record<string, unknown> = {}) {
  const res = await http()
    .post('/api/v1/products')
    .set('Authorization', bearer(tenant.token))
    .send({ ...PRODUCT, ...overrides });
  expect(res.status).toBe(201);
  return res.body as { id: string; code: string; currency: string };
}

async function count(table: 'customers' | 'products'): Promise<number> {
  const [row] = await stack.db.query<{ n: number }>(`select count(*)::int as n from ${table}`);
  return row?.n ?? -1;
}

describe('customers', () => {
  it('creates, reads, updates, lists and soft-deletes a customer', async () => {
    const auth = bearer(a.token);
    const created = await http()
      .post('/api/v1/customers')
      .set('Authorization', auth)
      .send({ email: '  Jane.Doe@Example.TEST ', name: '  Jane Doe ' });
    expect(created.status).toBe(201);
    expect(created.headers['content-type']).toMatch(/^application\/json/);
    const id = created.body.id as string;
    expect(id).toMatch(/^cus_[0-9a-z]{26}$/);
    expect(created.headers.location).toBe(`/api/v1/customers/${id}`);
    expect(created.body).toEqual({
      id,
      email: 'jane.doe@example.test',
      name: 'Jane Doe',
      collection_method: 'AUTOMATIC',
      default_payment_method: null,
      credit_balance: 0,
      test_clock_id: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
      deleted_at: null,
    });
    const [row] = await stack.db.query('select tenant_id, email from customers where id = $1', [id]);
    expect(row).toEqual({ tenant_id: a.id, email: 'jane.doe@example.test' });

    const got = await http().get(`/api/v1/customers/${id}`).set('Authorization', auth);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);

    const renamed = await http()
      .patch(`/api/v1/customers/${id}`)
      .set('Authorization', auth)
      .send({ name: 'Jane Q. Doe', email: 'JANE@example.test' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({
      id,
      name: 'Jane Q. Doe',
      email: 'jane@example.test',
      deleted_at: null,
    });
    expect(Date.parse(renamed.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(created.body.updated_at));
    expect(renamed.body.created_at).toBe(created.body.created_at);

    const listed = await http().get('/api/v1/customers').set('Authorization', auth);
    expect(listed.status).toBe(200);
    expect(listed.body.data).toContainEqual(renamed.body);

    const deleted = await http().delete(`/api/v1/customers/${id}`).set('Authorization', auth);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    const [soft] = await stack.db.query<{ deleted_at: Date | null }>(
      'select deleted_at from customers where id = $1',
      [id],
    );
    expect(soft?.deleted_at).toBeInstanceOf(Date);

    expectProblem(await http().get(`/api/v1/customers/${id}`).set('Authorization', auth), 404, 'not-found');
    expectProblem(
      await http().delete(`/api/v1/customers/${id}`).set('Authorization', auth),
      404,
      'not-found',
    );
    expectProblem(
      await http().patch(`/api/v1/customers/${id}`).set('Authorization', auth).send({ name: 'Zombie' }),
      404,
      'not-found',
    );
    const withDeleted = await http()
      .get(`/api/v1/customers/${id}`)
      .query({ include_deleted: 'true' })
      .set('Authorization', auth);
    expect(withDeleted.status).toBe(200);
    expect(withDeleted.body.deleted_at).toEqual(expect.any(String));
    expect(withDeleted.body.name).toBe('Jane Q. Doe');

    const live = await http().get('/api/v1/customers').set('Authorization', auth);
    expect(live.body.data.map((c: { id: string }) => c.id)).not.toContain(id);
    const all = await http().get('/api/v1/customers?include_deleted=true').set('Authorization', auth);
    expect(all.body.data.map((c: { id: string }) => c.id)).toContain(id);
  });

  it.each([
    [{ email: 'not-an-email', name: 'x' }, 'email'],
    [{ email: "x@y.test'; drop table customers;--", name: 'x' }, 'email'],
    [{ email: ['a@b.test'], name: 'x' }, 'email'],
    [{ email: `${'a'.repeat(320)}@b.test`, name: 'x' }, 'email'],
    [{ name: 'x' }, 'email'],
    [{ email: 'a@b.test' }, 'name'],
    [{ email: 'a@b.test', name: '' }, 'name'],
    [{ email: 'a@b.test', name: '   ' }, 'name'],
    [{ email: 'a@b.test', name: 'x'.repeat(201) }, 'name'],
    [{ email: 'a@b.test', name: 'nul\u0000byte' }, 'name'],
    [{ email: 'a@b.test', name: 'bell\u0007' }, 'name'],
    [{ email: 'a@b.test', name: 42 }, 'name'],
    [{ email: 'a@b.test', name: 'x', tenant_id: 'ten_01jd0000000000000000000000' }, 'body'],
    [{ email: 'a@b.test', name: 'x', deleted_at: null }, 'body'],
  ])('POST rejects %j with 400 naming %s, storing nothing', async (body, field) => {
    const before = await count('customers');
    const res = await http().post('/api/v1/customers').set('Authorization', bearer(a.token)).send(body);
    expectProblem(res, 400, 'validation-failed');
    expect(problemFields(res)).toContain(field);
    for (const issue of res.body.errors as { message: unknown }[])
      expect(typeof issue.message).toBe('string');
    expect(await count('customers')).toBe(before);
  });

  it('PATCH validates like POST and refuses an empty or unknown change', async () => {
    const { id } = await createCustomer(a, 'patch-me@example.test', 'Patch Me');
    const patch = (body: unknown) =>
      http()
        .patch(`/api/v1/customers/${id}`)
        .set('Authorization', bearer(a.token))
        .send(body as object);
    for (const [body, field] of [
      [{}, 'body'],
      [{ email: 'nope' }, 'email'],
      [{ name: '' }, 'name'],
      [{ id: 'cus_01jd0000000000000000000000' }, 'body'],
      [{ created_at: '2020-01-01T00:00:00Z' }, 'body'],
    ] as const) {
      const res = await patch(body);
      expectProblem(res, 400, 'validation-failed');
      expect(problemFields(res)).toContain(field);
    }
    const [row] = await stack.db.query('select email, name from customers where id = $1', [id]);
    expect(row).toEqual({ email: 'patch-me@example.test', name: 'Patch Me' });
  });

  it('answers 409 naming email for a taken email (any case), and frees the email on soft delete', async () => {
    const auth = bearer(a.token);
    const first = await createCustomer(a, 'dupe@example.test', 'First');
    const again = await http()
      .post('/api/v1/customers')
      .set('Authorization', auth)
      .send({ email: 'DUPE@Example.test', name: 'Second' });
    expectProblem(again, 409, 'conflict');
    expect(problemFields(again)).toEqual(['email']);

    const other = await createCustomer(a, 'other@example.test', 'Other');
    const steal = await http()
      .patch(`/api/v1/customers/${other.id}`)
      .set('Authorization', auth)
      .send({ email: 'dupe@example.test' });
    expectProblem(steal, 409, 'conflict');
    expect(problemFields(steal)).toEqual(['email']);
    const [unchanged] = await stack.db.query('select email from customers where id = $1', [other.id]);
    expect(unchanged).toEqual({ email: 'other@example.test' });

    // Uniqueness is per tenant: tenant B may have a customer with the same email.
    await createCustomer(b, 'dupe@example.test', 'B’s customer');

    expect((await http().delete(`/api/v1/customers/${first.id}`).set('Authorization', auth)).status).toBe(
      204,
    );
    const recreated = await createCustomer(a, 'Dupe@example.test', 'Reborn');
    expect(recreated.id).not.toBe(first.id);
    expect(recreated.email).toBe('dupe@example.test');

    const byEmail = await http()
      .get('/api/v1/customers')
      .query({ email: 'DUPE@example.test' })
      .set('Authorization', auth);
    expect(byEmail.status).toBe(200);
    expect(byEmail.body.data.map((c: { id: string }) => c.id)).toEqual([recreated.id]);
    const byEmailAll = await http()
      .get('/api/v1/customers')
      .query({ email: 'dupe@example.test', include_deleted: 'true' })
      .set('Authorization', auth);
    expect(byEmailAll.body.data.map((c: { id: string }) => c.id)).toEqual([first.id, recreated.id]);
  });

  it('stores hostile strings verbatim and returns them as JSON data, never executing them', async () => {
    const auth = bearer(a.token);
    const names = [
      "Robert'); DROP TABLE customers;--",
      '<script>alert(document.cookie)</script>',
      '" OR 1=1 --',
      '${7*7} {{7*7}} %s %n',
      'Zoë Ünïcødé 🚀 \u202eevil',
    ];
    for (const [i, name] of names.entries()) {
      const email = i === 0 ? "o'brien+test@example.test" : `hostile-${i}@example.test`;
      const res = await http().post('/api/v1/customers').set('Authorization', auth).send({ email, name });
      expect(res.status).toBe(201);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toMatchObject({ name, email });
      const [row] = await stack.db.query('select name, email from customers where id = $1', [res.body.id]);
      expect(row).toEqual({ name, email });
      const got = await http()
        .get(`/api/v1/customers/${res.body.id as string}`)
        .set('Authorization', auth);
      expect(got.body.name).toBe(name);
    }
    const byQuote = await http()
      .get('/api/v1/customers')
      .query({ email: "o'brien+test@example.test" })
      .set('Authorization', auth);
    expect(byQuote.body.data).toHaveLength(1);
    const injected = await http()
      .get('/api/v1/customers')
      .query({ email: "' or 1=1 --" })
      .set('Authorization', auth);
    expectProblem(injected, 400, 'validation-failed');
    expect(problemFields(injected)).toEqual(['email']);
    expectProblem(
      await http()
        .get(`/api/v1/customers/${encodeURIComponent("cus_' or '1'='1")}`)
        .set('Authorization', auth),
      404,
      'not-found',
    );
    // The tables are all still there and tenant B's rows untouched.
    expect(await count('customers')).toBeGreaterThan(0);
    const bRows = await stack.db.query('select id from customers where tenant_id = $1', [b.id]);
    expect(bRows.length).toBeGreaterThan(0);
  });
});

describe('products', () => {
  it('creates, reads, updates, lists and soft-deletes a product; a deleted one stays readable', async () => {
    const auth = bearer(a.token);
    const created = await http()
      .post('/api/v1/products')
      .set('Authorization', auth)
      .send({ ...PRODUCT, code: 'POD-CRUD', trial_days: 14, backups_included: 3 });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(id).toMatch(/^prd_[0-9a-z]{26}$/);
    expect(created.headers.location).toBe(`/api/v1/products/${id}`);
    expect(created.body).toEqual({
      id,
      code: 'POD-CRUD',
      name: 'CloudPod S',
      kind: 'CLOUDPOD',
      interval: 'MONTH',
      unit_amount: 1500,
      currency: 'EUR',
      vcpu: 2,
      memory_mb: 4096,
      disk_gb: 80,
      included_bandwidth_gb: 1000,
      bandwidth_overage_unit_amount: 0,
      trial_days: 14,
      backups_included: 3,
      created_at: expect.any(String),
      updated_at: expect.any(String),
      deleted_at: null,
    });
    const [row] = await stack.db.query(
      'select tenant_id, currency, unit_amount from products where id = $1',
      [id],
    );
    expect(row).toEqual({ tenant_id: a.id, currency: 'EUR', unit_amount: 1500 });

    const got = await http().get(`/api/v1/products/${id}`).set('Authorization', auth);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);

    const patched = await http()
      .patch(`/api/v1/products/${id}`)
      .set('Authorization', auth)
      .send({ name: 'CloudPod S (2025)', unit_amount: 0, trial_days: 0, backups_included: 7 });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      id,
      name: 'CloudPod S (2025)',
      unit_amount: 0,
      trial_days: 0,
      backups_included: 7,
      vcpu: 2,
      memory_mb: 4096,
    });

    expect((await http().delete(`/api/v1/products/${id}`).set('Authorization', auth)).status).toBe(204);
    const afterDelete = await http().get(`/api/v1/products/${id}`).set('Authorization', auth);
    expect(afterDelete.status).toBe(200);
    expect(afterDelete.body).toMatchObject({ id, code: 'POD-CRUD', name: 'CloudPod S (2025)' });
    expect(afterDelete.body.deleted_at).toEqual(expect.any(String));

    const live = await http().get('/api/v1/products').set('Authorization', auth);
    expect(live.body.data.map((p: { id: string }) => p.id)).not.toContain(id);
    const all = await http().get('/api/v1/products?include_deleted=true').set('Authorization', auth);
    expect(all.body.data.map((p: { id: string }) => p.id)).toContain(id);

    // A deleted product is visible, so changing it again is a conflict, not a 404.
    expectProblem(await http().delete(`/api/v1/products/${id}`).set('Authorization', auth), 409, 'conflict');
    expectProblem(
      await http().patch(`/api/v1/products/${id}`).set('Authorization', auth).send({ name: 'Again' }),
      409,
      'conflict',
    );
  });

  it("defaults the currency to the tenant's and accepts an explicit ISO 4217 one", async () => {
    expect((await createProduct(b, { code: 'USD-DEFAULT' })).currency).toBe('USD');
    expect((await createProduct(a, { code: 'GBP-PLAN', currency: 'GBP' })).currency).toBe('GBP');
  });

  it('answers 409 naming code for a taken code, also after the product was deleted; other tenants may reuse it', async () => {
    const auth = bearer(a.token);
    const first = await createProduct(a, { code: 'DUPE-CODE' });
    const again = await http()
      .post('/api/v1/products')
      .set('Authorization', auth)
      .send({ ...PRODUCT, code: 'DUPE-CODE', name: 'Other' });
    expectProblem(again, 409, 'conflict');
    expect(problemFields(again)).toEqual(['code']);
    expect((await http().delete(`/api/v1/products/${first.id}`).set('Authorization', auth)).status).toBe(204);
    expectProblem(
      await http()
        .post('/api/v1/products')
        .set('Authorization', auth)
        .send({ ...PRODUCT, code: 'DUPE-CODE' }),
      409,
      'conflict',
    );
    expect((await createProduct(b, { code: 'DUPE-CODE' })).code).toBe('DUPE-CODE');
  });

  it.each([
    [{ code: 'pod-s' }, 'code'],
    [{ code: 'P' }, 'code'],
    [{ code: '-POD' }, 'code'],
    [{ code: `P${'X'.repeat(64)}` }, 'code'],
    [{ code: "X'; DROP TABLE products;--" }, 'code'],
    [{ code: '<SCRIPT>' }, 'code'],
    [{ name: '' }, 'name'],
    [{ name: 'a\u0000b' }, 'name'],
    [{ interval: 'WEEK' }, 'interval'],
    [{ unit_amount: -1 }, 'unit_amount'],
    [{ unit_amount: 9.99 }, 'unit_amount'],
    [{ unit_amount: '1500' }, 'unit_amount'],
    [{ unit_amount: 2 ** 31 }, 'unit_amount'],
    [{ currency: 'eur' }, 'currency'],
    [{ currency: 'ZZZ' }, 'currency'],
    [{ vcpu: 0 }, 'vcpu'],
    [{ vcpu: 129 }, 'vcpu'],
    [{ memory_mb: 511 }, 'memory_mb'],
    [{ memory_mb: 1_048_577 }, 'memory_mb'],
    [{ disk_gb: 9 }, 'disk_gb'],
    [{ disk_gb: 65_537 }, 'disk_gb'],
    [{ included_bandwidth_gb: -1 }, 'included_bandwidth_gb'],
    [{ trial_days: 366 }, 'trial_days'],
    [{ trial_days: -1 }, 'trial_days'],
    [{ backups_included: 101 }, 'backups_included'],
    [{ vcpu: undefined }, 'vcpu'],
    [{ kind: 'DEDICATED' }, 'body'],
  ])('POST rejects %j with 400 naming %s, storing nothing', async (overrides, field) => {
    const before = await count('products');
    const res = await http()
      .post('/api/v1/products')
      .set('Authorization', bearer(a.token))
      .send({ ...PRODUCT, code: 'VALIDATION', ...overrides });
    expectProblem(res, 400, 'validation-failed');
    expect(problemFields(res)).toContain(field);
    expect(await count('products')).toBe(before);
  });

  it('refuses to change limits, code, interval or currency with 422 naming each field', async () => {
    const { id } = await createProduct(a, { code: 'FROZEN' });
    const auth = bearer(a.token);
    const res = await http()
      .patch(`/api/v1/products/${id}`)
      .set('Authorization', auth)
      .send({ name: 'Bigger', vcpu: 64, memory_mb: 65536 });
    expectProblem(res, 422, 'unprocessable');
    expect(problemFields(res)).toEqual(['vcpu', 'memory_mb']);
    for (const field of ['code', 'interval', 'currency', 'disk_gb', 'included_bandwidth_gb']) {
      const r = await http()
        .patch(`/api/v1/products/${id}`)
        .set('Authorization', auth)
        .send({ [field]: 'X' });
      expectProblem(r, 422, 'unprocessable');
      expect(problemFields(r)).toEqual([field]);
    }
    for (const [body, field] of [
      [{}, 'body'],
      [{ kind: 'X' }, 'body'],
      [{ unit_amount: -5 }, 'unit_amount'],
      [{ trial_days: 400 }, 'trial_days'],
    ] as const) {
      const r = await http().patch(`/api/v1/products/${id}`).set('Authorization', auth).send(body);
      expectProblem(r, 400, 'validation-failed');
      expect(problemFields(r)).toContain(field);
    }
    const [row] = await stack.db.query('select name, vcpu, memory_mb from products where id = $1', [id]);
    expect(row).toEqual({ name: 'CloudPod S', vcpu: 2, memory_mb: 4096 });
  });

  it('stores a hostile product name verbatim', async () => {
    const name = "<img src=x onerror=alert(1)>'; DELETE FROM products;--";
    const { id } = await createProduct(a, { code: 'HOSTILE', name });
    const got = await http().get(`/api/v1/products/${id}`).set('Authorization', bearer(a.token));
    expect(got.headers['content-type']).toMatch(/^application\/json/);
    expect(got.body.name).toBe(name);
    expect(await count('products')).toBeGreaterThan(1);
  });
});

describe('isolation and authorization', () => {
  let customerId: string;
  let productId: string;
  beforeAll(async () => {
    customerId = (await createCustomer(a, 'isolated@example.test', 'Only A')).id;
    productId = (await createProduct(a, { code: 'ISOLATED' })).id;
  });

  it("answers 404 — never 403 — for another tenant's customers and products, and changes nothing", async () => {
    const auth = bearer(b.token);
    for (const path of [`/api/v1/customers/${customerId}`, `/api/v1/products/${productId}`]) {
      expectProblem(await http().get(path).set('Authorization', auth), 404, 'not-found');
      expectProblem(
        await http().get(`${path}?include_deleted=true`).set('Authorization', auth),
        404,
        'not-found',
      );
      expectProblem(
        await http().patch(path).set('Authorization', auth).send({ name: 'Hijacked' }),
        404,
        'not-found',
      );
      expectProblem(await http().delete(path).set('Authorization', auth), 404, 'not-found');
    }
    const listed = await http().get('/api/v1/customers?include_deleted=true').set('Authorization', auth);
    expect(listed.body.data.map((c: { id: string }) => c.id)).not.toContain(customerId);
    const products = await http().get('/api/v1/products?include_deleted=true').set('Authorization', auth);
    expect(products.body.data.map((p: { id: string }) => p.id)).not.toContain(productId);
    const byEmail = await http()
      .get('/api/v1/customers?email=isolated@example.test')
      .set('Authorization', auth);
    expect(byEmail.body.data).toEqual([]);

    const [customer] = await stack.db.query('select name, deleted_at from customers where id = $1', [
      customerId,
    ]);
    expect(customer).toEqual({ name: 'Only A', deleted_at: null });
    const [product] = await stack.db.query('select name, deleted_at from products where id = $1', [
      productId,
    ]);
    expect(product).toEqual({ name: 'CloudPod S', deleted_at: null });
  });

  it('answers 404 for ids of the wrong shape or kind', async () => {
    const auth = bearer(a.token);
    for (const path of [
      '/api/v1/customers/123',
      `/api/v1/customers/${productId}`,
      `/api/v1/customers/cus_${'0'.repeat(26)}`,
      `/api/v1/customers/${customerId.toUpperCase()}`,
      `/api/v1/products/${customerId}`,
      `/api/v1/products/prd_${'0'.repeat(26)}`,
    ]) {
      expectProblem(await http().get(path).set('Authorization', auth), 404, 'not-found');
      expectProblem(await http().delete(path).set('Authorization', auth), 404, 'not-found');
    }
    // A control character in an id is refused at the edge, naming the parameter.
    const nul = await http().get('/api/v1/products/%00').set('Authorization', auth);
    expect(nul.status).toBe(400);
    expect(nul.body.errors).toEqual([expect.objectContaining({ field: 'id' })]);
  });

  it('refuses the platform admin token with 403 and a missing token with 401', async () => {
    const admin = bearer(stack.adminToken);
    for (const res of [
      await http().get('/api/v1/customers').set('Authorization', admin),
      await http().get(`/api/v1/customers/${customerId}`).set('Authorization', admin),
      await http()
        .post('/api/v1/customers')
        .set('Authorization', admin)
        .send({ email: 'x@y.test', name: 'x' }),
      await http().delete(`/api/v1/customers/${customerId}`).set('Authorization', admin),
      await http().get('/api/v1/products').set('Authorization', admin),
      await http().get(`/api/v1/products/${productId}`).set('Authorization', admin),
      await http().post('/api/v1/products').set('Authorization', admin).send(PRODUCT),
      await http().patch(`/api/v1/products/${productId}`).set('Authorization', admin).send({ name: 'x' }),
    ]) {
      expectProblem(res, 403, 'forbidden');
    }
    expectProblem(await http().get('/api/v1/customers'), 401, 'unauthenticated');
    expectProblem(await http().post('/api/v1/products').send(PRODUCT), 401, 'unauthenticated');
  });

  it('lets a read-only token read but not write (403), changing nothing', async () => {
    const readOnly = bearer(await issueTenantToken(stack, a.id, ['read']));
    expect((await http().get('/api/v1/customers').set('Authorization', readOnly)).status).toBe(200);
    expect((await http().get(`/api/v1/customers/${customerId}`).set('Authorization', readOnly)).status).toBe(
      200,
    );
    expect((await http().get('/api/v1/products').set('Authorization', readOnly)).status).toBe(200);
    expect((await http().get(`/api/v1/products/${productId}`).set('Authorization', readOnly)).status).toBe(
      200,
    );
    const before = [await count('customers'), await count('products')];
    for (const res of [
      await http()
        .post('/api/v1/customers')
        .set('Authorization', readOnly)
        .send({ email: 'ro@example.test', name: 'x' }),
      await http()
        .patch(`/api/v1/customers/${customerId}`)
        .set('Authorization', readOnly)
        .send({ name: 'x' }),
      await http().delete(`/api/v1/customers/${customerId}`).set('Authorization', readOnly),
      await http()
        .post('/api/v1/products')
        .set('Authorization', readOnly)
        .send({ ...PRODUCT, code: 'READ-ONLY' }),
      await http().patch(`/api/v1/products/${productId}`).set('Authorization', readOnly).send({ name: 'x' }),
      await http().delete(`/api/v1/products/${productId}`).set('Authorization', readOnly),
    ]) {
      expectProblem(res, 403, 'forbidden');
    }
    expect([await count('customers'), await count('products')]).toEqual(before);
    const [customer] = await stack.db.query('select name, deleted_at from customers where id = $1', [
      customerId,
    ]);
    expect(customer).toEqual({ name: 'Only A', deleted_at: null });
  });
});

describe('pagination', () => {
  async function walk(path: string, token: string, limit: number): Promise<string[]> {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await http()
        .get(path)
        .query({ limit, ...(cursor ? { cursor } : {}) })
        .set('Authorization', bearer(token));
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(limit);
      seen.push(...res.body.data.map((row: { id: string }) => row.id));
      cursor = res.body.next_cursor;
      pages += 1;
    } while (cursor && pages < 100);
    return seen;
  }

  it('walks every live customer and product of the tenant, in id order, with no repeats', async () => {
    for (let i = 0; i < 5; i += 1) await createCustomer(b, `page-${i}@example.test`, `Page ${i}`);
    for (let i = 0; i < 3; i += 1) await createProduct(b, { code: `PAGE-${i}` });
    const customers = await walk('/api/v1/customers', b.token, 2);
    const expectedCustomers = await stack.db.query<{ id: string }>(
      'select id from customers where tenant_id = $1 and deleted_at is null order by id',
      [b.id],
    );
    expect(customers).toEqual(expectedCustomers.map((r) => r.id));
    expect(customers.length).toBeGreaterThanOrEqual(5);

    const products = await walk('/api/v1/products', b.token, 2);
    const expectedProducts = await stack.db.query<{ id: string }>(
      'select id from products where tenant_id = $1 and deleted_at is null order by id',
      [b.id],
    );
    expect(products).toEqual(expectedProducts.map((r) => r.id));

    const single = await http().get('/api/v1/customers?limit=100').set('Authorization', bearer(b.token));
    expect(single.body.next_cursor).toBeNull();
  });

  it('lists each customer and product (deleted ones too) exactly as reading it by id shows it', async () => {
    const gone = await createCustomer(b, 'listed-then-gone@example.test', 'Gone Soon');
    await http().delete(`/api/v1/customers/${gone.id}`).set('Authorization', bearer(b.token));
    for (const [path, getQuery] of [
      ['/api/v1/customers', '?include_deleted=true'],
      ['/api/v1/products', ''],
    ] as const) {
      const list = await http()
        .get(`${path}?limit=100&include_deleted=true`)
        .set('Authorization', bearer(b.token));
      expect(list.status).toBe(200);
      expect(list.body.data.length).toBeGreaterThan(0);
      for (const item of list.body.data as { id: string }[]) {
        const one = await http().get(`${path}/${item.id}${getQuery}`).set('Authorization', bearer(b.token));
        expect(item).toEqual(one.body);
      }
    }
    const listed = await http()
      .get('/api/v1/customers?limit=100&include_deleted=true')
      .set('Authorization', bearer(b.token));
    expect(listed.body.data).toContainEqual(
      expect.objectContaining({ id: gone.id, deleted_at: expect.any(String) }),
    );
  });

  it('rejects bad limits, forged cursors and unknown parameters with 400 naming them', async () => {
    const auth = bearer(a.token);
    const productCursor = Buffer.from(`prd_${'0'.repeat(26)}`).toString('base64url');
    for (const [path, field] of [
      ['/api/v1/customers?limit=0', 'limit'],
      ['/api/v1/customers?limit=101', 'limit'],
      ['/api/v1/customers?limit=ten', 'limit'],
      ['/api/v1/customers?cursor=AAAA', 'cursor'],
      [`/api/v1/customers?cursor=${productCursor}`, 'cursor'],
      ['/api/v1/customers?include_deleted=yes', 'include_deleted'],
      ['/api/v1/customers?email=nobody', 'email'],
      ['/api/v1/customers?tenant_id=x', 'query'],
      ['/api/v1/products?limit=1000', 'limit'],
      [`/api/v1/products?cursor=${Buffer.from("' or 1=1 --").toString('base64url')}`, 'cursor'],
      ['/api/v1/products?include_deleted=1', 'include_deleted'],
    ] as const) {
      const res = await http().get(path).set('Authorization', auth);
      expectProblem(res, 400, 'validation-failed');
      expect(problemFields(res)).toContain(field);
    }
  });
});

describe('OpenAPI', () => {
  it('documents every catalog route with its schemas', async () => {
    const doc = await http().get('/openapi.json');
    expect(doc.status).toBe(200);
    const paths = doc.body.paths as Record<string, Record<string, unknown>>;
    for (const path of ['/api/v1/customers', '/api/v1/products']) {
      expect(Object.keys(paths[path] ?? {}).sort()).toEqual(['get', 'post']);
      expect(Object.keys(paths[`${path}/{id}`] ?? {}).sort()).toEqual(['delete', 'get', 'patch']);
    }
    expect(doc.body.components.schemas.CreateCustomer.required).toEqual(
      expect.arrayContaining(['email', 'name']),
    );
    expect(doc.body.components.schemas.CreateProduct.required).toEqual(
      expect.arrayContaining(['code', 'name', 'interval', 'unit_amount', 'vcpu', 'memory_mb', 'disk_gb']),
    );
    expect(Object.keys(doc.body.components.schemas.UpdateProduct.properties).sort()).toEqual([
      'backups_included',
      'name',
      'trial_days',
      'unit_amount',
    ]);
  });
});
