/** The tenant filter: a tenant-scoped EntityManager cannot read or change another tenant's rows. */
import { ApiToken, Notification, Tenant } from '../../src/db/entities';
import { systemEm, tenantEm } from '../../src/db/orm';
import { issueToken } from '../../src/services/api-tokens';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

let db: TestDatabase;
let a: Tenant;
let b: Tenant;

beforeAll(async () => {
  db = await createTestDatabase();
  const em = systemEm(db.orm);
  a = em.create(Tenant, {
    slug: 'filter-a',
    name: 'A',
    currency: 'EUR',
    ownerEmail: 'a@a.test',
    status: 'ACTIVE',
  });
  b = em.create(Tenant, {
    slug: 'filter-b',
    name: 'B',
    currency: 'EUR',
    ownerEmail: 'b@b.test',
    status: 'ACTIVE',
  });
  await em.flush();
  for (const t of [a, b]) {
    await issueToken(systemEm(db.orm), { tenantId: t.id, name: `tok-${t.slug}`, scopes: ['read'] });
    em.create(Notification, {
      tenant: t,
      template: 't',
      recipient: t.ownerEmail,
      subject: 's',
      body: 'b',
      dedupeKey: `k-${t.id}`,
    });
  }
  await em.flush();
});
afterAll(() => db.close());

describe('tenantEm', () => {
  it('sees only its own tenant, tokens and notifications', async () => {
    const em = tenantEm(db.orm, a.id);
    expect((await em.find(Tenant, {})).map((t) => t.id)).toEqual([a.id]);
    expect(await em.findOne(Tenant, { id: b.id })).toBeNull();
    const tokens = await em.find(ApiToken, {}, { populate: ['tenant'] });
    expect(tokens.map((t) => t.tenant?.id)).toEqual([a.id]);
    expect(await em.count(Notification, {})).toBe(1);
    // Even an explicit where clause for the other tenant finds nothing.
    expect(await em.find(ApiToken, { tenant: b.id })).toEqual([]);
  });

  it('cannot update or delete the other tenant’s rows', async () => {
    const em = tenantEm(db.orm, a.id);
    expect(await em.nativeUpdate(ApiToken, { tenant: b.id }, { name: 'hijacked' })).toBe(0);
    expect(await em.nativeDelete(Notification, { tenant: b.id })).toBe(0);
    const rows = await db.query<{ name: string }>('select name from api_tokens where tenant_id = $1', [b.id]);
    expect(rows).toEqual([{ name: 'tok-filter-b' }]);
  });

  it('leaves the system EntityManager unfiltered', async () => {
    expect(await systemEm(db.orm).count(Tenant, {})).toBe(2);
  });
});
