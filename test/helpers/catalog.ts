/** A tenant with one customer and one product, written through the ORM (for tests below the API). */
import { Customer, Product, Tenant } from '../../src/db/entities';
import { systemEm, type MikroORM } from '../../src/db/orm';
import type { Resources } from '../../src/domain/cloudpods';

export async function seedCatalog(
  orm: MikroORM,
  slug: string,
  size: Resources,
): Promise<{ tenant: Tenant; customer: Customer; product: Product }> {
  const em = systemEm(orm);
  const tenant = em.create(Tenant, {
    slug,
    name: slug,
    currency: 'EUR',
    ownerEmail: `owner@${slug}.test`,
    status: 'ACTIVE',
  });
  const customer = em.create(Customer, { tenant, email: `customer@${slug}.test`, name: 'Customer' });
  const product = em.create(Product, {
    tenant,
    code: 'SMALL',
    name: 'Small',
    interval: 'MONTH',
    unitAmount: 500,
    currency: 'EUR',
    vcpu: size.vcpu,
    memoryMb: size.memoryMb,
    diskGb: size.diskGb,
    includedBandwidthGb: 100,
  });
  await em.flush();
  return { tenant, customer, product };
}
