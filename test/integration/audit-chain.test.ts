/**
 * The audit trail as the database writes it: a change through the API names its caller and
 * request, a workflow's change its workflow; concurrent writers in one tenant get gapless seqs and
 * a valid chain; the trail refuses UPDATE, DELETE and TRUNCATE — for the application's role by its
 * privileges, for the owner by triggers — and what a superuser does behind the triggers' back
 * (an altered row, a deleted one, a cut tail) is what verification finds, at the right seq.
 */
import request from 'supertest';
import { Client } from 'pg';
import { withAuditContext } from '../../src/db/audit-context';
import { Customer } from '../../src/db/entities';
import { initOrm, ownerConnectionWarning, systemEm } from '../../src/db/orm';
import { canonicalText, eventHash, GENESIS_HASH, type ChainedEvent } from '../../src/domain/audit';
import { newId } from '../../src/domain/ids';
import { verifyAuditChains } from '../../src/services/audit';
import { startTestStack, type TestStack } from '../helpers/app';
import { podTenant, registerNode, waitPod, type PodTenant } from '../helpers/pods';
import { createActiveTenant } from '../helpers/tenants';

let stack: TestStack;
let t: PodTenant;

beforeAll(async () => {
  stack = await startTestStack();
  await registerNode(stack, 'audit-node-1');
  t = await podTenant(stack, 'audit-pods', { free: true });
});
afterAll(async () => {
  await stack?.close();
});

interface EventRow {
  seq: string;
  actor_type: string;
  actor_id: string | null;
  request_id: string | null;
  workflow_id: string | null;
  operation: string | null;
  action: string;
  entity_type: string;
  entity_id: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

const eventsOf = (chain: string, entityId?: string) =>
  stack.db.query<EventRow>(
    `select seq, actor_type, actor_id, request_id, workflow_id, operation, action, entity_type, entity_id, before, after
       from audit_events where chain = $1 and ($2::text is null or entity_id = $2) order by seq`,
    [chain, entityId ?? null],
  );

/** As the superuser, with every trigger off: what someone with the keys could do. */
async function behindTheTriggers(sql: string, params: unknown[]): Promise<void> {
  await stack.db.query('begin');
  try {
    await stack.db.query('set local session_replication_role = replica');
    await stack.db.query(sql, params);
    await stack.db.query('commit');
  } catch (err) {
    await stack.db.query('rollback');
    throw err;
  }
}

/** A tenant's chain with a few events: its customers, created as a CLI command would. */
async function tenantWithCustomers(slug: string, customers: number): Promise<string> {
  const { id } = await createActiveTenant(stack, slug);
  await withAuditContext({ actorType: 'cli', actorId: 'tester', operation: 'test' }, async () => {
    for (let i = 0; i < customers; i += 1) {
      const em = systemEm(stack.db.orm);
      em.create(Customer, { id: newId('customer'), tenant: id, email: `c${i}@${slug}.test`, name: `C${i}` });
      await em.flush();
    }
  });
  return id;
}

it('records a pod created through the API with its caller and request id, and its provisioning with the workflow id', async () => {
  const res = await request(stack.app)
    .post('/api/v1/cloudpods')
    .set('Authorization', t.auth)
    .set('X-Request-Id', 'audit-test-create-1')
    .send({ customer_id: t.customerId, product_id: t.starter, slug: 'audited-1' });
  expect(res.status).toBe(202);
  const podId = res.body.pod.id as string;
  await waitPod(stack, t, podId, 'ACTIVE');

  const events = await eventsOf(t.id, podId);
  const [{ token_id } = { token_id: '' }] = await stack.db.query<{ token_id: string }>(
    'select id as token_id from api_tokens where tenant_id = $1 and revoked_at is null order by created_at desc limit 1',
    [t.id],
  );
  expect(events[0]).toMatchObject({
    action: 'INSERT',
    entity_type: 'cloud_pods',
    actor_type: 'api_token',
    actor_id: token_id,
    request_id: 'audit-test-create-1',
    operation: 'createCloudPod',
    workflow_id: null,
    after: expect.objectContaining({ id: podId, slug: 'audited-1', tenant_id: t.id }),
  });
  const [pod] = await stack.db.query<{ workflow_id: string }>(
    'select workflow_id from cloud_pods where id = $1',
    [podId],
  );
  const activated = events.find((e) => e.action === 'UPDATE' && e.after?.status === 'ACTIVE');
  expect(activated).toMatchObject({
    actor_type: 'workflow',
    actor_id: 'cloudPod',
    workflow_id: pod?.workflow_id,
    request_id: null,
  });
  // only the fields that changed, before and after
  expect(Object.keys(activated?.after ?? {})).toEqual(Object.keys(activated?.before ?? {}));
  expect(activated?.after).not.toHaveProperty('slug');
  expect(await verifyAuditChains(systemEm(stack.db.orm), { chain: t.id })).toMatchObject({ breaks: [] });
});

it('names the actor of a write made outside a transaction, and leaves nothing on the pooled connection', async () => {
  const tenantId = await tenantWithCustomers('audit-autocommit', 1);
  const [customer] = await stack.db.query<{ id: string }>('select id from customers where tenant_id = $1', [
    tenantId,
  ]);
  const rename = (name: string) =>
    systemEm(stack.db.orm).nativeUpdate(Customer, { id: customer?.id }, { name });
  await withAuditContext({ actorType: 'user', actorId: 'usr_autocommit', requestId: 'req-autocommit' }, () =>
    rename('Renamed in a context'),
  );
  for (const n of [1, 2, 3]) await rename(`Renamed without a context ${n}`);
  const renames = (await eventsOf(tenantId, customer?.id)).filter((e) => e.action === 'UPDATE');
  expect(renames.map((e) => [e.actor_type, e.actor_id, e.request_id])).toEqual([
    ['user', 'usr_autocommit', 'req-autocommit'],
    ['system', null, null],
    ['system', null, null],
    ['system', null, null],
  ]);
});

it('keeps secrets out and writes nothing for a change of bookkeeping columns only', async () => {
  const before = await eventsOf('platform');
  const [user] = await stack.db.query<{ id: string }>(
    `insert into users (id, email, password_hash, password_changed_at, platform_admin)
     values ($1, 'audit-secret@test.test', '$argon2id$v=19$secret', now(), false) returning id`,
    [newId('user')],
  );
  await stack.db.query(
    "update users set updated_at = now() + interval '1 minute', last_login_at = now() where id = $1",
    [user?.id],
  );
  const after = await eventsOf('platform', user?.id);
  expect(after).toHaveLength(1);
  expect(after[0]?.after).toMatchObject({ email: 'audit-secret@test.test', password_hash: '[redacted]' });
  expect(JSON.stringify(after)).not.toContain('argon2id');
  expect((await eventsOf('platform')).length).toBe(before.length + 1);
});

it('gives concurrent writers of one tenant gapless seqs and a valid chain', async () => {
  const tenantId = await tenantWithCustomers('audit-concurrent', 0);
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      withAuditContext({ actorType: 'cli', actorId: 'racer', operation: `race-${i}` }, async () => {
        const em = systemEm(stack.db.orm);
        em.create(Customer, {
          id: newId('customer'),
          tenant: tenantId,
          email: `race${i}@audit.test`,
          name: `Racer ${i}`,
        });
        await em.flush();
      }),
    ),
  );
  const events = await eventsOf(tenantId);
  expect(events.map((e) => Number(e.seq))).toEqual(events.map((_, i) => i + 1));
  const raced = events.filter((e) => e.actor_id === 'racer');
  expect(new Set(raced.map((e) => e.operation)).size).toBe(20);
  expect(await verifyAuditChains(systemEm(stack.db.orm), { chain: tenantId })).toMatchObject({
    chains: 1,
    events: events.length,
    breaks: [],
  });
});

