/** The hypervisor behind CloudPods: Proxmox VE in production, the simulator by default. */
import type { Resources } from '../domain/cloudpods';

/** Everything a provider needs to find a pod's VM. `podSlug` lets the simulator inject faults. */
export interface VmRef {
  podId: string;
  podSlug: string;
  /** hypervisor node name (the CoreNode name) */
  node: string;
}

export interface VmSpec extends VmRef, Resources {
  hostname: string;
  /** create the VM from this backup artifact instead of the template (a pod restored from a backup) */
  fromBackupId?: string | null;
}

export type VmPowerState = 'starting' | 'running' | 'stopped';

export interface VmInfo {
  vmId: string;
  podId: string;
  node: string;
  status: VmPowerState;
  /** a locked VM cannot be started (suspension) */
  locked: boolean;
  vcpu: number;
  memoryMb: number;
  diskGb: number;
  ipAddress: string | null;
}

/**
 * A backup artifact kept apart from its VM (Proxmox: a vzdump archive on the backup storage),
 * so destroying the VM leaves it restorable.
 */
export interface BackupArtifact {
  /** the provider's id (Proxmox volid `storage:backup/vzdump-qemu-…`) */
  backupId: string;
  podId: string;
  sizeGb: number;
}

/**
 * Every operation is idempotent: `createVm` adopts the pod's existing VM instead of making a
 * second one, `destroyVm` of a missing VM succeeds, start/stop of a VM already in that state
 * succeeds. Failures are `ProviderError`s.
 */
export interface Hypervisor {
  readonly name: string;
  /** Clone the template, apply the plan's cores/memory/disk and start it; or adopt the pod's VM. */
  createVm(spec: VmSpec): Promise<VmInfo>;
  /** The pod's VM, or null when it has none. */
  findVm(ref: VmRef): Promise<VmInfo | null>;
  startVm(ref: VmRef): Promise<void>;
  stopVm(ref: VmRef): Promise<void>;
  /** Lock or unlock the VM so that nobody (customer included) can start it. */
  setLocked(ref: VmRef, locked: boolean): Promise<void>;
  /** Cores and memory to the new values; the disk only grows. */
  resizeVm(ref: VmRef, to: Resources): Promise<void>;
  /** Stop and delete with purge. */
  destroyVm(ref: VmRef): Promise<void>;
  /**
   * Back the VM up to an artifact apart from it. Idempotent by `name` (at most 40 characters,
   * `[a-z0-9-]`): a retry after a lost answer returns the artifact the first call made.
   */
  backupVm(ref: VmRef, name: string): Promise<BackupArtifact>;
  /** The artifact, or null when it does not exist (verified before a destroy relies on it). */
  findBackup(backupId: string): Promise<BackupArtifact | null>;
  /** Replace the pod's VM disks with the backup's, in place. */
  restoreBackup(ref: VmRef, backupId: string): Promise<void>;
  /** Delete the artifact (retention); a missing artifact succeeds. */
  deleteBackup(backupId: string): Promise<void>;
}
