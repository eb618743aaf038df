/**
 * The audit trail over HTTP and from the operator's side: `GET /api/v1/audit/events` pages one
 * chain with filters, `GET /api/v1/audit/export` streams it as NDJSON, a tenant sees its own chain
 * only, `podplane audit:verify` exits 0 on an intact trail and 1 naming the chain and seq of a
 * tampered one, and the weekly `audit-verify` schedule raises a CRITICAL security event.
 */
import request from 'supertest';
import { auditVerifyCommand } from '../../src/cli/audit-verify';
import { systemEm } from '../../src/db/orm';
import { syncSchedules } from '../../src/schedules';
import { SCHEDULE_IDS } from '../../src/workflows/shared';
import type { auditVerify } from '../../src/workflows/audit-verify';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, issueTenantToken, type ActiveTenant } from '../helpers/tenants';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let a: ActiveTenant;
let b: ActiveTenant;

interface AuditEventBody {
  chain: string;
  seq: number;
  actor_type: string;
  actor_id: string | null;
  request_id: string | null;
  operation: string | null;
  action: string;
  entity_type: string;
  entity_id: string | null;
  after: Record<string, unknown> | null;
  hash: string;
}

beforeAll(async () => {
  stack = await startTestStack();
  [a, b] = await Promise.all([createActiveTenant(stack, 'audit-a'), createActiveTenant(stack, 'audit-b')]);
  for (const [tenant, n] of [
    [a, 3],
    [b, 1],
  ] as const) {
    for (let i = 0; i < n; i += 1) {
      const res = await request(stack.app)
        .post('/api/v1/customers')
        .set('Authorization', `Bearer ${tenant.token}`)
        .set('X-Request-Id', `audit-e2e-${tenant.id}-${i}`)
        .send({ email: `c${i}@audit.test`, name: `Customer ${i}` });
      expect(res.status).toBe(201);
    }
  }
});
afterAll(async () => {
  await stack?.temporal.schedule
    .getHandle(SCHEDULE_IDS.auditVerify)
    .delete()
    .catch(() => undefined);
  await stack?.close();
});

const list = (auth: string, query: Record<string, string | number> = {}) =>
  request(stack.app).get('/api/v1/audit/events').query(query).set('Authorization', `Bearer ${auth}`);

describe('GET /api/v1/audit/events', () => {
  it('lists the tenant’s own chain, oldest first, with who made each change and in which request', async () => {
    const res = await list(a.token, { entity_type: 'customers' });
    expect(res.status).toBe(200);
    const events = res.body.data as AuditEventBody[];
    expect(events).toHaveLength(3);
    for (const [i, e] of events.entries()) {
      expect(e).toMatchObject({
        chain: a.id,
        action: 'INSERT',
        entity_type: 'customers',
        actor_type: 'api_token',
        request_id: `audit-e2e-${a.id}-${i}`,
        operation: 'createCustomer',
        after: expect.objectContaining({ email: `c${i}@audit.test`, tenant_id: a.id }),
      });
      expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((x, y) => x - y));
  });

  it('pages by seq and filters by entity and actor', async () => {
    const all = (await list(a.token, { limit: 100 })).body.data as AuditEventBody[];
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    const first = await list(a.token, { limit: 2 });
    expect(first.body.data.map((e: AuditEventBody) => e.seq)).toEqual([1, 2]);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await list(a.token, { limit: 2, cursor: first.body.next_cursor as string });
    expect(second.body.data.map((e: AuditEventBody) => e.seq)).toEqual([3, 4]);

    const customer = all.find((e) => e.entity_type === 'customers');
    const byEntity = await list(a.token, { entity_type: 'customers', entity_id: customer?.entity_id ?? '' });
    expect(byEntity.body.data).toEqual([customer]);
    const byActor = await list(a.token, { actor_id: customer?.actor_id ?? '' });
    expect(byActor.body.data.length).toBeGreaterThanOrEqual(3);
    expect(new Set(byActor.body.data.map((e: AuditEventBody) => e.actor_id))).toEqual(
      new Set([customer?.actor_id]),
    );
    const future = await list(a.token, { since: new Date(Date.now() + 3_600_000).toISOString() });
    expect(future.body).toEqual({ data: [], next_cursor: null });
  });

  it('shows a tenant nothing of another tenant’s chain', async () => {
    const res = await list(b.token, { limit: 100 });
    expect(res.status).toBe(200);
    expect(res.body.data.length).toBeGreaterThan(0);
    expect(new Set(res.body.data.map((e: AuditEventBody) => e.chain))).toEqual(new Set([b.id]));
    expect(JSON.stringify(res.body)).not.toContain(a.id);
    expectProblem(await list(b.token, { tenant_id: a.id }), 403, 'forbidden');
  });

  it('lets a platform administrator read any tenant’s chain, and the platform’s', async () => {
    const tenant = await list(stack.adminToken, { tenant_id: a.id, entity_type: 'customers' });
    expect(tenant.body.data).toHaveLength(3);
    const platform = await list(stack.adminToken, { tenant_id: 'platform', limit: 100 });
    expect(platform.status).toBe(200);
    expect(new Set(platform.body.data.map((e: AuditEventBody) => e.chain))).toEqual(new Set(['platform']));
    // the admin token the test stack issued is a platform token
    expect(platform.body.data.map((e: AuditEventBody) => e.entity_type)).toContain('api_tokens');
  });

  it('refuses callers without audit:read and malformed filters', async () => {
    const reader = await issueTenantToken(stack, a.id, ['read']);
    expectProblem(await list(reader), 403, 'forbidden');
    expectProblem(await request(stack.app).get('/api/v1/audit/events'), 401, 'unauthenticated');
    const malformed: Record<string, string | number>[] = [
      { cursor: 'not-a-cursor' },
      { entity_type: "customers'; drop table audit_events; --" },
      { since: 'yesterday' },
      { tenant_id: 'usr_123' },
      { limit: 1000 },
      { unknown: 'x' },
    ];
    for (const query of malformed) {
      expectProblem(await list(a.token, query), 400, 'validation-failed');
    }
  });
});

