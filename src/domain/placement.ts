/**
 * Node selection: best fit. Among ONLINE nodes with room for the request, pick the one that
 * is left with the least free capacity (packing nodes tightly keeps big holes for big pods).
 * Pure: the database re-checks the fit atomically when it reserves.
 */
import type { NodeStatus, Resources } from './cloudpods';

export interface NodeCapacity {
  id: string;
  status: NodeStatus;
  capacity: Resources;
  allocated: Resources;
}

export function fits(node: NodeCapacity, req: Resources): boolean {
  return (
    node.allocated.vcpu + req.vcpu <= node.capacity.vcpu &&
    node.allocated.memoryMb + req.memoryMb <= node.capacity.memoryMb &&
    node.allocated.diskGb + req.diskGb <= node.capacity.diskGb
  );
}

/** Leftover after placing `req`, as the sum of per-dimension free fractions (lower = tighter). */
export function leftoverScore(node: NodeCapacity, req: Resources): number {
  const free = (cap: number, alloc: number, r: number) => (cap === 0 ? 0 : (cap - alloc - r) / cap);
  return (
    free(node.capacity.vcpu, node.allocated.vcpu, req.vcpu) +
    free(node.capacity.memoryMb, node.allocated.memoryMb, req.memoryMb) +
    free(node.capacity.diskGb, node.allocated.diskGb, req.diskGb)
  );
}

/** Candidates in preference order (best fit first; ties by id for determinism). */
export function rankNodes(nodes: readonly NodeCapacity[], req: Resources): NodeCapacity[] {
  return nodes
    .filter((n) => n.status === 'ONLINE' && fits(n, req))
    .map((n) => ({ n, score: leftoverScore(n, req) }))
    .sort((a, b) => a.score - b.score || (a.n.id < b.n.id ? -1 : a.n.id > b.n.id ? 1 : 0))
    .map(({ n }) => n);
}

export function pickNode(nodes: readonly NodeCapacity[], req: Resources): NodeCapacity | undefined {
  return rankNodes(nodes, req)[0];
}
