/** Hypervisor node registry (platform admin). */
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { CoreNode } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { conflict } from '../domain/errors';

export interface RegisterNodeInput {
  name: string;
  region: string;
  capacityVcpu: number;
  capacityMemoryMb: number;
  capacityDiskGb: number;
}

export async function registerNode(em: EntityManager, input: RegisterNodeInput): Promise<CoreNode> {
  const node = em.create(CoreNode, input);
  try {
    await em.flush();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) {
      throw conflict(`a node named '${input.name}' is already registered`, {
        errors: [{ field: 'name', message: 'is taken' }],
      });
    }
    throw err;
  }
  return node;
}

/** Simulated nodes so a new `npm start` user can create a pod right away; only when none exist. */
export async function seedSimulatedNodes(em: EntityManager): Promise<number> {
  if ((await em.count(CoreNode, {})) > 0) return 0;
  for (const [i, region] of ['sim-eu-1', 'sim-eu-1', 'sim-us-1'].entries()) {
    em.create(CoreNode, {
      name: `sim-node-${i + 1}`,
      region,
      capacityVcpu: 32,
      capacityMemoryMb: 131072,
      capacityDiskGb: 4000,
    });
  }
  await em.flush();
  return 3;
}

export function nodeView(n: CoreNode) {
  const pct = (a: number, c: number) => (c === 0 ? 0 : Math.round((a / c) * 1000) / 10);
  return {
    id: n.id,
    name: n.name,
    region: n.region,
    status: n.status,
    capacity: { vcpu: n.capacityVcpu, memory_mb: n.capacityMemoryMb, disk_gb: n.capacityDiskGb },
    allocated: { vcpu: n.allocatedVcpu, memory_mb: n.allocatedMemoryMb, disk_gb: n.allocatedDiskGb },
    utilization_percent: {
      vcpu: pct(n.allocatedVcpu, n.capacityVcpu),
      memory: pct(n.allocatedMemoryMb, n.capacityMemoryMb),
      disk: pct(n.allocatedDiskGb, n.capacityDiskGb),
    },
    created_at: n.createdAt.toISOString(),
  };
}
