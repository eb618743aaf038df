/**
 * The lists read as PostgreSQL's text (src/db/repositories/pages.ts) answer exactly what their views
 * made of the same rows read through the ORM: rows cover every nullable field both null and set, and
 * each answer is compared with the old one byte for byte — fields, their order, the envelope, the
 * ordering, the cap or the pages and filters, and who sees what.
 */
import request from 'supertest';
import { Client, Connection } from '@temporalio/client';
import type { Express } from 'express';
import { createApp } from '../../src/api/app';
import { backupView, jobView } from '../../src/api/routes/cloudpods.views';
import { nodeView } from '../../src/api/routes/nodes';
import { tokenView } from '../../src/api/routes/tokens';
import { encodeCursor } from '../../src/api/routes/common.schemas';
import { parseConfig } from '../../src/config';
import {
  ApiToken,
  Backup,
  CloudPod,
  CoreNode,
  Customer,
  Product,
  ProvisioningJob,
  Tenant,
} from '../../src/db/entities';
import { systemEm, tenantEm, type EntityManager } from '../../src/db/orm';
import type { TenantStatus } from '../../src/domain/tenants';
import { createLogger } from '../../src/logger';
import { FaultInjector } from '../../src/providers/simulator';
import { issueToken, revokeToken } from '../../src/services/api-tokens';
import { tenantView } from '../../src/api/routes/tenants';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { expectProblem } from '../helpers/problem';
import { insertJob, insertPod, type SqlPod } from '../helpers/sql-rows';
import { temporalAddress } from '../helpers/temporal';

let db: TestDatabase;
let app: Express;
let connection: Connection;
let admin: string;
let a: { tenant: Tenant; auth: string; readOnly: string; pod: SqlPod; deletedPod: SqlPod };
let b: { tenant: Tenant; auth: string; pod: SqlPod };

const bearer = (secret: string) => `Bearer ${secret}`;
const DAY = 86_400_000;

/** A tenant as onboarding leaves it, with a customer and a product for its pods. */
async function seedTenant(
  slug: string,
  status: TenantStatus,
  extra: Partial<Pick<Tenant, 'onboardingWorkflowId' | 'activatedAt'>> = {},
) {
  const em = systemEm(db.orm);
  const tenant = em.create(Tenant, {
    slug,
    name: `Tenant ${slug}`,
    currency: 'EUR',
    ownerEmail: `owner@${slug}.test`,
    status,
    ...extra,
  });
  const customer = em.create(Customer, { tenant, email: `c@${slug}.test`, name: 'C' });
  const product = em.create(Product, {
    tenant,
    code: 'SMALL',
    name: 'Small',
    interval: 'MONTH',
    unitAmount: 500,
    currency: 'EUR',
    vcpu: 1,
    memoryMb: 1024,
    diskGb: 20,
    includedBandwidthGb: 100,
  });
  await em.flush();
  return { tenant, customerId: customer.id, productId: product.id };
}

/** An API token of `tenantId` (null: the platform's), issued as the admin routes issue it. */
async function tenantToken(
  tenantId: string | null,
  name: string,
  scopes: ('read' | 'write')[] = ['read', 'write'],
) {
  return issueToken(systemEm(db.orm), { tenantId, name, scopes });
}

/** What the old handlers read through (the tenant filter, or none for the platform), forked afresh. */
function readAs(tenantId: string | null): EntityManager {
  return tenantId ? tenantEm(db.orm, tenantId) : systemEm(db.orm);
}

/**
 * GETs `path` and holds the answer equal to `expected()`, the old handler's body, computed after
 * the request (authentication may stamp the caller's token as used).
 */
async function expectSameAnswer(path: string, auth: string, expected: () => Promise<unknown>) {
  const res = await request(app).get(path).set('Authorization', auth);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  const old = await expected();
  expect(res.body).toEqual(JSON.parse(JSON.stringify(old)));
  expect(res.text).toBe(JSON.stringify(old));
  return res.body as { data: Record<string, unknown>[]; next_cursor?: string | null };
}

