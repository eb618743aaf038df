/**
 * The pod list, the hottest read, and the pod insert: plain statements instead of entities
 * (hydrating a page of 50 pods cost about 8 ms of CPU against 1.5 ms for the query). The tenant
 * condition is explicit here because plain SQL does not pass through the ORM's tenant filter.
 */
import type { PodStatus } from '../../domain/cloudpods';
import { hotQuery } from '../hot';
import type { EntityManager } from '../orm';
import { PageWhere, intJson, isoJson, textJson, textPage, utc, type Page } from './pages';

/** `timestamptz` as `Date.toISOString()` writes it. */
const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

interface PodPageRow {
  id: string;
  slug: string;
  hostname: string;
  status: string;
  customer_id: string;
  product_id: string;
  node_id: string | null;
  vcpu: string;
  memory_mb: string;
  disk_gb: string;
  vm_id: string | null;
  ip_address: string | null;
  failure_reason: string | null;
  workflow_id: string;
  created_at: string;
  activated_at: string | null;
  terminated_at: string | null;
}

/** One page of a tenant's pods as JSON text, in `podView`'s shape (a test holds the two equal). */
export function podPage(
  em: EntityManager,
  tenantId: string,
  q: {
    status?: PodStatus | undefined;
    customerId?: string | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<Page> {
  const where = new PageWhere(tenantId)
    .add('s', 'status = $?', q.status)
    .add('c', 'customer_id = $?', q.customerId)
    .add('a', 'id > $?', q.after);
  return textPage<PodPageRow>(em, {
    name: where.name('pods_page'),
    select: `id, slug, hostname, status, customer_id, product_id, node_id, vcpu, memory_mb, disk_gb, vm_id,
             ip_address, failure_reason, workflow_id, ${utc('created_at')}, ${utc('activated_at')}, ${utc('terminated_at')}`,
    table: 'cloud_pods',
    where: where.where,
    values: where.values,
    limit: q.limit,
    item: (r) =>
      `{"id":${textJson(r.id)},"slug":${textJson(r.slug)},"hostname":${textJson(r.hostname)},"status":${textJson(r.status)},` +
      `"customer_id":${textJson(r.customer_id)},"product_id":${textJson(r.product_id)},` +
      `"limits":{"vcpu":${intJson(r.vcpu)},"memory_mb":${intJson(r.memory_mb)},"disk_gb":${intJson(r.disk_gb)}},` +
      `"node_id":${textJson(r.node_id)},"vm_id":${textJson(r.vm_id)},"ip_address":${textJson(r.ip_address)},` +
      `"failure_reason":${textJson(r.failure_reason)},"workflow_id":${textJson(r.workflow_id)},` +
      `"created_at":${isoJson(r.created_at)},"activated_at":${isoJson(r.activated_at)},` +
      `"terminated_at":${isoJson(r.terminated_at)}}`,
  });
}

/** A pod row as the insert returns it (`row_to_json`, snake_case, timestamps as ISO text). */
export interface InsertedPodRow {
  id: string;
  tenant_id: string;
  customer_id: string;
  product_id: string;
  slug: string;
  hostname: string;
  status: PodStatus;
  vcpu: number;
  memory_mb: number;
  disk_gb: number;
  workflow_id: string;
  restore_from_backup_id: string | null;
  created_at: string;
}

export interface InsertedJobRow {
  id: string;
  pod_id: string;
  type: 'PROVISION';
  status: 'QUEUED';
  attempts: number;
  max_attempts: number;
  queue_name: string;
  workflow_id: string;
  created_at: string;
}

export type PodInsert =
  { ok: true; pod: InsertedPodRow; job: InsertedJobRow } | { ok: false; missing: 'customer' | 'product' };

/**
 * A new pod and its PROVISION job in one statement (one round trip, autocommit): the customer must
 * be the tenant's and not deleted (read FOR SHARE, so a concurrent delete waits for this pod and
 * then sees it), the product the tenant's and not retired; the plan's resources are copied from
 * the product. The `cloud_pods_usage` trigger counts the pod and refuses it past the tenant's
 * quota (SQLSTATE PQ001); a taken slug is the unique violation of `cloud_pods_tenant_id_slug_unique`.
 */
export async function insertPodWithJob(
  em: EntityManager,
  input: {
    podId: string;
    jobId: string;
    tenantId: string;
    customerId: string;
    productId: string;
    slug: string;
    zone: string;
    workflowId: string;
    restoreFromBackupId: string | null;
    queueName: string;
    maxAttempts: number;
    now: Date;
  },
): Promise<PodInsert> {
  const [row] = await hotQuery<{
    customers: number;
    products: number;
    pod: InsertedPodRow | null;
    job: InsertedJobRow | null;
  }>(
    em,
    'pod_insert',
    `with c as (select id from customers where id = $2 and tenant_id = $1 and deleted_at is null for share),
          p as (select id, vcpu, memory_mb, disk_gb from products where id = $3 and tenant_id = $1 and deleted_at is null),
          t as (select slug from tenants where id = $1),
          pod as (
            insert into cloud_pods (id, tenant_id, customer_id, product_id, slug, hostname, status, vcpu, memory_mb, disk_gb,
                                    workflow_id, restore_from_backup_id, created_at, updated_at)
            select $4, $1, c.id, p.id, $5::text, $5::text || '.' || t.slug || '.' || $6::text, 'PENDING',
                   p.vcpu, p.memory_mb, p.disk_gb, $7, $8::text, $9::timestamptz, $9::timestamptz
              from c, p, t
            returning id, tenant_id, customer_id, product_id, slug, hostname, status, vcpu, memory_mb, disk_gb,
                      workflow_id, restore_from_backup_id, ${iso('created_at')} as created_at),
          job as (
            insert into provisioning_jobs (id, tenant_id, pod_id, type, queue_name, status, priority, scheduled_for, attempts,
                                           max_attempts, workflow_id, created_at, updated_at)
            select $10, $1, pod.id, 'PROVISION', $11, 'QUEUED', 0, $9::timestamptz, 0, $12::int, pod.workflow_id,
                   $9::timestamptz, $9::timestamptz from pod
            returning id, pod_id, type, status, attempts, max_attempts, queue_name, workflow_id, ${iso('created_at')} as created_at)
     select (select count(*) from c)::int as customers, (select count(*) from p)::int as products,
            (select row_to_json(pod) from pod) as pod, (select row_to_json(job) from job) as job`,
    [
      input.tenantId,
      input.customerId,
      input.productId,
      input.podId,
      input.slug,
      input.zone,
      input.workflowId,
      input.restoreFromBackupId,
      input.now,
      input.jobId,
      input.queueName,
      input.maxAttempts,
    ],
  );
  if (row?.pod && row.job) return { ok: true, pod: row.pod, job: row.job };
  return { ok: false, missing: row?.customers ? 'product' : 'customer' };
}
