/**
 * The pod list, the hottest read: plain rows instead of hydrated entities (hydrating a page of 50
 * pods cost about 8 ms of CPU against 1.5 ms for the query). The tenant condition is explicit
 * here because plain SQL does not pass through the ORM's tenant filter.
 */
import type { PodStatus } from '../../domain/cloudpods';
import type { EntityManager } from '../orm';

export interface PodListItem {
  id: string;
  slug: string;
  hostname: string;
  status: PodStatus;
  customer: { id: string };
  product: { id: string };
  node: { id: string } | null;
  vcpu: number;
  memoryMb: number;
  diskGb: number;
  vmId: string | null;
  ipAddress: string | null;
  failureReason: string | null;
  workflowId: string;
  createdAt: Date;
  activatedAt: Date | null;
  terminatedAt: Date | null;
}

interface PodRow {
  id: string;
  slug: string;
  hostname: string;
  status: PodStatus;
  customer_id: string;
  product_id: string;
  node_id: string | null;
  vcpu: number;
  memory_mb: number;
  disk_gb: number;
  vm_id: string | null;
  ip_address: string | null;
  failure_reason: string | null;
  workflow_id: string;
  created_at: string | Date;
  activated_at: string | Date | null;
  terminated_at: string | Date | null;
}

const date = (v: string | Date | null) => (v === null ? null : new Date(v));

export async function listPods(
  em: EntityManager,
  tenantId: string,
  q: {
    status?: PodStatus | undefined;
    customerId?: string | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<PodListItem[]> {
  const where = ['tenant_id = ?'];
  const params: unknown[] = [tenantId];
  const add = (condition: string, value: unknown) => {
    where.push(condition);
    params.push(value);
  };
  if (q.status) add('status = ?', q.status);
  if (q.customerId) add('customer_id = ?', q.customerId);
  if (q.after) add('id > ?', q.after);
  const rows = await em.execute<PodRow[]>(
    `select id, slug, hostname, status, customer_id, product_id, node_id, vcpu, memory_mb, disk_gb, vm_id, ip_address,
            failure_reason, workflow_id, created_at, activated_at, terminated_at
       from cloud_pods where ${where.join(' and ')} order by id limit ?`,
    [...params, q.limit],
  );
  return rows.map((r) => ({
    id: r.id,
    slug: r.slug,
    hostname: r.hostname,
    status: r.status,
    customer: { id: r.customer_id },
    product: { id: r.product_id },
    node: r.node_id ? { id: r.node_id } : null,
    vcpu: r.vcpu,
    memoryMb: r.memory_mb,
    diskGb: r.disk_gb,
    vmId: r.vm_id,
    ipAddress: r.ip_address,
    failureReason: r.failure_reason,
    workflowId: r.workflow_id,
    createdAt: new Date(r.created_at),
    activatedAt: date(r.activated_at),
    terminatedAt: date(r.terminated_at),
  }));
}
