/**
 * The hostile-input corpus, generated from the route table: every route that takes a body gets
 * every class of hostile value in every body field (SQL, XSS, control characters, ill-formed
 * UTF-16, Unicode edge cases, over-long strings, wrong JSON types, prototype-pollution keys) and
 * every class of hostile body (deeply nested, malformed JSON, bytes that are not UTF-8, the wrong
 * Content-Type, too large); every path parameter and query parameter gets hostile values and
 * shapes. Routes added later are covered by being in the table.
 *
 * What every answer must be: never a 5xx; a 4xx is problem+json and wrote nothing (a trigger on
 * every table counts the rows each request inserts, updates or deletes); a 2xx is JSON — or what
 * the route declares — never HTML, and a value the schema accepted comes back exactly as the
 * schema made it, in the answer and when the resource is read back, never in a header. The schema
 * is the oracle: input the route's zod schema refuses must be a 400. A SQL string as a list filter
 * matches nothing. Afterwards no prototype in this process is polluted (the app runs in-process).
 */
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import type { Route } from '../../src/api/http/route';
import { authSettings } from '../../src/api/routes/auth';
import { systemEm } from '../../src/db/orm';
import { SELF_PERMISSIONS, type Permission } from '../../src/domain/permissions';
import { accessTokenSettings, signAccessToken } from '../../src/services/access-tokens';
import { createUser, login } from '../../src/services/auth';
import { startTestStack, type TestStack } from '../helpers/app';
import {
  BAD_AUTHORIZATION,
  BAD_HEADER_VALUES,
  FORWARDED_FOR,
  MALFORMED_JSON,
  PATH_PAYLOADS,
  QUERY_SHAPES,
  QUERY_PAYLOADS,
  type QueryClass,
  REFUSED_STRINGS,
  Rotation,
  STRAY_QUERIES,
  TEXT_PAYLOADS,
  WRONG_CONTENT_TYPES,
  brokenEncodings,
  deepBodies,
  NUMBER_EDGES,
  ADDRESS_EDGES,
  DATE_EDGES,
  bodyFieldsOf,
  fieldsOf,
  valueAt,
  withValueAt,
  longString,
  protoBodies,
  sampleBody,
  stringsIn,
  wrongTypesFor,
  type Field,
} from '../helpers/hostile-corpus';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let routes: Route[];
let tenant: ActiveTenant;
let userAuth: string;
/** `:param` (or the collection before `:id`) → an id of the tenant's */
const ids: Record<string, string> = {};
/** fields a sample body takes from a real resource */
let overrides: Record<string, unknown> = {};
/** what each route answered, for the report at the end */
const answers = new Map<string, Map<number, number>>();
/** values checked by reading their resource back */
let readBackCount = 0;
/** the hostile calls answered 2xx */
const accepted: string[] = [];
const prototypeKeysBefore = Object.getOwnPropertyNames(Object.prototype).sort();

/** Tables a refused request may write to by design: its own security event (a failed sign-in). */
const WRITTEN_ON_REFUSAL = new Set(['security_events', 'mikro_orm_migrations']);

const USER_PASSWORD = 'hostile corpus passphrase';

