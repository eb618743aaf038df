/** /api/v1/customers: a tenant's customers; deleting one (only without live pods) is soft and frees its email for reuse. */
import { Router } from 'express';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { Customer } from '../../db/entities';
import type { EntityManager } from '../../db/orm';
import { conflict, notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { deleteCustomer } from '../../services/customers';
import { emOf, requireTenant } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { bearerAuth, problems, registry } from '../openapi';
import { encodeCursor } from './common.schemas';
import {
  CreateCustomerBody,
  CustomerIdParams,
  CustomerList,
  CustomerView,
  GetCustomerQuery,
  ListCustomersQuery,
  UpdateCustomerBody,
} from './customers.schemas';

const security = [{ [bearerAuth.name]: [] }];

registry.registerPath({
  method: 'post',
  path: '/api/v1/customers',
  summary: 'Create a customer; the email is unique among the tenant’s customers that are not deleted',
  security,
  request: { body: { content: { 'application/json': { schema: CreateCustomerBody } } } },
  responses: {
    201: { description: 'Customer created', content: { 'application/json': { schema: CustomerView } } },
    ...problems(400, 401, 403, 409),
  },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/customers',
  summary: 'List customers, oldest first',
  security,
  request: { query: ListCustomersQuery },
  responses: {
    200: { description: 'A page of customers', content: { 'application/json': { schema: CustomerList } } },
    ...problems(400, 401, 403),
  },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/customers/{id}',
  summary: 'Get a customer (a deleted one only with include_deleted=true)',
  security,
  request: { params: CustomerIdParams, query: GetCustomerQuery },
  responses: {
    200: { description: 'The customer', content: { 'application/json': { schema: CustomerView } } },
    ...problems(400, 401, 403, 404),
  },
});
registry.registerPath({
  method: 'patch',
  path: '/api/v1/customers/{id}',
  summary: 'Change a customer’s name or email',
  security,
  request: {
    params: CustomerIdParams,
    body: { content: { 'application/json': { schema: UpdateCustomerBody } } },
  },
  responses: {
    200: { description: 'The updated customer', content: { 'application/json': { schema: CustomerView } } },
    ...problems(400, 401, 403, 404, 409),
  },
});
registry.registerPath({
  method: 'delete',
  path: '/api/v1/customers/{id}',
  summary:
    'Soft-delete a customer; its email can then be used again. Refused (409, naming them in `live_pods`) while any of its pods is not TERMINATED',
  security,
  request: { params: CustomerIdParams },
  responses: {
    204: { description: 'Deleted' },
    ...problems(401, 403, 404, 409),
  },
});

const EMAIL_UNIQUE = 'customers_tenant_email_live_unique';

/** The partial unique index decides, not a prior lookup, so two concurrent writes cannot both win. */
async function flushCustomer(em: EntityManager): Promise<void> {
  try {
    await em.flush();
  } catch (err) {
    if (
      err instanceof UniqueConstraintViolationException &&
      (err as { constraint?: unknown }).constraint === EMAIL_UNIQUE
    ) {
      throw conflict('another customer of this tenant already has this email', {
        errors: [{ field: 'email', message: 'is taken' }],
      });
    }
    throw err;
  }
}

function customerView(customer: Customer): CustomerView {
  return {
    id: customer.id,
    email: customer.email,
    name: customer.name,
    created_at: customer.createdAt.toISOString(),
    updated_at: customer.updatedAt.toISOString(),
    deleted_at: customer.deletedAt?.toISOString() ?? null,
  };
}

/** One of the calling tenant's customers: other tenants' ids are invisible through the tenant filter. */
async function findCustomer(em: EntityManager, id: string, includeDeleted = false): Promise<Customer> {
  const customer = isId('customer', id)
    ? await em.findOne(Customer, { id, ...(includeDeleted ? {} : { deletedAt: null }) })
    : null;
  if (!customer) throw notFound('customer');
  return customer;
}

export function customerRoutes(): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const principal = requireTenant(req, 'write');
    const body = parse(CreateCustomerBody, req.body);
    const em = emOf(req);
    const customer = em.create(Customer, { tenant: principal.tenantId, email: body.email, name: body.name });
    await flushCustomer(em);
    req.log.info({ customerId: customer.id }, 'customer created');
    res.status(201).location(`/api/v1/customers/${customer.id}`).json(customerView(customer));
  });

  router.get('/', async (req, res) => {
    requireTenant(req);
    const query = parse(ListCustomersQuery, req.query, 'query');
    const rows = await emOf(req).find(
      Customer,
      {
        ...(query.include_deleted ? {} : { deletedAt: null }),
        ...(query.email ? { email: query.email } : {}),
        ...(query.cursor ? { id: { $gt: query.cursor } } : {}),
      },
      { orderBy: { id: 'asc' }, limit: query.limit + 1 },
    );
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    res.json({
      data: page.map(customerView),
      next_cursor: rows.length > query.limit && last ? encodeCursor(last.id) : null,
    });
  });

  router.get('/:id', async (req, res) => {
    requireTenant(req);
    const { id } = parse(CustomerIdParams, req.params, 'params');
    const query = parse(GetCustomerQuery, req.query, 'query');
    res.json(customerView(await findCustomer(emOf(req), id, query.include_deleted)));
  });

  router.patch('/:id', async (req, res) => {
    requireTenant(req, 'write');
    const { id } = parse(CustomerIdParams, req.params, 'params');
    const body = parse(UpdateCustomerBody, req.body);
    const em = emOf(req);
    const customer = await findCustomer(em, id);
    if (body.email !== undefined) customer.email = body.email;
    if (body.name !== undefined) customer.name = body.name;
    await flushCustomer(em);
    res.json(customerView(customer));
  });

  router.delete('/:id', async (req, res) => {
    const principal = requireTenant(req, 'write');
    const { id } = parse(CustomerIdParams, req.params, 'params');
    if (!isId('customer', id)) throw notFound('customer');
    const customer = await deleteCustomer(emOf(req), { tenantId: principal.tenantId, customerId: id });
    req.log.info({ customerId: customer.id }, 'customer deleted');
    res.status(204).end();
  });

  return router;
}
