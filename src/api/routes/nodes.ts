/** /api/v1/nodes (platform admin): register hypervisor nodes, drain them, see allocation vs capacity. */
import { Router } from 'express';
import { CoreNode } from '../../db/entities';
import { notFound } from '../../domain/errors';
import { isId } from '../../domain/ids';
import { nodeView, registerNode } from '../../services/nodes';
import { emOf, requirePlatformAdmin } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { bearerAuth, problems, registry } from '../openapi';
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
const NodeView = registry.register(
  'CoreNode',
  z.object({
    id: z.string(),
    name: z.string(),
    region: z.string(),
    status: z.enum(['ONLINE', 'DRAINING', 'OFFLINE']),
    capacity: z.object({ vcpu: z.number(), memory_mb: z.number(), disk_gb: z.number() }),
    allocated: z.object({ vcpu: z.number(), memory_mb: z.number(), disk_gb: z.number() }),
    utilization_percent: z.object({ vcpu: z.number(), memory: z.number(), disk: z.number() }),
    created_at: z.string(),
  }),
);
const security = [{ [bearerAuth.name]: [] }];
registry.registerPath({
  method: 'post',
  path: '/api/v1/nodes',
  summary: 'Register a hypervisor node (platform admin)',
  security,
  request: { body: { content: { 'application/json': { schema: RegisterNodeBody } } } },
  responses: {
    201: { description: 'Registered', content: { 'application/json': { schema: NodeView } } },
    ...problems(400, 401, 403, 409),
  },
});
registry.registerPath({
  method: 'get',
  path: '/api/v1/nodes',
  summary: 'Nodes with allocated vs capacity (platform admin)',
  security,
  responses: {
    200: {
      description: 'Nodes',
      content: { 'application/json': { schema: z.object({ data: z.array(NodeView) }) } },
    },
    ...problems(401, 403),
  },
});
registry.registerPath({
  method: 'post',
  path: '/api/v1/nodes/{id}/drain',
  summary: 'Drain a node: no new placements; existing pods stay (platform admin)',
  security,
  request: { params: NodeIdParams },
  responses: {
    200: { description: 'Draining', content: { 'application/json': { schema: NodeView } } },
    ...problems(401, 403, 404),
  },
});

export function nodeRoutes(): Router {
  const router = Router();
  router.post('/', async (req, res) => {
    requirePlatformAdmin(req, 'write');
    const b = parse(RegisterNodeBody, req.body);
    const node = await registerNode(emOf(req), {
      name: b.name,
      region: b.region,
      capacityVcpu: b.capacity_vcpu,
      capacityMemoryMb: b.capacity_memory_mb,
      capacityDiskGb: b.capacity_disk_gb,
    });
    res.status(201).json(nodeView(node));
  });
  router.get('/', async (req, res) => {
    requirePlatformAdmin(req);
    const nodes = await emOf(req).find(CoreNode, {}, { orderBy: { name: 'asc' }, limit: 1000 });
    res.json({ data: nodes.map(nodeView) });
  });
  router.post('/:id/drain', async (req, res) => {
    requirePlatformAdmin(req, 'write');
    const { id } = parse(NodeIdParams, req.params, 'params');
    if (!isId('node', id)) throw notFound('node');
    const em = emOf(req);
    const node = await em.findOne(CoreNode, { id });
    if (!node) throw notFound('node');
    node.status = 'DRAINING';
    await em.flush();
    req.log.info({ nodeId: id }, 'node draining');
    res.json(nodeView(node));
  });
  return router;
}
