/** The node list as JSON text (see pages.ts), in `nodeView`'s shape. */
import type { EntityManager } from '../orm';
import { PageWhere, intJson, isoJson, textJson, textPage, utc, type Page } from './pages';

/** As many nodes as GET /api/v1/nodes ever listed: it has no cursor. */
const NODE_LIST_CAP = 1000;

interface NodePageRow {
  id: string;
  name: string;
  region: string;
  status: string;
  capacity_vcpu: string;
  capacity_memory_mb: string;
  capacity_disk_gb: string;
  allocated_vcpu: string;
  allocated_memory_mb: string;
  allocated_disk_gb: string;
  created_at: string;
}

/**
 * Allocated of capacity in percent with one decimal, computed as `nodeView` computes it (in
 * floating point, not PostgreSQL's numeric, so the two round alike).
 */
function percentJson(allocated: string, capacity: string): string {
  const a = Number(allocated);
  const c = Number(capacity);
  return JSON.stringify(c === 0 ? 0 : Math.round((a / c) * 1000) / 10);
}

/** Every node (up to the cap) by name, as the platform sees them; no tenant owns a node. */
export function nodePage(em: EntityManager): Promise<Page> {
  const where = new PageWhere(null);
  return textPage<NodePageRow>(em, {
    name: where.name('nodes_page'),
    select: `id, name, region, status, capacity_vcpu, capacity_memory_mb, capacity_disk_gb, allocated_vcpu,
             allocated_memory_mb, allocated_disk_gb, ${utc('created_at')}`,
    table: 'core_nodes',
    where: where.where,
    values: where.values,
    orderBy: 'name',
    limit: NODE_LIST_CAP,
    item: (r) =>
      `{"id":${textJson(r.id)},"name":${textJson(r.name)},"region":${textJson(r.region)},"status":${textJson(r.status)},` +
      `"capacity":{"vcpu":${intJson(r.capacity_vcpu)},"memory_mb":${intJson(r.capacity_memory_mb)},` +
      `"disk_gb":${intJson(r.capacity_disk_gb)}},` +
      `"allocated":{"vcpu":${intJson(r.allocated_vcpu)},"memory_mb":${intJson(r.allocated_memory_mb)},` +
      `"disk_gb":${intJson(r.allocated_disk_gb)}},` +
      `"utilization_percent":{"vcpu":${percentJson(r.allocated_vcpu, r.capacity_vcpu)},` +
      `"memory":${percentJson(r.allocated_memory_mb, r.capacity_memory_mb)},` +
      `"disk":${percentJson(r.allocated_disk_gb, r.capacity_disk_gb)}},"created_at":${isoJson(r.created_at)}}`,
  });
}
