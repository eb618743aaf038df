/**
 * The production hypervisor: Proxmox VE over REST with an API token that is not root. VMs are
 * found by the VM id recorded on the pod and a per-pod tag, tasks polled by UPID, backups are
 * vzdump archives on a backup storage (found again by their notes), and a suspension is a tag
 * plus the customer's role on the VM taken away (only root may set a config `lock`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Resources } from '../domain/cloudpods';
import { ProviderError } from './errors';
import { ProviderHttp } from './http';
import type { BackupArtifact, Hypervisor, VmInfo, VmRef, VmSpec } from './hypervisor';

export interface ProxmoxOptions {
  /** `https://pve.example.com:8006`, with or without the `/api2/json` suffix */
  baseUrl: string;
  /** `user@realm!tokenname` */
  tokenId: string;
  tokenSecret: string;
  /** the template pods are cloned from, for nodes without one of their own in `templates` */
  templateVmId: number;
  /**
   * node → the template on that node. A clone reaches another node only from a template whose
   * disks are on shared storage (Proxmox refuses `target` otherwise), so a cluster with local
   * storage keeps one template per node.
   */
  templates?: Record<string, number>;
  /** the customer's own Proxmox access to their VMs, granted at creation and taken away while suspended */
  customerAccess?: CustomerAccess | null;
  /** where vzdump writes backups (`PROXMOX_BACKUP_STORAGE`); vzdump's own default is `local` */
  backupStorage?: string;
  taskPollMs: number;
  /** a task still running after this long fails the call (retryable); default 15 minutes */
  taskTimeoutMs?: number;
  /** one HTTP request; default 30 seconds */
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * Whose role on `/vms/<vmid>` is the customer's power over their VM: a Proxmox user or group
 * named by a pattern in which `{customer}` stands for the Podplane customer id.
 */
export interface CustomerAccess {
  type: 'user' | 'group';
  pattern: string;
  role: string;
}

/** `user:{customer}@pve:PVEVMUser` or `group:customer-{customer}:PVEVMUser` (`PROXMOX_CUSTOMER_ACCESS`). */
export function parseCustomerAccess(value: string): CustomerAccess {
  const m = /^(user|group):([^:\s]*\{customer\}[^:\s]*):([A-Za-z0-9._-]+)$/.exec(value);
  if (!m?.[1] || !m[2] || !m[3]) {
    throw new Error(
      "must be '<user|group>:<name with {customer}>:<role>', e.g. 'user:{customer}@pve:PVEVMUser'",
    );
  }
  if (m[1] === 'user' && !/^[^@]+@[A-Za-z][A-Za-z0-9._-]+$/.test(m[2])) {
    throw new Error("a user must be '<name>@<realm>', e.g. '{customer}@pve'");
  }
  return { type: m[1] as CustomerAccess['type'], pattern: m[2], role: m[3] };
}

/** `pve1=9000,pve2=9001` (`PROXMOX_TEMPLATES`). */
export function parseTemplates(value: string): Record<string, number> {
  const templates: Record<string, number> = {};
  for (const item of value
    .split(',')
    .map((i) => i.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z0-9][A-Za-z0-9.-]*)=(\d+)$/.exec(item);
    if (!m?.[1] || !m[2] || Number(m[2]) < 100)
      throw new Error(`'${item}' is not <node>=<template vmid ≥ 100>`);
    templates[m[1]] = Number(m[2]);
  }
  return templates;
}

/** The tag that marks a VM suspended by Podplane (a config `lock` is root's only). */
export const SUSPENDED_TAG = 'podplane-suspended';

/** Marks a VM that a plan change shut down to apply new cores or memory, until it runs again. */
const RESTARTING_TAG = 'podplane-restarting';

/**
 * The lock Proxmox itself sets on a hibernated VM: a start resumes it and removes the lock, but
 * vzdump and a restore refuse it.
 */
const HIBERNATED_LOCK = 'suspended';

/** The disk that carries the pod's data: the one `resizeVm` grows. */
const DATA_DISK = 'scsi0';

const SHUTDOWN_TIMEOUT_S = 60;

/** Refused task polls in a row that `waitTask` sits out before it gives up on the operation. */
const MAX_REFUSED_POLLS = 5;

