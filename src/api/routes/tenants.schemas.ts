/** Request and response schemas for /api/v1/tenants. */
import { TENANT_STATUSES, isCurrency, slugProblem } from '../../domain/tenants';
import { registry } from '../openapi';
import { z } from '../zod';
import { DisplayName, PaginationQuery, idCursor } from './common.schemas';

export const CreateTenantBody = z
  .strictObject({
    slug: z
      .string()
      .superRefine((slug, ctx) => {
        const problem = slugProblem(slug);
        if (problem) ctx.addIssue({ code: 'custom', message: `slug ${problem}` });
      })
      .openapi({ example: 'acme-hosting' }),
    name: DisplayName.openapi({ example: 'Acme Hosting' }),
    currency: z
      .string()
      .refine(isCurrency, 'currency must be an ISO 4217 code in upper case, e.g. EUR')
      .openapi({ example: 'EUR' }),
    owner_email: z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.email().max(320))
      .openapi({ example: 'owner@acme.test' }),
  })
  .openapi('CreateTenant');

export type CreateTenantBody = z.infer<typeof CreateTenantBody>;

export const TenantView = registry.register(
  'Tenant',
  z.object({
    id: z.string(),
    slug: z.string(),
    name: z.string(),
    currency: z.string(),
    status: z.enum(TENANT_STATUSES),
    owner_email: z.string(),
    onboarding_workflow_id: z.string().nullable(),
    created_at: z.string(),
    activated_at: z.string().nullable(),
  }),
);

export const TenantCreated = z.object({ tenant: TenantView, workflow_id: z.string() });

export const ListTenantsQuery = PaginationQuery.extend({
  cursor: idCursor('tenant'),
  status: z.enum(TENANT_STATUSES).optional(),
});

export const TenantList = z.object({ data: z.array(TenantView), next_cursor: z.string().nullable() });

export const TenantIdParams = z.object({
  id: z.string().openapi({ example: 'ten_01jd0000000000000000000000' }),
});
