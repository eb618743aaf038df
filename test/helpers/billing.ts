/**
 * Billing fixtures: tenants with billing settings and customers written through the ORM (for tests
 * below the API), drafts made by the service, and customers made through the API (for e2e tests).
 */
import request from 'supertest';
import {
  Customer,
  Payment,
  Product,
  Subscription,
  Tenant,
  TenantBillingSettings,
  type Invoice,
} from '../../src/db/entities';
import { systemEm, type MikroORM } from '../../src/db/orm';
import type { InvoiceLineInput } from '../../src/domain/billing';
import { DEFAULT_BILLING_SETTINGS } from '../../src/domain/tenants';
import { createDraftInvoice, type InvoiceWithLines } from '../../src/services/invoices';
import type { TestStack } from './app';

export interface BillingTenant {
  tenant: Tenant;
  customers: Customer[];
}

/** A tenant as onboarding leaves it (ACTIVE, with billing settings) and `customers` customers. */
export async function seedBillingTenant(
  orm: MikroORM,
  slug: string,
  opts: { taxRateBps?: number; netTermsDays?: number; customers?: number; creditBalance?: number } = {},
): Promise<BillingTenant> {
  const em = systemEm(orm);
  const tenant = em.create(Tenant, {
    slug,
    name: slug,
    currency: 'EUR',
    ownerEmail: `owner@${slug}.test`,
    status: 'ACTIVE',
  });
  em.create(TenantBillingSettings, {
    tenant,
    taxRateBps: opts.taxRateBps ?? 0,
    netTermsDays: opts.netTermsDays ?? 14,
    dunningPolicy: structuredClone(DEFAULT_BILLING_SETTINGS.dunningPolicy),
  });
  const customers = Array.from({ length: opts.customers ?? 1 }, (_, i) =>
    em.create(Customer, {
      tenant,
      email: `customer-${i}@${slug}.test`,
      name: `Customer ${i}`,
      creditBalance: opts.creditBalance ?? 0,
    }),
  );
  await em.flush();
  return { tenant, customers };
}

/** A charge line of `unitAmount` minor units. */
export function charge(unitAmount: number, quantity = 1): InvoiceLineInput {
  return { kind: 'USAGE', description: `Charge of ${unitAmount}`, quantity, unitAmount };
}

/** A MANUAL draft for `customer` with the given lines (one charge of 1000 by default). */
export function draft(
  orm: MikroORM,
  t: BillingTenant,
  customer: Customer = t.customers[0] as Customer,
  lines: InvoiceLineInput[] = [charge(1000)],
): Promise<InvoiceWithLines> {
  return createDraftInvoice(systemEm(orm), {
    tenantId: t.tenant.id,
    customerId: customer.id,
    billingReason: 'MANUAL',
    lines,
  });
}

/** A subscription of `customer` (and the product it is on), for period invoices. */
export async function seedSubscription(
  orm: MikroORM,
  t: BillingTenant,
  customer: Customer,
): Promise<Subscription> {
  const em = systemEm(orm);
  const product = em.create(Product, {
    tenant: t.tenant.id,
    code: `PLAN-${customer.id.slice(-8).toUpperCase()}`,
    name: 'Plan',
    interval: 'MONTH',
    unitAmount: 1000,
    currency: 'EUR',
    vcpu: 1,
    memoryMb: 1024,
    diskGb: 20,
    includedBandwidthGb: 100,
  });
  const subscription = em.create(Subscription, {
    tenant: t.tenant.id,
    customer: customer.id,
    product,
    unitAmount: 1000,
    currency: 'EUR',
    interval: 'MONTH',
    podSlug: `pod-${customer.id.slice(-8)}`,
  });
  await em.flush();
  return subscription;
}

/** A PENDING payment attempt of `invoice` for `amount`, as collection records it before charging. */
export async function seedPayment(
  orm: MikroORM,
  invoice: Invoice,
  amount: number,
  attempt = 1,
): Promise<Payment> {
  const em = systemEm(orm);
  const payment = em.create(Payment, {
    tenant: invoice.tenant.id,
    invoice: invoice.id,
    provider: 'simulated',
    idempotencyKey: `${invoice.id}:attempt-${attempt}`,
    attempt,
    amount,
    currency: invoice.currency,
  });
  await em.flush();
  return payment;
}

/** A customer of an e2e tenant, created through the API; returns its id. */
export async function apiCustomer(stack: TestStack, auth: string, email: string): Promise<string> {
  const res = await request(stack.app)
    .post('/api/v1/customers')
    .set('Authorization', auth)
    .send({ email, name: email.split('@')[0] });
  expect(res.status).toBe(201);
  return res.body.id as string;
}