/** The tag that ties a VM to its pod; Proxmox tags allow only `[a-z0-9_][a-z0-9_+.-]*`. */
export function podTag(podId: string): string {
  return `podplane-pod-${podId.toLowerCase().replace(/[^a-z0-9_+.-]/g, '-')}`;
}

/** Written into the clone's description so an interrupted create can find its untagged VM. */
function cloneMarker(podId: string): string {
  return `podplane-pod:${podId}`;
}

/** What `backupVm` accepts as a name: the interface's 40 characters, safe in a vzdump notes template. */
const BACKUP_NAME = /^[A-Za-z0-9_-]{1,40}$/;

/**
 * The notes vzdump writes next to the archive (`notes-template`): a retried backup finds the
 * archive its first attempt made by them, and they name the pod the backup belongs to.
 */
function backupNotes(name: string, podId: string): string {
  return `podplane-backup:${name}:${podId}`;
}

function podOfNotes(notes: string | undefined): string | null {
  return /^podplane-backup:[A-Za-z0-9_-]{1,40}:(\S+)$/.exec(notes ?? '')?.[1] ?? null;
}

/** `local:backup/vzdump-qemu-101-2026_01_01-00_00_00.vma.zst` → storage and the VM id it was taken of. */
function parseBackupVolid(volid: string): { storage: string; vmid: number } | null {
  const m = /^([^:/]+):backup\/vzdump-qemu-(\d+)-[^/]+$/.exec(volid);
  return m?.[1] && m[2] ? { storage: m[1], vmid: Number(m[2]) } : null;
}

/** `local-lvm:vm-101-disk-0,size=32G` → `local-lvm`. */
function storageOfDisk(disk: string | undefined): string | undefined {
  return /^([^:,]+):/.exec(disk ?? '')?.[1];
}

const upidSchema = z.string().startsWith('UPID:');
const maybeUpidSchema = z.string().nullable().optional();

/**
 * A `/cluster/resources` entry: `vmid`, `node`, `type`, `lock` and `tags` are there at once;
 * `name` and `template` only once the status data (refreshed every 10 s) has the VM.
 */
const resourceSchema = z.object({
  type: z.string(),
  vmid: z.coerce.number().int(),
  node: z.string(),
  name: z.string().optional(),
  template: z.union([z.number(), z.boolean()]).optional(),
  tags: z.string().optional(),
  lock: z.string().optional(),
});
type Resource = z.infer<typeof resourceSchema>;

const statusSchema = z.object({ status: z.string(), lock: z.string().optional() });
type VmStatus = z.infer<typeof statusSchema>;

