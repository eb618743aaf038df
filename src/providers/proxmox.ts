/** The production hypervisor: Proxmox VE over REST, VMs found by a per-pod tag, tasks polled by UPID. */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Resources } from '../domain/cloudpods';
import { ProviderError } from './errors';
import { ProviderHttp } from './http';
import type { Hypervisor, Snapshot, VmInfo, VmRef, VmSpec } from './hypervisor';

export interface ProxmoxOptions {
  /** `https://pve.example.com:8006`, with or without the `/api2/json` suffix */
  baseUrl: string;
  /** `user@realm!tokenname` */
  tokenId: string;
  tokenSecret: string;
  /** the template every pod VM is cloned from */
  templateVmId: number;
  taskPollMs: number;
  /** a task still running after this long fails the call (retryable); default 15 minutes */
  taskTimeoutMs?: number;
  /** one HTTP request; default 30 seconds */
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
}

/** The Proxmox lock value that stands for "suspended by Podplane". */
export const SUSPENSION_LOCK = 'suspended';

/** The disk that carries the pod's data: the one `resizeVm` grows. */
const DATA_DISK = 'scsi0';

const SHUTDOWN_TIMEOUT_S = 60;

/** The tag that ties a VM to its pod; Proxmox tags allow only `[a-z0-9_][a-z0-9_+.-]*`. */
export function podTag(podId: string): string {
  return `podplane-pod-${podId.toLowerCase().replace(/[^a-z0-9_+.-]/g, '-')}`;
}

/** Written into the clone's description so an interrupted create can find its untagged VM. */
function cloneMarker(podId: string): string {
  return `podplane-pod:${podId}`;
}

const upidSchema = z.string().startsWith('UPID:');
const maybeUpidSchema = z.string().nullable().optional();

const resourceSchema = z.object({
  type: z.string(),
  vmid: z.coerce.number().int(),
  node: z.string(),
  name: z.string().optional(),
  template: z.union([z.number(), z.boolean()]).optional(),
  tags: z.string().optional(),
});
type Resource = z.infer<typeof resourceSchema>;

const statusSchema = z.object({ status: z.string(), lock: z.string().optional() });
type VmStatus = z.infer<typeof statusSchema>;

const configSchema = z.object({
  cores: z.coerce.number().optional(),
  sockets: z.coerce.number().optional(),
  memory: z.union([z.number(), z.string()]).optional(),
  [DATA_DISK]: z.string().optional(),
  description: z.string().optional(),
});
type VmConfig = z.infer<typeof configSchema>;

const taskSchema = z.object({ status: z.string(), exitstatus: z.string().optional() });

const interfacesSchema = z.object({
  result: z.array(
    z.object({
      name: z.string().optional(),
      'ip-addresses': z
        .array(z.object({ 'ip-address-type': z.string(), 'ip-address': z.string() }))
        .optional(),
    }),
  ),
});

const snapshotsSchema = z.array(z.object({ name: z.string() }));

/** Where a VM lives right now: VMs migrate between nodes, so every call finds it afresh. */
interface Located {
  vmid: number;
  node: string;
}

type Params = Record<string, string | number | undefined>;

function tagsOf(tags: string | undefined): string[] {
  return (tags ?? '')
    .split(/[;,\s]+/)
    .filter(Boolean)
    .map((t) => t.toLowerCase());
}

function isTemplate(vm: Resource): boolean {
  return vm.template === 1 || vm.template === true;
}

const SIZE_UNITS_GB: Record<string, number> = { K: 1 / 1024 ** 2, M: 1 / 1024, G: 1, T: 1024 };

/** `local-lvm:vm-101-disk-0,size=32G` → 32; no size means no disk. */
function diskGbOf(config: VmConfig): number {
  const size = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT])?(?:,|$)/.exec(config[DATA_DISK] ?? '');
  if (!size?.[1]) return 0;
  const factor = size[2] ? (SIZE_UNITS_GB[size[2]] ?? 1) : 1 / 1024 ** 3;
  return Math.round(Number(size[1]) * factor);
}

/** Newer Proxmox versions return memory as a property string (`current=4096`). */
function memoryMbOf(config: VmConfig): number {
  if (typeof config.memory === 'number') return config.memory;
  const mb = /(?:^|current=)(\d+)/.exec(config.memory ?? '');
  return mb?.[1] ? Number(mb[1]) : 0;
}