beforeAll(async () => {
  // Behind a proxy trusted with everything, X-Forwarded-For is whatever the caller wrote.
  stack = await startTestStack({ STRIPE_WEBHOOK_SECRET: 'whsec_hostile_corpus', TRUST_PROXY: 'true' });
  routes = stack.app.locals.routes as Route[];
  tenant = await createActiveTenant(stack, 'hostile-corpus');
  // Test clocks are a sandbox tenant's.
  await stack.db.query(`update tenants set mode = 'SANDBOX' where id = $1`, [tenant.id]);
  const auth = `Bearer ${tenant.token}`;
  const customer = await request(stack.app)
    .post('/api/v1/customers')
    .set('Authorization', auth)
    .send({ email: 'corpus@example.test', name: 'Corpus' });
  expect(customer.status).toBe(201);
  const product = await request(stack.app).post('/api/v1/products').set('Authorization', auth).send({
    code: 'CORPUS',
    name: 'Corpus',
    interval: 'MONTH',
    unit_amount: 1000,
    vcpu: 1,
    memory_mb: 1024,
    disk_gb: 10,
    included_bandwidth_gb: 100,
  });
  expect(product.status).toBe(201);
  const clock = await request(stack.app)
    .post('/api/v1/billing/test-clocks')
    .set('Authorization', auth)
    .send({ name: 'corpus-clock' });
  expect(clock.status).toBe(201);
  Object.assign(ids, {
    customers: customer.body.id,
    tenants: tenant.id,
    'test-clocks': clock.body.id,
    products: product.body.id,
  });
  overrides = { customer_id: customer.body.id, product_id: product.body.id };

  await createUser(systemEm(stack.db.orm), authSettings(stack.config), {
    email: 'corpus-user@example.test',
    password: USER_PASSWORD,
    membership: { tenantId: tenant.id, role: 'OWNER' },
  });
  userAuth = await signIn();

  // Every row written anywhere (inserted, updated or deleted) is counted by a trigger on its table,
  // in the writer's transaction: a refused request must leave every count as it was.
  const tables = await stack.db.query<{ table_name: string }>(
    `select table_name from information_schema.tables
      where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`,
  );
  await stack.db.query(`
    create table corpus_writes (table_name text primary key, n bigint not null);
    create function corpus_note_write() returns trigger language plpgsql as $$
    begin
      insert into corpus_writes values (TG_TABLE_NAME, 1)
        on conflict (table_name) do update set n = corpus_writes.n + 1;
      return null;
    end $$;`);
  for (const { table_name: t } of tables.filter((x) => !WRITTEN_ON_REFUSAL.has(x.table_name))) {
    await stack.db.query(
      `create trigger corpus_note_write after insert or update or delete on "${t}"
         for each row execute function corpus_note_write()`,
    );
  }
});

afterAll(async () => {
  if (process.env.HOSTILE_CORPUS_REPORT) {
    const report = Object.fromEntries(
      [...answers].map(([route, statuses]) => [route, Object.fromEntries(statuses)]),
    );
    process.stdout.write(`${JSON.stringify(report, null, 1)}\nACCEPTED\n${accepted.join('\n')}\n`);
  }
  await stack?.close();
});

async function signIn(): Promise<string> {
  const signedIn = await login(
    systemEm(stack.db.orm),
    authSettings(stack.config),
    { email: 'corpus-user@example.test', password: USER_PASSWORD },
    { ip: null, userAgent: null },
  );
  const { token } = await signAccessToken(accessTokenSettings(stack.config), signedIn);
  return `Bearer ${token}`;
}

/** Rows written so far, by table. */
async function writes(): Promise<Record<string, number>> {
  const rows = await stack.db.query<{ table_name: string; n: string }>(
    'select table_name, n from corpus_writes',
  );
  return Object.fromEntries(rows.map((r) => [r.table_name, Number(r.n)]));
}

const userOnly = (p: Permission) => (SELF_PERMISSIONS as readonly Permission[]).includes(p);

function authFor(r: Route): string | undefined {
  if ('public' in r.access) return undefined;
  if (userOnly(r.access.permission)) return userAuth;
  if (r.access.caller === 'platform') return `Bearer ${stack.adminToken}`;
  return `Bearer ${tenant.token}`;
}

/**
 * Whether calls may name the tenant's real resources: reads, updates and plain creations under a
 * resource. Deletions and state changes (finalize, cancel, drain, …) and durable routes get an id
 * that does not exist, so no hostile call ends or starts anything.
 */
const usesRealIds = (r: Route) =>
  !r.durable &&
  (['get', 'patch', 'put'].includes(r.method) || (r.method === 'post' && /^create/.test(r.operationId)));

const MISSING_ID = '01jd0000000000000000000000';

/** The route's path with each parameter filled: a real id, a missing one, or `replace(name)`. */
function concretePath(r: Route, replace?: (param: string) => string | undefined): string {
  return r.path.replace(
    /\/([a-z-]+)\/:(\w+)|:(\w+)/g,
    (_match, collection?: string, param?: string, bare?: string) => {
      const name = (param ?? bare) as string;
      const hostile = replace?.(name);
      const key = collection && name === 'id' ? collection : name;
      const value = hostile ?? (usesRealIds(r) ? ids[key] : undefined) ?? `x_${MISSING_ID}`;
      return collection ? `/${collection}/${value}` : value;
    },
  );
}

const paramNames = (r: Route) => [...r.path.matchAll(/:(\w+)/g)].map((m) => m[1] as string);

/** Durable routes never get a body their schema accepts: nothing is started. */
function baseBody(r: Route): Record<string, unknown> {
  if (r.durable) return {};
  return fresh(r, sampleBody(r, overrides) ?? {});
}

