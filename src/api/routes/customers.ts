/**
 * /api/v1/customers: a tenant's customers; deleting one (only without live pods) is soft and frees its
 * email for reuse. A customer saves a card through a SetupIntent made here.
 */
import { Customer } from '../../db/entities';
import { SOFT_DELETED, type EntityManager } from '../../db/orm';
import { notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { customerPage } from '../../db/repositories/catalog';
import { pageBody } from '../../db/repositories/pages';
import type { PaymentProvider } from '../../providers/payments';
import { createCustomer, deleteCustomer, updateCustomer } from '../../services/customers';
import { createCustomerSetupIntent } from '../../services/stripe-events';
import { route, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import { encodeCursor } from './common.schemas';
import {
  CreateCustomerBody,
  CustomerIdParams,
  CustomerList,
  CustomerView,
  GetCustomerQuery,
  ListCustomersQuery,
  SetupIntentView,
  UpdateCustomerBody,
} from './customers.schemas';

function customerView(customer: Customer): CustomerView {
  return {
    id: customer.id,
    email: customer.email,
    name: customer.name,
    collection_method: customer.collectionMethod,
    default_payment_method: customer.defaultPaymentMethod ?? null,
    credit_balance: customer.creditBalance,
    test_clock_id: customer.testClock?.id ?? null,
    created_at: customer.createdAt.toISOString(),
    updated_at: customer.updatedAt.toISOString(),
    deleted_at: customer.deletedAt?.toISOString() ?? null,
  };
}

/** One of the calling tenant's customers: other tenants' ids are invisible through the tenant filter. */
async function findCustomer(em: EntityManager, id: string, includeDeleted = false): Promise<Customer> {
  const customer = isId('customer', id)
    ? await em.findOne(Customer, { id }, { filters: { [SOFT_DELETED]: !includeDeleted } })
    : null;
  if (!customer) throw notFound('customer');
  return customer;
}

const read = { caller: 'tenant', permission: 'catalog:read' } as const;
const write = { caller: 'tenant', permission: 'catalog:write' } as const;

export function customerRoutes(deps: { payments: PaymentProvider }): Route[] {
  return [
    route({
      operationId: 'createCustomer',
      tag: 'Customers',
      method: 'post',
      path: '/api/v1/customers',
      summary: 'Create a customer; the email is unique among the tenant’s customers that are not deleted',
      access: write,
      body: CreateCustomerBody,
      responses: {
        201: { description: 'Customer created', content: { 'application/json': { schema: CustomerView } } },
      },
      problems: [409],
      async handle({ principal, em, body, res, log }) {
        const customer = await createCustomer(em, {
          tenantId: tenantOf(principal),
          email: body.email,
          name: body.name,
          testClockId: body.test_clock_id,
        });
        log.info({ customerId: customer.id, testClockId: body.test_clock_id }, 'customer created');
        res.status(201).location(`/api/v1/customers/${customer.id}`).json(customerView(customer));
      },
    }),
    route({
      operationId: 'listCustomers',
      tag: 'Customers',
      method: 'get',
      path: '/api/v1/customers',
      summary: 'List customers, oldest first',
      access: read,
      query: ListCustomersQuery,
      responses: {
        200: {
          description: 'A page of customers',
          content: { 'application/json': { schema: CustomerList } },
        },
      },
      async handle({ principal, em, query, res }) {
        const page = await customerPage(em, tenantOf(principal), {
          email: query.email,
          after: query.cursor,
          includeDeleted: query.include_deleted,
          limit: query.limit,
        });
        res.type('application/json').send(pageBody(page, encodeCursor));
      },
    }),
    route({
      operationId: 'getCustomer',
      tag: 'Customers',
      method: 'get',
      path: '/api/v1/customers/:id',
      summary: 'Get a customer (a deleted one only with include_deleted=true)',
      access: read,
      params: CustomerIdParams,
      query: GetCustomerQuery,
      responses: {
        200: { description: 'The customer', content: { 'application/json': { schema: CustomerView } } },
      },
      async handle({ em, params, query, res }) {
        res.json(customerView(await findCustomer(em, params.id, query.include_deleted)));
      },
    }),
    route({
      operationId: 'updateCustomer',
      tag: 'Customers',
      method: 'patch',
      path: '/api/v1/customers/:id',
      summary: 'Change a customer’s name, email, collection method or default payment method',
      access: write,
      params: CustomerIdParams,
      body: UpdateCustomerBody,
      responses: {
        200: {
          description: 'The updated customer',
          content: { 'application/json': { schema: CustomerView } },
        },
      },
      problems: [409],
      async handle({ principal, em, params, body, res }) {
        const customer = await updateCustomer(em, {
          tenantId: tenantOf(principal),
          customerId: params.id,
          email: body.email,
          name: body.name,
          collectionMethod: body.collection_method,
          defaultPaymentMethod: body.default_payment_method,
          testClockId: body.test_clock_id,
        });
        res.json(customerView(customer));
      },
    }),
    route({
      operationId: 'createCustomerSetupIntent',
      tag: 'Customers',
      method: 'post',
      path: '/api/v1/customers/:id/setup-intent',
      summary:
        'Start saving a card for a customer: a SetupIntent whose client_secret the customer’s browser confirms with Stripe.js',
      description:
        'Makes sure the customer exists at the payment provider (recorded on the customer), then creates a SetupIntent ' +
        'for off-session use. Once the customer confirms it, Stripe sends `setup_intent.succeeded` to the webhook and the ' +
        'card becomes the default payment method. Every call makes a new SetupIntent. The `client_secret` is meant for ' +
        'Stripe.js in the customer’s browser: pass it on, do not store or log it.',
      access: { caller: 'tenant', permission: 'billing:write' },
      params: CustomerIdParams,
      responses: {
        201: {
          description: 'SetupIntent created',
          content: { 'application/json': { schema: SetupIntentView } },
        },
      },
      async handle({ req, em, params, res, log }) {
        const intent = await createCustomerSetupIntent({ em, payments: deps.payments }, params.id, req.id);
        // never the client secret
        log.info({ customerId: params.id, setupIntentId: intent.id }, 'setup intent created');
        res.status(201).json({ id: intent.id, client_secret: intent.clientSecret, status: intent.status });
      },
    }),
    route({
      operationId: 'deleteCustomer',
      tag: 'Customers',
      method: 'delete',
      path: '/api/v1/customers/:id',
      summary:
        'Soft-delete a customer; its email can then be used again. Refused (409, naming them in `live_pods`) while any of its pods is not TERMINATED',
      access: write,
      params: CustomerIdParams,
      responses: { 204: { description: 'Deleted' } },
      problems: [409],
      async handle({ principal, em, params, res, log }) {
        const customer = await deleteCustomer(em, { tenantId: tenantOf(principal), customerId: params.id });
        log.info({ customerId: customer.id }, 'customer deleted');
        res.status(204).end();
      },
    }),
  ];
}
