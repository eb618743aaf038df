/**
 * /api/v1/usage: a tenant reports metered usage of its subscriptions in batches, each record with
 * its own idempotency key, so a client retries a whole batch safely after any failure.
 */
import { recordUsage } from '../../services/usage';
import { route, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import { MAX_USAGE_RECORDS, RecordUsageBody, UsageResults } from './usage.schemas';

export function usageRoutes(): Route[] {
  return [
    route({
      operationId: 'recordUsage',
      tag: 'Billing',
      method: 'post',
      path: '/api/v1/usage',
      summary: `Report usage of the tenant's subscriptions: 1–${MAX_USAGE_RECORDS} records, each stored once per idempotency key`,
      description:
        'Every record names one of the tenant’s subscriptions; if any does not, the answer is 422 naming the ' +
        'records (`record_indexes`) and nothing is stored. Otherwise the batch is stored by one statement and each ' +
        'record is answered, in request order, `accepted` (stored now), `duplicate` (its key was stored before, ' +
        'or by an earlier record of the same batch), so a batch sent again stores nothing twice, or ' +
        '`period_closed`: it occurred in a billing period whose renewal invoice is already finalized, and is not ' +
        'stored (that invoice billed the period’s usage, so a late record is refused rather than billed twice or ' +
        'lost without a word). Usage of metric `bandwidth_gb` (GB) beyond the plan’s `included_bandwidth_gb` is ' +
        'billed at the plan’s `bandwidth_overage_unit_amount` per GB on the renewal invoice of the next period; ' +
        'other metrics are stored and rolled up daily but not billed.',
      access: { caller: 'tenant', permission: 'billing:write' },
      body: RecordUsageBody,
      // a full batch with long keys is several times the default body limit
      bodyLimit: '1mb',
      responses: {
        200: {
          description: 'One result per record',
          content: { 'application/json': { schema: UsageResults } },
        },
      },
      problems: [422],
      async handle({ principal, em, body, res, log }) {
        const results = await recordUsage(
          em,
          tenantOf(principal),
          body.records.map((r) => ({
            subscriptionId: r.subscription_id,
            metric: r.metric,
            quantity: r.quantity,
            occurredAt: new Date(r.occurred_at),
            idempotencyKey: r.idempotency_key,
          })),
        );
        const accepted = results.filter((r) => r.status === 'accepted').length;
        const periodClosed = results.filter((r) => r.status === 'period_closed').length;
        log.info({ records: results.length, accepted, periodClosed }, 'usage recorded');
        res.json({
          results: results.map((r) => ({ idempotency_key: r.idempotencyKey, status: r.status })),
        });
      },
    }),
  ];
}
