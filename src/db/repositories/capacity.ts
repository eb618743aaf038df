/**
 * Capacity reservation on hypervisor nodes. Placement ranks nodes in memory (pure best fit);
 * the reservation itself is a conditional UPDATE that only succeeds while the node still has
 * room, so any number of concurrent reservations can never oversubscribe a node. Reservations
 * are recorded on the pod row (locked FOR UPDATE), which makes reserve and release idempotent.
 */
import type { Resources } from '../../domain/cloudpods';
import { rankNodes, type NodeCapacity } from '../../domain/placement';
import type { EntityManager } from '../orm';

interface NodeRow {
  id: string;
  name: string;
  status: NodeCapacity['status'];
  capacity_vcpu: number;
  capacity_memory_mb: number;
  capacity_disk_gb: number;
  allocated_vcpu: number;
  allocated_memory_mb: number;
  allocated_disk_gb: number;
}

interface PodRow {
  id: string;
  node_id: string | null;
  vcpu: number;
  memory_mb: number;
  disk_gb: number;
  reserved_vcpu: number;
  reserved_memory_mb: number;
  reserved_disk_gb: number;
}

export class NoCapacityError extends Error {
  constructor(readonly requested: Resources) {
    super(
      `no ONLINE node has room for ${requested.vcpu} vCPU, ${requested.memoryMb} MB memory, ${requested.diskGb} GB disk`,
    );
    this.name = 'NoCapacityError';
  }
}

function toCapacity(row: NodeRow): NodeCapacity {
  return {
    id: row.id,
    status: row.status,
    capacity: { vcpu: row.capacity_vcpu, memoryMb: row.capacity_memory_mb, diskGb: row.capacity_disk_gb },
    allocated: { vcpu: row.allocated_vcpu, memoryMb: row.allocated_memory_mb, diskGb: row.allocated_disk_gb },
  };
}

const ADD_IF_FITS = `
  update core_nodes set
    allocated_vcpu = allocated_vcpu + ?, allocated_memory_mb = allocated_memory_mb + ?, allocated_disk_gb = allocated_disk_gb + ?,
    version = version + 1, updated_at = now()
  where id = ? and status = 'ONLINE'
    and allocated_vcpu + ? <= capacity_vcpu and allocated_memory_mb + ? <= capacity_memory_mb and allocated_disk_gb + ? <= capacity_disk_gb
  returning id, name`;

async function lockPod(em: EntityManager, podId: string): Promise<PodRow> {
  // em.execute runs on the transaction's connection (getConnection().execute would not).
  const rows = await em.execute<PodRow[]>('select * from cloud_pods where id = ? for update', [podId]);
  const pod = rows[0];
  if (!pod) throw new Error(`pod ${podId} does not exist`);
  return pod;
}

/** Reserves the pod's resources on the best-fitting node, or returns the reservation it already has. */
export async function reserveCapacity(
  em: EntityManager,
  podId: string,
): Promise<{ nodeId: string; nodeName: string }> {
  return em.transactional(async (tx) => {
    const pod = await lockPod(tx, podId);
    if (pod.node_id) {
      const [node] = await tx.execute<{ name: string }[]>('select name from core_nodes where id = ?', [
        pod.node_id,
      ]);
      return { nodeId: pod.node_id, nodeName: node?.name ?? pod.node_id };
    }
    const req: Resources = { vcpu: pod.vcpu, memoryMb: pod.memory_mb, diskGb: pod.disk_gb };
    const nodes = await tx.execute<NodeRow[]>("select * from core_nodes where status = 'ONLINE'");
    // The ranking uses a snapshot; a node that filled up meanwhile fails its conditional update
    // and the next candidate is tried.
    for (const candidate of rankNodes(nodes.map(toCapacity), req)) {
      const [won] = await tx.execute<{ id: string; name: string }[]>(ADD_IF_FITS, [
        req.vcpu,
        req.memoryMb,
        req.diskGb,
        candidate.id,
        req.vcpu,
        req.memoryMb,
        req.diskGb,
      ]);
      if (won) {
        await tx.execute(
          'update cloud_pods set node_id = ?, reserved_vcpu = ?, reserved_memory_mb = ?, reserved_disk_gb = ?, updated_at = now() where id = ?',
          [won.id, req.vcpu, req.memoryMb, req.diskGb, podId],
        );
        return { nodeId: won.id, nodeName: won.name };
      }
    }
    throw new NoCapacityError(req);
  });
}

/** Gives the pod's reservation back to its node; a pod without one is left as it is. */
export async function releaseCapacity(em: EntityManager, podId: string): Promise<boolean> {
  return em.transactional(async (tx) => {
    const pod = await lockPod(tx, podId);
    if (!pod.node_id) return false;
    await tx.execute(
      `update core_nodes set allocated_vcpu = allocated_vcpu - ?, allocated_memory_mb = allocated_memory_mb - ?,
         allocated_disk_gb = allocated_disk_gb - ?, version = version + 1, updated_at = now() where id = ?`,
      [pod.reserved_vcpu, pod.reserved_memory_mb, pod.reserved_disk_gb, pod.node_id],
    );
    await tx.execute(
      'update cloud_pods set node_id = null, reserved_vcpu = 0, reserved_memory_mb = 0, reserved_disk_gb = 0, updated_at = now() where id = ?',
      [podId],
    );
    return true;
  });
}

/**
 * Moves the pod's reservation to `to` on the same node (plan change). Growing needs room on the
 * node; the pod's resources themselves are not touched here.
 */
export async function adjustReservation(em: EntityManager, podId: string, to: Resources): Promise<void> {
  await em.transactional(async (tx) => {
    const pod = await lockPod(tx, podId);
    if (!pod.node_id) throw new Error(`pod ${podId} has no node reservation to adjust`);
    const delta = {
      vcpu: to.vcpu - pod.reserved_vcpu,
      memoryMb: to.memoryMb - pod.reserved_memory_mb,
      diskGb: to.diskGb - pod.reserved_disk_gb,
    };
    if (delta.vcpu === 0 && delta.memoryMb === 0 && delta.diskGb === 0) return;
    const [ok] = await tx.execute<{ id: string }[]>(ADD_IF_FITS.replace("and status = 'ONLINE'", ''), [
      delta.vcpu,
      delta.memoryMb,
      delta.diskGb,
      pod.node_id,
      delta.vcpu,
      delta.memoryMb,
      delta.diskGb,
    ]);
    if (!ok) throw new NoCapacityError(delta);
    await tx.execute(
      'update cloud_pods set reserved_vcpu = ?, reserved_memory_mb = ?, reserved_disk_gb = ?, updated_at = now() where id = ?',
      [to.vcpu, to.memoryMb, to.diskGb, podId],
    );
  });
}
