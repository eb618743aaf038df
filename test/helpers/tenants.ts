/** Tenants for e2e tests, made the way operators make them: created, onboarded by the workflow, given a token. */
import request from 'supertest';
import type { TokenScope } from '../../src/domain/api-tokens';
import type { TestStack } from './app';
import { waitFor } from './wait';

export interface ActiveTenant {
  id: string;
  /** a read+write tenant API token */
  token: string;
}

/** Issues a tenant token as the platform admin and returns its secret. */
export async function issueTenantToken(
  stack: TestStack,
  tenantId: string,
  scopes: TokenScope[] = ['read', 'write'],
): Promise<string> {
  const res = await request(stack.app)
    .post(`/api/v1/tenants/${tenantId}/tokens`)
    .set('Authorization', `Bearer ${stack.adminToken}`)
    .send({ name: `test ${scopes.join('+')}`, scopes });
  expect(res.status).toBe(201);
  return res.body.secret as string;
}

export async function createActiveTenant(
  stack: TestStack,
  slug: string,
  opts: { currency?: string } = {},
): Promise<ActiveTenant> {
  const admin = `Bearer ${stack.adminToken}`;
  const res = await request(stack.app)
    .post('/api/v1/tenants')
    .set('Authorization', admin)
    .send({
      slug,
      name: `Tenant ${slug}`,
      currency: opts.currency ?? 'EUR',
      owner_email: `owner@${slug}.test`,
    });
  expect(res.status).toBe(202);
  const id = res.body.tenant.id as string;
  await waitFor(
    async () => {
      const r = await request(stack.app).get(`/api/v1/tenants/${id}`).set('Authorization', admin);
      return r.body.status === 'ACTIVE';
    },
    { what: `tenant ${slug} ACTIVE` },
  );
  return { id, token: await issueTenantToken(stack, id) };
}