const oldTokens = (tenantId: string) => async () => ({
  data: (await readAs(tenantId).find(ApiToken, {}, { orderBy: { id: 'asc' }, limit: 500 })).map(tokenView),
});

/** GET /api/v1/tenants as it was: a page of the tenants the caller sees, by id. */
const oldTenants =
  (tenantId: string | null, q: { limit: number; after?: string; status?: TenantStatus }) => async () => {
    const rows = await readAs(tenantId).find(
      Tenant,
      { ...(q.status ? { status: q.status } : {}), ...(q.after ? { id: { $gt: q.after } } : {}) },
      { orderBy: { id: 'asc' }, limit: q.limit + 1 },
    );
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      data: page.map(tenantView),
      next_cursor: rows.length > q.limit && last ? encodeCursor(last.id) : null,
    };
  };

const oldNodes = async () => ({
  data: (await readAs(null).find(CoreNode, {}, { orderBy: { name: 'asc' }, limit: 1000 })).map(nodeView),
});

const oldJobs = (tenantId: string, podId: string) => async () => ({
  data: (
    await readAs(tenantId).find(
      ProvisioningJob,
      { pod: podId },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: 100 },
    )
  ).map(jobView),
});

const oldBackups = (tenantId: string, podId: string) => async () => ({
  data: (
    await readAs(tenantId).find(
      Backup,
      { pod: podId },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: 100 },
    )
  ).map(backupView),
});

