/** Hypervisor node registry (platform admin): every change to a node runs in one transaction here. */
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { CoreNode } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { conflict, notFound } from '../domain/errors';
import { isId } from '../domain/ids';

export interface RegisterNodeInput {
  name: string;
  region: string;
  capacityVcpu: number;
  capacityMemoryMb: number;
  capacityDiskGb: number;
}

/** Registers a node (ONLINE); a name already registered is 409. */
export async function registerNode(em: EntityManager, input: RegisterNodeInput): Promise<CoreNode> {
  return em.transactional(async (tx) => {
    const node = tx.create(CoreNode, input);
    try {
      await tx.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw conflict(`a node named '${input.name}' is already registered`, {
          errors: [{ field: 'name', message: 'is taken' }],
        });
      }
      throw err;
    }
    return node;
  });
}

/** Drains a node: no new placements, its pods stay. An unknown id is 404. */
export async function drainNode(em: EntityManager, nodeId: string): Promise<CoreNode> {
  return em.transactional(async (tx) => {
    const node = isId('node', nodeId) ? await tx.findOne(CoreNode, { id: nodeId }) : null;
    if (!node) throw notFound('node');
    node.status = 'DRAINING';
    await tx.flush();
    return node;
  });
}

/**
 * Simulated nodes so a new `npm start` user can create a pod right away; only when none exist.
 * The count and the inserts share one transaction.
 */
export async function seedSimulatedNodes(em: EntityManager): Promise<number> {
  return em.transactional(async (tx) => {
    if ((await tx.count(CoreNode, {})) > 0) return 0;
    for (const [i, region] of ['sim-eu-1', 'sim-eu-1', 'sim-us-1'].entries()) {
      tx.create(CoreNode, {
        name: `sim-node-${i + 1}`,
        region,
        capacityVcpu: 32,
        capacityMemoryMb: 131072,
        capacityDiskGb: 4000,
      });
    }
    await tx.flush();
    return 3;
  });
}
