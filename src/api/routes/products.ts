/** /api/v1/products: a tenant's CloudPod plans; deleted plans stay readable for the pods on them. */
import { Product } from '../../db/entities';
import { SOFT_DELETED, type EntityManager } from '../../db/orm';
import { AppError, notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { createProduct, retireProduct, updateProduct } from '../../services/products';
import { productPage } from '../../db/repositories/catalog';
import { pageBody } from '../../db/repositories/pages';
import { route, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import { z } from '../zod';
import { encodeCursor } from './common.schemas';
import {
  CreateProductBody,
  IMMUTABLE_PRODUCT_FIELDS,
  ListProductsQuery,
  ProductIdParams,
  ProductList,
  ProductView,
  UpdateProductBody,
  immutableProductFieldsIn,
} from './products.schemas';

function productView(product: Product): ProductView {
  return {
    id: product.id,
    code: product.code,
    name: product.name,
    kind: product.kind,
    interval: product.interval,
    unit_amount: product.unitAmount,
    currency: product.currency,
    vcpu: product.vcpu,
    memory_mb: product.memoryMb,
    disk_gb: product.diskGb,
    included_bandwidth_gb: product.includedBandwidthGb,
    bandwidth_overage_unit_amount: product.bandwidthOverageUnitAmount,
    trial_days: product.trialDays,
    backups_included: product.backupsIncluded,
    created_at: product.createdAt.toISOString(),
    updated_at: product.updatedAt.toISOString(),
    deleted_at: product.deletedAt?.toISOString() ?? null,
  };
}

/** One of the calling tenant's products, deleted or not; other tenants' ids are invisible. */
async function findProduct(em: EntityManager, id: string): Promise<Product> {
  const product = isId('product', id)
    ? await em.findOne(Product, { id }, { filters: { [SOFT_DELETED]: false } })
    : null;
  if (!product) throw notFound('product');
  return product;
}

/**
 * The PATCH body: a field that may never change is 422 naming each such field, before the body is
 * validated (a strict object would call it an unknown key, 400).
 */
const PatchProductBody = z.preprocess((body) => {
  const frozen = immutableProductFieldsIn(body);
  if (frozen.length > 0) {
    throw new AppError(
      'unprocessable',
      `${IMMUTABLE_PRODUCT_FIELDS.join(', ')} cannot change: pods are sized by them; create a new product instead`,
      { errors: frozen.map((field) => ({ field, message: 'is immutable' })) },
    );
  }
  return body;
}, UpdateProductBody);

const read = { caller: 'tenant', permission: 'catalog:read' } as const;
const write = { caller: 'tenant', permission: 'catalog:write' } as const;

export function productRoutes(): Route[] {
  return [
    route({
      operationId: 'createProduct',
      tag: 'Products',
      method: 'post',
      path: '/api/v1/products',
      summary:
        'Create a product (CloudPod plan); its code is unique within the tenant, deleted products included',
      access: write,
      body: CreateProductBody,
      responses: {
        201: { description: 'Product created', content: { 'application/json': { schema: ProductView } } },
      },
      problems: [409],
      async handle({ principal, em, body, res, log }) {
        const product = await createProduct(em, {
          tenantId: tenantOf(principal),
          code: body.code,
          name: body.name,
          interval: body.interval,
          unitAmount: body.unit_amount,
          currency: body.currency,
          vcpu: body.vcpu,
          memoryMb: body.memory_mb,
          diskGb: body.disk_gb,
          includedBandwidthGb: body.included_bandwidth_gb,
          bandwidthOverageUnitAmount: body.bandwidth_overage_unit_amount,
          trialDays: body.trial_days,
          backupsIncluded: body.backups_included,
        });
        log.info({ productId: product.id }, 'product created');
        res.status(201).location(`/api/v1/products/${product.id}`).json(productView(product));
      },
    }),
    route({
      operationId: 'listProducts',
      tag: 'Products',
      method: 'get',
      path: '/api/v1/products',
      summary: 'List products, oldest first',
      access: read,
      query: ListProductsQuery,
      responses: {
        200: { description: 'A page of products', content: { 'application/json': { schema: ProductList } } },
      },
      async handle({ principal, em, query, res }) {
        const page = await productPage(em, tenantOf(principal), {
          after: query.cursor,
          includeDeleted: query.include_deleted,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'getProduct',
      tag: 'Products',
      method: 'get',
      path: '/api/v1/products/:id',
      summary: 'Get a product; a deleted one is returned with deleted_at set',
      access: read,
      params: ProductIdParams,
      responses: {
        200: { description: 'The product', content: { 'application/json': { schema: ProductView } } },
      },
      async handle({ em, params, res }) {
        res.json(productView(await findProduct(em, params.id)));
      },
    }),
    route({
      operationId: 'updateProduct',
      tag: 'Products',
      method: 'patch',
      path: '/api/v1/products/:id',
      summary: 'Change a product’s name, price, trial days or included backups; its limits are immutable',
      access: write,
      params: ProductIdParams,
      body: PatchProductBody,
      responses: {
        200: { description: 'The updated product', content: { 'application/json': { schema: ProductView } } },
      },
      problems: [409, 422],
      async handle({ principal, em, params, body, res }) {
        const product = await updateProduct(em, {
          tenantId: tenantOf(principal),
          productId: params.id,
          name: body.name,
          unitAmount: body.unit_amount,
          trialDays: body.trial_days,
          backupsIncluded: body.backups_included,
        });
        res.json(productView(product));
      },
    }),
    route({
      operationId: 'deleteProduct',
      tag: 'Products',
      method: 'delete',
      path: '/api/v1/products/:id',
      summary: 'Soft-delete a product: it stays readable but can no longer change',
      access: write,
      params: ProductIdParams,
      responses: { 204: { description: 'Deleted' } },
      problems: [409],
      async handle({ principal, em, params, res, log }) {
        const product = await retireProduct(em, { tenantId: tenantOf(principal), productId: params.id });
        log.info({ productId: product.id }, 'product deleted');
        res.status(204).end();
      },
    }),
  ];
}
