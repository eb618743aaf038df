/** Onboarding's activities are repeatable: a retry after a lost answer changes nothing twice. */
import { MockActivityEnvironment } from '@temporalio/testing';
import { createTenantActivities } from '../../src/activities/tenants';
import { Tenant } from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import { createLogger } from '../../src/logger';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.close());

async function newTenant(slug: string): Promise<Tenant> {
  const em = systemEm(db.orm);
  const tenant = em.create(Tenant, { slug, name: slug, currency: 'EUR', ownerEmail: `owner@${slug}.test` });
  await em.flush();
  return tenant;
}

const run = <T>(fn: () => Promise<T>) => new MockActivityEnvironment({ attempt: 2 }).run(fn);

it('writes settings, quotas and the welcome once, and activates a tenant once', async () => {
  const acts = createTenantActivities({ orm: db.orm, logger: createLogger({ level: 'silent' }) });
  const tenant = await newTenant('onboard-twice');
  for (let i = 0; i < 2; i++) {
    await run(() => acts.createTenantBillingSettings(tenant.id));
    await run(() => acts.createTenantQuotas(tenant.id));
    await run(() => acts.recordWelcomeNotification(tenant.id));
  }
  await run(() => acts.activateTenant(tenant.id));
  const [first] = await db.query<{ status: string; activated_at: Date }>(
    'select status, activated_at from tenants where id = $1',
    [tenant.id],
  );
  await run(() => acts.activateTenant(tenant.id));
  const [again] = await db.query<{ status: string; activated_at: Date }>(
    'select status, activated_at from tenants where id = $1',
    [tenant.id],
  );
  expect(first?.status).toBe('ACTIVE');
  expect(again).toEqual(first);
  const [counts] = await db.query<Record<string, string>>(
    `select (select count(*) from tenant_billing_settings where tenant_id = $1) as settings,
            (select count(*) from tenant_quotas where tenant_id = $1) as quotas,
            (select count(*) from notifications where tenant_id = $1) as notifications`,
    [tenant.id],
  );
  expect(counts).toEqual({ settings: '1', quotas: '1', notifications: '1' });
});

it('refuses to activate a closed tenant', async () => {
  const acts = createTenantActivities({ orm: db.orm, logger: createLogger({ level: 'silent' }) });
  const tenant = await newTenant('onboard-closed');
  await db.query(`update tenants set status = 'CLOSED' where id = $1`, [tenant.id]);
  await expect(run(() => acts.activateTenant(tenant.id))).rejects.toThrow(
    /is CLOSED and cannot become ACTIVE/,
  );
});