/** The status line carries Proxmox's message; the body adds per-parameter errors. */
function proxmoxMessage(statusText: string, body: string): string {
  const parts = statusText ? [statusText.trim()] : [];
  try {
    const parsed = z
      .object({ message: z.string().optional(), errors: z.record(z.string(), z.unknown()).optional() })
      .safeParse(JSON.parse(body));
    if (parsed.success) {
      const { message, errors } = parsed.data;
      if (message && message.trim() !== statusText.trim()) parts.push(message.trim());
      for (const [key, value] of Object.entries(errors ?? {})) {
        parts.push(`${key}: ${typeof value === 'string' ? value.trim() : JSON.stringify(value)}`);
      }
    }
  } catch {
    if (body.trim()) parts.push(body.trim().slice(0, 300));
  }
  return parts.join('; ') || 'no error message';
}

export class ProxmoxHypervisor implements Hypervisor {
  readonly name = 'proxmox';
  private readonly apiUrl: string;
  private readonly taskTimeoutMs: number;
  private readonly http: ProviderHttp;

  constructor(private readonly opts: ProxmoxOptions) {
    const base = opts.baseUrl.replace(/\/+$/, '');
    this.apiUrl = base.endsWith('/api2/json') ? base : `${base}/api2/json`;
    this.taskTimeoutMs = opts.taskTimeoutMs ?? 15 * 60_000;
    this.http = new ProviderHttp({
      provider: this.name,
      fetch: opts.fetch ?? fetch,
      timeoutMs: opts.requestTimeoutMs ?? 30_000,
      secret: opts.tokenSecret,
      errorMessage: proxmoxMessage,
    });
  }

  async createVm(spec: VmSpec): Promise<VmInfo> {
    const op = 'createVm';
    const vms = await this.listVms(op);
    const tagged = this.tagged(vms, spec.podId);
    if (tagged) {
      // The tag is written together with cores and memory, so only the disk and power may be left to do.
      await this.completeSetup(op, tagged, spec, false);
      return this.describe(op, tagged, spec.podId);
    }
    const orphan = await this.interruptedClone(op, vms, spec);
    if (orphan) {
      await this.completeSetup(op, orphan, spec, true);
      return this.describe(op, orphan, spec.podId);
    }
    const template = vms.find((vm) => vm.vmid === this.opts.templateVmId);
    if (!template) {
      throw this.fail(op, `template VM ${this.opts.templateVmId} not found`, false, 'TEMPLATE_NOT_FOUND');
    }
    // nextid is not a reservation: a concurrent clone can take it, and the loser's clone fails
    // ("already exists", a 500) and is retried with a fresh id.
    const vmid = await this.request(op, 'GET', '/cluster/nextid', z.coerce.number().int());
    const upid = await this.request(op, 'POST', `${this.vmPath(template)}/clone`, upidSchema, {
      newid: vmid,
      name: spec.hostname,
      full: 1,
      target: spec.node,
      description: cloneMarker(spec.podId),
    });
    await this.waitTask(op, upid);
    const vm: Located = { vmid, node: spec.node };
    await this.completeSetup(op, vm, spec, true);
    return this.describe(op, vm, spec.podId);
  }

  async findVm(ref: VmRef): Promise<VmInfo | null> {
    const vm = await this.locate('findVm', ref.podId);
    return vm ? this.describe('findVm', vm, ref.podId) : null;
  }

  async startVm(ref: VmRef): Promise<void> {
    const op = 'startVm';
    const vm = await this.mustLocate(op, ref.podId);
    const status = await this.status(op, vm);
    // Proxmox reads a `suspended` lock as hibernation and would resume the VM, so refusing is our job.
    if (status.lock === SUSPENSION_LOCK) {
      throw this.fail(op, `VM ${vm.vmid} is locked (suspended)`, false, 'VM_LOCKED');
    }
    if (status.status === 'running') return;
    await this.powerTransition(op, vm, 'start', {}, 'running');
  }

  async stopVm(ref: VmRef): Promise<void> {
    const op = 'stopVm';
    const vm = await this.mustLocate(op, ref.podId);
    if ((await this.status(op, vm)).status !== 'running') return;
    // A guest that ignores ACPI is stopped hard once the timeout passes, so the task always ends.
    await this.powerTransition(op, vm, 'shutdown', { timeout: SHUTDOWN_TIMEOUT_S, forceStop: 1 }, 'stopped');
  }