it('tells a connection that owns the schema from the application’s', async () => {
  expect(await ownerConnectionWarning(stack.db.orm)).toBeUndefined();
  const owner = await initOrm({ databaseUrl: stack.db.url, poolMax: 1 });
  try {
    expect(await ownerConnectionWarning(owner)).toMatch(/superuser/);
  } finally {
    await owner.close();
  }
});

describe('append-only', () => {
  const statements = [
    "update audit_events set actor_id = 'someone else'",
    'delete from audit_events',
    'truncate audit_events',
    "update audit_heads set seq = 1, hash = repeat('0', 64)",
    'delete from audit_heads',
  ];

  it.each(statements)('refuses the application role by its privileges: %s', async (sql) => {
    const app = new Client({ connectionString: stack.db.appUrl });
    await app.connect();
    try {
      await expect(app.query(sql)).rejects.toMatchObject({ code: '42501' });
      // nor can it append events of its own making
      await expect(
        app.query(
          `insert into audit_events (chain, seq, occurred_at, actor_type, action, entity_type, prev_hash, hash)
           values ('platform', 999999, now(), 'system', 'INSERT', 'x', repeat('0', 64), repeat('0', 64))`,
        ),
      ).rejects.toMatchObject({ code: '42501' });
    } finally {
      await app.end();
    }
  });

  it.each(statements.filter((s) => !s.startsWith('update audit_heads')))(
    'refuses the owner (a superuser here, whom privileges do not stop) by its triggers: %s',
    async (sql) => {
      const [{ n } = { n: 0 }] = await stack.db.query<{ n: number }>(
        'select count(*)::int as n from audit_events',
      );
      await expect(stack.db.query(sql)).rejects.toMatchObject({ code: '42501' });
      expect((await stack.db.query<{ n: number }>('select count(*)::int as n from audit_events'))[0]?.n).toBe(
        n,
      );
    },
  );
});

