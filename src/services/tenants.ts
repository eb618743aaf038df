/** Tenant creation: the row (PENDING) and its onboarding workflow, or neither. */
import type { Client } from '@temporalio/client';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { Tenant } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { AppError, conflict } from '../domain/errors';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds, type OnboardTenantInput } from '../workflows/shared';
import type { onboardTenant } from '../workflows/tenants';

export interface CreateTenantInput {
  slug: string;
  name: string;
  currency: string;
  ownerEmail: string;
}

export async function createTenant(
  deps: { em: EntityManager; temporal: Client },
  input: CreateTenantInput,
): Promise<{ tenant: Tenant; workflowId: string }> {
  const { em, temporal } = deps;
  const tenant = em.create(Tenant, {
    slug: input.slug,
    name: input.name,
    currency: input.currency,
    ownerEmail: input.ownerEmail,
  });
  const workflowId = workflowIds.onboardTenant(tenant.id);
  tenant.onboardingWorkflowId = workflowId;
  try {
    await em.persistAndFlush(tenant);
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) {
      throw conflict(`the slug '${input.slug}' is already taken`, {
        errors: [{ field: 'slug', message: 'is taken' }],
      });
    }
    throw err;
  }
  const args: [OnboardTenantInput] = [{ tenantId: tenant.id }];
  try {
    await temporal.workflow.start<typeof onboardTenant>('onboardTenant', {
      workflowId,
      taskQueue: TASK_QUEUES.provisioning,
      args,
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.TenantId, value: tenant.id },
        { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: 'PENDING' },
      ],
      staticSummary: `Onboard tenant ${tenant.slug} (${tenant.id})`,
      staticDetails: `Creates default billing settings and quotas, records the welcome notification, marks ${tenant.slug} ACTIVE.`,
    });
  } catch (err) {
    // Nothing half-written: without its workflow the tenant would stay PENDING forever.
    await em.nativeDelete(Tenant, { id: tenant.id });
    throw new AppError(
      'unavailable',
      'the workflow engine could not be reached; the tenant was not created',
      {},
      { cause: err },
    );
  }
  return { tenant, workflowId };
}

export function tenantView(tenant: Tenant) {
  return {
    id: tenant.id,
    slug: tenant.slug,
    name: tenant.name,
    currency: tenant.currency,
    status: tenant.status,
    owner_email: tenant.ownerEmail,
    onboarding_workflow_id: tenant.onboardingWorkflowId ?? null,
    created_at: tenant.createdAt.toISOString(),
    activated_at: tenant.activatedAt?.toISOString() ?? null,
  };
}
