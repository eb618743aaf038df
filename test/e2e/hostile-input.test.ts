/**
 * Hostile input at the edge: control characters in bodies, queries and paths, text that could not
 * be stored as it was sent (unpaired surrogates, bytes that are not UTF-8), bodies nested too deep,
 * undecodable paths, bodies whose Content-Encoding lies, token names, and token material in error
 * logs. Every bad input is a 4xx problem+json and writes nothing. The corpus generated from the
 * route table (hostile-corpus.test.ts) sends every class of these to every route.
 */
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';

let stack: TestStack;
let tenant: ActiveTenant;

beforeAll(async () => {
  stack = await startTestStack();
  tenant = await createActiveTenant(stack, 'hostile-input');
});
afterAll(async () => {
  await stack?.close();
});

const http = () => request(stack.app);
const admin = () => `Bearer ${stack.adminToken}`;
const tenantAuth = () => `Bearer ${tenant.token}`;

/** superagent would JSON-encode a Buffer sent as application/json; these bytes go out as they are. */
const asIs = (bytes: unknown) => bytes as string;

function problemFields(res: request.Response): string[] {
  return ((res.body.errors ?? []) as { field: string }[]).map((e) => e.field);
}

const TABLES = ['api_tokens', 'sim_fault_rules', 'customers', 'products', 'tenants', 'cloud_pods'] as const;

async function rowCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES) {
    const [row] = await stack.db.query<{ n: number }>(`select count(*)::int as n from ${table}`);
    counts[table] = row?.n ?? -1;
  }
  return counts;
}

/** Asserts a 400 validation problem naming `field`, with nothing written meanwhile. */
async function expectRefused(send: () => Promise<request.Response>, field: string): Promise<void> {
  const before = await rowCounts();
  const res = await send();
  expectProblem(res, 400, 'validation-failed');
  expect(problemFields(res)).toContain(field);
  // The offending value is never echoed back.
  expect(JSON.stringify(res.body)).not.toMatch(/\\u0000|\\u0085|\\r|\\n/);
  expect(await rowCounts()).toEqual(before);
}

describe('control characters are refused at the edge, naming the field', () => {
  const CONTROLS = ['\u0000', '\u0001', '\u001b', '\u007f', '\u0085', '\u009b'];

  it.each(CONTROLS.map((c) => [JSON.stringify(c), c]))(
    'refuses %s in a tenant token name, an admin-issued token name and a fault rule',
    async (_label, c) => {
      await expectRefused(
        () =>
          http()
            .post('/api/v1/tokens')
            .set('Authorization', tenantAuth())
            .send({ name: `ci${c}bot`, scopes: ['read'] }),
        'name',
      );
      await expectRefused(
        () =>
          http()
            .post(`/api/v1/tenants/${tenant.id}/tokens`)
            .set('Authorization', admin())
            .send({ name: `ci${c}bot` }),
        'name',
      );
      await expectRefused(
        () =>
          http()
            .post('/api/v1/ops/simulator/faults')
            .set('Authorization', admin())
            .send({ operation: 'createVm', slug_pattern: `fail${c}*` }),
        'slug_pattern',
      );
      await expectRefused(
        () =>
          http()
            .post('/api/v1/ops/simulator/faults')
            .set('Authorization', admin())
            .send({ operation: 'createVm', slug_pattern: 'fail-*', message: `boom${c}` }),
        'message',
      );
    },
  );

  it('refuses them in nested body values and in body keys', async () => {
    await expectRefused(
      () =>
        http()
          .post('/api/v1/customers')
          .set('Authorization', tenantAuth())
          .send({ email: 'nested@example.test', name: 'Nested', extra: { list: ['ok', 'b\u0000d'] } }),
      'extra.list.1',
    );
    const res = await http()
      .post('/api/v1/customers')
      .set('Authorization', tenantAuth())
      .send({ email: 'key@example.test', name: 'Key', 'na\u0000me': 'x' });
    expectProblem(res, 400, 'validation-failed');
    expect(problemFields(res)).toEqual(['na\\u0000me']);
  });

  it('refuses them in query parameters, also of routes that read the query themselves', async () => {
    await expectRefused(
      () => http().get('/api/v1/cloudpods?customer_id=%00').set('Authorization', tenantAuth()),
      'customer_id',
    );
    await expectRefused(
      () => http().get('/api/v1/customers?email=a%00%40b.test').set('Authorization', tenantAuth()),
      'email',
    );
    await expectRefused(
      () => http().get('/api/v1/tokens?x=%0d%0aSet-Cookie:%20a=b').set('Authorization', tenantAuth()),
      'x',
    );
  });

  it('refuses them in path parameters, naming the parameter', async () => {
    const ulid = '01jd0000000000000000000000';
    await expectRefused(
      () =>
        http()
          .get(`/api/v1/customers/cus_%00${ulid.slice(1)}`)
          .set('Authorization', tenantAuth()),
      'id',
    );
    await expectRefused(
      () =>
        http()
          .delete(`/api/v1/tokens/tok_%00${ulid.slice(1)}`)
          .set('Authorization', tenantAuth()),
      'id',
    );
    await expectRefused(
      () => http().get(`/api/v1/cloudpods/pod_${ulid}%0a`).set('Authorization', tenantAuth()),
      'id',
    );
    await expectRefused(
      () => http().delete('/api/v1/ops/simulator/faults/flt_%00').set('Authorization', admin()),
      'id',
    );
    await expectRefused(() => http().get('/api/v1/tenants/%7f').set('Authorization', admin()), 'id');
  });

  it('still accepts ordinary Unicode text', async () => {
    const res = await http()
      .post('/api/v1/customers')
      .set('Authorization', tenantAuth())
      .send({ email: 'unicode@example.test', name: 'Zoë Ångström — 東京 🚀' });
    expect(res.status).toBe(201);
    expect(res.body.name).toBe('Zoë Ångström — 東京 🚀');
  });
});