  async setLocked(ref: VmRef, locked: boolean): Promise<void> {
    const op = 'setLocked';
    const vm = await this.mustLocate(op, ref.podId);
    const { lock } = await this.status(op, vm);
    if (locked) {
      if (lock === SUSPENSION_LOCK) return;
      // A backup or migration lock is Proxmox's own; overwriting it would corrupt that operation.
      if (lock) throw this.fail(op, `VM ${vm.vmid} is busy (lock ${lock})`, true, 'VM_BUSY');
      await this.configure(op, vm, { lock: SUSPENSION_LOCK });
    } else if (lock === SUSPENSION_LOCK) {
      await this.configure(op, vm, { delete: 'lock' });
    }
  }

  async resizeVm(ref: VmRef, to: Resources): Promise<void> {
    const op = 'resizeVm';
    const vm = await this.mustLocate(op, ref.podId);
    const currentGb = diskGbOf(await this.config(op, vm));
    if (to.diskGb < currentGb) {
      throw this.fail(op, `disks cannot shrink (${currentGb} GB to ${to.diskGb} GB)`, false, 'DISK_SHRINK');
    }
    await this.configure(op, vm, { cores: to.vcpu, memory: to.memoryMb });
    if (to.diskGb > currentGb) await this.growDisk(op, vm, to.diskGb);
  }

  async destroyVm(ref: VmRef): Promise<void> {
    const op = 'destroyVm';
    const vm = await this.locate(op, ref.podId);
    if (!vm) return;
    const status = await this.status(op, vm);
    // Proxmox refuses to stop or delete a locked VM, and a terminated pod may well be suspended.
    if (status.lock === SUSPENSION_LOCK) await this.configure(op, vm, { delete: 'lock' });
    if (status.status === 'running') await this.powerTransition(op, vm, 'stop', {}, 'stopped');
    try {
      const upid = await this.request(op, 'DELETE', this.vmPath(vm), upidSchema, {
        purge: 1,
        'destroy-unreferenced-disks': 1,
      });
      await this.waitTask(op, upid);
    } catch (err) {
      // A concurrent or earlier destroy that finished first is the outcome we wanted.
      if (err instanceof ProviderError && !(await this.locate(op, ref.podId))) return;
      throw err;
    }
  }

  async snapshotVm(ref: VmRef, name: string): Promise<Snapshot> {
    const op = 'snapshotVm';
    const vm = await this.mustLocate(op, ref.podId);
    const [status, config, snapshots] = await Promise.all([
      this.status(op, vm),
      this.config(op, vm),
      this.snapshots(op, vm),
    ]);
    if (!snapshots.includes(name)) {
      await this.withoutSuspension(op, vm, status, async () => {
        const upid = await this.request(op, 'POST', `${this.vmPath(vm)}/snapshot`, upidSchema, {
          snapname: name,
        });
        await this.waitTask(op, upid);
      });
    }
    return { snapshotId: name, sizeGb: diskGbOf(config) };
  }

  async restoreSnapshot(ref: VmRef, snapshotId: string): Promise<void> {
    const op = 'restoreSnapshot';
    const vm = await this.mustLocate(op, ref.podId);
    const [status, snapshots] = await Promise.all([this.status(op, vm), this.snapshots(op, vm)]);
    if (!snapshots.includes(snapshotId)) {
      throw this.fail(op, `no snapshot ${snapshotId} on VM ${vm.vmid}`, false, 'SNAPSHOT_NOT_FOUND');
    }
    await this.withoutSuspension(op, vm, status, async () => {
      // A rollback to a snapshot without RAM leaves the VM stopped; a running pod stays running.
      const upid = await this.request(
        op,
        'POST',
        `${this.vmPath(vm)}/snapshot/${encodeURIComponent(snapshotId)}/rollback`,
        upidSchema,
        { start: status.status === 'running' ? 1 : undefined },
      );
      await this.waitTask(op, upid);
    });
  }

  private vmPath(vm: Located): string {
    return `/nodes/${encodeURIComponent(vm.node)}/qemu/${vm.vmid}`;
  }

  private async listVms(op: string): Promise<Resource[]> {
    const resources = await this.request(op, 'GET', '/cluster/resources', z.array(resourceSchema), {
      type: 'vm',
    });
    return resources.filter((r) => r.type === 'qemu');
  }

