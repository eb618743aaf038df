/** /api/v1/nodes (platform admin): register hypervisor nodes, drain them, see allocation vs capacity. */
import type { CoreNode } from '../../db/entities';
import { nodePage } from '../../db/repositories/nodes';
import { dataBody } from '../../db/repositories/pages';
import { drainNode, registerNode } from '../../services/nodes';
import { route, type Route } from '../http/route';
import { z } from '../zod';

const RegisterNodeBody = z
  .strictObject({
    name: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9.-]{0,98}[a-z0-9]$/,
        'name must be a host-style name (lowercase, digits, dots, hyphens)',
      ),
    region: z.string().regex(/^[a-z0-9-]{2,50}$/, 'region must be lowercase letters, digits and hyphens'),
    capacity_vcpu: z.number().int().min(1).max(4096),
    capacity_memory_mb: z.number().int().min(1024).max(67_108_864),
    capacity_disk_gb: z.number().int().min(10).max(10_000_000),
  })
  .openapi('RegisterNode');
const NodeIdParams = z.object({ id: z.string() });
const NodeView = z
  .object({
    id: z.string(),
    name: z.string(),
    region: z.string(),
    status: z.enum(['ONLINE', 'DRAINING', 'OFFLINE']),
    capacity: z.object({ vcpu: z.number(), memory_mb: z.number(), disk_gb: z.number() }),
    allocated: z.object({ vcpu: z.number(), memory_mb: z.number(), disk_gb: z.number() }),
    utilization_percent: z.object({ vcpu: z.number(), memory: z.number(), disk: z.number() }),
    created_at: z.string(),
  })
  .openapi('CoreNode');

/** A node as the API shows it: allocation against capacity, in units and percent. */
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

const read = { caller: 'platform', permission: 'nodes:read' } as const;
const write = { caller: 'platform', permission: 'nodes:write' } as const;

export function nodeRoutes(): Route[] {
  return [
    route({
      operationId: 'createNode',
      tag: 'Nodes',
      method: 'post',
      path: '/api/v1/nodes',
      summary: 'Register a hypervisor node (platform admin)',
      access: write,
      body: RegisterNodeBody,
      responses: {
        201: { description: 'Registered', content: { 'application/json': { schema: NodeView } } },
      },
      problems: [409],
      async handle({ em, body, res }) {
        const node = await registerNode(em, {
          name: body.name,
          region: body.region,
          capacityVcpu: body.capacity_vcpu,
          capacityMemoryMb: body.capacity_memory_mb,
          capacityDiskGb: body.capacity_disk_gb,
        });
        res.status(201).json(nodeView(node));
      },
    }),
    route({
      operationId: 'listNodes',
      tag: 'Nodes',
      method: 'get',
      path: '/api/v1/nodes',
      summary: 'Nodes with allocated vs capacity (platform admin)',
      access: read,
      responses: {
        200: {
          description: 'Nodes',
          content: { 'application/json': { schema: z.object({ data: z.array(NodeView) }) } },
        },
      },
      async handle({ em, res }) {
        res.type('application/json').send(dataBody(await nodePage(em)));
      },
    }),
    route({
      operationId: 'drainNode',
      tag: 'Nodes',
      method: 'post',
      path: '/api/v1/nodes/:id/drain',
      summary: 'Drain a node: no new placements; existing pods stay (platform admin)',
      access: write,
      params: NodeIdParams,
      responses: {
        200: { description: 'Draining', content: { 'application/json': { schema: NodeView } } },
      },
      async handle({ em, params, res, log }) {
        const { id } = params;
        const node = await drainNode(em, id);
        log.info({ nodeId: id }, 'node draining');
        res.json(nodeView(node));
      },
    }),
  ];
}
