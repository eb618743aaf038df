/**
 * The embedded default hypervisor: VMs and backups in PostgreSQL (they survive restarts), a
 * configurable latency, and the fault rules of `faults.ts` on every operation.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Resources } from '../../domain/cloudpods';
import type { FaultOperation } from '../../domain/faults';
import { newId } from '../../domain/ids';
import { SimBackup, SimVm } from '../../db/entities';
import { systemEm } from '../../db/orm';
import { ProviderError } from '../errors';
import type { BackupArtifact, Hypervisor, VmInfo, VmRef, VmSpec } from '../hypervisor';
import type { SimulatorOptions } from './faults';

function simVmId(podId: string): string {
  return `sim-${podId.slice(4)}`;
}

function ipFor(podId: string): string {
  const h = createHash('sha256').update(podId).digest();
  return `10.${h[0] ?? 0}.${h[1] ?? 0}.${((h[2] ?? 0) % 250) + 2}`;
}

/** What `backupVm` accepts as a name (the interface's promise: at most 40 characters). */
const BACKUP_NAME = /^[A-Za-z0-9_-]{1,40}$/;

/**
 * The simulator's backup id for a name: readable (`sbk-<name>`) so a fault glob can aim at it,
 * and within the 40-character column — a long name keeps its start plus a hash of the whole.
 */
export function simBackupId(name: string): string {
  if (name.length <= 36) return `sbk-${name}`;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `sbk-${name.slice(0, 27)}-${hash}`;
}

export class SimulatedHypervisor implements Hypervisor {
  readonly name = 'simulated-hypervisor';
  constructor(private readonly opts: SimulatorOptions) {}

  private em() {
    return systemEm(this.opts.orm);
  }

  private faulty<T>(operation: FaultOperation, subject: string, effect: () => Promise<T>): Promise<T> {
    return this.opts.faults.around(this.name, operation, subject, effect);
  }

  private async pause(): Promise<void> {
    if (this.opts.latencyMs > 0) await sleep(this.opts.latencyMs);
  }

  private fail(operation: string, message: string, code: string): ProviderError {
    return new ProviderError(this.name, operation, message, false, code);
  }

  private toInfo(vm: SimVm): VmInfo {
    return {
      vmId: vm.vmId,
      podId: vm.podId,
      node: vm.node,
      status: vm.status as VmInfo['status'],
      suspended: vm.locked,
      vcpu: vm.vcpu,
      memoryMb: vm.memoryMb,
      diskGb: vm.diskGb,
      ipAddress: vm.status === 'starting' ? null : vm.ipAddress,
    };
  }

  private toArtifact(backup: SimBackup): BackupArtifact {
    return { backupId: backup.id, podId: backup.podId, sizeGb: backup.sizeGb };
  }

  private async load(ref: VmRef): Promise<SimVm | null> {
    const vm = await this.em().findOne(SimVm, { podId: ref.podId });
    if (vm?.status === 'starting' && Date.now() - vm.createdAt.getTime() >= this.opts.bootMs) {
      vm.status = 'running';
      await this.em().nativeUpdate(SimVm, { vmId: vm.vmId, status: 'starting' }, { status: 'running' });
    }
    return vm;
  }

  private async mustLoad(ref: VmRef, operation: string): Promise<SimVm> {
    const vm = await this.load(ref);
    if (!vm) throw this.fail(operation, `no VM for pod ${ref.podId}`, 'VM_NOT_FOUND');
    return vm;
  }

  private async mustLoadBackup(backupId: string, operation: string): Promise<SimBackup> {
    const backup = await this.em().findOne(SimBackup, { id: backupId });
    if (!backup) throw this.fail(operation, `no backup ${backupId}`, 'BACKUP_NOT_FOUND');
    return backup;
  }

  /** The id derived from the pod, unless another VM holds it (then a fresh one), as `/cluster/nextid` would. */
  async reserveVmId(ref: VmRef): Promise<string> {
    const derived = simVmId(ref.podId);
    const holder = await this.em().findOne(SimVm, { vmId: derived });
    return holder && holder.podId !== ref.podId ? simVmId(newId('pod')) : derived;
  }

  createVm(spec: VmSpec): Promise<VmInfo> {
    return this.faulty('createVm', spec.podSlug, async () => {
      // The pod's existing VM is adopted before anything else, as the Proxmox client does.
      const existing = await this.load(spec);
      if (existing) return this.toInfo(existing);
      const vmId = spec.vmId ?? simVmId(spec.podId);
      const holder = await this.em().findOne(SimVm, { vmId });
      if (holder) throw this.fail('createVm', `VM id ${vmId} belongs to another VM`, 'VMID_TAKEN');
      const backup = spec.fromBackupId ? await this.mustLoadBackup(spec.fromBackupId, 'createVm') : null;
      // Keyed by pod: a retried create (after a crash mid-call) finds and adopts this row.
      await this.em()
        .createQueryBuilder(SimVm)
        .insert({
          vmId,
          podId: spec.podId,
          node: spec.node,
          name: spec.hostname,
          status: this.opts.bootMs > 0 ? 'starting' : 'running',
          locked: false,
          vcpu: spec.vcpu,
          memoryMb: spec.memoryMb,
          // A restored disk keeps the backup's size when that is larger: disks never shrink.
          diskGb: Math.max(spec.diskGb, backup?.diskGb ?? 0),
          ipAddress: ipFor(spec.podId),
          snapshots: [],
          createdAt: new Date(),
        })
        .onConflict('pod_id')
        .ignore()
        .execute();
      await this.pause();
      return this.toInfo(await this.mustLoad(spec, 'createVm'));
    });
  }