let serial = 0;
/** The sample with its strings made unique where the schema allows, so creations do not conflict. */
function fresh(r: Route, body: Record<string, unknown>): Record<string, unknown> {
  const out = { ...body };
  for (const [key, value] of Object.entries(out)) {
    if (typeof value !== 'string' || Object.values(overrides).includes(value)) continue;
    serial += 1;
    const candidates = value.includes('@')
      ? [value.replace('@', `+c${serial}@`)]
      : [`${value}-c${serial}`, `${value}-C${serial}`, `${value}${serial}`];
    const candidate = candidates.find((c) => parsed(r, { ...out, [key]: c }).ok);
    if (candidate !== undefined) out[key] = candidate;
  }
  return out;
}

/**
 * How a value that came back is compared with the one sent: exactly; as the same instant (a
 * timestamp in another offset); or not at all (an address stored as its canonical network).
 */
type Compare = 'exact' | 'instant' | 'canonical';

function same(compare: Compare, got: unknown, sent: unknown): boolean {
  if (compare === 'canonical') return true;
  if (compare === 'instant') return Date.parse(String(got)) === Date.parse(String(sent));
  return got === sent;
}

interface Sent {
  route: Route;
  /** what was sent, for messages */
  label: string;
  path?: string;
  query?: string;
  /** a JSON value, or raw text/bytes sent as they are */
  body?: unknown;
  raw?: string | Buffer;
  contentType?: string;
  /** the schema refuses this input: the answer must be a 400 (or 413/415 by `status`) */
  refused?: boolean;
  status?: number[];
  /** a string the answer may carry back: it must come back identical, and never in a header */
  text?: { path: (string | number)[]; value: unknown; compare: Compare };
}

/** After a call that may have ended the user's session (logout), the next user-only call gets a new one. */
async function keepUserSignedIn(r: Route, res: request.Response): Promise<void> {
  if (res.status < 300 && 'caller' in r.access && userOnly(r.access.permission)) userAuth = await signIn();
}

