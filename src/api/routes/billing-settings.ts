/** /api/v1/billing/settings: the calling tenant's tax rate, net terms and dunning policy. */
import type { TenantBillingSettings } from '../../db/entities';
import { billingSettingsOf, updateBillingSettings } from '../../services/billing-settings';
import { route, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import type { z } from '../zod';
import { BillingSettingsView, UpdateBillingSettingsBody } from './billing-settings.schemas';

function settingsView(s: TenantBillingSettings): z.infer<typeof BillingSettingsView> {
  return {
    tax_rate_bps: s.taxRateBps,
    net_terms_days: s.netTermsDays,
    dunning_policy: {
      retry_offsets_days: s.dunningPolicy.retryOffsetsDays,
      suspend_after_last_retry: s.dunningPolicy.suspendAfterLastRetry,
      terminate_after_days_overdue: s.dunningPolicy.terminateAfterDaysOverdue,
      notify_on_every_failure: s.dunningPolicy.notifyOnEveryFailure,
    },
    updated_at: s.updatedAt.toISOString(),
  };
}

const ok = (description: string) => ({
  200: { description, content: { 'application/json': { schema: BillingSettingsView } } },
});

export function billingSettingsRoutes(): Route[] {
  return [
    route({
      operationId: 'getBillingSettings',
      tag: 'Billing',
      method: 'get',
      path: '/api/v1/billing/settings',
      summary: "The tenant's tax rate, net terms and dunning policy",
      access: { caller: 'tenant', permission: 'billing:read' },
      responses: ok('The billing settings'),
      async handle({ principal, em, res }) {
        res.json(settingsView(await billingSettingsOf(em, tenantOf(principal))));
      },
    }),
    route({
      operationId: 'updateBillingSettings',
      tag: 'Billing',
      method: 'patch',
      path: '/api/v1/billing/settings',
      summary:
        'Change the tax rate, net terms or dunning policy; invoices issued and dunning already started keep what they began with',
      access: { caller: 'tenant', permission: 'billing:write' },
      body: UpdateBillingSettingsBody,
      responses: ok('The billing settings as saved'),
      problems: [422],
      async handle({ principal, em, body, res, log }) {
        const policy = body.dunning_policy;
        const saved = await updateBillingSettings(em, tenantOf(principal), {
          taxRateBps: body.tax_rate_bps,
          netTermsDays: body.net_terms_days,
          dunningPolicy: policy && {
            ...(policy.retry_offsets_days !== undefined && { retryOffsetsDays: policy.retry_offsets_days }),
            ...(policy.suspend_after_last_retry !== undefined && {
              suspendAfterLastRetry: policy.suspend_after_last_retry,
            }),
            ...(policy.terminate_after_days_overdue !== undefined && {
              terminateAfterDaysOverdue: policy.terminate_after_days_overdue,
            }),
            ...(policy.notify_on_every_failure !== undefined && {
              notifyOnEveryFailure: policy.notify_on_every_failure,
            }),
          },
        });
        log.info(
          { taxRateBps: saved.taxRateBps, netTermsDays: saved.netTermsDays },
          'billing settings changed',
        );
        res.json(settingsView(saved));
      },
    }),
  ];
}
