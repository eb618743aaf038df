/** Request and response schemas for /api/v1/products (CloudPod plans). */
import { PRODUCT_INTERVALS } from '../../db/entities';
import { isCurrency } from '../../domain/tenants';
import { z } from '../zod';
import { PaginationQuery } from './common.schemas';
import { DisplayName, IncludeDeleted, idCursor } from './common.schemas';

/**
 * Plan codes end up on invoices, in storefront URLs and in operators' logs: 2–64 characters of
 * upper-case letters, digits, `_` and `-`, starting with a letter or digit. Lower case is refused,
 * not folded, so a code reads the same everywhere it appears.
 */
export const PRODUCT_CODE = /^[A-Z0-9][A-Z0-9_-]{1,63}$/;

/** The columns are PostgreSQL `integer`. */
const INT32_MAX = 2_147_483_647;

const UnitAmount = z
  .number()
  .int()
  .min(0)
  .max(INT32_MAX)
  .openapi({ example: 1500, description: 'price per interval in minor units of `currency`' });
const TrialDays = z.number().int().min(0).max(365);
const BackupsIncluded = z.number().int().min(0).max(100);

export const CreateProductBody = z
  .strictObject({
    code: z
      .string()
      .regex(
        PRODUCT_CODE,
        'must be 2–64 upper-case letters, digits, `_` or `-`, starting with a letter or digit',
      )
      .openapi({ example: 'POD-S' }),
    name: DisplayName.openapi({ example: 'CloudPod S' }),
    interval: z.enum(PRODUCT_INTERVALS),
    unit_amount: UnitAmount,
    currency: z
      .string()
      .refine(isCurrency, 'currency must be an ISO 4217 code in upper case, e.g. EUR')
      .optional()
      .openapi({ example: 'EUR', description: "defaults to the tenant's currency" }),
    vcpu: z.number().int().min(1).max(128),
    memory_mb: z.number().int().min(512).max(1_048_576),
    disk_gb: z.number().int().min(10).max(65_536),
    included_bandwidth_gb: z.number().int().min(0).max(INT32_MAX),
    bandwidth_overage_unit_amount: z
      .number()
      .int()
      .min(0)
      .max(INT32_MAX)
      .default(0)
      .openapi({
        example: 5,
        description:
          'price of each GB of usage metric `bandwidth_gb` beyond `included_bandwidth_gb` in a period, in minor ' +
          'units of `currency`, billed in arrears on the renewal invoice; 0 (the default) bills no overage',
      }),
    trial_days: TrialDays.default(0),
    backups_included: BackupsIncluded.default(0),
  })
  .openapi('CreateProduct');

export type CreateProductBody = z.infer<typeof CreateProductBody>;

/**
 * What a PATCH may not touch: pods are placed and sized by a product's limits, and invoices and
 * subscriptions rely on its code, interval and currency. The bandwidth allowance and its overage
 * price are read at every renewal, so changing them would reprice subscriptions already sold. A
 * different plan is a new product.
 */
export const IMMUTABLE_PRODUCT_FIELDS = [
  'code',
  'interval',
  'currency',
  'vcpu',
  'memory_mb',
  'disk_gb',
  'included_bandwidth_gb',
  'bandwidth_overage_unit_amount',
] as const;

export function immutableProductFieldsIn(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  return IMMUTABLE_PRODUCT_FIELDS.filter((field) => Object.hasOwn(body, field));
}

export const UpdateProductBody = z
  .strictObject({
    name: DisplayName.optional(),
    unit_amount: UnitAmount.optional(),
    trial_days: TrialDays.optional(),
    backups_included: BackupsIncluded.optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), 'send at least one field to change')
  .openapi('UpdateProduct', {
    description: `Only these fields change; ${IMMUTABLE_PRODUCT_FIELDS.join(', ')} are immutable (422).`,
  });

export type UpdateProductBody = z.infer<typeof UpdateProductBody>;

export const ProductView = z
  .object({
    id: z.string(),
    code: z.string(),
    name: z.string(),
    kind: z.string(),
    interval: z.enum(PRODUCT_INTERVALS),
    unit_amount: z.number().int(),
    currency: z.string(),
    vcpu: z.number().int(),
    memory_mb: z.number().int(),
    disk_gb: z.number().int(),
    included_bandwidth_gb: z.number().int(),
    bandwidth_overage_unit_amount: z.number().int(),
    trial_days: z.number().int(),
    backups_included: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
    deleted_at: z.string().nullable(),
  })
  .openapi('Product');

export type ProductView = z.infer<typeof ProductView>;

export const ListProductsQuery = PaginationQuery.extend({
  cursor: idCursor('product'),
  include_deleted: IncludeDeleted,
});

export const ProductList = z.object({ data: z.array(ProductView), next_cursor: z.string().nullable() });

export const ProductIdParams = z.object({
  id: z.string().openapi({ example: 'prd_01jd0000000000000000000000' }),
});
