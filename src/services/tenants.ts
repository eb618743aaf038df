/**
 * Tenant operations shared by the routes, the CLI and the onboarding activities: creation (the row,
 * PENDING, and its onboarding workflow, or neither), onboarding's writes and quota changes.
 */
import type { Client } from '@temporalio/client';
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import { Tenant, TenantBillingSettings, TenantQuota } from '../db/entities';
import { systemEm, type EntityManager, type MikroORM } from '../db/orm';
import { AppError, conflict, notFound } from '../domain/errors';
import {
  DEFAULT_BILLING_SETTINGS,
  DEFAULT_QUOTAS,
  welcomeNotification,
  type QuotaLimits,
  type TenantStatus,
} from '../domain/tenants';
import { newId } from '../domain/ids';
import { invitationMailText } from '../domain/one-time-tokens';
import { SEARCH_ATTRIBUTES, TASK_QUEUES, workflowIds } from '../workflows/shared';
import { type OnboardTenantInput } from '../workflows/messages/tenants';
import type { onboardTenant } from '../workflows/tenants';
import { newInvitationToken, saveInvitation } from './invitations';
import { recordNotification } from './notifications';
import { recordSecurityEvent } from './security-events';

export interface CreateTenantInput {
  slug: string;
  name: string;
  currency: string;
  ownerEmail: string;
  /** a SANDBOX tenant (may use test clocks) rather than a LIVE one; fixed at creation */
  sandbox?: boolean;
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
    mode: input.sandbox ? 'SANDBOX' : 'LIVE',
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

/** The pod quotas an admin can change; a missing one stays as it is. */
export type QuotaChange = Partial<Pick<QuotaLimits, 'maxPods' | 'maxVcpu' | 'maxMemoryMb' | 'maxDiskGb'>>;

export interface TenantQuotaReport {
  tenant_id: string;
  limits: { max_pods: number; max_vcpu: number; max_memory_mb: number; max_disk_gb: number };
  usage: { pods: number; vcpu: number; memory_mb: number; disk_gb: number };
}

interface QuotaRow {
  max_pods: number;
  max_vcpu: number;
  max_memory_mb: number;
  max_disk_gb: number;
}

/** What counts against a quota: every pod not TERMINATED and not deleted (as the pod create checks). */
export async function tenantUsage(em: EntityManager, tenantId: string): Promise<TenantQuotaReport['usage']> {
  // Kept by the cloud_pods_usage trigger in the statement that changes a pod.
  const [usage] = await em.execute<TenantQuotaReport['usage'][]>(
    'select pods, vcpu, memory_mb, disk_gb from tenant_usage where tenant_id = ?',
    [tenantId],
  );
  return usage ?? { pods: 0, vcpu: 0, memory_mb: 0, disk_gb: 0 };
}

async function requireTenantRow(em: EntityManager, tenantId: string): Promise<void> {
  const [tenant] = await em.execute<{ id: string }[]>('select id from tenants where id = ?', [tenantId]);
  if (!tenant) throw notFound('tenant');
}

/** A tenant without a quota row yet (onboarding still running) is held to the defaults, as pod creation does. */
const defaultRow = (): QuotaRow => ({
  max_pods: DEFAULT_QUOTAS.maxPods,
  max_vcpu: DEFAULT_QUOTAS.maxVcpu,
  max_memory_mb: DEFAULT_QUOTAS.maxMemoryMb,
  max_disk_gb: DEFAULT_QUOTAS.maxDiskGb,
});

/** A tenant's pod quotas and current usage. */
export async function tenantQuotas(em: EntityManager, tenantId: string): Promise<TenantQuotaReport> {
  await requireTenantRow(em, tenantId);
  const [row] = await em.execute<QuotaRow[]>(
    'select max_pods, max_vcpu, max_memory_mb, max_disk_gb from tenant_quotas where tenant_id = ?',
    [tenantId],
  );
  return {
    tenant_id: tenantId,
    limits: { ...(row ?? defaultRow()) },
    usage: await tenantUsage(em, tenantId),
  };
}

/**
 * Changes a tenant's pod quotas (platform admin: route and CLI), in one transaction. The upsert
 * takes the quota row's lock, the one pod creation holds while it checks, so a create in flight
 * is checked against the old limits or the new ones, never a mix. A limit below current usage is
 * allowed: it only blocks new pods.
 */
export async function setTenantQuotas(
  em: EntityManager,
  tenantId: string,
  change: QuotaChange,
): Promise<{ report: TenantQuotaReport; previous: TenantQuotaReport['limits'] }> {
  return em.transactional(async (tx) => {
    // tx.execute runs on the transaction's connection, so the lock below holds until commit.
    await requireTenantRow(tx, tenantId);
    const [before] = await tx.execute<QuotaRow[]>(
      'select max_pods, max_vcpu, max_memory_mb, max_disk_gb from tenant_quotas where tenant_id = ? for update',
      [tenantId],
    );
    const previous = before ?? defaultRow();
    // The onboarding activity inserts the row with `on conflict do nothing`, so a row written here first stays.
    const [after] = await tx.execute<QuotaRow[]>(
      `insert into tenant_quotas (id, tenant_id, max_pods, max_vcpu, max_memory_mb, max_disk_gb, api_requests_per_day, created_at)
       values (?, ?, ?, ?, ?, ?, ?, now())
       on conflict (tenant_id) do update set
         max_pods = excluded.max_pods, max_vcpu = excluded.max_vcpu,
         max_memory_mb = excluded.max_memory_mb, max_disk_gb = excluded.max_disk_gb
       returning max_pods, max_vcpu, max_memory_mb, max_disk_gb`,
      [
        newId('quota'),
        tenantId,
        change.maxPods ?? previous.max_pods,
        change.maxVcpu ?? previous.max_vcpu,
        change.maxMemoryMb ?? previous.max_memory_mb,
        change.maxDiskGb ?? previous.max_disk_gb,
        DEFAULT_QUOTAS.apiRequestsPerDay,
      ],
    );
    return {
      report: {
        tenant_id: tenantId,
        limits: { ...(after ?? previous) },
        usage: await tenantUsage(tx, tenantId),
      },
      previous: { ...previous },
    };
  });
}

/**
 * Onboarding's writes, each repeatable: a retried activity finds its row and changes nothing.
 * Billing settings with the default dunning policy; an existing row is kept as it is.
 */
export async function createDefaultBillingSettings(orm: MikroORM, tenantId: string): Promise<void> {
  await systemEm(orm)
    .createQueryBuilder(TenantBillingSettings)
    .insert({
      id: newId('settings'),
      tenant: tenantId,
      taxRateBps: DEFAULT_BILLING_SETTINGS.taxRateBps,
      netTermsDays: DEFAULT_BILLING_SETTINGS.netTermsDays,
      dunningPolicy: DEFAULT_BILLING_SETTINGS.dunningPolicy,
      createdAt: new Date(),
      updatedAt: new Date(),
    })
    .onConflict('tenant_id')
    .ignore()
    .execute();
}

/** The default quotas; existing quotas (an admin may have changed them) are kept. */
export async function createDefaultQuotas(orm: MikroORM, tenantId: string): Promise<void> {
  await systemEm(orm)
    .createQueryBuilder(TenantQuota)
    .insert({
      id: newId('quota'),
      tenant: tenantId,
      ...DEFAULT_QUOTAS,
      createdAt: new Date(),
      updatedAt: new Date(),
    })
    .onConflict('tenant_id')
    .ignore()
    .execute();
}

/**
 * The welcome mail in the outbox, once per tenant, carrying the owner's invitation (OWNER, 72
 * hours). The mail and the invitation are written in one transaction, the invitation only when
 * the mail was: a retry that finds the mail written writes nothing, so exactly one invitation
 * token exists and it is in the mail.
 */
export async function recordWelcomeNotification(orm: MikroORM, tenant: Tenant): Promise<void> {
  await systemEm(orm).transactional(async (tx) => {
    const { token, expiresAt } = newInvitationToken();
    const { subject, body } = welcomeNotification(tenant);
    const invite = invitationMailText({ tenantName: tenant.name, role: 'OWNER', token, expiresAt });
    const written = await recordNotification(tx, {
      tenantId: tenant.id,
      customerId: null,
      template: 'tenant.welcome',
      recipient: tenant.ownerEmail,
      subject,
      body: `${body}\n\n${invite}`,
      dedupeKey: `tenant.welcome:${tenant.id}`,
    });
    if (!written) return;
    const invitation = await saveInvitation(tx, {
      tenantId: tenant.id,
      email: tenant.ownerEmail,
      role: 'OWNER',
      invitedById: null,
      token,
      expiresAt,
    });
    await recordSecurityEvent(tx, {
      kind: 'INVITATION_CREATED',
      severity: 'MEDIUM',
      tenantId: tenant.id,
      details: { invitation_id: invitation.id, role: 'OWNER', by: 'onboarding' },
    });
  });
}

/**
 * PENDING → ACTIVE, stamped once. An ACTIVE tenant stays as it is (a retry); any other status
 * cannot become ACTIVE and is returned for the caller to refuse.
 */
export async function activateTenant(orm: MikroORM, tenantId: string): Promise<TenantStatus | null> {
  return systemEm(orm).transactional(async (em) => {
    const tenant = await em.findOne(Tenant, { id: tenantId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!tenant) return null;
    if (tenant.status === 'PENDING') {
      tenant.status = 'ACTIVE';
      tenant.activatedAt = new Date();
    }
    return tenant.status;
  });
}
