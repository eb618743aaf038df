/** Request and response schemas for /api/v1/tenants. */
import { TENANT_STATUSES, isCurrency, slugProblem } from '../../domain/tenants';
import { TENANT_MODES } from '../../db/entities';
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
    sandbox: z.boolean().optional().openapi({
      description:
        'true: a SANDBOX tenant, for trying billing out, which may use test clocks; false or absent: LIVE. Fixed at creation',
    }),
  })
  .openapi('CreateTenant');

export type CreateTenantBody = z.infer<typeof CreateTenantBody>;

export const TenantView = z
  .object({
    id: z.string(),
    slug: z.string(),
    name: z.string(),
    currency: z.string(),
    status: z.enum(TENANT_STATUSES),
    mode: z.enum(TENANT_MODES).openapi({ description: 'LIVE, or SANDBOX (may use test clocks)' }),
    owner_email: z.string(),
    onboarding_workflow_id: z.string().nullable(),
    created_at: z.string(),
    activated_at: z.string().nullable(),
  })
  .openapi('Tenant');

export const TenantCreated = z.object({ tenant: TenantView, workflow_id: z.string() });

export const ListTenantsQuery = PaginationQuery.extend({
  cursor: idCursor('tenant'),
  status: z.enum(TENANT_STATUSES).optional(),
});

export const TenantList = z.object({ data: z.array(TenantView), next_cursor: z.string().nullable() });

export const TenantIdParams = z.object({
  id: z.string().openapi({ example: 'ten_01jd0000000000000000000000' }),
});

/** Upper bounds of a tenant quota: far past any real tenant, well inside a 32-bit column and its sums. */
export const QUOTA_UPPER_BOUNDS = {
  max_pods: 100_000,
  max_vcpu: 1_000_000,
  max_memory_mb: 1_073_741_824,
  max_disk_gb: 100_000_000,
} as const;

const quotaLimit = (field: keyof typeof QUOTA_UPPER_BOUNDS, description: string) =>
  z.number().int().min(1).max(QUOTA_UPPER_BOUNDS[field]).optional().openapi({ description, example: 50 });

export const TenantQuotasBody = z
  .strictObject({
    max_pods: quotaLimit('max_pods', 'pods not TERMINATED'),
    max_vcpu: quotaLimit('max_vcpu', 'vCPUs summed over those pods'),
    max_memory_mb: quotaLimit('max_memory_mb', 'memory (MB) summed over those pods'),
    max_disk_gb: quotaLimit('max_disk_gb', 'disk (GB) summed over those pods'),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), 'send at least one limit to change')
  .openapi('TenantQuotasChange', {
    description: 'Limits to change; the others stay. A limit below current usage only blocks new pods.',
  });

export type TenantQuotasBody = z.infer<typeof TenantQuotasBody>;

export const TenantQuotasView = z
  .object({
    tenant_id: z.string(),
    limits: z.object({
      max_pods: z.number().int(),
      max_vcpu: z.number().int(),
      max_memory_mb: z.number().int(),
      max_disk_gb: z.number().int(),
    }),
    usage: z
      .object({
        pods: z.number().int(),
        vcpu: z.number().int(),
        memory_mb: z.number().int(),
        disk_gb: z.number().int(),
      })
      .openapi({ description: 'what pods not TERMINATED (and not deleted) use now' }),
  })
  .openapi('TenantQuotas');

export type TenantQuotasView = z.infer<typeof TenantQuotasView>;