describe('GET /api/v1/audit/export', () => {
  it('streams the whole chain as NDJSON, page after page', async () => {
    // More events than one page of the stream: bulk rows written straight into the table.
    await stack.db.query(
      `insert into customers (id, tenant_id, email, name, created_at, updated_at, collection_method, credit_balance)
       select 'cus_bulk' || lpad(i::text, 22, '0'), $1, 'bulk' || i || '@audit.test', 'Bulk ' || i, now(), now(),
              'AUTOMATIC', 0
         from generate_series(1, 1100) i`,
      [a.id],
    );
    const res = await request(stack.app)
      .get('/api/v1/audit/export')
      .set('Authorization', `Bearer ${a.token}`)
      .buffer(true)
      .parse((response, done) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => done(null, text));
      });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = (res.body as string).trimEnd().split('\n');
    const events = lines.map((l) => JSON.parse(l) as AuditEventBody);
    expect(events.length).toBeGreaterThan(1100);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(new Set(events.map((e) => e.chain))).toEqual(new Set([a.id]));

    const filtered = await request(stack.app)
      .get('/api/v1/audit/export')
      .query({ entity_type: 'customers', actor_id: 'nobody' })
      .set('Authorization', `Bearer ${a.token}`)
      .buffer(true)
      .parse((response, done) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        response.on('end', () => done(null, text));
      });
    expect(filtered.status).toBe(200);
    expect(filtered.body).toBe('');
  });

  it('exports nothing of another tenant', async () => {
    expectProblem(
      await request(stack.app)
        .get('/api/v1/audit/export')
        .query({ tenant_id: a.id })
        .set('Authorization', `Bearer ${b.token}`),
      403,
      'forbidden',
    );
  });
});

describe('verification', () => {
  it('audit:verify exits 0 on an intact trail and 1 naming the chain and seq of a tampered one', async () => {
    const intact = await auditVerifyCommand(systemEm(stack.db.orm), {});
    expect(intact.exitCode).toBe(0);
    expect(intact.output).toMatch(/^verified \d+ events in \d+ chains\n$/);

    const [target] = await stack.db.query<{ seq: string }>(
      "select seq from audit_events where chain = $1 and entity_type = 'customers' order by seq limit 1",
      [b.id],
    );
    await stack.db.query('begin');
    await stack.db.query('set local session_replication_role = replica');
    await stack.db.query(
      `update audit_events set after = jsonb_set(after, '{email}', '"forged@audit.test"') where chain = $1 and seq = $2`,
      [b.id, target?.seq],
    );
    await stack.db.query('commit');

    const tampered = await auditVerifyCommand(systemEm(stack.db.orm), {});
    expect(tampered.exitCode).toBe(1);
    expect(tampered.output).toContain(`chain ${b.id} is broken at seq ${target?.seq} (hash)`);
    expect((await auditVerifyCommand(systemEm(stack.db.orm), { tenant: a.id })).exitCode).toBe(0);
    await expect(auditVerifyCommand(systemEm(stack.db.orm), { tenant: 'nonsense' })).rejects.toThrow();
  });

  it('runs auditVerify from the weekly audit-verify schedule and raises a CRITICAL security event on a break', async () => {
    await syncSchedules(stack.temporal);
    const handle = stack.temporal.schedule.getHandle(SCHEDULE_IDS.auditVerify);
    expect((await handle.describe()).action).toMatchObject({ workflowType: 'auditVerify' });
    await handle.trigger();
    const action = await waitFor(async () => (await handle.describe()).info.recentActions.at(-1), {
      what: 'the triggered audit-verify action',
      timeoutMs: 30_000,
    });
    expect(action.action.workflow.workflowId).toMatch(/^audit-verify-/);
    const result = await stack.temporal.workflow
      .getHandle<typeof auditVerify>(action.action.workflow.workflowId)
      .result();
    expect(result.breaks).toEqual([expect.objectContaining({ chain: b.id, reason: 'hash' })]);
    expect(result.chains).toBeGreaterThanOrEqual(3);

    const events = await stack.db.query<{ severity: string; tenant_id: string | null; details: unknown }>(
      "select severity, tenant_id, details from security_events where kind = 'AUDIT_CHAIN_BROKEN'",
    );
    expect(events).toEqual([
      {
        severity: 'CRITICAL',
        tenant_id: b.id,
        details: expect.objectContaining({ chain: b.id, seq: result.breaks[0]?.seq, reason: 'hash' }),
      },
    ]);
  });
});