beforeAll(async () => {
  db = await createTestDatabase();
  // The list routes never reach Temporal: a lazy connection that is never used.
  connection = Connection.lazy({ address: temporalAddress(), interceptors: [] });
  app = createApp({
    config: parseConfig({ NODE_ENV: 'test' }),
    orm: db.orm,
    temporal: new Client({ connection }),
    logger: createLogger({ level: 'silent' }),
    version: 't',
    commit: 't',
    faults: new FaultInjector(db.orm),
  });
  admin = bearer((await tenantToken(null, 'platform admin')).secret);

  const sa = await seedTenant('lp-a', 'ACTIVE', {
    onboardingWorkflowId: 'onboard-lp-a',
    activatedAt: new Date(Date.now() - DAY),
  });
  const sb = await seedTenant('lp-b', 'ACTIVE');
  await db.query(`update tenants set activated_at = now() - interval '1 hour' where id = $1`, [sb.tenant.id]);
  await seedTenant('lp-pending', 'PENDING');
  await seedTenant('lp-suspended', 'SUSPENDED', { activatedAt: new Date('2026-01-02T03:04:05.678Z') });
  await seedTenant('lp-closed', 'CLOSED', { onboardingWorkflowId: 'onboard-lp-closed' });

  const caller = await tenantToken(sa.tenant.id, 'caller');
  const readOnly = await tenantToken(sa.tenant.id, 'read only', ['read']);
  await issueToken(systemEm(db.orm), {
    tenantId: sa.tenant.id,
    name: 'expires later',
    scopes: ['read', 'write'],
    expiresInDays: 30,
  });
  const revoked = await tenantToken(sa.tenant.id, 'revoked');
  await revokeToken(systemEm(db.orm), { tenantId: sa.tenant.id, tokenId: revoked.token.id });
  const expired = await tenantToken(sa.tenant.id, 'expired "quoted" \\ name ü');
  await db.query(
    `update api_tokens set expires_at = now() - interval '1 day', last_used_at = now() - interval '2 days'
      where id = $1`,
    [expired.token.id],
  );
  await tenantToken(null, 'another platform token', ['read']);
  const bCaller = await tenantToken(sb.tenant.id, 'b caller');

  const pod = await insertPod(db, {
    tenantId: sa.tenant.id,
    customerId: sa.customerId,
    productId: sa.productId,
    slug: 'pod-a',
  });
  const deletedPod = await insertPod(db, {
    tenantId: sa.tenant.id,
    customerId: sa.customerId,
    productId: sa.productId,
    slug: 'pod-a-deleted',
    deleted: true,
  });
  const bPod = await insertPod(db, {
    tenantId: sb.tenant.id,
    customerId: sb.customerId,
    productId: sb.productId,
    slug: 'pod-b',
  });
  a = { tenant: sa.tenant, auth: bearer(caller.secret), readOnly: bearer(readOnly.secret), pod, deletedPod };
  b = { tenant: sb.tenant, auth: bearer(bCaller.secret), pod: bPod };

  const em = systemEm(db.orm);
  const podRef = (p: SqlPod) => em.getReference(CloudPod, p.id);
  const at = new Date(Date.now() - 3 * DAY);
  const job = (p: SqlPod, tenant: Tenant, fields: Partial<ProvisioningJob>) =>
    em.create(ProvisioningJob, {
      tenant,
      pod: podRef(p),
      type: 'PROVISION',
      workflowId: `cloudpod-${p.id}`,
      ...fields,
    });
  job(pod, sa.tenant, {
    status: 'COMPLETED',
    createdAt: at,
    startedAt: at,
    finishedAt: new Date(at.getTime() + 5000),
  });
  // two jobs created in the same instant: the newer id comes first
  job(pod, sa.tenant, {
    type: 'CHANGE_PLAN',
    status: 'ROLLED_BACK',
    attempts: 3,
    maxAttempts: 3,
    input: { productId: 'prd_x', sizes: [1, 2.5, -3], nested: { ok: true, none: null }, text: 'é "q" \n' },
    failureReason: 'the new plan did not fit on the node',
    currentStep: 'resize_vm',
    stepAttempt: 4,
    lastError: 'proxmox said no',
    lastErrorAt: new Date(at.getTime() + DAY),
    undoFailure: 'could not give the old plan back',
    createdAt: new Date(at.getTime() + DAY),
    startedAt: new Date(at.getTime() + DAY),
    finishedAt: new Date(at.getTime() + DAY + 1),
  });
  job(pod, sa.tenant, {
    type: 'BACKUP',
    status: 'CANCELED',
    input: {},
    createdAt: new Date(at.getTime() + DAY),
  });
  job(deletedPod, sa.tenant, { type: 'TERMINATE', status: 'COMPLETED' });
  job(bPod, sb.tenant, { status: 'COMPLETED' });
  const backup = (p: SqlPod, tenant: Tenant, fields: Partial<Backup>) =>
    em.create(Backup, { tenant, pod: podRef(p), kind: 'MANUAL', ...fields });
  backup(pod, sa.tenant, {
    kind: 'SCHEDULED',
    status: 'COMPLETED',
    sizeGb: 12,
    providerSnapshotId: 'local:backup/vzdump-qemu-100.vma.zst',
    expiresAt: new Date(Date.now() + 7 * DAY),
    createdAt: at,
  });
  backup(pod, sa.tenant, { status: 'FAILED', createdAt: new Date(at.getTime() + 1) });
  backup(pod, sa.tenant, {
    kind: 'PRE_TERMINATION',
    status: 'PENDING',
    createdAt: new Date(at.getTime() + 1),
  });
  backup(bPod, sb.tenant, { status: 'COMPLETED', sizeGb: 1 });
  await em.flush();
  // written by PostgreSQL's clock: microseconds, which the views cut to milliseconds
  await insertJob(db, {
    tenantId: sa.tenant.id,
    pod,
    type: 'SUSPEND',
    status: 'DEAD_LETTER',
    failureReason: 'the VM did not stop',
    currentStep: 'stop_vm',
    stepAttempt: 2,
    lastError: 'timeout',
    undoFailure: null,
    sql: { last_error_at: 'now()', started_at: 'now()' },
  });
  await db.query(
    `insert into backups (id, tenant_id, pod_id, kind, status, size_gb, expires_at, created_at)
     values ('bak_01jz0000000000000000000000', $1, $2, 'MANUAL', 'DELETED', 3, now() + interval '1 day', now())`,
    [sa.tenant.id, pod.id],
  );

  const node = (name: string, fields: Partial<CoreNode>) =>
    em.create(CoreNode, {
      name,
      region: 'eu-1',
      capacityVcpu: 3,
      capacityMemoryMb: 3072,
      capacityDiskGb: 30,
      ...fields,
    });
  // created in an order other than their names': the list is by name
  node('zeta.nodes.test', { allocatedVcpu: 1, allocatedMemoryMb: 2048, allocatedDiskGb: 30 });
  node('alpha.nodes.test', {
    status: 'DRAINING',
    allocatedVcpu: 2,
    allocatedMemoryMb: 1,
    allocatedDiskGb: 0,
  });
  node('mid.nodes.test', { status: 'OFFLINE', region: 'us-2', capacityVcpu: 7, allocatedVcpu: 1 });
  await em.flush();
  await db.query(
    `insert into core_nodes (id, name, region, status, capacity_vcpu, capacity_memory_mb, capacity_disk_gb, created_at)
     values ('nod_01jz0000000000000000000000', 'empty.nodes.test', 'eu-1', 'OFFLINE', 0, 0, 0, now())`,
  );
});

