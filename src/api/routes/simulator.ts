/**
 * /api/v1/ops/simulator (platform admin): the simulated providers' fault rules, and what the
 * simulators hold — VMs, DNS records, backups — so a leak is visible from the API. Each route is
 * mounted (and documented) only when its simulator is the configured hypervisor or DNS.
 */
import type { Config } from '../../config';
import type { SimBackup, SimDnsRecord, SimFaultRule, SimVm } from '../../db/entities';
import type { MikroORM } from '../../db/orm';
import { conflict, notFound } from '../../domain/errors';
import { FAULT_MODES, FAULT_OPERATIONS, MAX_FAULT_DELAY_MS, faultModeProblem } from '../../domain/faults';
import { FaultInjector, SimulatorInventory, VmSuspendedError } from '../../providers/simulator';
import { route, type Route } from '../http/route';
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

const FaultView = z
  .object({
    id: z.string(),
    operation: z.enum(FAULT_OPERATIONS),
    slug_pattern: z.string(),
    remaining: z.number().int().nullable().openapi({ description: 'uses left; null: every call' }),
    mode: z.enum(FAULT_MODES),
    delay_ms: z.number().int().nullable(),
    message: z.string(),
    created_at: z.string(),
  })
  .openapi('FaultRule');
const SimVmView = z
  .object({
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
  })
  .openapi('SimulatedVm');
const SimDnsRecordView = z
  .object({ fqdn: z.string(), type: z.string(), content: z.string(), ttl: z.number().int() })
  .openapi('SimulatedDnsRecord');
const SimBackupView = z
  .object({
    id: z.string(),
    pod_id: z.string(),
    vm_id: z.string(),
    vcpu: z.number().int(),
    memory_mb: z.number().int(),
    disk_gb: z.number().int(),
    size_gb: z.number().int(),
    created_at: z.string(),
  })
  .openapi('SimulatedBackup');
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
});

const read = { caller: 'platform', permission: 'ops:read' } as const;
const admin = { caller: 'platform', permission: 'ops:admin' } as const;

/** Which simulator a route needs; a route whose simulator is not configured does not exist (404). */
const hypervisor = (config: Config): boolean => config.HYPERVISOR === 'simulator';
const dns = (config: Config): boolean => config.DNS_PROVIDER === 'simulator';

/** Whether any simulator route is served with this configuration: `either` routes serve whichever is. */
export function simulatorConfigured(config: Config): boolean {
  return hypervisor(config) || dns(config);
}

const ONLY_SIMULATOR = 'Platform admin; only when the simulator is configured.';

export function simulatorRoutes(deps: {
  orm: MikroORM;
  config: Config;
  faults?: FaultInjector | undefined;
}): Route[] {
  const faults = deps.faults ?? new FaultInjector(deps.orm);
  const inventory = new SimulatorInventory(deps.orm);

  return [
    route({
      operationId: 'listSimulatorFaults',
      tag: 'Simulator',
      method: 'get',
      path: '/api/v1/ops/simulator/faults',
      summary: 'Fault rules of the simulated hypervisor and DNS',
      description: ONLY_SIMULATOR,
      access: read,
      when: simulatorConfigured,
      responses: list('Rules, oldest first', FaultView),
      async handle({ res }) {
        res.json({ data: (await faults.list()).map(faultView) });
      },
    }),
    route({
      operationId: 'addSimulatorFault',
      tag: 'Simulator',
      method: 'post',
      path: '/api/v1/ops/simulator/faults',
      summary:
        'Add a fault rule: fail an operation (before or after it acts) or delay it, for matching pod slugs',
      description: ONLY_SIMULATOR,
      access: admin,
      when: simulatorConfigured,
      body: FaultBody,
      responses: {
        201: { description: 'Rule added', content: { 'application/json': { schema: FaultView } } },
      },
      async handle({ body: b, res, log }) {
        const rule = await faults.add({
          operation: b.operation,
          slugPattern: b.slug_pattern,
          times: b.times ?? null,
          mode: b.mode ?? 'fail',
          delayMs: b.delay_ms ?? null,
          ...(b.message ? { message: b.message } : {}),
        });
        log.warn({ rule: faultView(rule) }, 'simulator fault rule added');
        res.status(201).json(faultView(rule));
      },
    }),
    route({
      operationId: 'removeSimulatorFault',
      tag: 'Simulator',
      method: 'delete',
      path: '/api/v1/ops/simulator/faults/:id',
      summary: 'Remove a fault rule',
      description: ONLY_SIMULATOR,
      access: admin,
      when: simulatorConfigured,
      params: FaultIdParams,
      responses: { 204: { description: 'Removed' } },
      async handle({ params: { id }, res, log }) {
        if (!(await faults.remove(id))) throw notFound('fault rule');
        log.warn({ ruleId: id }, 'simulator fault rule removed');
        res.status(204).end();
      },
    }),
    route({
      operationId: 'listSimulatedVms',
      tag: 'Simulator',
      method: 'get',
      path: '/api/v1/ops/simulator/vms',
      summary: 'Every VM the simulated hypervisor holds, whether or not a pod knows it',
      description: ONLY_SIMULATOR,
      access: read,
      when: hypervisor,
      responses: list('VMs, oldest first', SimVmView),
      async handle({ res }) {
        res.json({ data: (await inventory.vms()).map(vmView) });
      },
    }),
    route({
      operationId: 'startSimulatedVmFromOutside',
      tag: 'Simulator',
      method: 'post',
      path: '/api/v1/ops/simulator/vms/:vmId/start',
      summary: 'Start a VM from outside Podplane, as its customer or as one of the provider’s administrators',
      description: ONLY_SIMULATOR,
      access: admin,
      when: hypervisor,
      params: VmIdParams,
      body: OutsideStartBody,
      responses: {
        200: { description: 'The VM, running', content: { 'application/json': { schema: SimVmView } } },
      },
      problems: [409],
      async handle({ params: { vmId }, body: { as }, res }) {
        try {
          const vm = await inventory.startFromOutside(vmId, as);
          if (!vm) throw notFound('VM');
          res.json(vmView(vm));
        } catch (err) {
          if (err instanceof VmSuspendedError) throw conflict(err.message);
          throw err;
        }
      },
    }),
    route({
      operationId: 'listSimulatedDnsRecords',
      tag: 'Simulator',
      method: 'get',
      path: '/api/v1/ops/simulator/dns-records',
      summary: 'Every record the simulated DNS holds',
      description: ONLY_SIMULATOR,
      access: read,
      when: dns,
      responses: list('Records by name', SimDnsRecordView),
      async handle({ res }) {
        res.json({ data: (await inventory.dnsRecords()).map(dnsView) });
      },
    }),
    route({
      operationId: 'listSimulatedBackups',
      tag: 'Simulator',
      method: 'get',
      path: '/api/v1/ops/simulator/backups',
      summary: 'Every backup the simulated hypervisor holds (kept apart from VMs: they outlive a destroy)',
      description: ONLY_SIMULATOR,
      access: read,
      when: hypervisor,
      responses: list('Backups, oldest first', SimBackupView),
      async handle({ res }) {
        res.json({ data: (await inventory.backups()).map(backupView) });
      },
    }),
  ];
}