  private tagged(vms: Resource[], podId: string): Located | null {
    const tag = podTag(podId);
    const vm = vms.find((v) => !isTemplate(v) && tagsOf(v.tags).includes(tag));
    return vm ? { vmid: vm.vmid, node: vm.node } : null;
  }

  /**
   * A create that died between the clone and the config call leaves a VM without the pod tag.
   * Only a VM with the pod's host name *and* the pod marker in its description is adopted, so an
   * unrelated VM that happens to share the name is never touched.
   */
  private async interruptedClone(op: string, vms: Resource[], spec: VmSpec): Promise<Located | null> {
    const candidates = vms.filter(
      (v) =>
        !isTemplate(v) &&
        v.name === spec.hostname &&
        !tagsOf(v.tags).some((t) => t.startsWith('podplane-pod-')),
    );
    for (const candidate of candidates) {
      const vm = { vmid: candidate.vmid, node: candidate.node };
      if ((await this.config(op, vm)).description?.includes(cloneMarker(spec.podId))) return vm;
    }
    return null;
  }

  private async locate(op: string, podId: string): Promise<Located | null> {
    return this.tagged(await this.listVms(op), podId);
  }

  private async mustLocate(op: string, podId: string): Promise<Located> {
    const vm = await this.locate(op, podId);
    if (!vm) throw this.fail(op, `no VM for pod ${podId}`, false, 'VM_NOT_FOUND');
    return vm;
  }

  private async completeSetup(op: string, vm: Located, spec: VmSpec, configure: boolean): Promise<void> {
    if (configure) {
      await this.configure(op, vm, {
        cores: spec.vcpu,
        memory: spec.memoryMb,
        tags: `podplane;${podTag(spec.podId)}`,
      });
    }
    // Grow only: an adopted VM's disk may already be larger after a plan change.
    if (diskGbOf(await this.config(op, vm)) < spec.diskGb) await this.growDisk(op, vm, spec.diskGb);
    const status = await this.status(op, vm);
    if (status.status !== 'running' && status.lock !== SUSPENSION_LOCK) {
      await this.powerTransition(op, vm, 'start', {}, 'running');
    }
  }

  private async describe(op: string, vm: Located, podId: string): Promise<VmInfo> {
    const [status, config] = await Promise.all([this.status(op, vm), this.config(op, vm)]);
    const running = status.status === 'running';
    return {
      vmId: String(vm.vmid),
      podId,
      node: vm.node,
      status: running ? 'running' : 'stopped',
      locked: status.lock === SUSPENSION_LOCK,
      vcpu: (config.cores ?? 1) * (config.sockets ?? 1),
      memoryMb: memoryMbOf(config),
      diskGb: diskGbOf(config),
      ipAddress: running ? await this.ipAddress(op, vm) : null,
    };
  }

  private status(op: string, vm: Located): Promise<VmStatus> {
    return this.request(op, 'GET', `${this.vmPath(vm)}/status/current`, statusSchema);
  }

  private config(op: string, vm: Located): Promise<VmConfig> {
    return this.request(op, 'GET', `${this.vmPath(vm)}/config`, configSchema);
  }

  private async snapshots(op: string, vm: Located): Promise<string[]> {
    const list = await this.request(op, 'GET', `${this.vmPath(vm)}/snapshot`, snapshotsSchema);
    // `current` is Proxmox's "you are here" entry, not a snapshot.
    return list.map((s) => s.name).filter((n) => n !== 'current');
  }

  /** The guest agent answers only once the guest has booted; until then the VM has no known IP. */
  private async ipAddress(op: string, vm: Located): Promise<string | null> {
    try {
      const { result } = await this.request(
        op,
        'GET',
        `${this.vmPath(vm)}/agent/network-get-interfaces`,
        interfacesSchema,
      );
      for (const nic of result) {
        for (const addr of nic['ip-addresses'] ?? []) {
          if (addr['ip-address-type'] === 'ipv4' && !addr['ip-address'].startsWith('127.')) {
            return addr['ip-address'];
          }
        }
      }
      return null;
    } catch (err) {
      if (err instanceof ProviderError) return null;
      throw err;
    }
  }