  findVm(ref: VmRef): Promise<VmInfo | null> {
    return this.faulty('findVm', ref.podSlug, async () => {
      const vm = await this.load(ref);
      return vm ? this.toInfo(vm) : null;
    });
  }

  startVm(ref: VmRef): Promise<void> {
    return this.faulty('startVm', ref.podSlug, async () => {
      const vm = await this.mustLoad(ref, 'startVm');
      if (vm.locked) throw this.fail('startVm', `VM ${vm.vmId} is suspended`, 'VM_SUSPENDED');
      await this.pause();
      await this.em().nativeUpdate(SimVm, { vmId: vm.vmId }, { status: 'running' });
    });
  }

  stopVm(ref: VmRef): Promise<void> {
    return this.faulty('stopVm', ref.podSlug, async () => {
      const vm = await this.mustLoad(ref, 'stopVm');
      await this.pause();
      await this.em().nativeUpdate(SimVm, { vmId: vm.vmId }, { status: 'stopped' });
    });
  }

  setSuspended(ref: VmRef, suspended: boolean): Promise<void> {
    return this.faulty('setSuspended', ref.podSlug, async () => {
      const vm = await this.mustLoad(ref, 'setSuspended');
      await this.em().nativeUpdate(
        SimVm,
        { vmId: vm.vmId },
        suspended ? { locked: true, status: 'stopped' } : { locked: false },
      );
    });
  }

  resizeVm(ref: VmRef, to: Resources): Promise<void> {
    return this.faulty('resizeVm', ref.podSlug, async () => {
      const vm = await this.mustLoad(ref, 'resizeVm');
      if (to.diskGb < vm.diskGb) throw this.fail('resizeVm', 'disks cannot shrink', 'DISK_SHRINK');
      await this.pause();
      await this.em().nativeUpdate(
        SimVm,
        { vmId: vm.vmId },
        { vcpu: to.vcpu, memoryMb: to.memoryMb, diskGb: to.diskGb },
      );
    });
  }

  /** Deletes the VM only: its backups live in their own table, like vzdump archives on a backup storage. */
  destroyVm(ref: VmRef): Promise<void> {
    return this.faulty('destroyVm', ref.podSlug, async () => {
      await this.pause();
      await this.em().nativeDelete(SimVm, { podId: ref.podId });
    });
  }

  async backupVm(ref: VmRef, name: string): Promise<BackupArtifact> {
    if (!BACKUP_NAME.test(name)) {
      throw this.fail('backupVm', `backup name '${name}' is not 1-40 of [A-Za-z0-9_-]`, 'BAD_BACKUP_NAME');
    }
    return this.faulty('backupVm', ref.podSlug, async () => {
      const id = simBackupId(name);
      const existing = await this.em().findOne(SimBackup, { id });
      if (!existing) {
        const vm = await this.mustLoad(ref, 'backupVm');
        await this.pause();
        // A concurrent call with the same name inserts nothing and reads the row the first made.
        await this.em()
          .createQueryBuilder(SimBackup)
          .insert({
            id,
            podId: ref.podId,
            vmId: vm.vmId,
            vcpu: vm.vcpu,
            memoryMb: vm.memoryMb,
            diskGb: vm.diskGb,
            sizeGb: vm.diskGb,
            createdAt: new Date(),
          })
          .onConflict('id')
          .ignore()
          .execute();
      }
      const backup = existing ?? (await this.mustLoadBackup(id, 'backupVm'));
      if (backup.podId !== ref.podId) {
        throw this.fail(
          'backupVm',
          `backup name '${name}' is taken by pod ${backup.podId}`,
          'BACKUP_NAME_TAKEN',
        );
      }
      return this.toArtifact(backup);
    });
  }

  findBackup(backupId: string): Promise<BackupArtifact | null> {
    return this.faulty('findBackup', backupId, async () => {
      const backup = await this.em().findOne(SimBackup, { id: backupId });
      return backup ? this.toArtifact(backup) : null;
    });
  }

  restoreBackup(ref: VmRef, backupId: string): Promise<void> {
    return this.faulty('restoreBackup', ref.podSlug, async () => {
      const backup = await this.mustLoadBackup(backupId, 'restoreBackup');
      const vm = await this.mustLoad(ref, 'restoreBackup');
      await this.pause();
      // The disks are the backup's, grown back to the VM's size (never shrunk); cores, memory,
      // power and suspension stay as they are, as the Proxmox client leaves them.
      await this.em().nativeUpdate(SimVm, { vmId: vm.vmId }, { diskGb: Math.max(vm.diskGb, backup.diskGb) });
    });
  }

  deleteBackup(backupId: string): Promise<void> {
    return this.faulty('deleteBackup', backupId, async () => {
      await this.pause();
      await this.em().nativeDelete(SimBackup, { id: backupId });
    });
  }
}
