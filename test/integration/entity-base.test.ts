/** Every entity shares one base: a prefixed id, created_at and updated_at, kept by every write path. */
import {
  Customer,
  DocumentCounter,
  ENTITIES,
  Row,
  SimBackup,
  SimDnsRecord,
  SimFaultRule,
  SimVm,
  TenantUsage,
  WebhookEvent,
} from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import { ID_PREFIXES } from '../../src/domain/ids';
import { seedCatalog } from '../helpers/catalog';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

/**
 * Rows that are not ours to stamp: counters keyed by their tenant, Stripe's events under Stripe's
 * ids, and the simulator's stand-in for a provider's store.
 */
const NOT_ROWS = new Set<unknown>([
  TenantUsage,
  DocumentCounter,
  WebhookEvent,
  SimVm,
  SimDnsRecord,
  SimFaultRule,
  SimBackup,
]);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.close());

it('every entity but the listed exceptions extends Row and names a known id kind', () => {
  for (const entity of ENTITIES.filter((e) => !NOT_ROWS.has(e))) {
    expect([entity.name, entity.prototype instanceof Row]).toEqual([entity.name, true]);
    expect(Object.keys(ID_PREFIXES)).toContain((entity as unknown as typeof Row).idKind);
  }
});

it('gives every Row table id, created_at and updated_at, both timestamps defaulting to now()', async () => {
  const tables = ENTITIES.filter((e) => !NOT_ROWS.has(e)).map(
    (e) => db.orm.getMetadata().get(e.name).tableName,
  );
  const columns = await db.query<{
    table_name: string;
    column_name: string;
    column_default: string | null;
    is_nullable: string;
  }>(
    `select table_name, column_name, column_default, is_nullable from information_schema.columns
      where table_schema = 'public' and column_name in ('id', 'created_at', 'updated_at') and table_name = any($1)`,
    [tables],
  );
  for (const table of tables) {
    const of = (name: string) => columns.find((c) => c.table_name === table && c.column_name === name);
    expect([table, of('id')?.is_nullable]).toEqual([table, 'NO']);
    for (const stamp of ['created_at', 'updated_at']) {
      expect([table, stamp, of(stamp)?.is_nullable, of(stamp)?.column_default]).toEqual([
        table,
        stamp,
        'NO',
        'now()',
      ]);
    }
  }
});

it('prefixes ids with the entity kind and moves updated_at, not created_at, when a flush changes the row', async () => {
  const { customer } = await seedCatalog(db.orm, 'entity-base', { vcpu: 1, memoryMb: 1024, diskGb: 10 });
  expect(customer.id.startsWith(`${ID_PREFIXES.customer}_`)).toBe(true);
  await db.query(`update customers set updated_at = created_at - interval '1 day' where id = $1`, [
    customer.id,
  ]);
  const em = systemEm(db.orm);
  const before = await em.findOneOrFail(Customer, customer.id);
  const { createdAt, updatedAt } = before;
  before.name = 'Renamed';
  await em.flush();
  const after = await systemEm(db.orm).findOneOrFail(Customer, customer.id);
  expect(after.createdAt.toISOString()).toBe(createdAt.toISOString());
  expect(after.updatedAt.getTime()).toBeGreaterThan(createdAt.getTime());
  expect(after.updatedAt.getTime()).toBeGreaterThan(updatedAt.getTime());
});
