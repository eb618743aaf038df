/** Request and response schemas for POST /api/v1/usage. */
import { z } from '../zod';

/** A batch holds at most this many records: one statement stores them all. */
export const MAX_USAGE_RECORDS = 1000;

/** Printable ASCII, space included: keys are compared byte for byte, so nothing invisible or look-alike. */
const PRINTABLE_ASCII = /^[\x20-\x7E]+$/;

const UsageRecordInput = z
  .strictObject({
    subscription_id: z.string().min(1).max(40).openapi({
      example: 'sub_01jd0000000000000000000000',
      description: "one of the tenant's subscriptions",
    }),
    metric: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a lowercase identifier of at most 64 characters')
      .openapi({ example: 'bandwidth_gb', description: 'what was used, as a short identifier' }),
    quantity: z
      .number()
      .int()
      .min(1)
      .max(Number.MAX_SAFE_INTEGER)
      .openapi({ example: 12, description: 'how much of `metric` was used: a positive integer' }),
    // How far ahead is the subscription's to say (its customer's test clock, or ours): services/usage.ts.
    occurred_at: z.iso.datetime({ offset: true }).openapi({
      example: '2026-11-23T20:00:00Z',
      description:
        'when the usage happened (ISO 8601): at most 5 minutes after now — for a customer on a test clock, after the clock’s time',
    }),
    idempotency_key: z
      .string()
      .min(1)
      .max(200)
      .regex(PRINTABLE_ASCII, 'must be printable ASCII characters')
      .openapi({
        example: 'pod-42:bandwidth:2026-11-23T20',
        description:
          'unique per tenant: a record sent again with the same key is a duplicate and is not stored twice',
      }),
  })
  .openapi('UsageRecordInput');

export const RecordUsageBody = z
  .strictObject({
    records: z.array(UsageRecordInput).min(1).max(MAX_USAGE_RECORDS),
  })
  .openapi('RecordUsage', {
    description: `1–${MAX_USAGE_RECORDS} usage records, each stored once unless its billing period has closed`,
  });

export type RecordUsageBody = z.infer<typeof RecordUsageBody>;

export const UsageResults = z
  .object({
    results: z.array(
      z.object({
        idempotency_key: z.string(),
        status: z.enum(['accepted', 'duplicate', 'period_closed']).openapi({
          description:
            'accepted: stored now; duplicate: a record with this key was stored before (or earlier in this batch); ' +
            'period_closed: it occurred in a billing period whose invoice is already finalized, so it is not stored',
        }),
      }),
    ),
  })
  .openapi('UsageResults', { description: 'one result per record, in the order of the request' });