describe('verification', () => {
  it('recomputes the database’s hashes in TypeScript', async () => {
    const [row] = await stack.db.query<{
      chain: string;
      seq: string;
      occurred_ms: number;
      actor_type: string;
      actor_id: string | null;
      request_id: string | null;
      workflow_id: string | null;
      operation: string | null;
      action: string;
      entity_type: string;
      entity_id: string | null;
      before_text: string | null;
      after_text: string | null;
      prev_hash: string;
      hash: string;
      sql_canonical_hash: string;
    }>(
      `select chain, seq, (extract(epoch from occurred_at) * 1000)::float8 as occurred_ms, actor_type, actor_id,
              request_id, workflow_id, operation, action, entity_type, entity_id, before::text as before_text,
              after::text as after_text, prev_hash, hash
         from audit_events where chain = $1 and seq = 1`,
      [t.id],
    );
    expect(row?.prev_hash).toBe(GENESIS_HASH);
    const event: ChainedEvent = {
      chain: row!.chain,
      seq: Number(row!.seq),
      occurredAt: new Date(Math.round(row!.occurred_ms)),
      actorType: row!.actor_type,
      actorId: row!.actor_id,
      requestId: row!.request_id,
      workflowId: row!.workflow_id,
      operation: row!.operation,
      action: row!.action,
      entityType: row!.entity_type,
      entityId: row!.entity_id,
      beforeText: row!.before_text,
      afterText: row!.after_text,
      prevHash: row!.prev_hash,
      hash: row!.hash,
    };
    expect(canonicalText(event)).toMatch(/^v1\|\d+:ten_/);
    expect(eventHash(event)).toBe(row?.hash);
  });

  it('finds a row altered behind the triggers’ back, at its seq', async () => {
    const tenantId = await tenantWithCustomers('audit-altered', 3);
    const [target] = await stack.db.query<{ seq: string }>(
      "select seq from audit_events where chain = $1 and entity_type = 'customers' order by seq limit 1 offset 1",
      [tenantId],
    );
    await behindTheTriggers(
      `update audit_events set after = jsonb_set(after, '{name}', '"Someone Else"') where chain = $1 and seq = $2`,
      [tenantId, target?.seq],
    );
    const result = await verifyAuditChains(systemEm(stack.db.orm), { chain: tenantId });
    expect(result.breaks).toEqual([
      expect.objectContaining({ chain: tenantId, seq: Number(target?.seq), reason: 'hash' }),
    ]);
  });

  it('finds a rewritten row whose hash was recomputed too, at the next seq', async () => {
    const tenantId = await tenantWithCustomers('audit-rehashed', 3);
    const [target] = await stack.db.query<{ seq: string }>(
      "select seq from audit_events where chain = $1 and entity_type = 'customers' order by seq limit 1",
      [tenantId],
    );
    await behindTheTriggers(
      `update audit_events e set actor_id = 'nobody',
              hash = audit_hash(chain, seq, occurred_at, actor_type, 'nobody', request_id, workflow_id, operation,
                                action, entity_type, entity_id, before, after, prev_hash)
        where chain = $1 and seq = $2`,
      [tenantId, target?.seq],
    );
    const result = await verifyAuditChains(systemEm(stack.db.orm), { chain: tenantId });
    expect(result.breaks).toEqual([
      expect.objectContaining({ chain: tenantId, seq: Number(target?.seq) + 1, reason: 'prev_hash' }),
    ]);
  });

  it('finds a deleted row as a gap at its seq, and a cut tail against the head', async () => {
    const gapped = await tenantWithCustomers('audit-gapped', 3);
    const [middle] = await stack.db.query<{ seq: string }>(
      "select seq from audit_events where chain = $1 and entity_type = 'customers' order by seq limit 1 offset 1",
      [gapped],
    );
    await behindTheTriggers('delete from audit_events where chain = $1 and seq = $2', [gapped, middle?.seq]);
    const cut = await tenantWithCustomers('audit-cut', 2);
    const [head] = await stack.db.query<{ seq: string }>('select seq from audit_heads where chain = $1', [
      cut,
    ]);
    await behindTheTriggers('delete from audit_events where chain = $1 and seq = $2', [cut, head?.seq]);

    const result = await verifyAuditChains(systemEm(stack.db.orm));
    expect(result.breaks).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ chain: gapped, seq: Number(middle?.seq), reason: 'gap' }),
        expect.objectContaining({ chain: cut, seq: Number(head?.seq), reason: 'gap' }),
      ]),
    );
    expect(result.breaks.map((b) => b.chain)).not.toContain(t.id);
  });
});