describe('text that could not be stored as it was sent', () => {
  const customers = () =>
    http()
      .post('/api/v1/customers')
      .set('Authorization', tenantAuth())
      .set('Content-Type', 'application/json');

  it('refuses an unpaired surrogate (a well-formed JSON escape) in a body value or key, naming it', async () => {
    await expectRefused(() => customers().send('{"email":"lone@example.test","name":"Zo\\ud800e"}'), 'name');
    await expectRefused(
      () => customers().send('{"email":"lone@example.test","name":"ok","extra":["\\udfff"]}'),
      'extra.0',
    );
    const res = await customers().send('{"email":"lone@example.test","name":"ok","k\\udc00":1}');
    expectProblem(res, 400, 'validation-failed');
    expect(problemFields(res)).toEqual(['k\\udc00']);
  });

  it('keeps a surrogate pair: a four-byte character written as JSON escapes', async () => {
    const res = await customers().send('{"email":"pair@example.test","name":"Launch \\ud83d\\ude80"}');
    expect(res.status).toBe(201);
    expect(res.body.name).toBe('Launch 🚀');
  });

  it.each([
    ['a stray byte', [0xff]],
    ['an overlong "/"', [0xc0, 0xaf]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
  ])('refuses a body that is not UTF-8 (%s) instead of storing U+FFFD', async (_what, bad) => {
    const before = await rowCounts();
    const body = Buffer.concat([
      Buffer.from('{"email":"bytes@example.test","name":"ab'),
      Buffer.from(bad),
      Buffer.from('cd"}'),
    ]);
    const res = await customers().serialize(asIs).send(body);
    expectProblem(res, 400, 'malformed-request');
    expect(await rowCounts()).toEqual(before);
  });

  it('refuses a body nested 10 000 levels deep with a 400, and names where it got too deep', async () => {
    const before = await rowCounts();
    const res = await customers().send(
      `{"email":"deep@example.test","name":"Deep","a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
    );
    expectProblem(res, 400, 'validation-failed');
    expect(res.body.errors).toEqual([
      { field: `a${'.0'.repeat(31)}`, message: 'is nested more than 32 levels deep' },
    ]);
    expect(await rowCounts()).toEqual(before);
  });
});

describe('undecodable paths', () => {
  it.each(['/api/v1/customers/%ZZ', '/api/v1/tenants/%E0%A4%A', '/api/v1/cloudpods/%', '/nowhere/%ZZ'])(
    '%s is 400 malformed-request',
    async (path) => {
      const res = await http().get(path).set('Authorization', tenantAuth());
      expectProblem(res, 400, 'malformed-request');
    },
  );
});

describe('Content-Encoding', () => {
  const body = { email: 'gzip@example.test', name: 'Gzip' };

  it('inflates a well-formed gzip body', async () => {
    const res = await http()
      .post('/api/v1/customers')
      .set('Authorization', tenantAuth())
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .serialize(asIs)
      .send(gzipSync(JSON.stringify(body)));
    expect(res.status).toBe(201);
    expect(res.body.email).toBe('gzip@example.test');
  });

  it.each([
    ['gzip', Buffer.from('this is not gzip at all')],
    ['gzip', gzipSync(JSON.stringify(body)).subarray(0, 12)],
    ['deflate', Buffer.from('{"email":"x@example.test"}')],
  ])('a %s body that does not inflate is 400 and writes nothing', async (encoding, bytes) => {
    const before = await rowCounts();
    const res = await http()
      .post('/api/v1/customers')
      .set('Authorization', tenantAuth())
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', encoding)
      .serialize(asIs)
      .send(bytes);
    expectProblem(res, 400, 'malformed-request');
    expect(await rowCounts()).toEqual(before);
  });

  it.each(['compress', 'x-unknown'])('an unsupported %s encoding is 415', async (encoding) => {
    const before = await rowCounts();
    const res = await http()
      .post('/api/v1/customers')
      .set('Authorization', tenantAuth())
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', encoding)
      .serialize(asIs)
      .send(Buffer.from(JSON.stringify(body)));
    expectProblem(res, 415, 'unsupported-media-type');
    expect(await rowCounts()).toEqual(before);
  });
});

describe('token names follow the display-name rules of customers and products', () => {
  const creators: [string, () => request.Test][] = [
    ['POST /api/v1/tokens', () => http().post('/api/v1/tokens').set('Authorization', tenantAuth())],
    [
      'POST /api/v1/tenants/:id/tokens',
      () => http().post(`/api/v1/tenants/${tenant.id}/tokens`).set('Authorization', admin()),
    ],
  ];

  it.each(creators)('%s refuses CR LF, tabs, blank and over-long names', async (_route, post) => {
    for (const name of ['deploy\r\nX-Injected: 1', 'tab\there', '   ', '', 'x'.repeat(101)]) {
      await expectRefused(() => post().send({ name, scopes: ['read'] }), 'name');
    }
  });

  it.each(creators)('%s trims the name and keeps it at up to 100 characters', async (_route, post) => {
    const res = await post().send({ name: `  ${'n'.repeat(100)}  `, scopes: ['read'] });
    expect(res.status).toBe(201);
    expect(res.body.token.name).toBe('n'.repeat(100));
  });
});

describe('error logs carry no token material', () => {
  it('a failing token INSERT is logged by class, code and constraint, never with the hash or prefix', async () => {
    // A constraint only this test's database has makes the real INSERT fail inside PostgreSQL.
    await stack.db.query("alter table api_tokens add constraint test_refuse_name check (name <> 'refused')");
    try {
      const linesBefore = stack.logLines.length;
      const res = await http()
        .post(`/api/v1/tenants/${tenant.id}/tokens`)
        .set('Authorization', admin())
        .send({ name: 'refused', scopes: ['read'] });
      expectProblem(res, 500, 'internal');
      const lines = stack.logLines.slice(linesBefore);
      const errorLine = lines.find((l) => l.err !== undefined);
      expect(errorLine).toBeDefined();
      expect(errorLine?.err).toMatchObject({
        type: 'CheckConstraintViolationException',
        code: '23514',
        constraint: 'test_refuse_name',
        table: 'api_tokens',
      });
      const text = JSON.stringify(lines);
      expect(text).not.toMatch(/[0-9a-f]{64}/); // token_hash
      expect(text).not.toContain('ppt_'); // visible prefix and secret
      expect(text).not.toMatch(/insert into/i);
      expect(text).not.toContain('refused"'); // no parameter values at all
    } finally {
      await stack.db.query('alter table api_tokens drop constraint test_refuse_name');
    }
  });
});
