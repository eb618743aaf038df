/** Soft-deleted customers and products are hidden from ORM queries by default, shown when asked. */
import { Customer, Product } from '../../src/db/entities';
import { SOFT_DELETED, systemEm } from '../../src/db/orm';
import { seedCatalog } from '../helpers/catalog';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.close());

it('hides soft-deleted customers and products unless the query turns the filter off', async () => {
  const { tenant, customer, product } = await seedCatalog(db.orm, 'soft-delete', {
    vcpu: 1,
    memoryMb: 1024,
    diskGb: 10,
  });
  await db.query('update customers set deleted_at = now() where id = $1', [customer.id]);
  await db.query('update products set deleted_at = now() where id = $1', [product.id]);
  const em = systemEm(db.orm);
  expect(await em.find(Customer, { tenant: tenant.id })).toEqual([]);
  expect(await em.findOne(Product, { id: product.id })).toBeNull();
  const off = { filters: { [SOFT_DELETED]: false } };
  expect((await em.find(Customer, { tenant: tenant.id }, off)).map((c) => c.id)).toEqual([customer.id]);
  expect((await em.findOne(Product, { id: product.id }, off))?.deletedAt).toBeInstanceOf(Date);
});
