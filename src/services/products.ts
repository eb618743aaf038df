/**
 * Every change to a product (a tenant's CloudPod plan): create, update, and retire (soft delete).
 * Each runs in one transaction; routes and the CLI call these and never write products themselves.
 * Deleted products stay readable for the pods, subscriptions and invoices that refer to them.
 */
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import { Product, Tenant, type ProductInterval } from '../db/entities';
import { SOFT_DELETED, type EntityManager } from '../db/orm';
import { conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';

const CODE_UNIQUE = 'products_tenant_id_code_unique';

/** One of the tenant's products, deleted or not, locked FOR UPDATE until the transaction ends; else 404. */
async function lockProduct(tx: EntityManager, tenantId: string, productId: string): Promise<Product> {
  const product = isId('product', productId)
    ? await tx.findOne(
        Product,
        { id: productId, tenant: tenantId },
        { lockMode: LockMode.PESSIMISTIC_WRITE, filters: { [SOFT_DELETED]: false } },
      )
    : null;
  if (!product) throw notFound('product');
  return product;
}

/** A deleted product is still visible, so changing it is a state conflict rather than a 404. */
function ensureNotDeleted(product: Product): void {
  if (product.deletedAt) {
    throw conflict(`the product was deleted at ${product.deletedAt.toISOString()} and can no longer change`);
  }
}

export interface CreateProductInput {
  tenantId: string;
  code: string;
  name: string;
  interval: ProductInterval;
  unitAmount: number;
  /** undefined takes the tenant's currency */
  currency?: string | undefined;
  vcpu: number;
  memoryMb: number;
  diskGb: number;
  includedBandwidthGb: number;
  /** per GB of bandwidth beyond the included amount; 0 (when undefined too) bills no overage */
  bandwidthOverageUnitAmount?: number | undefined;
  trialDays: number;
  backupsIncluded: number;
}

/** Creates a product; a code the tenant already uses (deleted products included) is 409. */
export async function createProduct(em: EntityManager, input: CreateProductInput): Promise<Product> {
  return em.transactional(async (tx) => {
    const currency = input.currency ?? (await tx.findOneOrFail(Tenant, { id: input.tenantId })).currency;
    const product = tx.create(Product, {
      tenant: input.tenantId,
      code: input.code,
      name: input.name,
      interval: input.interval,
      unitAmount: input.unitAmount,
      currency,
      vcpu: input.vcpu,
      memoryMb: input.memoryMb,
      diskGb: input.diskGb,
      includedBandwidthGb: input.includedBandwidthGb,
      bandwidthOverageUnitAmount: input.bandwidthOverageUnitAmount ?? 0,
      trialDays: input.trialDays,
      backupsIncluded: input.backupsIncluded,
    });
    try {
      await tx.flush();
    } catch (err) {
      // Deleted products keep their code: pods and invoices still refer to it.
      if (
        err instanceof UniqueConstraintViolationException &&
        (err as { constraint?: unknown }).constraint === CODE_UNIQUE
      ) {
        throw conflict('this tenant already has a product with this code', {
          errors: [{ field: 'code', message: 'is taken' }],
        });
      }
      throw err;
    }
    return product;
  });
}

export interface UpdateProductInput {
  tenantId: string;
  productId: string;
  /** undefined leaves the field as it is; the limits, code, interval and currency never change */
  name?: string | undefined;
  unitAmount?: number | undefined;
  trialDays?: number | undefined;
  backupsIncluded?: number | undefined;
}

/** Changes a product's name, price, trial days or included backups; a deleted product is 409. */
export async function updateProduct(em: EntityManager, input: UpdateProductInput): Promise<Product> {
  return em.transactional(async (tx) => {
    const product = await lockProduct(tx, input.tenantId, input.productId);
    ensureNotDeleted(product);
    if (input.name !== undefined) product.name = input.name;
    if (input.unitAmount !== undefined) product.unitAmount = input.unitAmount;
    if (input.trialDays !== undefined) product.trialDays = input.trialDays;
    if (input.backupsIncluded !== undefined) product.backupsIncluded = input.backupsIncluded;
    await tx.flush();
    return product;
  });
}

/** Soft-deletes a product: it stays readable but can no longer change; deleting it again is 409. */
export async function retireProduct(
  em: EntityManager,
  input: { tenantId: string; productId: string },
): Promise<Product> {
  return em.transactional(async (tx) => {
    const product = await lockProduct(tx, input.tenantId, input.productId);
    ensureNotDeleted(product);
    product.deletedAt = new Date();
    await tx.flush();
    return product;
  });
}
