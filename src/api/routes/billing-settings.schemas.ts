import { MAX_DUNNING_DAYS, MAX_DUNNING_RETRIES } from '../../domain/billing/dunning';
import { z } from '../zod';

const DunningPolicyView = z
  .object({
    retry_offsets_days: z
      .array(z.number())
      .openapi({ description: 'days after the due date on which a failed charge is retried, increasing' }),
    suspend_after_last_retry: z.boolean(),
    terminate_after_days_overdue: z.number().nullable().openapi({
      description: 'cancel the subscription and terminate its pod this many days overdue; null never',
    }),
    notify_on_every_failure: z.boolean(),
  })
  .openapi('DunningPolicy', {
    description:
      'Copied onto an invoice when its dunning starts: editing the policy later never changes an invoice already in dunning.',
  });

export const BillingSettingsView = z
  .object({
    tax_rate_bps: z
      .number()
      .int()
      .openapi({ description: 'tax on every invoice line, in basis points (1 % = 100)' }),
    net_terms_days: z
      .number()
      .int()
      .openapi({ description: 'days a customer who pays by hand (MANUAL collection) has to pay an invoice' }),
    dunning_policy: DunningPolicyView,
    updated_at: z.string(),
  })
  .openapi('BillingSettings');

export const UpdateBillingSettingsBody = z
  .strictObject({
    tax_rate_bps: z.number().int().min(0).max(10_000).optional(),
    net_terms_days: z.number().int().min(0).max(365).optional(),
    dunning_policy: z
      .strictObject({
        retry_offsets_days: z
          .array(z.number().positive().max(MAX_DUNNING_DAYS))
          .max(MAX_DUNNING_RETRIES)
          .optional(),
        suspend_after_last_retry: z.boolean().optional(),
        terminate_after_days_overdue: z.number().min(0).max(MAX_DUNNING_DAYS).nullable().optional(),
        notify_on_every_failure: z.boolean().optional(),
      })
      .optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'send at least one setting to change' })
  .openapi('UpdateBillingSettings');
