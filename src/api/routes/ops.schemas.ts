/** Response schemas for /api/v1/ops. */
import { OPS_EVENT_SEVERITIES } from '../../db/entities';
import { JOB_STATUSES, JOB_TYPES } from '../../domain/cloudpods';
import { z } from '../zod';

const Timestamp = z.string().openapi({ example: '2026-11-23T15:40:02.000Z' });

export const OpsOverviewView = z
  .object({
    jobs_by_status: z
      .record(z.string(), z.number().int())
      .openapi({ description: `job count per status (${JOB_STATUSES.join(', ')})` }),
    jobs_by_type: z
      .record(z.string(), z.record(z.string(), z.number().int()))
      .openapi({ description: `per type (${JOB_TYPES.join(', ')}), job count per status` }),
    dead_letters_24h: z
      .object({
        count: z.number().int().openapi({ description: 'all jobs dead-lettered in the last 24 h' }),
        jobs: z.array(
          z.object({
            id: z.string(),
            pod_id: z.string(),
            tenant_id: z.string(),
            type: z.string(),
            failure_reason: z.string().nullable(),
            undo_failure: z
              .string()
              .nullable()
              .openapi({ description: 'an undo that could not be done: something to clean up by hand' }),
            at: Timestamp.openapi({ description: 'when the job dead-lettered' }),
          }),
        ),
      })
      .openapi({
        description: 'jobs dead-lettered in the last 24 h (by dead-letter time), newest first, at most 50',
      }),
    retrying: z
      .array(
        z.object({
          id: z.string(),
          pod_id: z.string(),
          tenant_id: z.string(),
          type: z.string(),
          current_step: z.string().nullable(),
          step_attempt: z.number().int().nullable(),
          last_error: z.string().nullable(),
          last_error_at: Timestamp.nullable(),
          started_at: Timestamp.nullable(),
        }),
      )
      .openapi({
        description:
          'RUNNING jobs whose current step is failing and being retried (attempt > 1 or a last error), latest error first, at most 50',
      }),
    running_over_15_min: z
      .array(z.object({ id: z.string(), pod_id: z.string(), type: z.string(), started_at: Timestamp }))
      .openapi({ description: 'RUNNING jobs started more than 15 minutes ago, oldest first, at most 50' }),
    oldest_queued: z
      .object({ id: z.string(), type: z.string(), created_at: Timestamp, age_seconds: z.number().int() })
      .nullable()
      .openapi({ description: 'the QUEUED job waiting longest' }),
    ops_events: z
      .array(
        z.object({
          id: z.string(),
          severity: z.enum(OPS_EVENT_SEVERITIES),
          kind: z.string().openapi({ example: 'undo_failed' }),
          tenant_id: z.string().nullable(),
          pod_id: z.string().nullable(),
          job_id: z.string().nullable(),
          message: z.string(),
          created_at: Timestamp,
        }),
      )
      .openapi({
        description:
          'unresolved ops events of the last 7 days, CRITICAL then HIGH then the rest, newest first, at most 50',
      }),
  })
  .openapi('OpsOverview');
