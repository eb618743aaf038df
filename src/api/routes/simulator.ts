/**
 * /api/v1/ops/simulator (platform admin): the simulated providers' fault rules, and what the
 * simulators hold — VMs, DNS records, backups — so a leak is visible from the API. Mounted only
 * when a simulator is the configured hypervisor or DNS, and each route only when its simulator is.
 */
import { Router, type Request, type Response } from 'express';
import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { Config } from '../../config';
import type { SimBackup, SimDnsRecord, SimFaultRule, SimVm } from '../../db/entities';
import type { MikroORM } from '../../db/orm';
import type { TokenScope } from '../../domain/api-tokens';
import { conflict, notFound } from '../../domain/errors';
import { FAULT_MODES, FAULT_OPERATIONS, MAX_FAULT_DELAY_MS, faultModeProblem } from '../../domain/faults';
import { FaultInjector, SimulatorInventory, VmSuspendedError } from '../../providers/simulator';
import { requirePlatformAdmin } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { bearerAuth, problems, registry } from '../openapi';
import { z } from '../zod';

const FaultBody = z
  .strictObject({
    operation: z.enum(FAULT_OPERATIONS),
    slug_pattern: z.string().min(1).max(100).openapi({
      example: 'fail-*',
      description: 'glob over the pod slug (the backup id for findBackup/deleteBackup)',
    }),
    times: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .nullable()
      .optional()
      .openapi({ description: 'omitted or null: every call' }),
    mode: z.enum(FAULT_MODES).optional().openapi({
      description:
        '`fail` (default) fails before acting; `after` acts, then fails; `delay` acts, then answers after delay_ms',
    }),
    delay_ms: z.number().int().min(1).max(MAX_FAULT_DELAY_MS).nullable().optional(),
    message: z.string().min(1).max(300).optional(),
  })
  .superRefine((body, ctx) => {
    const problem = faultModeProblem(body.mode ?? 'fail', body.delay_ms);
    if (problem) ctx.addIssue({ code: 'custom', path: ['delay_ms'], message: problem });
  })
  .openapi('FaultRuleInput');

const FaultView = registry.register(
  'FaultRule',
  z.object({
    id: z.string(),
    operation: z.enum(FAULT_OPERATIONS),
    slug_pattern: z.string(),
    remaining: z.number().int().nullable().openapi({ description: 'uses left; null: every call' }),
    mode: z.enum(FAULT_MODES),
    delay_ms: z.number().int().nullable(),
    message: z.string(),
    created_at: z.string(),
  }),
);
const SimVmView = registry.register(
  'SimulatedVm',
  z.object({
    vm_id: z.string(),
    pod_id: z.string(),
    node: z.string(),
    name: z.string(),
    status: z.string(),
    suspended: z.boolean(),
    vcpu: z.number().int(),
    memory_mb: z.number().int(),
    disk_gb: z.number().int(),
    ip_address: z.string(),
    created_at: z.string(),
  }),
);
const SimDnsRecordView = registry.register(
  'SimulatedDnsRecord',
  z.object({ fqdn: z.string(), type: z.string(), content: z.string(), ttl: z.number().int() }),
);
const SimBackupView = registry.register(
  'SimulatedBackup',
  z.object({
    id: z.string(),
    pod_id: z.string(),
    vm_id: z.string(),
    vcpu: z.number().int(),
    memory_mb: z.number().int(),
    disk_gb: z.number().int(),
    size_gb: z.number().int(),
    created_at: z.string(),
  }),
);
const FaultIdParams = z.object({ id: z.string() });
const VmIdParams = z.object({ vmId: z.string() });
const OutsideStartBody = z
  .strictObject({
    as: z.enum(['customer', 'administrator']).openapi({
      description:
        '`customer`: from their own panel, refused (409) while the pod is suspended; `administrator`: one of the provider’s, which nothing stops',
    }),
  })
  .openapi('SimulatedOutsideStart');

