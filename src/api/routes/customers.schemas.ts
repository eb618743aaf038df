/** Request and response schemas for /api/v1/customers. */
import { COLLECTION_METHODS } from '../../domain/billing/states';
import { SETUP_INTENT_STATUSES } from '../../providers/payments';
import { z } from '../zod';
import { DisplayName, IncludeDeleted, PaginationQuery, idCursor } from './common.schemas';

const Email = z.string().trim().toLowerCase().pipe(z.email().max(320));

/** One of the tenant's test clocks (sandbox tenants only). */
const TestClockId = z.string().min(1).max(40).openapi({ example: 'clk_01jd0000000000000000000000' });

export const CreateCustomerBody = z
  .strictObject({
    email: Email.openapi({ example: 'jane@example.test', description: 'stored in lower case' }),
    name: DisplayName.openapi({ example: 'Jane Doe' }),
    test_clock_id: TestClockId.optional().openapi({
      description:
        "sandbox tenants: bill this customer as of one of the tenant's test clocks (READY, with fewer than 3 customers) instead of the wall clock",
    }),
  })
  .openapi('CreateCustomer');

export type CreateCustomerBody = z.infer<typeof CreateCustomerBody>;

/** A saved payment method of the payment provider (`pm_…`; the simulator honours Stripe's test ids). */
export const PaymentMethodId = z
  .string()
  .regex(/^pm_[A-Za-z0-9_]{1,250}$/, 'must be a payment method id (pm_…)')
  .openapi({ example: 'pm_card_visa' });

export const UpdateCustomerBody = z
  .strictObject({
    email: Email.optional(),
    name: DisplayName.optional(),
    collection_method: z.enum(COLLECTION_METHODS).optional().openapi({
      description:
        'AUTOMATIC: invoices are charged to the default payment method; MANUAL: the customer pays them',
    }),
    default_payment_method: PaymentMethodId.nullable().optional().openapi({
      description: 'charged off-session for AUTOMATIC collection; null removes it',
    }),
    test_clock_id: TestClockId.nullable().optional().openapi({
      description:
        'sandbox tenants: attach the customer to a test clock, or detach it (null); only while it has no subscription',
    }),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), 'send at least one field to change')
  .openapi('UpdateCustomer');

export type UpdateCustomerBody = z.infer<typeof UpdateCustomerBody>;

export const CustomerView = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    collection_method: z.enum(COLLECTION_METHODS),
    default_payment_method: z.string().nullable(),
    credit_balance: z
      .number()
      .int()
      .openapi({ description: 'credit owed to the customer, minor units of the tenant’s currency' }),
    test_clock_id: z
      .string()
      .nullable()
      .openapi({ description: 'the test clock the customer is billed at (null: the wall clock)' }),
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

export const SetupIntentView = z
  .object({
    id: z.string().openapi({ example: 'seti_1Mm2cBLkdIwHu7ixaiKW3ElR' }),
    client_secret: z.string().openapi({
      description:
        "for the customer's browser only: Stripe.js confirms the SetupIntent with it (`stripe.confirmSetup`); do not store or log it",
    }),
    status: z.enum(SETUP_INTENT_STATUSES),
  })
  .openapi('SetupIntent', {
    description:
      'Saves a card for later off-session charges. Once the customer confirms it, Stripe sends `setup_intent.succeeded` and the card becomes the default payment method.',
  });
