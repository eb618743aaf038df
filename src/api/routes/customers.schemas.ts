/** Request and response schemas for /api/v1/customers. */
import { z } from '../zod';
import { DisplayName, IncludeDeleted, PaginationQuery, idCursor } from './common.schemas';

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

export const CustomerView = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    deleted_at: z.string().nullable(),
  })
  .openapi('Customer');

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