/** Sends one hostile request and checks the answer against every rule of the corpus. */
async function hit(s: Sent): Promise<request.Response> {
  const { route: r } = s;
  const before = await writes();
  const url = `${s.path ?? concretePath(r)}${s.query !== undefined ? `?${s.query}` : ''}`;
  // a browser asking for HTML gets JSON all the same
  const agent = request(stack.app);
  let req = agent[r.method](url).set('Accept', 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8');
  const auth = authFor(r);
  if (auth) req = req.set('Authorization', auth);
  if (s.raw !== undefined) {
    req = req
      .set('Content-Type', s.contentType ?? 'application/json')
      .serialize((x: unknown) => x as string)
      .send(s.raw as string);
  } else if (s.body !== undefined) {
    req = req.send(s.body as object);
  }
  const res = await req;
  await keepUserSignedIn(r, res);
  const where = `${r.operationId} ${r.method.toUpperCase()} ${url.slice(0, 200)} — ${s.label}`;
  const tally = answers.get(r.operationId) ?? new Map<number, number>();
  tally.set(res.status, (tally.get(res.status) ?? 0) + 1);
  answers.set(r.operationId, tally);
  if (res.status < 300) accepted.push(`${res.status} ${r.operationId}: ${s.label.slice(0, 90)}`);

  expect({ where, serverError: res.status >= 500 ? res.body : false }).toEqual({ where, serverError: false });
  const contentType = String(res.headers['content-type'] ?? '');
  expect({ where, html: /html/i.test(contentType) }).toEqual({ where, html: false });
  if (res.status >= 400) {
    expect({ where, contentType }).toEqual({
      where,
      contentType: expect.stringMatching(/^application\/problem\+json/),
    });
    expect({ where, status: res.body.status }).toEqual({ where, status: res.status });
  } else if (res.status !== 204) {
    // what the route declares for this status, JSON when it declares nothing
    const declared = Object.keys(r.responses[res.status]?.content ?? {});
    const types = declared.length > 0 ? declared : ['application/json'];
    expect({ where, contentType: types.some((t) => contentType.startsWith(t)) }).toEqual({
      where,
      contentType: true,
    });
  }
  if (s.refused) {
    const expected = s.status ?? [400];
    expect({ where, status: expected.includes(res.status) }).toEqual({ where, status: true });
  }
  const sent = s.text?.value;
  if (typeof sent === 'string' && sent.length >= 3) {
    for (const [name, value] of Object.entries(res.headers)) {
      expect({ where, header: name, reflected: String(value).includes(sent) }).toEqual({
        where,
        header: name,
        reflected: false,
      });
    }
  }
  if (s.text && s.text.path.length > 0 && res.status < 300 && ['string', 'number'].includes(typeof sent)) {
    // what the schema made of the value is what comes back, exactly
    const echoed = echoedField(res.body, s.text.path);
    const identical = same(s.text.compare, echoed, sent);
    if (echoed !== undefined)
      expect({ where, echoed, identical }).toEqual({ where, echoed, identical: true });
    // and it was stored so: reading the resource back gives the same
    const stored = await readBack(r, res.body, auth);
    if (stored !== undefined) {
      const read = echoedField(stored, s.text.path);
      const kept = same(s.text.compare, read, sent);
      if (read !== undefined) {
        expect({ where, read, kept }).toEqual({ where, read, kept: true });
        readBackCount += 1;
      }
    }
  }
  if (res.status >= 400 || s.refused) {
    expect({ where, written: await writes() }).toEqual({ where, written: before });
  }
  return res;
}

/**
 * The resource a write answered with, read back through the route that reads it: `GET` on the same
 * path for an update, `GET <path>/:id` with the answer's id for a creation.
 */
async function readBack(r: Route, answer: unknown, auth: string | undefined): Promise<unknown> {
  const id = echoedField(answer, ['id']);
  const reader = routes.find(
    (x) =>
      x.method === 'get' && (x.path === r.path || (typeof id === 'string' && x.path === `${r.path}/:id`)),
  );
  if (!reader || reader === r) return undefined;
  const path = reader.path === r.path ? concretePath(r) : concretePath(reader).replace(/[^/]+$/, String(id));
  const res = await (auth
    ? request(stack.app).get(path).set('Authorization', auth)
    : request(stack.app).get(path));
  expect({ path, status: res.status }).toEqual({ path, status: 200 });
  return res.body as unknown;
}

/** The value at `path` in a JSON answer: at the top, or one object down (`{ token: {…} }`). */
function echoedField(body: unknown, path: readonly (string | number)[]): unknown {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const top = valueAt(body, path);
  if (top !== undefined) return top;
  for (const v of Object.values(body)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const inner = valueAt(v, path);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

/** What zod makes of `body` for `field`: the value the route stores, if the schema accepts it. */
function parsed(r: Route, body: unknown): { ok: boolean; data?: Record<string, unknown> } {
  try {
    const result = r.body?.safeParse(body);
    return result?.success ? { ok: true, data: result.data as Record<string, unknown> } : { ok: false };
  } catch {
    // a schema that refuses by throwing its own problem (a PATCH naming an immutable field)
    return { ok: false };
  }
}

/** `100kb` → 102 400 (the BODY_LIMIT syntax). */
function byteCount(limit: string): number {
  const [, n, unit] = /^(\d+)(b|kb|mb)$/.exec(limit) ?? [];
  return Number(n) * ({ b: 1, kb: 1024, mb: 1024 * 1024 } as Record<string, number>)[unit ?? 'b']!;
}

const bodyRoutes = () => routes.filter((r) => r.body !== undefined);
const jsonOrRawRoutes = () => routes.filter((r) => r.body !== undefined || r.rawBody !== undefined);
const rotation = new Rotation();

/** Whether a raw JSON body must be refused: the schema refuses it, or the route verifies raw bytes. */
function refusedRaw(r: Route, raw: string): boolean {
  if (r.rawBody) return true;
  return !parsed(r, JSON.parse(raw)).ok;
}

/** One field of the route's base body (at any depth) set to `value`, checked against the schema's verdict. */
async function sendField(
  r: Route,
  field: Field,
  value: unknown,
  label: string,
  opts: { alwaysRefused?: boolean; compare?: Compare } = {},
) {
  const alwaysRefused = opts.alwaysRefused ?? false;
  const body = withValueAt(baseBody(r), field.path, value);
  const verdict = parsed(r, body);
  const refused = alwaysRefused || !verdict.ok;
  return hit({
    route: r,
    label: `${label} in ${field.name}`,
    body,
    refused,
    status: alwaysRefused ? [400] : [400, 422],
    text: {
      path: field.path,
      value: verdict.ok ? valueAt(verdict.data, field.path) : value,
      compare: opts.compare ?? 'exact',
    },
  });
}

const bodyFields = (r: Route) => bodyFieldsOf(r.body);

describe('the corpus, generated from the route table', () => {
  it('sees every row a request writes: the check every refused request is held to', async () => {
    const before = await writes();
    const res = await request(stack.app)
      .post('/api/v1/customers')
      .set('Authorization', `Bearer ${tenant.token}`)
      .send({ email: 'counted@example.test', name: 'Counted' });
    expect(res.status).toBe(201);
    const after = await writes();
    expect((after.customers ?? 0) - (before.customers ?? 0)).toBe(1);
  });

  it('reaches every route that takes input', () => {
    expect(bodyRoutes().length).toBeGreaterThan(20);
    for (const r of bodyRoutes()) {
      expect({ route: r.operationId, fields: fieldsOf(r.body).length > 0 }).toEqual({
        route: r.operationId,
        fields: true,
      });
    }
    expect(routes.filter((r) => fieldsOf(r.query).length > 0).length).toBeGreaterThan(10);
    expect(routes.filter((r) => paramNames(r).length > 0).length).toBeGreaterThan(20);
  });
});

describe('every body field', () => {
  it('gets SQL, XSS and Unicode edge cases: refused by its schema, or stored and returned as they were', async () => {
    for (const r of bodyRoutes()) {
      for (const field of bodyFields(r)) {
        for (const cls of Object.keys(TEXT_PAYLOADS) as (keyof typeof TEXT_PAYLOADS)[]) {
          await sendField(r, field, rotation.take(cls, TEXT_PAYLOADS[cls]), cls);
        }
      }
    }
    // customers, products, test clocks, … were read back, not only echoed
    expect(readBackCount).toBeGreaterThan(5);
  });

  it('refuses control characters and ill-formed UTF-16 (lone surrogates) with a 400', async () => {
    for (const r of bodyRoutes()) {
      for (const field of bodyFields(r)) {
        for (const cls of Object.keys(REFUSED_STRINGS) as (keyof typeof REFUSED_STRINGS)[]) {
          await sendField(r, field, rotation.take(cls, REFUSED_STRINGS[cls]), cls, { alwaysRefused: true });
        }
      }
      // nested in an array and as an object key, in one field of each route
      const field = rotation.take(`nested-${r.operationId}`, fieldsOf(r.body));
      await sendField(r, field, ['ok', rotation.take('surrogate', REFUSED_STRINGS.surrogate)], 'nested', {
        alwaysRefused: true,
      });
      await sendField(r, field, { 'k\u0000': 1, 'k\uDC00': 2 }, 'hostile keys', { alwaysRefused: true });
    }
  });

  it('gets over-long strings: refused, or stored whole', async () => {
    for (const r of bodyRoutes()) {
      for (const field of bodyFields(r)) {
        await sendField(r, field, longString(), 'a 60 000 character string');
        await sendField(r, field, '🚀'.repeat(3000), '3 000 four-byte emoji');
      }
    }
  });

  it('gets every wrong JSON type: the schema’s verdict, never a 5xx', async () => {
    for (const r of bodyRoutes()) {
      for (const field of bodyFields(r)) {
        for (const value of wrongTypesFor(field.kind, rotation)) {
          await sendField(
            r,
            field,
            value,
            `the ${value === null ? 'null' : typeof value} ${JSON.stringify(value)}`,
          );
        }
      }
    }
  });

  it('gets a 30 000-item array of the wrong items in every array field: refused, with a short answer', async () => {
    const huge = new Array<unknown>(30_000).fill([]);
    for (const r of bodyRoutes()) {
      for (const field of bodyFields(r).filter((f) => f.kind === 'array')) {
        const res = await sendField(r, field, huge, 'a 30 000-item array');
        expect({ route: r.operationId, field: field.name, bytes: res.text.length < 16_384 }).toEqual({
          route: r.operationId,
          field: field.name,
          bytes: true,
        });
      }
    }
  });

  it('takes no prototype-pollution key as a field, at the top or nested', async () => {
    for (const r of jsonOrRawRoutes()) {
      const fields = fieldsOf(r.body);
      for (const field of [undefined, ...fields]) {
        const texts = protoBodies(field?.name);
        for (const raw of field === undefined ? texts : [rotation.take('proto', texts.slice(4))]) {
          const res = await hit({
            route: r,
            label: `prototype keys ${raw}`,
            raw,
            refused: refusedRaw(r, raw),
          });
          expect(stringsIn(res.body)).not.toContain('yes');
        }
      }
      // the route's own base body with the keys added
      const base = JSON.stringify(baseBody(r));
      const merged =
        base === '{}'
          ? '{"__proto__":{"polluted":"yes"}}'
          : `${base.slice(0, -1)},"__proto__":{"polluted":"yes"}}`;
      const res = await hit({
        route: r,
        label: 'base body plus __proto__',
        raw: merged,
        refused: refusedRaw(r, merged),
      });
      expect(stringsIn(res.body)).not.toContain('yes');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('a durable route, once', () => {
  it('a tenant named with markup and Unicode tricks is onboarded, and its name comes back as it was sent', async () => {
    const name = `${TEXT_PAYLOADS.xss[1]} ${TEXT_PAYLOADS.unicode[0]} ${TEXT_PAYLOADS.sql[1]}`;
    const admin = `Bearer ${stack.adminToken}`;
    const res = await request(stack.app)
      .post('/api/v1/tenants')
      .set('Authorization', admin)
      .send({ slug: 'corpus-marked-up', name, currency: 'EUR', owner_email: 'owner@corpus-marked-up.test' });
    expect(res.status).toBe(202);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.tenant.name).toBe(name);
    const id = res.body.tenant.id as string;
    const active = await waitFor(
      async () => {
        const got = await request(stack.app).get(`/api/v1/tenants/${id}`).set('Authorization', admin);
        return got.body.status === 'ACTIVE' ? got : undefined;
      },
      { what: 'the marked-up tenant ACTIVE' },
    );
    expect(active.body.name).toBe(name);
    expect(active.headers['content-type']).toMatch(/^application\/json/);
  });
});

describe('every number, timestamp and address field', () => {
  it('gets numbers, timestamps and addresses at and beyond their bounds: the schema’s verdict, never a 5xx', async () => {
    for (const r of bodyRoutes()) {
      const base = baseBody(r);
      for (const field of bodyFields(r)) {
        const sample = valueAt(base, field.path);
        const isTimestamp = typeof sample === 'string' && /^\d{4}-\d\d-\d\d/.test(sample);
        if (field.kind === 'number') {
          // the edges of a 32-bit column and of a double everywhere, the others in turn
          const edges = [2 ** 31, 1e308, ...[1, 2].map(() => rotation.take('number', NUMBER_EDGES.slice(2)))];
          for (const n of edges) await sendField(r, field, n, `the number ${n}`);
          // numbers JSON can write and a double cannot hold: 1e400 parses to Infinity
          const raw = JSON.stringify(withValueAt(base, field.path, 0xdead)).replace('57005', '1e400');
          await hit({ route: r, label: `1e400 in ${field.name}`, raw, refused: refusedRaw(r, raw) });
        } else if (/cidr|(^|_)ips?($|_)|allowlist|address/.test(field.name)) {
          for (const a of ADDRESS_EDGES) {
            await sendField(r, field, field.kind === 'array' ? [a] : a, `the address ${a}`, {
              compare: 'canonical',
            });
          }
        } else if (isTimestamp || /_(at|time|date)$/.test(field.name)) {
          for (const d of DATE_EDGES)
            await sendField(r, field, d, `the timestamp ${d}`, { compare: 'instant' });
        }
      }
    }
    // An allowlist the edges left behind would keep the corpus's own user out: back to the defaults.
    const auth = `Bearer ${tenant.token}`;
    const policy = await request(stack.app)
      .put('/api/v1/security/policy')
      .set('Authorization', auth)
      .send({});
    expect(policy.status).toBe(200);
    const shield = await request(stack.app)
      .put('/api/v1/security/shield')
      .set('Authorization', auth)
      .send({ mode: 'OFF', rules: [] });
    expect(shield.status).toBe(200);
    userAuth = await signIn();
  });
});

describe('every body', () => {
  it('10 000 and 45 000 levels deep: refused, and the process stays up', async () => {
    for (const r of jsonOrRawRoutes()) {
      for (const levels of [10_000, 45_000]) {
        for (const raw of deepBodies(levels)) {
          // 413 when the nesting alone is beyond the body limit
          await hit({ route: r, label: `${levels} levels`, raw, refused: true, status: [400, 413] });
        }
      }
    }
  });

  it('malformed JSON is a 400', async () => {
    for (const r of jsonOrRawRoutes()) {
      for (let i = 0; i < 3; i++) {
        const raw = rotation.take('malformed', MALFORMED_JSON);
        await hit({ route: r, label: `malformed ${JSON.stringify(raw)}`, raw, refused: true, status: [400] });
      }
    }
  });

  it('bytes that are not UTF-8, or UTF-16 holding an unpaired surrogate, are a 400', async () => {
    for (const r of jsonOrRawRoutes()) {
      const field = fieldsOf(r.body).find((f) => f.kind === 'string')?.name ?? 'name';
      for (let i = 0; i < 3; i++) {
        const raw = rotation.take('encoding', brokenEncodings(field));
        await hit({ route: r, label: `bytes ${raw.toString('hex')}`, raw, refused: true, status: [400] });
      }
      const utf16 = Buffer.from(JSON.stringify(withValueAt(baseBody(r), [field], 'a\ud800b')), 'utf16le');
      for (const charset of ['utf-16le', 'utf-16']) {
        await hit({
          route: r,
          label: `${charset} with an unpaired surrogate`,
          raw: utf16,
          contentType: `application/json; charset=${charset}`,
          refused: true,
          status: r.rawBody ? [400, 415] : [400],
        });
      }
    }
  });

  it('the wrong Content-Type is a 415', async () => {
    for (const r of bodyRoutes()) {
      const raw = JSON.stringify(baseBody(r));
      for (let i = 0; i < 3; i++) {
        const contentType = rotation.take('content-type', WRONG_CONTENT_TYPES);
        await hit({ route: r, label: contentType, raw, contentType, refused: true, status: [415] });
      }
    }
  });

  it('a body beyond the body limit is a 413, also when it only grows that large once inflated', async () => {
    for (const r of jsonOrRawRoutes()) {
      const limit = byteCount(r.bodyLimit ?? stack.config.BODY_LIMIT);
      const raw = JSON.stringify({ name: 'x'.repeat(limit + 1024) });
      await hit({ route: r, label: `${raw.length} bytes`, raw, refused: true, status: [413] });
    }
    // a gzip bomb: 20 kB on the wire, 20 MB inflated
    const bomb = gzipSync(JSON.stringify({ name: 'x'.repeat(20 * 1024 * 1024) }));
    expect(bomb.length).toBeLessThan(64 * 1024);
    for (const r of bodyRoutes()) {
      const before = await writes();
      const agent = request(stack.app);
      const res = await agent[r.method](concretePath(r))
        .set('Authorization', authFor(r) ?? '')
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip')
        .serialize((x: unknown) => x as string)
        .send(bomb as unknown as string);
      expect({ route: r.operationId, status: res.status }).toEqual({ route: r.operationId, status: 413 });
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(await writes()).toEqual(before);
    }
  });
});

describe('every header', () => {
  it('a bad Authorization is a 401 on every route that needs credentials; bad ids, keys and origins are replaced or refused', async () => {
    for (const r of routes) {
      if (!('public' in r.access)) {
        const bad = rotation.take('authorization', BAD_AUTHORIZATION);
        const before = await writes();
        const agent = request(stack.app);
        const res = await agent[r.method](concretePath(r)).set('Authorization', bad);
        expect({ route: r.operationId, bad: bad.slice(0, 40), status: res.status }).toEqual({
          route: r.operationId,
          bad: bad.slice(0, 40),
          status: 401,
        });
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(await writes()).toEqual(before);
      }
      if (r.durable && r.method !== 'get' && paramNames(r).length === 0 && !r.body) continue;
      const value = rotation.take('header', BAD_HEADER_VALUES);
      const agent = request(stack.app);
      const origin = rotation.take('origin', ['https://evil.example', 'null', value]);
      let req = agent[r.method](concretePath(r)).set('X-Request-Id', value).set('Origin', origin);
      const auth = authFor(r);
      if (auth) req = req.set('Authorization', auth);
      if (r.idempotent) req = req.set('Idempotency-Key', value);
      const res = await (r.body ? req.send({ ...baseBody(r), name: 1 }) : req);
      await keepUserSignedIn(r, res);
      const where = `${r.operationId} with X-Request-Id/Idempotency-Key ${JSON.stringify(value.slice(0, 40))}`;
      expect({ where, status: res.status < 500 }).toEqual({ where, status: true });
      // no origin is let in by naming itself
      expect({ where, origin, allowed: res.headers['access-control-allow-origin'] }).toEqual({
        where,
        origin,
        allowed: undefined,
      });
      if (value.trim() !== '')
        expect({ where, echoed: res.headers['x-request-id'] === value }).toEqual({ where, echoed: false });
    }
  });
});

describe('X-Forwarded-For', () => {
  it('that names no address is never taken for one: no 5xx, on sign-in and on every route', async () => {
    for (const xff of FORWARDED_FOR) {
      const res = await request(stack.app)
        .post('/api/v1/auth/login')
        .set('X-Forwarded-For', xff)
        .send({ email: 'nobody@example.test', password: 'not the password' });
      expect({
        xff: xff.slice(0, 40),
        status: res.status < 500,
        problem: res.headers['content-type'],
      }).toEqual({
        xff: xff.slice(0, 40),
        status: true,
        problem: expect.stringMatching(/^application\/problem\+json/),
      });
    }
    for (const r of routes) {
      if (r.durable && r.method !== 'get' && paramNames(r).length === 0 && !r.body) continue;
      const xff = rotation.take('xff', FORWARDED_FOR);
      const agent = request(stack.app);
      let req = agent[r.method](concretePath(r)).set('X-Forwarded-For', xff);
      const auth = authFor(r);
      if (auth) req = req.set('Authorization', auth);
      const res = await (r.body ? req.send(baseBody(r)) : req);
      await keepUserSignedIn(r, res);
      const where = `${r.operationId} with X-Forwarded-For ${JSON.stringify(xff.slice(0, 40))}`;
      expect({ where, status: res.status < 500 }).toEqual({ where, status: true });
    }
  });
});

describe('every path parameter', () => {
  it('is a 404 or a 400 for SQL, traversal, NUL, over-long, undecodable and Unicode ids', async () => {
    for (const r of routes.filter((x) => paramNames(x).length > 0)) {
      for (const param of paramNames(r)) {
        for (const cls of Object.keys(PATH_PAYLOADS) as (keyof typeof PATH_PAYLOADS)[]) {
          const value = rotation.take(`path-${cls}`, PATH_PAYLOADS[cls]);
          const body = r.body ? baseBody(r) : undefined;
          await hit({
            route: r,
            label: `:${param} = ${value.slice(0, 60)}`,
            path: concretePath(r, (name) => (name === param ? value : undefined)),
            body,
            refused: true,
            status: [400, 404],
          });
        }
      }
    }
  });
});

function decoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

describe('every query parameter', () => {
  it('gets hostile values, repeated and bracketed forms: the schema’s verdict, never a 5xx', async () => {
    for (const r of routes.filter((x) => fieldsOf(x.query).length > 0)) {
      for (const field of fieldsOf(r.query)) {
        for (const cls of Object.keys(QUERY_PAYLOADS) as QueryClass[]) {
          // an e-mail filter gets a wildcard inside an address (`_orpus@…` is no `corpus@…`)
          const value =
            cls === 'wildcard' && /email/.test(field.name)
              ? '_orpus%40example.test'
              : rotation.take(`query-${cls}`, QUERY_PAYLOADS[cls]);
          const res = await hit({
            route: r,
            label: `${field.name}=${value.slice(0, 40)}`,
            query: `${field.name}=${value}`,
            body: r.body ? baseBody(r) : undefined,
            text: { path: [], value: decoded(value), compare: 'exact' },
          });
          // a filter that is an injection or a pattern matches nothing, rather than everything
          if ((cls === 'sql' || cls === 'wildcard') && res.status < 300 && Array.isArray(res.body.data)) {
            expect({ route: r.operationId, query: value, data: res.body.data }).toEqual({
              route: r.operationId,
              query: value,
              data: [],
            });
          }
        }
        for (const query of QUERY_SHAPES(field.name, rotation.take('query-xss', QUERY_PAYLOADS.xss))) {
          await hit({ route: r, label: query.slice(0, 60), query, body: r.body ? baseBody(r) : undefined });
        }
      }
    }
  });

  it('leaves every route unbothered by stray and prototype-polluting query keys', async () => {
    for (const r of routes) {
      // durable work is only ever named by a missing id, or refused for its body
      if (r.durable && r.method !== 'get' && paramNames(r).length === 0 && !r.body) continue;
      const query = rotation.take('stray', STRAY_QUERIES);
      await hit({ route: r, label: query.slice(0, 60), query, body: r.body ? baseBody(r) : undefined });
    }
  });
});

describe('after the corpus', () => {
  it('left Object.prototype and Array.prototype as they were', () => {
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeysBefore);
    const probe = {} as Record<string, unknown>;
    expect(probe.polluted).toBeUndefined();
    expect(probe.isAdmin).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.create(null) as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('answered every route at least once without a 5xx', () => {
    const reached = routes.filter((r) => answers.has(r.operationId)).length;
    expect(reached).toBe(routes.length);
  });
});