  /** POST config is asynchronous on current Proxmox (a UPID) and synchronous on older ones (null). */
  private async configure(op: string, vm: Located, params: Params): Promise<void> {
    const upid = await this.request(op, 'POST', `${this.vmPath(vm)}/config`, maybeUpidSchema, params);
    if (upid) await this.waitTask(op, upid);
  }

  private async growDisk(op: string, vm: Located, diskGb: number): Promise<void> {
    const upid = await this.request(op, 'PUT', `${this.vmPath(vm)}/resize`, maybeUpidSchema, {
      disk: DATA_DISK,
      size: `${diskGb}G`,
    });
    if (upid) await this.waitTask(op, upid);
  }

  /** Start or stop; losing a race to someone who reached the same state first still counts as success. */
  private async powerTransition(
    op: string,
    vm: Located,
    action: 'start' | 'stop' | 'shutdown',
    params: Params,
    want: 'running' | 'stopped',
  ): Promise<void> {
    try {
      const upid = await this.request(op, 'POST', `${this.vmPath(vm)}/status/${action}`, upidSchema, params);
      await this.waitTask(op, upid);
    } catch (err) {
      if (err instanceof ProviderError && (await this.status(op, vm)).status === want) return;
      throw err;
    }
  }

  /** Proxmox refuses snapshots and rollbacks of a locked VM: lift the suspension for the operation only. */
  private async withoutSuspension(
    op: string,
    vm: Located,
    status: VmStatus,
    run: () => Promise<void>,
  ): Promise<void> {
    if (status.lock !== SUSPENSION_LOCK) return run();
    await this.configure(op, vm, { delete: 'lock' });
    try {
      await run();
    } finally {
      await this.configure(op, vm, { lock: SUSPENSION_LOCK });
    }
  }

  /**
   * Polls until the task stops. A failed task is retryable: the common causes are lock and storage
   * timeouts, Proxmox removes a failed clone itself, and the activity's retry policy bounds the attempts.
   */
  private async waitTask(op: string, upid: string): Promise<void> {
    // Tasks are served by the node that runs them, which the UPID names.
    const node = upid.split(':')[1];
    if (!node) throw this.fail(op, `malformed task id ${upid}`, false, 'BAD_RESPONSE');
    const path = `/nodes/${encodeURIComponent(node)}/tasks/${encodeURIComponent(upid)}/status`;
    const deadline = Date.now() + this.taskTimeoutMs;
    for (;;) {
      const task = await this.request(op, 'GET', path, taskSchema);
      if (task.status === 'stopped') {
        const exit = task.exitstatus ?? 'no exit status';
        if (exit === 'OK' || /^WARNINGS: \d+$/.test(exit)) return;
        throw this.fail(op, `task ${upid} failed: ${exit}`, true, 'TASK_FAILED');
      }
      if (Date.now() >= deadline) {
        throw this.fail(
          op,
          `task ${upid} still running after ${this.taskTimeoutMs} ms`,
          true,
          'TASK_TIMEOUT',
        );
      }
      await sleep(this.opts.taskPollMs);
    }
  }

  private async request<T>(
    op: string,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    schema: z.ZodType<T>,
    params: Params = {},
  ): Promise<T> {
    const form = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value !== undefined) form.set(key, String(value));
    const hasBody = method === 'POST' || method === 'PUT';
    const query = !hasBody && form.toString() !== '' ? `?${form.toString()}` : '';
    const headers: Record<string, string> = {
      Authorization: `PVEAPIToken=${this.opts.tokenId}=${this.opts.tokenSecret}`,
      Accept: 'application/json',
    };
    if (hasBody) headers['Content-Type'] = 'application/x-www-form-urlencoded';
    const what = `${method} ${path}`;
    const text = await this.http.send(op, what, {
      url: `${this.apiUrl}${path}${query}`,
      method,
      headers,
      body: hasBody ? form.toString() : undefined,
    });
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw this.fail(op, `${what}: the response is not JSON`, false, 'BAD_RESPONSE');
    }
    const parsed = z.object({ data: schema }).safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` at data.${issue.path.join('.')}` : '';
      throw this.fail(
        op,
        `${what}: unexpected response${where}: ${issue?.message ?? 'invalid'}`,
        false,
        'BAD_RESPONSE',
      );
    }
    return parsed.data.data;
  }

  private fail(op: string, message: string, retryable: boolean, code: string): ProviderError {
    return this.http.fail(op, message, retryable, code);
  }
}
