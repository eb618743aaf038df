/** Request and response schemas for /api/v1/cloudpods. */
import { JOB_STATUSES, JOB_TYPES, POD_STATUSES, BACKUP_KINDS, BACKUP_STATUSES } from '../../domain/cloudpods';
import { z } from '../zod';
import { PaginationQuery, idCursor } from './common.schemas';

export const CreatePodBody = z
  .strictObject({
    customer_id: z.string().min(1).max(40),
    product_id: z.string().min(1).max(40),
    slug: z
      .string()
      .regex(
        /^[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]$/,
        'slug must be 3–40 lowercase letters, digits or inner hyphens',
      )
      .refine((s) => !s.includes('--'), 'slug must not contain consecutive hyphens')
      .openapi({ example: 'web-1' }),
    restore_from_backup_id: z.string().min(1).max(40).optional().openapi({
      description:
        'create the pod from this backup of the tenant (a terminated pod’s included) instead of the template',
    }),
  })
  .openapi('CreateCloudPod');

const Limits = z.object({ vcpu: z.number().int(), memory_mb: z.number().int(), disk_gb: z.number().int() });

export const JobView = z
  .object({
    id: z.string(),
    pod_id: z.string(),
    type: z.enum(JOB_TYPES),
    status: z.enum(JOB_STATUSES),
    attempts: z.number().int(),
    max_attempts: z.number().int(),
    failure_reason: z.string().nullable(),
    current_step: z
      .string()
      .nullable()
      .openapi({ description: 'the step running now, or the one that failed' }),
    step_attempt: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'attempt of the current step; > 1 while it retries' }),
    last_error_at: z
      .string()
      .nullable()
      .openapi({ description: 'when the current step last failed (the operator view has the error)' }),
    input: z.record(z.string(), z.unknown()).nullable(),
    workflow_id: z.string(),
    created_at: z.string(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
  })
  .openapi('ProvisioningJob');

export const PodView = z
  .object({
    id: z.string(),
    slug: z.string(),
    hostname: z.string(),
    status: z.enum(POD_STATUSES),
    customer_id: z.string(),
    product_id: z.string(),
    limits: Limits,
    node_id: z.string().nullable(),
    vm_id: z.string().nullable(),
    ip_address: z.string().nullable(),
    failure_reason: z.string().nullable(),
    workflow_id: z.string(),
    created_at: z.string(),
    activated_at: z.string().nullable(),
    terminated_at: z.string().nullable(),
    current_job: JobView.nullable().optional(),
  })
  .openapi('CloudPod');

export const BackupView = z
  .object({
    id: z.string(),
    pod_id: z.string(),
    kind: z.enum(BACKUP_KINDS),
    status: z.enum(BACKUP_STATUSES),
    size_gb: z.number().int().nullable(),
    created_at: z.string(),
    expires_at: z
      .string()
      .nullable()
      .openapi({ description: 'restorable until then, even after the pod is terminated' }),
  })
  .openapi('Backup');

export const PodAccepted = z.object({ pod: PodView, job: JobView });

/** A created pod; one of a priced product comes with the subscription that pays for it. */
export const PodCreated = PodAccepted.extend({
  subscription: z
    .object({
      id: z.string(),
      status: z.literal('PENDING'),
      activation_workflow_id: z.string(),
    })
    .nullable()
    .openapi({
      description:
        'The PENDING subscription a priced product (unit_amount above 0) is created with: its activation provisions the pod and bills it once ACTIVE (null for a free product)',
    }),
});

export const ListPodsQuery = PaginationQuery.extend({
  cursor: idCursor('pod'),
  status: z.enum(POD_STATUSES).optional(),
  customer_id: z.string().max(40).optional(),
});

export const PodIdParams = z.object({ id: z.string() });
export const BackupParams = z.object({ id: z.string(), backupId: z.string() });
export const PlanBody = z.strictObject({ product_id: z.string().min(1).max(40) });
export const PlanPreviewQuery = z.strictObject({ product_id: z.string().min(1).max(40) });
export const PlanPreview = z.object({
  current: Limits,
  target: Limits,
  allowed: z.boolean(),
  problem: z.string().nullable(),
  restarts: z.boolean().openapi({
    description:
      'the change restarts the pod: a running VM is shut down, given its new cores and memory and started again (Proxmox cannot hot-plug cores)',
  }),
});
