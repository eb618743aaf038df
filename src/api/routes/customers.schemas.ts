/** Request and response schemas for /api/v1/customers, and the catalog field rules products share. */
import { isId, type IdKind } from '../../domain/ids';
import { registry } from '../openapi';
import { z } from '../zod';
import { PaginationQuery, decodeCursor } from './common.schemas';

/** Control characters (NUL among them, which PostgreSQL refuses to store) never belong in a name. */
const CONTROL_CHARACTER = /\p{Cc}/u;

export const DisplayName = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((name) => !CONTROL_CHARACTER.test(name), 'must not contain control characters');

/** `include_deleted=true|false`; anything else is a 400 rather than a silent truthy string. */
export const IncludeDeleted = z
  .enum(['true', 'false'])
  .default('false')
  .transform((value) => value === 'true')
  .openapi({ description: 'also return soft-deleted rows' });

/**
 * A list cursor decoded to the last id of the previous page. Anything that does not decode to an id
 * of `kind` is refused here, so arbitrary bytes never reach a query.
 */
export function idCursor(kind: IdKind) {
  return z
    .string()
    .max(200)
    .transform((cursor) => decodeCursor(cursor) ?? '')
    .refine((id) => isId(kind, id), 'is not a cursor returned by this list')
    .optional()
    .openapi({ description: 'next_cursor of the previous page' });
}

const Email = z.string().trim().toLowerCase().pipe(z.email().max(320));

export const CreateCustomerBody = z
  .strictObject({
    email: Email.openapi({ example: 'jane@example.test', description: 'stored in lower case' }),
    name: DisplayName.openapi({ example: 'Jane Doe' }),
  })
  .openapi('CreateCustomer');

export type CreateCustomerBody = z.infer<typeof CreateCustomerBody>;

export const UpdateCustomerBody = z
  .strictObject({
    email: Email.optional(),
    name: DisplayName.optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), 'send at least one field to change')
  .openapi('UpdateCustomer');

export type UpdateCustomerBody = z.infer<typeof UpdateCustomerBody>;

export const CustomerView = registry.register(
  'Customer',
  z.object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    deleted_at: z.string().nullable(),
  }),
);

export type CustomerView = z.infer<typeof CustomerView>;

export const ListCustomersQuery = PaginationQuery.extend({
  cursor: idCursor('customer'),
  email: Email.optional().openapi({ description: 'exact match, case-insensitive' }),
  include_deleted: IncludeDeleted,
});

export const CustomerList = z.object({ data: z.array(CustomerView), next_cursor: z.string().nullable() });

export const GetCustomerQuery = z.strictObject({ include_deleted: IncludeDeleted });

export const CustomerIdParams = z.object({
  id: z.string().openapi({ example: 'cus_01jd0000000000000000000000' }),
});
