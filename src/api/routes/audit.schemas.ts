/** Request and response schemas for /api/v1/audit: the audit trail, a page at a time or exported whole. */
import { PLATFORM_CHAIN } from '../../domain/audit';
import { isId } from '../../domain/ids';
import { z } from '../zod';
import { decodeCursor } from './common.schemas';

export const AuditEventView = z
  .object({
    chain: z
      .string()
      .openapi({ description: 'the tenant id, or `platform` for rows that belong to no tenant' }),
    seq: z.number().int().openapi({ description: 'position in the chain, from 1, without gaps' }),
    occurred_at: z.string(),
    actor_type: z
      .string()
      .openapi({ description: '`user`, `api_token`, `system`, `cli` (an operator’s command) or `workflow`' }),
    actor_id: z
      .string()
      .nullable()
      .openapi({ description: 'the user or token id, the OS user of a CLI command, the workflow type' }),
    request_id: z
      .string()
      .nullable()
      .openapi({ description: 'the X-Request-Id of the API call that made the change' }),
    workflow_id: z
      .string()
      .nullable()
      .openapi({ description: 'the workflow whose activity made the change' }),
    operation: z
      .string()
      .nullable()
      .openapi({ description: 'the route’s operationId, the CLI command, or the activity' }),
    action: z.enum(['INSERT', 'UPDATE', 'DELETE']),
    entity_type: z.string().openapi({ description: 'the table changed', example: 'cloud_pods' }),
    entity_id: z.string().nullable(),
    before: z.record(z.string(), z.unknown()).nullable().openapi({
      description: 'UPDATE: the changed fields before; DELETE: the row. Secrets show as "[redacted]".',
    }),
    after: z.record(z.string(), z.unknown()).nullable().openapi({
      description: 'UPDATE: the changed fields after; INSERT: the row. Secrets show as "[redacted]".',
    }),
    prev_hash: z.string(),
    hash: z.string().openapi({
      description: 'SHA-256 over the event’s canonical text and prev_hash (`podplane audit:verify`)',
    }),
  })
  .openapi('AuditEvent');

export const AuditEventList = z.object({
  data: z.array(AuditEventView),
  next_cursor: z.string().nullable(),
});

const CONTROL_CHARACTER = /\p{Cc}/u;
const text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((v) => !CONTROL_CHARACTER.test(v), 'must not contain control characters');

const AuditFilters = {
  tenant_id: z
    .string()
    .max(40)
    .refine((id) => id === PLATFORM_CHAIN || isId('tenant', id), 'is not a tenant id (or `platform`)')
    .optional()
    .openapi({
      description:
        'platform administrators: the tenant whose chain to read, or `platform` (the default for them); a tenant reads its own',
    }),
  entity_type: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,62}$/, 'is not a table name')
    .optional()
    .openapi({ example: 'cloud_pods' }),
  entity_id: text(100).optional(),
  actor_id: text(200).optional(),
  since: z.iso.datetime({ offset: true }).optional().openapi({ description: 'events at or after this time' }),
  until: z.iso.datetime({ offset: true }).optional().openapi({ description: 'events before this time' }),
};

export const ListAuditEventsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z
    .string()
    .max(40)
    .transform((cursor) => Number(decodeCursor(cursor)))
    .refine((seq) => Number.isSafeInteger(seq) && seq > 0, 'is not a cursor returned by this list')
    .optional()
    .openapi({ description: 'next_cursor of the previous page' }),
  ...AuditFilters,
});

export const ExportAuditEventsQuery = z.strictObject(AuditFilters);