const faultView = (r: SimFaultRule): z.infer<typeof FaultView> => ({
  id: r.id,
  operation: r.operation as z.infer<typeof FaultView>['operation'],
  slug_pattern: r.slugPattern,
  remaining: r.remaining ?? null,
  mode: r.mode as z.infer<typeof FaultView>['mode'],
  delay_ms: r.delayMs ?? null,
  message: r.message,
  created_at: r.createdAt.toISOString(),
});
const vmView = (vm: SimVm): z.infer<typeof SimVmView> => ({
  vm_id: vm.vmId,
  pod_id: vm.podId,
  node: vm.node,
  name: vm.name,
  status: vm.status,
  suspended: vm.locked,
  vcpu: vm.vcpu,
  memory_mb: vm.memoryMb,
  disk_gb: vm.diskGb,
  ip_address: vm.ipAddress,
  created_at: vm.createdAt.toISOString(),
});
const dnsView = (r: SimDnsRecord): z.infer<typeof SimDnsRecordView> => ({
  fqdn: r.fqdn,
  type: r.type,
  content: r.content,
  ttl: r.ttl,
});
const backupView = (b: SimBackup): z.infer<typeof SimBackupView> => ({
  id: b.id,
  pod_id: b.podId,
  vm_id: b.vmId,
  vcpu: b.vcpu,
  memory_mb: b.memoryMb,
  disk_gb: b.diskGb,
  size_gb: b.sizeGb,
  created_at: b.createdAt.toISOString(),
});

const list = <T extends z.ZodType>(description: string, item: T) => ({
  200: { description, content: { 'application/json': { schema: z.object({ data: z.array(item) }) } } },
  ...problems(401, 403, 404),
});

/** Which simulator a route needs: `either` routes serve whichever of the two is configured. */
type Serves = 'hypervisor' | 'dns' | 'either';

interface SimulatorRoute {
  method: 'get' | 'post' | 'delete';
  /** Express path under the mount point; `{id}` in OpenAPI */
  path: string;
  summary: string;
  scope: TokenScope;
  serves: Serves;
  request?: RouteConfig['request'];
  responses: RouteConfig['responses'];
}

/** Every route, declared once: OpenAPI, Express and authorization are all built from this table. */
const ROUTES = {
  listFaults: {
    method: 'get',
    path: '/faults',
    summary: 'Fault rules of the simulated hypervisor and DNS',
    scope: 'read',
    serves: 'either',
    responses: list('Rules, oldest first', FaultView),
  },
  addFault: {
    method: 'post',
    path: '/faults',
    summary:
      'Add a fault rule: fail an operation (before or after it acts) or delay it, for matching pod slugs',
    scope: 'write',
    serves: 'either',
    request: { body: { content: { 'application/json': { schema: FaultBody } } } },
    responses: {
      201: { description: 'Rule added', content: { 'application/json': { schema: FaultView } } },
      ...problems(400, 401, 403, 404),
    },
  },
  removeFault: {
    method: 'delete',
    path: '/faults/:id',
    summary: 'Remove a fault rule',
    scope: 'write',
    serves: 'either',
    request: { params: FaultIdParams },
    responses: { 204: { description: 'Removed' }, ...problems(401, 403, 404) },
  },
  listVms: {
    method: 'get',
    path: '/vms',
    summary: 'Every VM the simulated hypervisor holds, whether or not a pod knows it',
    scope: 'read',
    serves: 'hypervisor',
    responses: list('VMs, oldest first', SimVmView),
  },
  startVmFromOutside: {
    method: 'post',
    path: '/vms/:vmId/start',
    summary: 'Start a VM from outside Podplane, as its customer or as one of the provider’s administrators',
    scope: 'write',
    serves: 'hypervisor',
    request: {
      params: VmIdParams,
      body: { content: { 'application/json': { schema: OutsideStartBody } } },
    },
    responses: {
      200: { description: 'The VM, running', content: { 'application/json': { schema: SimVmView } } },
      ...problems(400, 401, 403, 404, 409),
    },
  },
  listDnsRecords: {
    method: 'get',
    path: '/dns-records',
    summary: 'Every record the simulated DNS holds',
    scope: 'read',
    serves: 'dns',
    responses: list('Records by name', SimDnsRecordView),
  },
  listBackups: {
    method: 'get',
    path: '/backups',
    summary: 'Every backup the simulated hypervisor holds (kept apart from VMs: they outlive a destroy)',
    scope: 'read',
    serves: 'hypervisor',
    responses: list('Backups, oldest first', SimBackupView),
  },
} as const satisfies Record<string, SimulatorRoute>;

