/**
 * Migration20261123220000 on a database with history: notifications written before it get the
 * customer their dedupe key names (an invoice's, a subscription's, a pod's); the tenant's own mail
 * keeps none. And a customer deleted for good leaves its notifications, without the customer.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { CloudPod, ProvisioningJob } from '../../src/db/entities';
import { initOrm, migrate, systemEm, type MikroORM } from '../../src/db/orm';
import { recordNotification } from '../../src/services/notifications';
import { draft, seedBillingTenant, seedSubscription } from '../helpers/billing';
import { withDatabase } from '../helpers/pg-url';

const BEFORE = 'Migration20261123211636';

async function emptyDatabase(): Promise<string> {
  const adminUrl = process.env.PODPLANE_TEST_ADMIN_URL as string;
  const name = `podplane_ntf_${randomBytes(4).toString('hex')}_${process.env.PODPLANE_TEST_RUN_ID}`;
  const c = new Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`create database "${name}"`);
  await c.end();
  return withDatabase(adminUrl, name);
}

let orm: MikroORM;

beforeAll(async () => {
  orm = await initOrm({ databaseUrl: await emptyDatabase(), poolMax: 2 });
  await migrate(orm);
});
afterAll(async () => {
  await orm?.close();
});

const customerOf = async (dedupeKey: string) => {
  const [row] = await orm.em
    .getConnection()
    .execute<{ customer_id: string | null }[]>('select customer_id from notifications where dedupe_key = ?', [
      dedupeKey,
    ]);
  if (!row) throw new Error(`no notification ${dedupeKey}`);
  return row.customer_id;
};

describe('the notifications migration', () => {
  it('gives existing notifications the customer their dedupe key names', async () => {
    const t = await seedBillingTenant(orm, 'ntf-backfill', { customers: 3 });
    const [jane, joe, ann] = t.customers as [
      (typeof t.customers)[0],
      (typeof t.customers)[0],
      (typeof t.customers)[0],
    ];
    const invoice = await draft(orm, t, jane);
    const sub = await seedSubscription(orm, t, joe);
    const em = systemEm(orm);
    const pod = em.create(CloudPod, {
      tenant: t.tenant.id,
      customer: ann.id,
      product: sub.product.id,
      slug: 'backfilled',
      hostname: 'backfilled.pods.podplane.test',
      vcpu: 1,
      memoryMb: 1024,
      diskGb: 20,
      workflowId: 'cloudpod-backfilled',
    });
    const job = em.create(ProvisioningJob, {
      tenant: t.tenant.id,
      pod,
      type: 'PROVISION',
      status: 'COMPLETED',
      workflowId: 'cloudpod-backfilled',
    });
    await em.flush();

    const keys = {
      dunning: `dunning:${invoice.invoice.id}:attempt-1`,
      suspended: `dunning:${invoice.invoice.id}:suspended`,
      trial: `trial-reminder:${sub.id}:3`,
      activation: `subscription.activation_failed:${sub.id}:${job.id}:1`,
      podActive: `cloudpod.active:${job.id}`,
      welcome: `tenant.welcome:${t.tenant.id}`,
      unknownInvoice: 'dunning:inv_01jd0000000000000000000000:attempt-1',
    };
    // as the code before the migration wrote them: no customer
    for (const [template, key] of Object.entries(keys)) {
      await recordNotification(em, {
        tenantId: t.tenant.id,
        template,
        recipient: 'someone@ntf-backfill.test',
        subject: template,
        body: template,
        dedupeKey: key,
      });
    }

    await orm.getMigrator().down({ to: BEFORE });
    await migrate(orm);

    expect(await customerOf(keys.dunning)).toBe(jane.id);
    expect(await customerOf(keys.suspended)).toBe(jane.id);
    expect(await customerOf(keys.trial)).toBe(joe.id);
    expect(await customerOf(keys.activation)).toBe(joe.id);
    expect(await customerOf(keys.podActive)).toBe(ann.id);
    expect(await customerOf(keys.welcome)).toBeNull();
    expect(await customerOf(keys.unknownInvoice)).toBeNull();
    const [state] = await orm.em
      .getConnection()
      .execute<{ n: number }[]>(
        "select count(*)::int as n from notifications where status = 'PENDING' and attempts = 0 and last_error is null and next_attempt_at is null",
      );
    expect(state?.n).toBe(Object.keys(keys).length);
  });

  it('keeps the notifications of a customer deleted for good, without the customer', async () => {
    const t = await seedBillingTenant(orm, 'ntf-delete', { customers: 1 });
    const customer = t.customers[0]!;
    const em = systemEm(orm);
    await recordNotification(em, {
      tenantId: t.tenant.id,
      customerId: customer.id,
      template: 'invoice.payment_failed',
      recipient: customer.email,
      subject: 'Payment failed',
      body: 'Payment failed.',
      dedupeKey: `dunning:inv_deleted:${customer.id}`,
    });
    expect(await customerOf(`dunning:inv_deleted:${customer.id}`)).toBe(customer.id);
    await orm.em.getConnection().execute('delete from customers where id = ?', [customer.id]);
    expect(await customerOf(`dunning:inv_deleted:${customer.id}`)).toBeNull();
  });
});
