/** The hypervisor behind CloudPods: Proxmox VE in production, the simulator by default. */
import type { Resources } from '../domain/cloudpods';

/** Everything a provider needs to find a pod's VM. `podSlug` lets the simulator inject faults. */
export interface VmRef {
  podId: string;
  podSlug: string;
  /** hypervisor node name (the CoreNode name) */
  node: string;
  /**
   * The VM id recorded on the pod (from `reserveVmId`, before the VM was made): the provider
   * looks it up directly, so a VM too young to show up in a listing is still found.
   */
  vmId?: string | null;
  /** the pod's customer: on Proxmox, whose access to the VM a suspension takes away */
  customerId?: string;
}

export interface VmSpec extends VmRef, Resources {
  hostname: string;
  /**
   * Create the VM from this backup artifact instead of the template (a pod restored from a
   * backup): its disks are the backup's (grown to `diskGb` if smaller), cores and memory the
   * spec's. A missing artifact fails with the non-retryable `BACKUP_NOT_FOUND` and makes no VM.
   * Ignored when the pod already has a VM (that VM is adopted).
   */
  fromBackupId?: string | null;
}

export type VmPowerState = 'starting' | 'running' | 'stopped';

export interface VmInfo {
  vmId: string;
  podId: string;
  node: string;
  status: VmPowerState;
  /** suspended: stopped, and neither Podplane nor the customer may start it until unsuspended */
  suspended: boolean;
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
  /**
   * The id the pod's VM will get. The caller records it on the pod *before* `createVm`, so that
   * a create retried after a crash looks that id up and adopts what the first attempt made.
   */
  reserveVmId(ref: VmRef): Promise<string>;
  /**
   * Clone the template, apply the plan's cores/memory/disk and start it; or adopt the pod's VM.
   * With `ref.vmId` the VM gets that id; when the id turns out to belong to another VM (someone
   * took it between reservation and clone) it fails with the non-retryable `VMID_TAKEN` and
   * makes nothing, and the caller reserves and records a new id.
   */
  createVm(spec: VmSpec): Promise<VmInfo>;
  /** The pod's VM, or null when it has none. */
  findVm(ref: VmRef): Promise<VmInfo | null>;
  startVm(ref: VmRef): Promise<void>;
  stopVm(ref: VmRef): Promise<void>;
  /**
   * Suspend: the VM is left stopped (stopped again if someone started it meanwhile) and nobody
   * but the provider's administrators can start it — not `startVm`, which fails with the
   * non-retryable `VM_SUSPENDED`, and not the customer (on Proxmox their role on the VM is
   * taken away). Unsuspend gives the customer's access back and leaves the VM stopped.
   */
  setSuspended(ref: VmRef, suspended: boolean): Promise<void>;
  /**
   * Cores and memory to the new values; the disk only grows. A running VM whose cores or memory
   * change is restarted (Proxmox cannot hot-plug cores): the sizes `findVm` reports are always
   * the ones the guest runs with.
   */
  resizeVm(ref: VmRef, to: Resources): Promise<void>;
  /** Stop and delete with purge (a suspended VM too). */
  destroyVm(ref: VmRef): Promise<void>;
  /**
   * Back the VM up to an artifact apart from it. Idempotent by `name` (1 to 40 characters of
   * `[A-Za-z0-9_-]`, else the non-retryable `BAD_BACKUP_NAME`): a retry after a lost answer —
   * even once the VM is gone — returns the artifact the first call made. A suspended VM is
   * backed up and left suspended.
   */
  backupVm(ref: VmRef, name: string): Promise<BackupArtifact>;
  /**
   * The artifact, or null when it certainly does not exist (verified before a destroy relies on
   * it); when the provider cannot tell, it throws a retryable error rather than answer null.
   */
  findBackup(backupId: string): Promise<BackupArtifact | null>;
  /**
   * Replace the pod's VM disks with the backup's, in place: cores, memory, power state and
   * suspension stay; a disk that grew since the backup is grown back. A missing artifact fails with the
   * non-retryable `BACKUP_NOT_FOUND` and leaves the VM untouched.
   */
  restoreBackup(ref: VmRef, backupId: string): Promise<void>;
  /** Delete the artifact (retention); a missing artifact succeeds. */
  deleteBackup(backupId: string): Promise<void>;
}