const configSchema = z.object({
  name: z.string().optional(),
  tags: z.string().optional(),
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

const nodesSchema = z.array(z.object({ node: z.string(), status: z.string().optional() }));

/** A backup volume as the storage content listing reports it (`notes` is its first line only). */
const backupVolumeSchema = z.object({
  volid: z.string(),
  vmid: z.coerce.number().int().optional(),
  size: z.coerce.number().optional(),
  notes: z.string().optional(),
});
type BackupVolume = z.infer<typeof backupVolumeSchema>;

const storageStatusSchema = z.object({
  content: z.string(),
  shared: z.coerce.number().optional(),
});
type StorageStatus = z.infer<typeof storageStatusSchema>;

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

/** The Proxmox VM id recorded on the pod; anything else (another hypervisor's id) is none. */
function recordedVmid(ref: VmRef): number | null {
  return ref.vmId && /^[1-9]\d{2,8}$/.test(ref.vmId) ? Number(ref.vmId) : null;
}

function vcpuOf(config: VmConfig): number {
  return (config.cores ?? 1) * (config.sockets ?? 1);
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
  private readonly backupStorage: string;
  private readonly http: ProviderHttp;

  constructor(private readonly opts: ProxmoxOptions) {
    const base = opts.baseUrl.replace(/\/+$/, '');
    this.apiUrl = base.endsWith('/api2/json') ? base : `${base}/api2/json`;
    this.taskTimeoutMs = opts.taskTimeoutMs ?? 15 * 60_000;
    this.backupStorage = opts.backupStorage ?? 'local';
    this.http = new ProviderHttp({
      provider: this.name,
      fetch: opts.fetch ?? fetch,
      timeoutMs: opts.requestTimeoutMs ?? 30_000,
      secret: opts.tokenSecret,
      errorMessage: proxmoxMessage,
    });
  }

  /** `/cluster/nextid` is not a reservation: the id is recorded on the pod, and a clash is `VMID_TAKEN`. */
  async reserveVmId(): Promise<string> {
    return String(await this.request('reserveVmId', 'GET', '/cluster/nextid', z.coerce.number().int()));
  }

  async createVm(spec: VmSpec): Promise<VmInfo> {
    const op = 'createVm';
    const vms = await this.listVms(op);
    const own = await this.ownVm(op, vms, spec);
    if (own) {
      await this.completeSetup(op, own.vm, spec, !own.tagged);
      return this.describe(op, own.vm, spec.podId);
    }
    const recorded = recordedVmid(spec);
    const vmid = recorded ?? (await this.request(op, 'GET', '/cluster/nextid', z.coerce.number().int()));
    if (recorded !== null && vms.some((v) => v.vmid === vmid)) throw this.vmidTaken(op, vmid);
    const vm = spec.fromBackupId
      ? await this.restoreInto(op, vms, spec, spec.fromBackupId, vmid)
      : await this.cloneInto(op, vms, spec, vmid);
    await this.completeSetup(op, vm, spec, !spec.fromBackupId);
    return this.describe(op, vm, spec.podId);
  }

  async findVm(ref: VmRef): Promise<VmInfo | null> {
    const vm = await this.locate('findVm', ref);
    return vm ? this.describe('findVm', vm, ref.podId) : null;
  }

  /** A hibernated VM (Proxmox's own `suspended` lock) is resumed by the start, as Proxmox does. */
  async startVm(ref: VmRef): Promise<void> {
    const op = 'startVm';
    const vm = await this.mustLocate(op, ref);
    const [status, config] = await Promise.all([this.status(op, vm), this.config(op, vm)]);
    if (tagsOf(config.tags).includes(SUSPENDED_TAG)) {
      throw this.fail(op, `VM ${vm.vmid} is suspended`, false, 'VM_SUSPENDED');
    }
    if (status.status === 'running') return;
    await this.powerTransition(op, vm, 'start', {}, 'running');
  }

  async stopVm(ref: VmRef): Promise<void> {
    const op = 'stopVm';
    const vm = await this.mustLocate(op, ref);
    if ((await this.status(op, vm)).status !== 'running') return;
    await this.shutdown(op, vm);
  }

  /**
   * Suspend: the suspension tag first (so a half-done suspension is seen as one, and undone
   * whole), then the customer's role on the VM goes, then a VM someone started meanwhile is
   * stopped. Unsuspend: the role comes back, then the tag goes; the VM stays stopped.
   */
  async setSuspended(ref: VmRef, suspended: boolean): Promise<void> {
    const op = 'setSuspended';
    const vm = await this.mustLocate(op, ref);
    const config = await this.config(op, vm);
    const tags = tagsOf(config.tags);
    if (suspended) {
      if (!tags.includes(SUSPENDED_TAG))
        await this.configure(op, vm, { tags: [...tags, SUSPENDED_TAG].join(';') });
      await this.customerAccess(op, vm, ref, false);
      if ((await this.status(op, vm)).status === 'running') await this.shutdown(op, vm);
    } else {
      await this.customerAccess(op, vm, ref, true);
      if (tags.includes(SUSPENDED_TAG)) {
        await this.configure(op, vm, { tags: tags.filter((t) => t !== SUSPENDED_TAG).join(';') });
      }
    }
  }

  /**
   * Cores are never hot-plugged by Proxmox and memory only with memory hotplug, so a running VM
   * whose cores or memory change is shut down, reconfigured and started again. The restart is
   * marked with a tag first: a retry after a crash in between starts the VM it finds stopped.
   */
  async resizeVm(ref: VmRef, to: Resources): Promise<void> {
    const op = 'resizeVm';
    const vm = await this.mustLocate(op, ref);
    const [status, config] = await Promise.all([this.status(op, vm), this.config(op, vm)]);
    const currentGb = diskGbOf(config);
    if (to.diskGb < currentGb) {
      throw this.fail(op, `disks cannot shrink (${currentGb} GB to ${to.diskGb} GB)`, false, 'DISK_SHRINK');
    }
    const tags = tagsOf(config.tags);
    const changes = vcpuOf(config) !== to.vcpu || memoryMbOf(config) !== to.memoryMb;
    const restart = tags.includes(RESTARTING_TAG) || (changes && status.status === 'running');
    if (restart && !tags.includes(RESTARTING_TAG)) {
      await this.configure(op, vm, { tags: [...tags, RESTARTING_TAG].join(';') });
    }
    if (restart && status.status === 'running') await this.shutdown(op, vm);
    // On a stopped VM the change applies at once (and takes whatever an earlier attempt left pending).
    if (changes || restart) await this.configure(op, vm, { cores: to.vcpu, sockets: 1, memory: to.memoryMb });
    if (to.diskGb > currentGb) await this.growDisk(op, vm, to.diskGb);
    if (restart) {
      await this.powerTransition(op, vm, 'start', {}, 'running');
      await this.configure(op, vm, { tags: tags.filter((t) => t !== RESTARTING_TAG).join(';') });
    }
  }

  /**
   * Destroy with purge, which also removes the VM's ACL entries. Proxmox's destroy ignores a
   * hibernated VM's `suspended` lock; any other lock fails the task (retryable: it is an
   * operation of Proxmox's own that ends).
   */
  async destroyVm(ref: VmRef): Promise<void> {
    const op = 'destroyVm';
    const vm = await this.locate(op, ref);
    if (!vm) return;
    if ((await this.status(op, vm)).status === 'running') {
      await this.powerTransition(op, vm, 'stop', {}, 'stopped');
    }
    try {
      const upid = await this.request(op, 'DELETE', this.vmPath(vm), upidSchema, {
        purge: 1,
        'destroy-unreferenced-disks': 1,
      });
      await this.waitTask(op, upid);
    } catch (err) {
      // A concurrent or earlier destroy that finished first is the outcome we wanted.
      if (err instanceof ProviderError && !(await this.locate(op, ref))) return;
      throw err;
    }
  }

  async backupVm(ref: VmRef, name: string): Promise<BackupArtifact> {
    const op = 'backupVm';
    if (!BACKUP_NAME.test(name)) {
      throw this.fail(op, `backup name '${name}' is not 1-40 of [A-Za-z0-9_-]`, false, 'BAD_BACKUP_NAME');
    }
    const notes = backupNotes(name, ref.podId);
    const ours = (v: BackupVolume) => v.notes === notes;
    const vm = await this.locate(op, ref);
    if (!vm) {
      // The VM may be gone since an earlier attempt made the backup (a retried pre-termination backup).
      const earlier = await this.findArchive(op, this.backupStorage, undefined, ours, null);
      if (earlier) return this.artifact(earlier.volume, ref.podId);
      throw this.fail(op, `no VM for pod ${ref.podId}`, false, 'VM_NOT_FOUND');
    }
    // vzdump takes any storage and fails only inside its task; a storage that does not exist or
    // cannot hold backups is a configuration error no retry fixes, so it is refused up front
    // (the status call answers 400 "No such storage." where the content listing answers a 500).
    const storage = await this.storageStatus(op, vm.node, this.backupStorage);
    if (!storage.content.split(',').includes('backup')) {
      throw this.fail(
        op,
        `storage '${this.backupStorage}' does not take backups (content: ${storage.content})`,
        false,
        'BACKUP_STORAGE_INVALID',
      );
    }
    const done = (await this.archivesOn(op, vm.node, this.backupStorage, vm.vmid)).find(ours);
    if (done) return this.artifact(done, ref.podId);
    const status = await this.status(op, vm);
    // `backup` is an earlier attempt's vzdump still running: its archive turns up once it ends.
    if (status.lock && status.lock !== HIBERNATED_LOCK) {
      throw this.fail(op, `VM ${vm.vmid} is busy (lock ${status.lock})`, true, 'VM_BUSY');
    }
    // vzdump refuses a hibernated VM's lock (qemu-server VZDump/QemuServer.pm `lock_vm`): the VM
    // is resumed for the backup and hibernated again after it.
    const hibernated = status.lock === HIBERNATED_LOCK;
    if (hibernated) await this.powerTransition(op, vm, 'start', {}, 'running');
    const started = await this.request(
      op,
      'POST',
      `/nodes/${encodeURIComponent(vm.node)}/vzdump`,
      z.string(),
      {
        vmid: vm.vmid,
        storage: this.backupStorage,
        mode: 'snapshot',
        compress: 'zstd',
        'notes-template': notes,
      },
    );
    // vzdump answers a plain `OK` and does nothing when the VM runs on another node.
    if (!upidSchema.safeParse(started).success) {
      throw this.fail(op, `vzdump did not start on ${vm.node}: the VM moved`, true, 'VM_MOVED');
    }
    await this.waitTask(op, started);
    if (hibernated) {
      const upid = await this.request(op, 'POST', `${this.vmPath(vm)}/status/suspend`, upidSchema, {
        todisk: 1,
      });
      await this.waitTask(op, upid);
    }
    const made = (await this.archivesOn(op, vm.node, this.backupStorage, vm.vmid)).find(ours);
    if (!made) {
      throw this.fail(
        op,
        `vzdump of VM ${vm.vmid} ended without an archive noted '${notes}' on '${this.backupStorage}'`,
        true,
        'BACKUP_MISSING',
      );
    }
    return this.artifact(made, ref.podId);
  }

  /** An archive without Podplane's notes is not one of ours, and is not reported. */
  async findBackup(backupId: string): Promise<BackupArtifact | null> {
    const op = 'findBackup';
    const volid = parseBackupVolid(backupId);
    if (!volid) return null;
    const found = await this.findArchive(op, volid.storage, volid.vmid, (v) => v.volid === backupId, null);
    const podId = podOfNotes(found?.volume.notes);
    return found && podId ? this.artifact(found.volume, podId) : null;
  }

  async restoreBackup(ref: VmRef, backupId: string): Promise<void> {
    const op = 'restoreBackup';
    const vm = await this.mustLocate(op, ref);
    await this.mustFindArchive(op, backupId, vm.node);
    const [status, config] = await Promise.all([this.status(op, vm), this.config(op, vm)]);
    // A restore refuses a locked VM (create_and_lock_config).
    if (status.lock && status.lock !== HIBERNATED_LOCK) {
      throw this.fail(op, `VM ${vm.vmid} is busy (lock ${status.lock})`, true, 'VM_BUSY');
    }
    const running = status.status === 'running';
    // A hibernated VM is resumed and stopped: its saved memory would not match the restored disks.
    if (status.lock === HIBERNATED_LOCK) {
      await this.powerTransition(op, vm, 'start', {}, 'running');
      await this.powerTransition(op, vm, 'stop', {}, 'stopped');
    }
    // Proxmox refuses to restore over a running VM.
    if (running) await this.powerTransition(op, vm, 'stop', {}, 'stopped');
    // Only the disks come from the backup: the plan's cores and memory, the pod's name, tags
    // (the suspension's included) and marker are passed as overrides of the restored configuration.
    const upid = await this.request(op, 'POST', `/nodes/${encodeURIComponent(vm.node)}/qemu`, upidSchema, {
      vmid: vm.vmid,
      archive: backupId,
      force: 1,
      storage: storageOfDisk(config[DATA_DISK]),
      name: config.name,
      tags: config.tags,
      description: config.description,
      cores: config.cores,
      sockets: config.sockets,
      memory: memoryMbOf(config) || undefined,
    });
    await this.waitTask(op, upid);
    // The plan's disk may have grown since the backup: grow the restored one back, never shrink.
    if (diskGbOf(await this.config(op, vm)) < diskGbOf(config)) await this.growDisk(op, vm, diskGbOf(config));
    if (running) await this.powerTransition(op, vm, 'start', {}, 'running');
  }

  async deleteBackup(backupId: string): Promise<void> {
    const op = 'deleteBackup';
    const volid = parseBackupVolid(backupId);
    if (!volid) return;
    const found = await this.findArchive(op, volid.storage, volid.vmid, (v) => v.volid === backupId, null);
    if (!found) return;
    const upid = await this.request(
      op,
      'DELETE',
      `/nodes/${encodeURIComponent(found.node)}/storage/${encodeURIComponent(volid.storage)}/content/${encodeURIComponent(backupId)}`,
      upidSchema,
    );
    await this.waitTask(op, upid);
  }

  /**
   * Clones the node's template into `vmid` on the pod's node. A template on another node is
   * cloned across only when its disks are on shared storage: Proxmox refuses `target` otherwise
   * ("can't clone VM to node … (VM uses local storage)"), and no retry would change that.
   */
  private async cloneInto(op: string, vms: Resource[], spec: VmSpec, vmid: number): Promise<Located> {
    const template = this.templateFor(op, vms, spec.node);
    const elsewhere = template.node !== spec.node;
    if (elsewhere) {
      const storage = storageOfDisk((await this.config(op, template))[DATA_DISK]);
      const status = storage ? await this.storageStatus(op, template.node, storage) : null;
      if (!status?.shared) {
        throw this.fail(
          op,
          `template ${template.vmid} is on node ${template.node} with its disk on storage '${storage ?? 'unknown'}', ` +
            `which node ${spec.node} cannot use: give ${spec.node} its own template (PROXMOX_TEMPLATES) ` +
            `or keep the template on shared storage`,
          false,
          'TEMPLATE_NOT_ON_NODE',
        );
      }
    }
    // A lost answer or a crash from here on is found again by `vmid` (recorded on the pod) and the marker.
    const upid = await this.request(op, 'POST', `${this.vmPath(template)}/clone`, upidSchema, {
      newid: vmid,
      name: spec.hostname,
      full: 1,
      description: cloneMarker(spec.podId),
      ...(elsewhere ? { target: spec.node } : {}),
    });
    await this.waitTask(op, upid);
    return { vmid, node: spec.node };
  }

  private templateFor(op: string, vms: Resource[], node: string): Located {
    const vmid = this.opts.templates?.[node] ?? this.opts.templateVmId;
    const template = vms.find((vm) => vm.vmid === vmid);
    if (!template) throw this.fail(op, `template VM ${vmid} not found`, false, 'TEMPLATE_NOT_FOUND');
    return { vmid: template.vmid, node: template.node };
  }

  /**
   * Restores the archive into `vmid` on the pod's node. The pod's name, tag and marker and the
   * plan's cores and memory go in as overrides of the restored configuration, so the VM is
   * tagged for its pod the moment the restore ends (never for the pod the backup was taken of).
   */
  private async restoreInto(
    op: string,
    vms: Resource[],
    spec: VmSpec,
    backupId: string,
    vmid: number,
  ): Promise<Located> {
    await this.mustFindArchive(op, backupId, spec.node);
    const templateId = this.opts.templates?.[spec.node] ?? this.opts.templateVmId;
    const template = vms.find((vm) => vm.vmid === templateId);
    // New pods' disks live where the template's do; without a template, where the backup says.
    const disks = template
      ? storageOfDisk((await this.config(op, { vmid: template.vmid, node: template.node }))[DATA_DISK])
      : undefined;
    const upid = await this.request(op, 'POST', `/nodes/${encodeURIComponent(spec.node)}/qemu`, upidSchema, {
      vmid,
      archive: backupId,
      unique: 1,
      storage: disks,
      name: spec.hostname,
      description: cloneMarker(spec.podId),
      tags: `podplane;${podTag(spec.podId)}`,
      cores: spec.vcpu,
      sockets: 1,
      memory: spec.memoryMb,
    });
    const vm: Located = { vmid, node: spec.node };
    try {
      await this.waitTask(op, upid);
    } catch (err) {
      await this.discardFailedRestore(op, vm);
      throw err;
    }
    return vm;
  }

  /**
   * A failed restore leaves its VM behind ("VM state is NOT cleaned up"), untagged, so nothing
   * would ever adopt it: remove it, best effort — the error the caller sees is the restore's.
   */
  private async discardFailedRestore(op: string, vm: Located): Promise<void> {
    try {
      const left = (await this.listVms(op)).find((v) => v.vmid === vm.vmid && v.node === vm.node);
      if (!left || isTemplate(left) || tagsOf(left.tags).some((t) => t.startsWith('podplane-pod-'))) return;
      const upid = await this.request(op, 'DELETE', this.vmPath(vm), upidSchema, {
        purge: 1,
        'destroy-unreferenced-disks': 1,
      });
      await this.waitTask(op, upid);
    } catch {
      // the guardian's orphan scan reports what is left
    }
  }

  private artifact(volume: BackupVolume, podId: string): BackupArtifact {
    return {
      backupId: volume.volid,
      podId,
      sizeGb: volume.size ? Math.max(1, Math.ceil(volume.size / 1024 ** 3)) : 0,
    };
  }

  private archivesOn(op: string, node: string, storage: string, vmid?: number): Promise<BackupVolume[]> {
    return this.request(
      op,
      'GET',
      `/nodes/${encodeURIComponent(node)}/storage/${encodeURIComponent(storage)}/content`,
      z.array(backupVolumeSchema),
      { content: 'backup', vmid },
    );
  }

  /**
   * The archive and the node that sees it, trying `prefer` first. A storage that is not shared
   * (like `local`) holds a node's archives only, so the others are asked too. When nothing is
   * found but a node could not be asked, that error is thrown: "missing" must be certain.
   */
  private async findArchive(
    op: string,
    storage: string,
    vmid: number | undefined,
    match: (v: BackupVolume) => boolean,
    prefer: string | null,
  ): Promise<{ node: string; volume: BackupVolume } | null> {
    const online = (await this.request(op, 'GET', '/nodes', nodesSchema))
      .filter((n) => n.status === undefined || n.status === 'online')
      .map((n) => n.node);
    const nodes = prefer ? [prefer, ...online.filter((n) => n !== prefer)] : online;
    let failure: ProviderError | null = null;
    for (const node of nodes) {
      try {
        const volume = (await this.archivesOn(op, node, storage, vmid)).find(match);
        if (volume) return { node, volume };
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err;
        failure = err;
      }
    }
    if (failure) throw failure;
    return null;
  }

  /** The archive must exist and be readable from `node`; either failure is one no retry fixes. */
  private async mustFindArchive(op: string, backupId: string, node: string): Promise<void> {
    const volid = parseBackupVolid(backupId);
    const found = volid
      ? await this.findArchive(op, volid.storage, volid.vmid, (v) => v.volid === backupId, node)
      : null;
    if (!found) throw this.fail(op, `no backup ${backupId}`, false, 'BACKUP_NOT_FOUND');
    if (found.node !== node) {
      throw this.fail(
        op,
        `backup ${backupId} is on node ${found.node} only (storage not shared); node ${node} cannot read it`,
        false,
        'BACKUP_NOT_ON_NODE',
      );
    }
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
   * The pod's VM, for a create: the one carrying the pod's tag, or — a create interrupted between
   * the clone and the tagging — the VM under the id recorded on the pod when its description
   * carries the pod's marker. The id is looked up directly: `/cluster/resources` shows a VM's
   * `name` only once the status data (refreshed every 10 s) has it, but its id, `lock` and `tags`
   * at once. A VM still being cloned or restored (`lock` clone/create) cannot be told apart yet:
   * that is a retryable `VM_BUSY`.
   */
  private async ownVm(
    op: string,
    vms: Resource[],
    ref: VmRef,
  ): Promise<{ vm: Located; tagged: boolean } | null> {
    const tagged = this.tagged(vms, ref.podId);
    if (tagged) return { vm: tagged, tagged: true };
    const recorded = recordedVmid(ref);
    const entry = recorded === null ? undefined : vms.find((v) => v.vmid === recorded);
    if (!entry || isTemplate(entry)) return null;
    const vm = { vmid: entry.vmid, node: entry.node };
    if (entry.lock === 'clone' || entry.lock === 'create') {
      throw this.fail(op, `VM ${entry.vmid} is still being created (lock ${entry.lock})`, true, 'VM_BUSY');
    }
    const config = await this.config(op, vm);
    return config.description?.includes(cloneMarker(ref.podId)) ? { vm, tagged: false } : null;
  }

  private vmidTaken(op: string, vmid: number): ProviderError {
    return this.fail(op, `VM id ${vmid} belongs to another VM`, false, 'VMID_TAKEN');
  }

  private async locate(op: string, ref: VmRef): Promise<Located | null> {
    return this.tagged(await this.listVms(op), ref.podId);
  }

  private async mustLocate(op: string, ref: VmRef): Promise<Located> {
    const vm = await this.locate(op, ref);
    if (!vm) throw this.fail(op, `no VM for pod ${ref.podId}`, false, 'VM_NOT_FOUND');
    return vm;
  }

  /** Plan, tag, disk, the customer's access and power — each only where not done yet. */
  private async completeSetup(op: string, vm: Located, spec: VmSpec, configure: boolean): Promise<void> {
    if (configure) {
      await this.configure(op, vm, {
        cores: spec.vcpu,
        sockets: 1,
        memory: spec.memoryMb,
        tags: `podplane;${podTag(spec.podId)}`,
      });
    }
    const config = await this.config(op, vm);
    // Grow only: an adopted VM's disk may already be larger after a plan change.
    if (diskGbOf(config) < spec.diskGb) await this.growDisk(op, vm, spec.diskGb);
    if (tagsOf(config.tags).includes(SUSPENDED_TAG)) return;
    await this.customerAccess(op, vm, spec, true);
    if ((await this.status(op, vm)).status !== 'running') {
      await this.powerTransition(op, vm, 'start', {}, 'running');
    }
  }

  /**
   * Grants or takes away the customer's role on the VM (`PUT /access/acl`, idempotent both ways).
   * The token needs `VM.Allocate` on the VM and every privilege of the role, or `Permissions.Modify`.
   */
  private async customerAccess(op: string, vm: Located, ref: VmRef, grant: boolean): Promise<void> {
    const access = this.opts.customerAccess;
    if (!access || !ref.customerId) return;
    const who = access.pattern.replaceAll('{customer}', ref.customerId);
    await this.request(op, 'PUT', '/access/acl', z.null().optional(), {
      path: `/vms/${vm.vmid}`,
      roles: access.role,
      [access.type === 'user' ? 'users' : 'groups']: who,
      ...(grant ? {} : { delete: 1 }),
    });
  }

  private async describe(op: string, vm: Located, podId: string): Promise<VmInfo> {
    const [status, config] = await Promise.all([this.status(op, vm), this.config(op, vm)]);
    const running = status.status === 'running';
    return {
      vmId: String(vm.vmid),
      podId,
      node: vm.node,
      status: running ? 'running' : 'stopped',
      suspended: tagsOf(config.tags).includes(SUSPENDED_TAG),
      vcpu: vcpuOf(config),
      memoryMb: memoryMbOf(config),
      diskGb: diskGbOf(config),
      ipAddress: running ? await this.ipAddress(op, vm) : null,
    };
  }

  private status(op: string, vm: Located): Promise<VmStatus> {
    return this.request(op, 'GET', `${this.vmPath(vm)}/status/current`, statusSchema);
  }

  /**
   * The configuration the VM runs with (`current=1`): without it Proxmox answers with pending
   * changes applied — cores or memory that take effect only at the next start.
   */
  private config(op: string, vm: Located): Promise<VmConfig> {
    return this.request(op, 'GET', `${this.vmPath(vm)}/config`, configSchema, { current: 1 });
  }

  private storageStatus(op: string, node: string, storage: string): Promise<StorageStatus> {
    return this.request(
      op,
      'GET',
      `/nodes/${encodeURIComponent(node)}/storage/${encodeURIComponent(storage)}/status`,
      storageStatusSchema,
    );
  }

  /** A guest that ignores ACPI is stopped hard once the timeout passes, so the task always ends. */
  private shutdown(op: string, vm: Located): Promise<void> {
    return this.powerTransition(op, vm, 'shutdown', { timeout: SHUTDOWN_TIMEOUT_S, forceStop: 1 }, 'stopped');
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

  /**
   * Polls until the task stops. A failed task is retryable: the common causes are lock and storage
   * timeouts, Proxmox removes a failed clone itself, and the activity's retry policy bounds the attempts.
   * A poll the server refuses for now (429, 503, a network error) is repeated — after its
   * `Retry-After` when it names one — rather than failing an operation whose task runs on:
   * a few in a row are tolerated, and never past the task's deadline.
   */
  private async waitTask(op: string, upid: string): Promise<void> {
    // Tasks are served by the node that runs them, which the UPID names.
    const node = upid.split(':')[1];
    if (!node) throw this.fail(op, `malformed task id ${upid}`, false, 'BAD_RESPONSE');
    const path = `/nodes/${encodeURIComponent(node)}/tasks/${encodeURIComponent(upid)}/status`;
    const deadline = Date.now() + this.taskTimeoutMs;
    let refused = 0;
    for (;;) {
      let task: z.infer<typeof taskSchema>;
      try {
        task = await this.request(op, 'GET', path, taskSchema);
        refused = 0;
      } catch (err) {
        if (!(err instanceof ProviderError) || !err.retryable || ++refused > MAX_REFUSED_POLLS) throw err;
        const wait = Math.max(err.retryAfterMs ?? 0, this.opts.taskPollMs);
        if (Date.now() + wait >= deadline) throw err;
        await sleep(wait);
        continue;
      }
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