afterAll(async () => {
  await connection?.close();
  await db?.close();
});

describe('GET /api/v1/tokens', () => {
  it("lists the tenant's tokens (live, read-only, expiring, expired, used, revoked) as tokenView shows them", async () => {
    const body = await expectSameAnswer('/api/v1/tokens', a.auth, oldTokens(a.tenant.id));
    const names = body.data.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'caller',
        'read only',
        'expires later',
        'revoked',
        'expired "quoted" \\ name ü',
      ]),
    );
    expect(names).toHaveLength(5);
    expect(body.data.every((t) => t.tenant_id === a.tenant.id)).toBe(true);
    for (const field of ['last_used_at', 'expires_at', 'revoked_at']) {
      expect(body.data.some((t) => t[field] === null)).toBe(true);
      expect(body.data.some((t) => typeof t[field] === 'string')).toBe(true);
    }
    await expectSameAnswer('/api/v1/tokens', a.readOnly, oldTokens(a.tenant.id));
    await expectSameAnswer('/api/v1/tokens', b.auth, oldTokens(b.tenant.id));
  });

  it('is refused to a platform token, as before', async () => {
    expectProblem(await request(app).get('/api/v1/tokens').set('Authorization', admin), 403, 'forbidden');
  });
});

describe('GET /api/v1/tenants', () => {
  it('walks every tenant by cursor for the platform, each page as it was', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    let cursor: string | null | undefined;
    do {
      const query = `?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const body = await expectSameAnswer(
        `/api/v1/tenants${query}`,
        admin,
        oldTenants(null, { limit: 2, after }),
      );
      seen.push(...body.data.map((t) => t.id as string));
      cursor = body.next_cursor;
      after = seen[seen.length - 1];
    } while (cursor);
    const all = await db.query<{ id: string }>('select id from tenants order by id');
    expect(seen).toEqual(all.map((r) => r.id));
    expect(seen.length).toBeGreaterThanOrEqual(5);
    await expectSameAnswer('/api/v1/tenants', admin, oldTenants(null, { limit: 25 }));
  });

  it('filters by status, with and without a cursor', async () => {
    for (const status of ['ACTIVE', 'PENDING', 'SUSPENDED', 'CLOSED'] as const) {
      const body = await expectSameAnswer(
        `/api/v1/tenants?status=${status}`,
        admin,
        oldTenants(null, { limit: 25, status }),
      );
      expect(body.data.map((t) => t.status)).toEqual(body.data.map(() => status));
      expect(body.data.length).toBeGreaterThan(0);
    }
    const first = await expectSameAnswer(
      '/api/v1/tenants?status=ACTIVE&limit=1',
      admin,
      oldTenants(null, { limit: 1, status: 'ACTIVE' }),
    );
    expect(first.next_cursor).not.toBeNull();
    await expectSameAnswer(
      `/api/v1/tenants?status=ACTIVE&limit=1&cursor=${first.next_cursor}`,
      admin,
      oldTenants(null, { limit: 1, status: 'ACTIVE', after: first.data[0]?.id as string }),
    );
  });

  it('shows a tenant token only its own tenant', async () => {
    const own = await expectSameAnswer('/api/v1/tenants', a.auth, oldTenants(a.tenant.id, { limit: 25 }));
    expect(own.data.map((t) => t.id)).toEqual([a.tenant.id]);
    await expectSameAnswer(
      '/api/v1/tenants?status=ACTIVE',
      b.auth,
      oldTenants(b.tenant.id, { limit: 25, status: 'ACTIVE' }),
    );
    const none = await expectSameAnswer(
      '/api/v1/tenants?status=PENDING',
      a.readOnly,
      oldTenants(a.tenant.id, { limit: 25, status: 'PENDING' }),
    );
    expect(none.data).toEqual([]);
    const past = await expectSameAnswer(
      `/api/v1/tenants?cursor=${encodeCursor(a.tenant.id)}`,
      a.auth,
      oldTenants(a.tenant.id, { limit: 25, after: a.tenant.id }),
    );
    expect(past.data).toEqual([]);
  });
});

describe('GET /api/v1/nodes', () => {
  it('lists every node by name, each status, full and empty, as nodeView shows it', async () => {
    const body = await expectSameAnswer('/api/v1/nodes', admin, oldNodes);
    expect(body.data.map((n) => n.name)).toEqual([
      'alpha.nodes.test',
      'empty.nodes.test',
      'mid.nodes.test',
      'zeta.nodes.test',
    ]);
    expect(new Set(body.data.map((n) => n.status))).toEqual(new Set(['ONLINE', 'DRAINING', 'OFFLINE']));
  });

  it('is refused to a tenant token, as before', async () => {
    expectProblem(await request(app).get('/api/v1/nodes').set('Authorization', a.auth), 403, 'forbidden');
  });
});

describe('GET /api/v1/cloudpods/:id/jobs and /backups', () => {
  it("lists a pod's jobs newest first (same instant: newer id first), every nullable field null and set", async () => {
    const body = await expectSameAnswer(
      `/api/v1/cloudpods/${a.pod.id}/jobs`,
      a.auth,
      oldJobs(a.tenant.id, a.pod.id),
    );
    expect(body.data.map((j) => j.type)).toEqual(['SUSPEND', 'BACKUP', 'CHANGE_PLAN', 'PROVISION']);
    for (const field of [
      'failure_reason',
      'current_step',
      'step_attempt',
      'last_error_at',
      'input',
      'started_at',
      'finished_at',
    ]) {
      expect(body.data.some((j) => j[field] === null)).toBe(true);
      expect(body.data.some((j) => j[field] !== null)).toBe(true);
    }
    expect(body.data.map((j) => j.input)).toContainEqual({});
  });

  it("lists a pod's backups newest first, completed, failed, pending and deleted", async () => {
    const body = await expectSameAnswer(
      `/api/v1/cloudpods/${a.pod.id}/backups`,
      a.readOnly,
      oldBackups(a.tenant.id, a.pod.id),
    );
    expect(body.data.map((x) => x.status)).toEqual(['DELETED', 'PENDING', 'FAILED', 'COMPLETED']);
  });

  it('lists those of a soft-deleted pod and of a pod without any, as before', async () => {
    await expectSameAnswer(
      `/api/v1/cloudpods/${a.deletedPod.id}/jobs`,
      a.auth,
      oldJobs(a.tenant.id, a.deletedPod.id),
    );
    const none = await expectSameAnswer(
      `/api/v1/cloudpods/${a.deletedPod.id}/backups`,
      a.auth,
      oldBackups(a.tenant.id, a.deletedPod.id),
    );
    expect(none).toEqual({ data: [] });
    await expectSameAnswer(`/api/v1/cloudpods/${b.pod.id}/jobs`, b.auth, oldJobs(b.tenant.id, b.pod.id));
    await expectSameAnswer(
      `/api/v1/cloudpods/${b.pod.id}/backups`,
      b.auth,
      oldBackups(b.tenant.id, b.pod.id),
    );
  });

  it("answers 404 for another tenant's pod, an unknown id and a malformed one", async () => {
    // rows marked as A's on B's pod (never written by the API) do not make that pod A's
    await insertJob(db, { tenantId: a.tenant.id, pod: b.pod, status: 'COMPLETED' });
    await db.query(
      `insert into backups (id, tenant_id, pod_id, kind, status) values ($1, $2, $3, 'MANUAL', 'FAILED')`,
      ['bak_01jz00000000000000000000zz', a.tenant.id, b.pod.id],
    );
    for (const id of [b.pod.id, 'pod_01jz0000000000000000000000', 'not-a-pod', a.tenant.id]) {
      for (const list of ['jobs', 'backups']) {
        expectProblem(
          await request(app).get(`/api/v1/cloudpods/${id}/${list}`).set('Authorization', a.auth),
          404,
          'not-found',
        );
      }
    }
    expectProblem(
      await request(app).get(`/api/v1/cloudpods/${a.pod.id}/jobs`).set('Authorization', admin),
      403,
      'forbidden',
    );
  });
});

describe('caps', () => {
  it('stops at 100 jobs and backups, 500 tokens and 1000 nodes, as before', async () => {
    const many = await seedTenant('lp-many', 'ACTIVE');
    const auth = bearer((await tenantToken(many.tenant.id, 'many caller')).secret);
    const pod = await insertPod(db, {
      tenantId: many.tenant.id,
      customerId: many.customerId,
      productId: many.productId,
      slug: 'pod-many',
    });
    await db.query(
      `insert into provisioning_jobs (id, tenant_id, pod_id, type, status, scheduled_for, workflow_id, created_at, updated_at)
       select 'job_01jz' || lpad(g::text, 22, '0'), $1, $2, 'BACKUP', 'COMPLETED', now(), 'wf', now() - g * interval '1 second', now()
         from generate_series(1, 120) g`,
      [many.tenant.id, pod.id],
    );
    await db.query(
      `insert into backups (id, tenant_id, pod_id, kind, status, created_at)
       select 'bak_01jz' || lpad(g::text, 22, '0'), $1, $2, 'SCHEDULED', 'COMPLETED', now() - (g % 7) * interval '1 minute'
         from generate_series(1, 120) g`,
      [many.tenant.id, pod.id],
    );
    await db.query(
      `insert into api_tokens (id, tenant_id, name, token_hash, prefix, scopes, created_at)
       select 'tok_01jz' || lpad(g::text, 22, '0'), $1, 'bulk ' || g, md5(g::text) || md5('x' || g), 'pp_bulk', '{read}', now()
         from generate_series(1, 520) g`,
      [many.tenant.id],
    );
    await db.query(
      `insert into core_nodes (id, name, region, capacity_vcpu, capacity_memory_mb, capacity_disk_gb, allocated_vcpu, created_at)
       select 'nod_01jz' || lpad(g::text, 22, '0'), 'bulk-' || g || '.nodes.test', 'eu-1', 3, 1024, 10, g % 4, now()
         from generate_series(1, 1010) g`,
    );
    expect(
      (await expectSameAnswer(`/api/v1/cloudpods/${pod.id}/jobs`, auth, oldJobs(many.tenant.id, pod.id)))
        .data,
    ).toHaveLength(100);
    expect(
      (
        await expectSameAnswer(
          `/api/v1/cloudpods/${pod.id}/backups`,
          auth,
          oldBackups(many.tenant.id, pod.id),
        )
      ).data,
    ).toHaveLength(100);
    expect((await expectSameAnswer('/api/v1/tokens', auth, oldTokens(many.tenant.id))).data).toHaveLength(
      500,
    );
    expect((await expectSameAnswer('/api/v1/nodes', admin, oldNodes)).data).toHaveLength(1000);
  });
});