const security = [{ [bearerAuth.name]: [] }];
for (const route of Object.values(ROUTES) as SimulatorRoute[]) {
  registry.registerPath({
    method: route.method,
    path: `/api/v1/ops/simulator${route.path.replace(/:(\w+)/g, '{$1}')}`,
    summary: `${route.summary} (platform admin; only when the simulator is configured)`,
    security,
    ...(route.request ? { request: route.request } : {}),
    responses: route.responses,
  });
}

/** Whether any simulator route is served with this configuration (the app mounts the router only then). */
export function simulatorConfigured(config: Config): boolean {
  return config.HYPERVISOR === 'simulator' || config.DNS_PROVIDER === 'simulator';
}

export function simulatorRoutes(deps: {
  orm: MikroORM;
  config: Config;
  faults?: FaultInjector | undefined;
}): Router {
  const faults = deps.faults ?? new FaultInjector(deps.orm);
  const inventory = new SimulatorInventory(deps.orm);
  const serves: Record<Serves, boolean> = {
    hypervisor: deps.config.HYPERVISOR === 'simulator',
    dns: deps.config.DNS_PROVIDER === 'simulator',
    either: simulatorConfigured(deps.config),
  };

  const handlers: Record<keyof typeof ROUTES, (req: Request, res: Response) => Promise<void>> = {
    listFaults: async (_req, res) => {
      res.json({ data: (await faults.list()).map(faultView) });
    },
    addFault: async (req, res) => {
      const b = parse(FaultBody, req.body);
      const rule = await faults.add({
        operation: b.operation,
        slugPattern: b.slug_pattern,
        times: b.times ?? null,
        mode: b.mode ?? 'fail',
        delayMs: b.delay_ms ?? null,
        ...(b.message ? { message: b.message } : {}),
      });
      req.log.warn({ rule: faultView(rule) }, 'simulator fault rule added');
      res.status(201).json(faultView(rule));
    },
    removeFault: async (req, res) => {
      const { id } = parse(FaultIdParams, req.params, 'params');
      if (!(await faults.remove(id))) throw notFound('fault rule');
      req.log.warn({ ruleId: id }, 'simulator fault rule removed');
      res.status(204).end();
    },
    listVms: async (_req, res) => {
      res.json({ data: (await inventory.vms()).map(vmView) });
    },
    startVmFromOutside: async (req, res) => {
      const { vmId } = parse(VmIdParams, req.params, 'params');
      const { as } = parse(OutsideStartBody, req.body);
      try {
        const vm = await inventory.startFromOutside(vmId, as);
        if (!vm) throw notFound('VM');
        res.json(vmView(vm));
      } catch (err) {
        if (err instanceof VmSuspendedError) throw conflict(err.message);
        throw err;
      }
    },
    listDnsRecords: async (_req, res) => {
      res.json({ data: (await inventory.dnsRecords()).map(dnsView) });
    },
    listBackups: async (_req, res) => {
      res.json({ data: (await inventory.backups()).map(backupView) });
    },
  };

  const router = Router();
  for (const [name, route] of Object.entries(ROUTES) as [keyof typeof ROUTES, SimulatorRoute][]) {
    // A route whose simulator is not configured does not exist (404), rather than showing an empty table.
    if (!serves[route.serves]) continue;
    const handle = handlers[name];
    router[route.method](route.path, async (req, res) => {
      requirePlatformAdmin(req, route.scope);
      await handle(req, res);
    });
  }
  return router;
}
