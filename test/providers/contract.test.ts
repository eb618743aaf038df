/** One contract for every Hypervisor and Dns, run on the simulators and on the real clients against fakes. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { preTerminationBackupName } from '../../src/activities/cloudpods';
import { ConfigError, parseConfig } from '../../src/config';
import { newId } from '../../src/domain/ids';
import type { Dns } from '../../src/providers/dns';
import { ProviderError } from '../../src/providers/errors';
import type { Hypervisor, VmInfo, VmRef, VmSpec } from '../../src/providers/hypervisor';
import { createProviders } from '../../src/providers/index';
import { PowerDnsProvider } from '../../src/providers/powerdns';
import {
  ProxmoxHypervisor,
  parseCustomerAccess,
  parseTemplates,
  podTag,
  type ProxmoxOptions,
} from '../../src/providers/proxmox';
import {
  FaultInjector,
  SimulatedDns,
  SimulatedHypervisor,
  SimulatorInventory,
  VmSuspendedError,
} from '../../src/providers/simulator';
import type { Resources } from '../../src/domain/cloudpods';
import { PowerDnsFake } from '../fakes/powerdns-fake';
import { ProxmoxFake, type ProxmoxFakeOptions } from '../fakes/proxmox-fake';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { waitFor } from '../helpers/wait';

const ZONE = 'pods.podplane.test';
const TOKEN_ID = 'podplane@pve!ci';
const TOKEN_SECRET = '6f1c1b0e-3d2a-4c55-9a7e-0c1d2e3f4a5b';
const API_KEY = 'pdns-test-key-8c1e5f';

interface HypervisorHarness {
  hypervisor: Hypervisor;
  /** a new pod's spec on the node new VMs are placed on, its customer known to the backend */
  newPod(size?: Resources): VmSpec;
  /** how many VMs the backend holds for the pod: adoption must keep it at one */
  vmCount(podId: string): Promise<number>;
  /** how many backup artifacts the backend holds of the pod's VMs */
  backupCount(podId: string): Promise<number>;
  /** the size the guest runs with, read from the backend itself (not through the client) */
  guest(podId: string): Promise<{ vcpu: number; memoryMb: number; running: boolean }>;
  /** the customer tries to start their VM from their own panel */
  customerStart(ref: VmRef): Promise<'started' | 'refused'>;
  /** one of the provider's administrators starts the VM, suspended or not */
  adminStart(ref: VmRef): Promise<void>;
  /** the next create makes its VM and then dies before it is tagged (a lost answer) */
  interruptNextCreate(spec: VmSpec): Promise<void>;
  /** someone else's VM takes this id */
  takeVmId(vmId: string): Promise<void>;
  close(): Promise<void>;
}

interface DnsHarness {
  dns: Dns;
  close(): Promise<void>;
}

async function simulatedHypervisor(): Promise<HypervisorHarness> {
  const db = await createTestDatabase();
  const faults = new FaultInjector(db.orm);
  const hypervisor = new SimulatedHypervisor({ orm: db.orm, faults, latencyMs: 0, bootMs: 0 });
  const inventory = new SimulatorInventory(db.orm);
  const count = async (sql: string, podId: string) =>
    (await db.query<{ n: number }>(sql, [podId]))[0]?.n ?? 0;
  const vmOf = async (podId: string) =>
    (
      await db.query<{ vm_id: string; vcpu: number; memory_mb: number; status: string }>(
        'select vm_id, vcpu, memory_mb, status from sim_vms where pod_id = $1',
        [podId],
      )
    )[0];
  return {
    hypervisor,
    newPod: (size) => newPod('node-a', size),
    vmCount: (podId) => count('select count(*)::int as n from sim_vms where pod_id = $1', podId),
    backupCount: (podId) => count('select count(*)::int as n from sim_backups where pod_id = $1', podId),
    guest: async (podId) => {
      const vm = await vmOf(podId);
      return { vcpu: vm?.vcpu ?? 0, memoryMb: vm?.memory_mb ?? 0, running: vm?.status === 'running' };
    },
    customerStart: async (ref) => {
      try {
        await inventory.startFromOutside((await vmOf(ref.podId))?.vm_id ?? '', 'customer');
        return 'started';
      } catch (err) {
        if (err instanceof VmSuspendedError) return 'refused';
        throw err;
      }
    },
    adminStart: async (ref) => {
      await inventory.startFromOutside((await vmOf(ref.podId))?.vm_id ?? '', 'administrator');
    },
    interruptNextCreate: async (spec) => {
      await faults.add({ operation: 'createVm', slugPattern: spec.podSlug, times: 1, mode: 'after' });
    },
    takeVmId: async (vmId) => {
      await db.query(
        `insert into sim_vms (vm_id, pod_id, node, name, status, locked, vcpu, memory_mb, disk_gb, ip_address, snapshots, created_at)
         values ($1, $2, 'node-a', 'someone-else', 'running', false, 1, 1024, 10, '10.9.9.9', '[]', now())`,
        [vmId, newId('pod')],
      );
    },
    close: () => db.close(),
  };
}

/**
 * The privileges README's Proxmox section gives Podplane's role (both `pveum` lines): the fake
 * grants exactly these, so the contract proves that role is enough.
 */
function readmeProxmoxPrivileges(): string[] {
  const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
  const lines = [
    ...readme.matchAll(/^pveum role (?:add|modify) Podplane (?:--append 1 )?--privs "([^"]+)"$/gm),
  ];
  expect(lines.length).toBe(2);
  return lines.flatMap((m) => (m[1] ?? '').split(' '));
}

const CUSTOMER_ACCESS = { type: 'user', pattern: '{customer}@pve', role: 'PVEVMUser' } as const;

async function startProxmox(
  options: Partial<ProxmoxFakeOptions> = {},
  client: Partial<ProxmoxOptions> = {},
): Promise<{ fake: ProxmoxFake; proxmox: ProxmoxHypervisor }> {
  // by default two nodes on local storage, a template on each
  const fake = await ProxmoxFake.start({
    tokenId: TOKEN_ID,
    tokenSecret: TOKEN_SECRET,
    privileges: readmeProxmoxPrivileges(),
    templates: { 9000: 'pve1', 9001: 'pve2' },
    ...options,
  });
  const proxmox = new ProxmoxHypervisor({
    baseUrl: fake.url,
    tokenId: TOKEN_ID,
    tokenSecret: TOKEN_SECRET,
    templateVmId: fake.templateVmId,
    templates: { pve1: 9000, pve2: 9001 },
    customerAccess: CUSTOMER_ACCESS,
    taskPollMs: 5,
    ...client,
  });
  return { fake, proxmox };
}

/** A pod whose customer is a Proxmox user with a token of their own (their panel). */
function customerPod(fake: ProxmoxFake, node: string, size?: Resources): VmSpec {
  const spec = newPod(node, size);
  const user = `${spec.customerId ?? ''}@pve`;
  fake.addUser(user, { tokenId: `${user}!panel`, tokenSecret: `panel-${spec.podId}` });
  return spec;
}

/** A start request with the customer's own token, as their panel would send it. */
async function customerStartOnFake(fake: ProxmoxFake, ref: VmRef): Promise<'started' | 'refused'> {
  const vm = fake.vmsTagged(podTag(ref.podId))[0];
  if (!vm) throw new Error(`no VM for ${ref.podId}`);
  const user = `${ref.customerId ?? ''}@pve`;
  const res = await fetch(`${fake.url}/api2/json/nodes/${vm.node}/qemu/${vm.vmid}/status/start`, {
    method: 'POST',
    headers: { Authorization: `PVEAPIToken=${user}!panel=panel-${ref.podId}` },
  });
  if (res.status === 403) return 'refused';
  expect(res.status).toBe(200);
  fake.finishTasks();
  return 'started';
}

async function proxmoxOnFake(): Promise<HypervisorHarness> {
  const { fake, proxmox } = await startProxmox();
  return {
    hypervisor: proxmox,
    newPod: (size) => customerPod(fake, 'pve2', size),
    vmCount: (podId) => Promise.resolve(fake.vmsTagged(podTag(podId)).length),
    backupCount: (podId) =>
      Promise.resolve(fake.backups().filter((b) => b.config.tags.includes(podTag(podId))).length),
    guest: (podId) => {
      const vm = fake.vmsTagged(podTag(podId))[0];
      return Promise.resolve({
        vcpu: (vm?.cores ?? 0) * (vm?.sockets ?? 0),
        memoryMb: vm?.memoryMb ?? 0,
        running: vm?.status === 'running',
      });
    },
    customerStart: (ref) => customerStartOnFake(fake, ref),
    adminStart: (ref) => {
      const vm = fake.vmsTagged(podTag(ref.podId))[0];
      if (vm) vm.status = 'running';
      return Promise.resolve();
    },
    interruptNextCreate: () => {
      // the config call that tags the clone fails: the clone exists, untagged, and too young for
      // `/cluster/resources` to show its name
      fake.inject({ method: 'POST', path: /\/qemu\/\d+\/config$/, status: 500, message: 'proxy timeout' });
      return Promise.resolve();
    },
    takeVmId: (vmId) => {
      fake.addVm({ vmid: Number(vmId), name: 'someone-else', node: 'pve1' });
      return Promise.resolve();
    },
    close: () => fake.close(),
  };
}

async function simulatedDns(): Promise<DnsHarness> {
  const db = await createTestDatabase();
  const dns = new SimulatedDns({ orm: db.orm, faults: new FaultInjector(db.orm), latencyMs: 0, bootMs: 0 });
  return { dns, close: () => db.close() };
}

async function startPowerDns(): Promise<{ fake: PowerDnsFake; powerdns: PowerDnsProvider }> {
  const fake = await PowerDnsFake.start({ apiKey: API_KEY, zones: [ZONE] });
  const powerdns = new PowerDnsProvider({
    baseUrl: fake.url,
    apiKey: API_KEY,
    serverId: 'localhost',
    zone: ZONE,
  });
  return { fake, powerdns };
}

async function powerDnsOnFake(): Promise<DnsHarness> {
  const { fake, powerdns } = await startPowerDns();
  return { dns: powerdns, close: () => fake.close() };
}

function newPod(node: string, size: Resources = { vcpu: 2, memoryMb: 2048, diskGb: 20 }): VmSpec {
  const podId = newId('pod');
  const podSlug = `pod-${podId.slice(-8)}`;
  return { podId, podSlug, node, hostname: `${podSlug}.${ZONE}`, customerId: newId('customer'), ...size };
}

/** A unique backup name, as the activities name them: after the terminate job, or the backup row. */
function backupName(kind: 'pt' | 'bak'): string {
  return kind === 'pt' ? preTerminationBackupName(newId('job')) : newId('backup');
}

/** The failure the promise rejects with, which must be a ProviderError. */
async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected a ProviderError, but the call succeeded');
}

function waitForState(hypervisor: Hypervisor, ref: VmRef, what: string, ok: (vm: VmInfo) => boolean) {
  return waitFor(
    async () => {
      const vm = await hypervisor.findVm(ref);
      return vm && ok(vm) ? vm : null;
    },
    { what, timeoutMs: 10_000, intervalMs: 10 },
  );
}

const running = (vm: VmInfo) => vm.status === 'running' && vm.ipAddress !== null;

function hypervisorContract(setup: () => Promise<HypervisorHarness>): void {
  let h!: HypervisorHarness;
  beforeAll(async () => {
    h = await setup();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('creates a VM with the plan that comes up running with an IP', async () => {
    const spec = h.newPod();
    const created = await h.hypervisor.createVm(spec);
    expect(created).toMatchObject({
      podId: spec.podId,
      node: spec.node,
      suspended: false,
      vcpu: 2,
      memoryMb: 2048,
      diskGb: 20,
    });
    const vm = await waitForState(h.hypervisor, spec, 'the VM running with an IP', running);
    expect(vm.vmId).toBe(created.vmId);
    expect(vm.ipAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(vm.ipAddress?.startsWith('127.')).toBe(false);
  });

  it('adopts the pod’s VM when create runs twice', async () => {
    const spec = h.newPod();
    const first = await h.hypervisor.createVm(spec);
    const second = await h.hypervisor.createVm(spec);
    expect(second.vmId).toBe(first.vmId);
    expect(await h.vmCount(spec.podId)).toBe(1);
  });

  it('finds no VM for an unknown pod', async () => {
    expect(await h.hypervisor.findVm(h.newPod())).toBeNull();
  });

  it('fails operations on a missing VM with VM_NOT_FOUND, not retryable', async () => {
    const err = await providerError(h.hypervisor.startVm(h.newPod()));
    expect(err).toMatchObject({ code: 'VM_NOT_FOUND', retryable: false });
  });

  it('stops and starts, each idempotently', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await h.hypervisor.stopVm(spec);
    await h.hypervisor.stopVm(spec);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ status: 'stopped' });
    await h.hypervisor.startVm(spec);
    await h.hypervisor.startVm(spec);
    await waitForState(h.hypervisor, spec, 'the VM running again', running);
  });

  it('suspends without root: stopped, and neither Podplane nor the customer can start it until unsuspended', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await waitForState(h.hypervisor, spec, 'the VM running', running);
    await h.hypervisor.stopVm(spec);
    await h.hypervisor.setSuspended(spec, true);
    await h.hypervisor.setSuspended(spec, true);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ suspended: true, status: 'stopped' });
    const err = await providerError(h.hypervisor.startVm(spec));
    expect(err).toMatchObject({ code: 'VM_SUSPENDED', retryable: false });
    expect(await h.customerStart(spec)).toBe('refused');
    expect(await h.guest(spec.podId)).toMatchObject({ running: false });

    await h.hypervisor.setSuspended(spec, false);
    await h.hypervisor.setSuspended(spec, false);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ suspended: false, status: 'stopped' });
    expect(await h.customerStart(spec)).toBe('started');
    await h.hypervisor.stopVm(spec);
    await h.hypervisor.startVm(spec);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ suspended: false, status: 'running' });
  });

  it('suspending a VM that runs stops it; a suspended VM an administrator started is reported running', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await h.hypervisor.setSuspended(spec, true);
    expect(await h.guest(spec.podId)).toMatchObject({ running: false });
    await h.adminStart(spec);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ suspended: true, status: 'running' });
    await h.hypervisor.setSuspended(spec, true);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ suspended: true, status: 'stopped' });
  });

  it('changes the plan of a running VM so that the guest runs with it, and keeps it running', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await waitForState(h.hypervisor, spec, 'the VM running', running);
    await h.hypervisor.resizeVm(spec, { vcpu: 4, memoryMb: 4096, diskGb: 30 });
    expect(await h.guest(spec.podId)).toEqual({ vcpu: 4, memoryMb: 4096, running: true });
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ vcpu: 4, memoryMb: 4096, diskGb: 30 });
    // the same change again (a retried step) changes nothing
    await h.hypervisor.resizeVm(spec, { vcpu: 4, memoryMb: 4096, diskGb: 30 });
    expect(await h.guest(spec.podId)).toEqual({ vcpu: 4, memoryMb: 4096, running: true });
  });

  it('creates the VM under the id recorded before it, and adopts it after an interrupted create', async () => {
    const spec = h.newPod();
    const vmId = await h.hypervisor.reserveVmId(spec);
    const recorded = { ...spec, vmId };
    await h.interruptNextCreate(recorded);
    await providerError(h.hypervisor.createVm(recorded));
    const vm = await h.hypervisor.createVm(recorded);
    expect(vm).toMatchObject({ vmId, podId: spec.podId, vcpu: 2, memoryMb: 2048, diskGb: 20 });
    expect(await h.vmCount(spec.podId)).toBe(1);
    await waitForState(h.hypervisor, recorded, 'the adopted VM running', running);
  });

  it('refuses, making nothing, to create under an id someone else took since it was recorded', async () => {
    const spec = h.newPod();
    const vmId = await h.hypervisor.reserveVmId(spec);
    await h.takeVmId(vmId);
    const err = await providerError(h.hypervisor.createVm({ ...spec, vmId }));
    expect(err).toMatchObject({ code: 'VMID_TAKEN', retryable: false });
    expect(await h.vmCount(spec.podId)).toBe(0);
    const again = await h.hypervisor.reserveVmId(spec);
    expect(again).not.toBe(vmId);
    expect((await h.hypervisor.createVm({ ...spec, vmId: again })).vmId).toBe(again);
  });

  it('resizes cores, memory and disk, and refuses to shrink the disk', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await h.hypervisor.resizeVm(spec, { vcpu: 4, memoryMb: 4096, diskGb: 40 });
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ vcpu: 4, memoryMb: 4096, diskGb: 40 });
    await h.hypervisor.resizeVm(spec, { vcpu: 1, memoryMb: 1024, diskGb: 40 });
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ vcpu: 1, memoryMb: 1024, diskGb: 40 });
    const err = await providerError(h.hypervisor.resizeVm(spec, { vcpu: 1, memoryMb: 1024, diskGb: 30 }));
    expect(err).toMatchObject({ code: 'DISK_SHRINK', retryable: false });
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ vcpu: 1, memoryMb: 1024, diskGb: 40 });
  });

  it('destroys the VM, and destroying it again succeeds', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await h.hypervisor.destroyVm(spec);
    await h.hypervisor.destroyVm(spec);
    expect(await h.hypervisor.findVm(spec)).toBeNull();
    expect(await h.vmCount(spec.podId)).toBe(0);
  });

  it('destroys a suspended VM', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await h.hypervisor.stopVm(spec);
    await h.hypervisor.setSuspended(spec, true);
    await h.hypervisor.destroyVm(spec);
    expect(await h.hypervisor.findVm(spec)).toBeNull();
  });

  it('backs up idempotently by name; the backup outlives the VM (terminate) and a new pod is restored from it', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await waitForState(h.hypervisor, spec, 'the VM running', running);
    const name = backupName('pt');
    const backup = await h.hypervisor.backupVm(spec, name);
    expect(backup).toMatchObject({ podId: spec.podId, backupId: expect.any(String) });
    expect(backup.sizeGb).toBeGreaterThanOrEqual(1);
    expect(backup.sizeGb).toBeLessThanOrEqual(spec.diskGb);
    // a retry after a lost answer gets the same artifact, not a second backup
    expect(await h.hypervisor.backupVm(spec, name)).toEqual(backup);
    expect(await h.backupCount(spec.podId)).toBe(1);

    await h.hypervisor.destroyVm(spec);
    expect(await h.hypervisor.findVm(spec)).toBeNull();
    expect(await h.hypervisor.findBackup(backup.backupId)).toEqual(backup);
    // idempotent by name even once the VM is gone (the pre-termination backup's retry)
    expect(await h.hypervisor.backupVm(spec, name)).toEqual(backup);
    const gone = await providerError(h.hypervisor.backupVm(spec, backupName('pt')));
    expect(gone).toMatchObject({ code: 'VM_NOT_FOUND', retryable: false });

    // restored into a new pod, under the VM id recorded for it
    const target = h.newPod({ vcpu: 1, memoryMb: 1024, diskGb: 20 });
    const vmId = await h.hypervisor.reserveVmId(target);
    const restored = { ...target, vmId, fromBackupId: backup.backupId };
    const created = await h.hypervisor.createVm(restored);
    expect(created).toMatchObject({ vmId, podId: restored.podId, vcpu: 1, memoryMb: 1024, diskGb: 20 });
    await waitForState(h.hypervisor, restored, 'the restored VM running with an IP', running);
    expect((await h.hypervisor.createVm(restored)).vmId).toBe(created.vmId);
    expect(await h.vmCount(restored.podId)).toBe(1);
    // the backup is not consumed by a restore
    expect(await h.hypervisor.findBackup(backup.backupId)).toEqual(backup);
  });

  it('grows a pod created from a smaller backup to its plan’s disk', async () => {
    const spec = h.newPod({ vcpu: 1, memoryMb: 1024, diskGb: 10 });
    await h.hypervisor.createVm(spec);
    const backup = await h.hypervisor.backupVm(spec, backupName('bak'));
    const bigger = {
      ...h.newPod({ vcpu: 2, memoryMb: 2048, diskGb: 30 }),
      fromBackupId: backup.backupId,
    };
    expect(await h.hypervisor.createVm(bigger)).toMatchObject({ vcpu: 2, memoryMb: 2048, diskGb: 30 });
  });

  it('restores a backup in place, keeping power state, cores, memory and the grown disk', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await waitForState(h.hypervisor, spec, 'the VM running', running);
    const backup = await h.hypervisor.backupVm(spec, backupName('bak'));
    await h.hypervisor.resizeVm(spec, { vcpu: 4, memoryMb: 4096, diskGb: 40 });
    await h.hypervisor.restoreBackup(spec, backup.backupId);
    const vm = await waitForState(h.hypervisor, spec, 'the restored VM running', running);
    expect(vm).toMatchObject({ vcpu: 4, memoryMb: 4096, diskGb: 40, suspended: false });
    expect(await h.vmCount(spec.podId)).toBe(1);
  });

  it('backs up and restores a suspended VM and leaves it suspended and stopped', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    await h.hypervisor.stopVm(spec);
    await h.hypervisor.setSuspended(spec, true);
    const backup = await h.hypervisor.backupVm(spec, backupName('bak'));
    await h.hypervisor.restoreBackup(spec, backup.backupId);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ suspended: true, status: 'stopped' });
    expect(await h.customerStart(spec)).toBe('refused');
  });

  it('deletes a backup, deleting again succeeds, and a missing backup is refused, not retried', async () => {
    const spec = h.newPod();
    await h.hypervisor.createVm(spec);
    const backup = await h.hypervisor.backupVm(spec, backupName('bak'));
    await h.hypervisor.deleteBackup(backup.backupId);
    await h.hypervisor.deleteBackup(backup.backupId);
    expect(await h.hypervisor.findBackup(backup.backupId)).toBeNull();
    expect(await h.backupCount(spec.podId)).toBe(0);

    const restore = await providerError(h.hypervisor.restoreBackup(spec, backup.backupId));
    expect(restore).toMatchObject({ code: 'BACKUP_NOT_FOUND', retryable: false });
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ status: 'running' });

    const fromMissing = { ...h.newPod(), fromBackupId: backup.backupId };
    const create = await providerError(h.hypervisor.createVm(fromMissing));
    expect(create).toMatchObject({ code: 'BACKUP_NOT_FOUND', retryable: false });
    expect(await h.vmCount(fromMissing.podId)).toBe(0);
  });
}

function dnsContract(setup: () => Promise<DnsHarness>): void {
  let h!: DnsHarness;
  beforeAll(async () => {
    h = await setup();
  });
  afterAll(async () => {
    await h?.close();
  });

  const ref = () => {
    const podSlug = `pod-${newId('pod').slice(-8)}`;
    return { fqdn: `${podSlug}.${ZONE}`, podSlug };
  };

  it('upserts, replaces, reads and deletes an A record; deleting again succeeds', async () => {
    const r = ref();
    expect(await h.dns.getA(r.fqdn)).toBeNull();
    await h.dns.upsertA(r, '10.0.0.5');
    expect(await h.dns.getA(r.fqdn)).toEqual({ content: '10.0.0.5', ttl: 300 });
    await h.dns.upsertA(r, '10.0.0.6', 60);
    expect(await h.dns.getA(r.fqdn)).toEqual({ content: '10.0.0.6', ttl: 60 });
    await h.dns.upsertA(r, '10.0.0.6', 60);
    expect(await h.dns.getA(r.fqdn)).toEqual({ content: '10.0.0.6', ttl: 60 });
    await h.dns.deleteA(r);
    expect(await h.dns.getA(r.fqdn)).toBeNull();
    await h.dns.deleteA(r);
    expect(await h.dns.getA(r.fqdn)).toBeNull();
  });

  it('keeps records of different names apart', async () => {
    const a = ref();
    const b = ref();
    await h.dns.upsertA(a, '10.0.1.1');
    await h.dns.upsertA(b, '10.0.1.2');
    await h.dns.deleteA(a);
    expect(await h.dns.getA(a.fqdn)).toBeNull();
    expect(await h.dns.getA(b.fqdn)).toEqual({ content: '10.0.1.2', ttl: 300 });
  });
}

describe.each([
  ['SimulatedHypervisor', simulatedHypervisor],
  ['ProxmoxHypervisor on the Proxmox fake', proxmoxOnFake],
])('Hypervisor contract: %s', (_name, setup) => hypervisorContract(setup));

describe.each([
  ['SimulatedDns', simulatedDns],
  ['PowerDnsProvider on the PowerDNS fake', powerDnsOnFake],
])('Dns contract: %s', (_name, setup) => dnsContract(setup));

describe('ProxmoxHypervisor specifics', () => {
  let fake: ProxmoxFake;
  let proxmox: ProxmoxHypervisor;
  beforeEach(async () => {
    ({ fake, proxmox } = await startProxmox());
  });
  afterEach(async () => {
    await fake.close();
  });

  it('sends the API token as `PVEAPIToken=<id>=<secret>` on every request', async () => {
    await proxmox.findVm(customerPod(fake, 'pve1'));
    expect(fake.requests.length).toBeGreaterThan(0);
    for (const req of fake.requests) {
      expect(req.headers.authorization).toBe(`PVEAPIToken=${TOKEN_ID}=${TOKEN_SECRET}`);
    }
  });

  it('clones the node’s own template, polls the task until it stops, configures, grows the disk and starts', async () => {
    fake.taskPolls = 3;
    const spec = customerPod(fake, 'pve2');
    const vm = await proxmox.createVm(spec);
    const calls = fake.requests.map((r) => `${r.method} ${r.path.replace(/UPID[^/]+/, 'UPID')}`);
    const vmPath = `/nodes/pve2/qemu/${vm.vmId}`;
    expect(calls.slice(0, 3)).toEqual([
      'GET /cluster/resources',
      'GET /cluster/nextid',
      'POST /nodes/pve2/qemu/9001/clone',
    ]);
    // the clone's task: three `running` answers, then `stopped`
    expect(calls.slice(3, 7)).toEqual(Array(4).fill('GET /nodes/pve2/tasks/UPID/status'));
    expect(calls[7]).toBe(`POST ${vmPath}/config`);
    expect(calls.indexOf(`POST ${vmPath}/config`)).toBeLessThan(calls.indexOf(`PUT ${vmPath}/resize`));
    expect(calls.indexOf(`PUT ${vmPath}/resize`)).toBeLessThan(calls.indexOf('PUT /access/acl'));
    expect(calls.indexOf('PUT /access/acl')).toBeLessThan(calls.indexOf(`POST ${vmPath}/status/start`));

    const clone = fake.requests.find((r) => r.path.endsWith('/clone'));
    expect(clone?.body).toEqual({
      newid: vm.vmId,
      name: spec.hostname,
      full: '1',
      description: `podplane-pod:${spec.podId}`,
    });
    const resize = fake.requests.find((r) => r.path.endsWith('/resize'));
    expect(resize?.body).toEqual({ disk: 'scsi0', size: '20G' });
    const upid = fake.requests.find((r) => r.path.includes('/tasks/'))?.path.split('/')[4] ?? '';
    expect(decodeURIComponent(upid)).toMatch(
      /^UPID:pve2:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmclone:9001:podplane@pve!ci:$/,
    );
    expect(fake.vms.get(Number(vm.vmId))).toMatchObject({
      node: 'pve2',
      cores: 2,
      memoryMb: 2048,
      disks: { scsi0: 20 },
      status: 'running',
      tags: ['podplane', podTag(spec.podId)],
    });
    expect(fake.acls).toContainEqual({
      path: `/vms/${vm.vmId}`,
      type: 'user',
      ugid: `${spec.customerId}@pve`,
      roleid: 'PVEVMUser',
      propagate: true,
    });
  });

  it('clones across nodes from a template on shared storage, with `target`', async () => {
    const shared = await startProxmox(
      {
        templates: { 9000: 'pve1' },
        templateStorage: 'ceph',
        storages: {
          local: { type: 'dir', content: ['backup', 'iso', 'vztmpl'], shared: false },
          ceph: { type: 'rbd', content: ['images'], shared: true },
        },
      },
      { templates: {} },
    );
    try {
      const spec = customerPod(shared.fake, 'pve2');
      const vm = await shared.proxmox.createVm(spec);
      const clone = shared.fake.requests.find((r) => r.path.endsWith('/clone'));
      expect(clone).toMatchObject({ path: '/nodes/pve1/qemu/9000/clone', body: { target: 'pve2' } });
      expect(shared.fake.vms.get(Number(vm.vmId))).toMatchObject({ node: 'pve2', status: 'running' });
    } finally {
      await shared.fake.close();
    }
  });

  it('refuses at once, cloning nothing, a template on another node’s local storage', async () => {
    const single = await startProxmox({ templates: { 9000: 'pve1' } }, { templates: {} });
    try {
      const err = await providerError(single.proxmox.createVm(customerPod(single.fake, 'pve2')));
      expect(err).toMatchObject({ code: 'TEMPLATE_NOT_ON_NODE', retryable: false });
      expect(err.message).toContain('PROXMOX_TEMPLATES');
      expect(single.fake.requests.some((r) => r.path.endsWith('/clone'))).toBe(false);
    } finally {
      await single.fake.close();
    }
  });

  it('tags VMs with a Proxmox-safe, lower-case pod tag', () => {
    expect(podTag('pod_01J9ZQ8XKQ3W5V7M2N4P6R8T0A')).toBe('podplane-pod-pod_01j9zq8xkq3w5v7m2n4p6r8t0a');
    expect(podTag('Pod:with spaces')).toMatch(/^[a-z0-9_][a-z0-9_+.-]*$/);
  });

  it('reports no IP while the guest agent is not answering', async () => {
    fake.agentWarmupCalls = 1_000;
    const spec = customerPod(fake, 'pve1');
    await proxmox.createVm(spec);
    expect(await proxmox.findVm(spec)).toMatchObject({ status: 'running', ipAddress: null });
  });

  it('fails create with the task’s exit status when the clone task fails, and leaves no VM', async () => {
    fake.failNextTask('qmclone', "clone failed: storage 'local-lvm' is not online");
    const spec = customerPod(fake, 'pve1');
    const err = await providerError(proxmox.createVm(spec));
    expect(err).toMatchObject({ code: 'TASK_FAILED', retryable: true });
    expect(err.message).toContain("clone failed: storage 'local-lvm' is not online");
    expect([...fake.vms.values()].filter((vm) => !vm.template)).toEqual([]);
    await proxmox.createVm(spec);
    expect(fake.vmsTagged(podTag(spec.podId))).toHaveLength(1);
  });

  it('adopts, by the recorded VM id, the untagged clone of a create that died, though it is too young to have a name', async () => {
    const spec = customerPod(fake, 'pve1');
    fake.addVm({ vmid: 150, name: spec.hostname, description: `podplane-pod:${spec.podId}` });
    fake.addVm({ vmid: 151, name: spec.hostname });
    const resources = await fetch(`${fake.url}/api2/json/cluster/resources`, {
      headers: { Authorization: `PVEAPIToken=${TOKEN_ID}=${TOKEN_SECRET}` },
    });
    const listed = ((await resources.json()) as { data: { vmid: number; name?: string }[] }).data;
    expect(listed.find((r) => r.vmid === 150)).not.toHaveProperty('name');

    const vm = await proxmox.createVm({ ...spec, vmId: '150' });
    expect(vm.vmId).toBe('150');
    expect(fake.vms.get(150)).toMatchObject({ tags: ['podplane', podTag(spec.podId)], status: 'running' });
    expect(fake.vms.get(151)?.tags).toEqual([]);
    expect(fake.requests.some((r) => r.path.endsWith('/clone'))).toBe(false);
  });

  it('waits (retryable) while the VM under the recorded id is still being cloned', async () => {
    const spec = customerPod(fake, 'pve1');
    fake.addVm({ vmid: 160, name: 'VM 160', lock: 'clone' });
    const err = await providerError(proxmox.createVm({ ...spec, vmId: '160' }));
    expect(err).toMatchObject({ code: 'VM_BUSY', retryable: true });
    expect(fake.requests.some((r) => r.path.endsWith('/clone'))).toBe(false);
  });

  it('finishes, on retry, a plan change that shut the VM down and died before starting it', async () => {
    const spec = customerPod(fake, 'pve1');
    const vm = await proxmox.createVm(spec);
    fake.inject({
      method: 'POST',
      path: /\/status\/start$/,
      status: 500,
      message: 'connection reset',
    });
    await providerError(proxmox.resizeVm(spec, { vcpu: 4, memoryMb: 4096, diskGb: 20 }));
    expect(fake.vms.get(Number(vm.vmId))).toMatchObject({
      status: 'stopped',
      tags: expect.arrayContaining(['podplane-restarting']),
    });
    await proxmox.resizeVm(spec, { vcpu: 4, memoryMb: 4096, diskGb: 20 });
    expect(fake.vms.get(Number(vm.vmId))).toMatchObject({ status: 'running', cores: 4, memoryMb: 4096 });
    expect(fake.vms.get(Number(vm.vmId))?.tags).not.toContain('podplane-restarting');
  });

  it('starts a VM the customer hibernated (Proxmox’s own `suspended` lock) instead of refusing it', async () => {
    const spec = customerPod(fake, 'pve1');
    const vm = await proxmox.createVm(spec);
    const fakeVm = fake.vms.get(Number(vm.vmId));
    if (fakeVm) Object.assign(fakeVm, { status: 'stopped', lock: 'suspended' });
    expect(await proxmox.findVm(spec)).toMatchObject({ suspended: false, status: 'stopped' });
    await proxmox.startVm(spec);
    expect(fakeVm).toMatchObject({ status: 'running' });
    expect(fakeVm?.lock).toBeUndefined();
  });

  it('backs up a hibernated VM by resuming it, and hibernates it again', async () => {
    const spec = customerPod(fake, 'pve1');
    const vm = await proxmox.createVm(spec);
    const fakeVm = fake.vms.get(Number(vm.vmId));
    if (fakeVm) Object.assign(fakeVm, { status: 'stopped', lock: 'suspended' });
    const backup = await proxmox.backupVm(spec, backupName('bak'));
    expect(await proxmox.findBackup(backup.backupId)).toEqual(backup);
    expect(fakeVm).toMatchObject({ status: 'stopped', lock: 'suspended' });
    await proxmox.destroyVm(spec);
    expect(fake.vms.has(Number(vm.vmId))).toBe(false);
  });

  it('shows a suspension that failed half-way as suspended, so that undoing it gives the customer’s role back', async () => {
    const spec = customerPod(fake, 'pve1');
    const vm = await proxmox.createVm(spec);
    fake.inject({
      method: 'PUT',
      path: '/access/acl',
      status: 500,
      message: 'cfs lock timeout',
      after: true,
    });
    await providerError(proxmox.setSuspended(spec, true));
    expect(await proxmox.findVm(spec)).toMatchObject({ suspended: true });
    await proxmox.setSuspended(spec, false);
    expect(fake.acls).toContainEqual(
      expect.objectContaining({
        path: `/vms/${vm.vmId}`,
        ugid: `${spec.customerId}@pve`,
        roleid: 'PVEVMUser',
      }),
    );
    expect(await proxmox.findVm(spec)).toMatchObject({ suspended: false });
  });

  it('takes the customer’s role away on suspension and gives it back on unsuspend', async () => {
    const spec = customerPod(fake, 'pve1');
    const vm = await proxmox.createVm(spec);
    const entry = {
      path: `/vms/${vm.vmId}`,
      type: 'user',
      ugid: `${spec.customerId}@pve`,
      roleid: 'PVEVMUser',
    };
    expect(fake.acls).toContainEqual(expect.objectContaining(entry));
    await proxmox.setSuspended(spec, true);
    expect(fake.acls).not.toContainEqual(expect.objectContaining(entry));
    expect(fake.requests.some((r) => r.body.lock !== undefined || r.body.delete === 'lock')).toBe(false);
    await proxmox.setSuspended(spec, false);
    expect(fake.acls).toContainEqual(expect.objectContaining(entry));
  });

  it('refuses to create when the template is missing, without retrying', async () => {
    fake.vms.delete(fake.templateVmId);
    const err = await providerError(proxmox.createVm(customerPod(fake, 'pve1')));
    expect(err).toMatchObject({ code: 'TEMPLATE_NOT_FOUND', retryable: false });
  });

  it.each([500, 595])('maps a %i to a retryable error carrying Proxmox’s message', async (status) => {
    fake.inject({ path: '/cluster/resources', status, message: 'proxy handshake failed' });
    const err = await providerError(proxmox.findVm(customerPod(fake, 'pve1')));
    expect(err).toMatchObject({
      provider: 'proxmox',
      operation: 'findVm',
      code: `HTTP_${status}`,
      retryable: true,
    });
    expect(err.message).toContain('proxy handshake failed');
  });

  it.each([408, 409, 423, 429])(
    'maps a %i (the server refused for now) to a retryable error',
    async (status) => {
      fake.inject({ path: '/cluster/resources', status, message: 'try again later' });
      const err = await providerError(proxmox.findVm(customerPod(fake, 'pve1')));
      expect(err).toMatchObject({ code: `HTTP_${status}`, retryable: true });
      expect(err.retryAfterMs).toBeUndefined();
    },
  );

  it.each<[string, () => string, (ms: number | undefined) => void]>([
    ['delta seconds', () => '7', (ms) => expect(ms).toBe(7000)],
    [
      'an HTTP date',
      () => new Date(Date.now() + 30_000).toUTCString(),
      (ms) => {
        expect(ms).toBeGreaterThan(28_000);
        expect(ms).toBeLessThanOrEqual(30_000);
      },
    ],
    [
      'an HTTP date already past',
      () => new Date(Date.now() - 60_000).toUTCString(),
      (ms) => expect(ms).toBe(0),
    ],
    ['garbage', () => 'soon', (ms) => expect(ms).toBeUndefined()],
  ])('carries Retry-After given as %s on the error', async (_kind, header, check) => {
    fake.inject({
      path: '/cluster/resources',
      status: 429,
      message: 'too many requests',
      headers: { 'Retry-After': header() },
    });
    const err = await providerError(proxmox.findVm(customerPod(fake, 'pve1')));
    expect(err).toMatchObject({ code: 'HTTP_429', retryable: true });
    check(err.retryAfterMs);
  });

  it('keeps polling a task through a refused poll, waiting the Retry-After it was given', async () => {
    fake.inject({
      method: 'GET',
      path: /\/tasks\/[^/]+\/status$/,
      status: 503,
      message: 'too busy',
      headers: { 'Retry-After': '1' },
    });
    const spec = customerPod(fake, 'pve1');
    await proxmox.createVm(spec);
    const polls = fake.requests.filter((r) => r.path.includes('/tasks/'));
    const refused = polls[0];
    const next = polls[1];
    expect(refused && next && next.at - refused.at).toBeGreaterThanOrEqual(990);
    expect(fake.vmsTagged(podTag(spec.podId))).toHaveLength(1);
  });

  it('does not retry a task poll that no retry can fix', async () => {
    fake.inject({
      method: 'GET',
      path: /\/tasks\/[^/]+\/status$/,
      status: 403,
      message: 'Permission check failed',
    });
    const err = await providerError(proxmox.createVm(customerPod(fake, 'pve1')));
    expect(err).toMatchObject({ code: 'HTTP_403', retryable: false });
  });

  it('maps a 4xx to a non-retryable error carrying the parameter errors', async () => {
    const spec = customerPod(fake, 'pve1');
    await proxmox.createVm(spec);
    fake.inject({
      method: 'POST',
      path: /\/config$/,
      status: 400,
      message: 'Parameter verification failed.',
      errors: { cores: 'value must be <= 128' },
    });
    const err = await providerError(proxmox.resizeVm(spec, { vcpu: 4, memoryMb: 2048, diskGb: 20 }));
    expect(err).toMatchObject({ code: 'HTTP_400', retryable: false });
    expect(err.message).toContain('Parameter verification failed.');
    expect(err.message).toContain('cores: value must be <= 128');
  });

  it('maps an unreachable server to a retryable network error', async () => {
    const gone = await startProxmox();
    await gone.fake.close();
    const err = await providerError(gone.proxmox.findVm(customerPod(fake, 'pve1')));
    expect(err).toMatchObject({ code: 'NETWORK', retryable: true });
  });

  it('never puts the token in an error message', async () => {
    const wrong = new ProxmoxHypervisor({
      baseUrl: fake.url,
      tokenId: TOKEN_ID,
      tokenSecret: 'wrong-secret-0000',
      templateVmId: fake.templateVmId,
      taskPollMs: 5,
    });
    const denied = await providerError(wrong.findVm(customerPod(fake, 'pve1')));
    expect(denied).toMatchObject({ code: 'HTTP_401', retryable: false });
    expect(denied.message).not.toContain('wrong-secret-0000');

    // a misbehaving proxy that echoes the request header back in its error
    fake.inject({
      path: '/cluster/resources',
      status: 502,
      message: `bad gateway for PVEAPIToken=${TOKEN_ID}=${TOKEN_SECRET}`,
    });
    const echoed = await providerError(proxmox.findVm(customerPod(fake, 'pve1')));
    expect(echoed.message).toContain('bad gateway');
    expect(echoed.message).not.toContain(TOKEN_SECRET);
    expect(echoed.stack ?? '').not.toContain(TOKEN_SECRET);
  });

  it('stops with a graceful shutdown that falls back to a hard stop, and destroys with purge', async () => {
    const spec = customerPod(fake, 'pve1');
    const vm = await proxmox.createVm(spec);
    await proxmox.stopVm(spec);
    const shutdown = fake.requests.find((r) => r.path.endsWith('/status/shutdown'));
    expect(shutdown?.body).toMatchObject({ forceStop: '1' });
    await proxmox.startVm(spec);
    await proxmox.destroyVm(spec);
    expect(fake.requests.some((r) => r.path.endsWith('/status/stop'))).toBe(true);
    const destroy = fake.requests.find((r) => r.method === 'DELETE');
    expect(destroy?.path).toBe(`/nodes/pve1/qemu/${vm.vmId}`);
    expect(Object.fromEntries(destroy?.query ?? [])).toEqual({
      purge: '1',
      'destroy-unreferenced-disks': '1',
    });
    expect(fake.vms.has(Number(vm.vmId))).toBe(false);
  });

  it('follows a VM that migrated to another node', async () => {
    const spec = customerPod(fake, 'pve1');
    const created = await proxmox.createVm(spec);
    const vm = fake.vms.get(Number(created.vmId));
    if (vm) vm.node = 'pve2';
    expect(await proxmox.findVm(spec)).toMatchObject({ vmId: created.vmId, node: 'pve2' });
    await proxmox.stopVm(spec);
    expect(vm?.status).toBe('stopped');
  });

  describe('backups', () => {
    const calls = () => fake.requests.map((r) => `${r.method} ${r.path}`);
    const vzdumps = () => fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/vzdump'));

    it('backs up with vzdump on the VM’s node into the backup storage, noted so that a retry finds it', async () => {
      const spec = customerPod(fake, 'pve1');
      const vm = await proxmox.createVm(spec);
      const name = backupName('pt');
      const backup = await proxmox.backupVm(spec, name);
      expect(backup).toEqual({
        backupId: expect.stringMatching(
          new RegExp(
            `^local:backup/vzdump-qemu-${vm.vmId}-\\d{4}_\\d{2}_\\d{2}-\\d{2}_\\d{2}_\\d{2}\\.vma\\.zst$`,
          ),
        ),
        podId: spec.podId,
        sizeGb: 20,
      });
      expect(calls()).toContain('GET /nodes/pve1/storage/local/status');
      expect(vzdumps()).toHaveLength(1);
      expect(vzdumps()[0]?.body).toEqual({
        vmid: vm.vmId,
        storage: 'local',
        mode: 'snapshot',
        compress: 'zstd',
        'notes-template': `podplane-backup:${name}:${spec.podId}`,
      });
      const task = [...fake.tasks.values()].find((t) => t.type === 'vzdump');
      expect(task).toMatchObject({ node: 'pve1', id: vm.vmId, exitstatus: 'OK' });
      expect(fake.vms.get(Number(vm.vmId))?.lock).toBeUndefined();
      expect(await proxmox.backupVm(spec, name)).toEqual(backup);
      expect(vzdumps()).toHaveLength(1);
    });

    it('finds the backup of an attempt whose answer was lost instead of making a second one', async () => {
      const spec = customerPod(fake, 'pve1');
      await proxmox.createVm(spec);
      fake.inject({
        method: 'POST',
        path: '/nodes/pve1/vzdump',
        status: 502,
        message: 'proxy timeout',
        after: true,
      });
      const name = backupName('bak');
      expect(await providerError(proxmox.backupVm(spec, name))).toMatchObject({
        code: 'HTTP_502',
        retryable: true,
      });
      // the first vzdump still runs (its lock is on the VM): a retry now waits rather than starting another
      expect(await providerError(proxmox.backupVm(spec, name))).toMatchObject({
        code: 'VM_BUSY',
        retryable: true,
      });
      fake.finishTasks();
      const backup = await proxmox.backupVm(spec, name);
      expect(vzdumps()).toHaveLength(1);
      expect(fake.backups().map((b) => b.volid)).toEqual([backup.backupId]);
    });

    it('refuses a backup storage that cannot hold backups, without retrying and without a vzdump', async () => {
      const spec = customerPod(fake, 'pve1');
      await proxmox.createVm(spec);
      const client = (backupStorage: string) =>
        new ProxmoxHypervisor({
          baseUrl: fake.url,
          tokenId: TOKEN_ID,
          tokenSecret: TOKEN_SECRET,
          templateVmId: fake.templateVmId,
          taskPollMs: 5,
          backupStorage,
        });
      const images = await providerError(client('local-lvm').backupVm(spec, backupName('bak')));
      expect(images).toMatchObject({ code: 'BACKUP_STORAGE_INVALID', retryable: false });
      const unknown = await providerError(client('nope').backupVm(spec, backupName('bak')));
      expect(unknown).toMatchObject({ code: 'HTTP_400', retryable: false });
      expect(unknown.message).toContain('No such storage.');
      expect(vzdumps()).toHaveLength(0);
    });

    it('refuses a name that is not 1-40 safe characters before calling Proxmox', async () => {
      const spec = customerPod(fake, 'pve1');
      for (const name of ['', 'x'.repeat(41), 'with space', '{{vmid}}', 'a\\b']) {
        expect(await providerError(proxmox.backupVm(spec, name))).toMatchObject({
          code: 'BAD_BACKUP_NAME',
          retryable: false,
        });
      }
      expect(fake.requests).toHaveLength(0);
    });

    it('restores in place over the same VM id with force, keeping the pod’s tag, plan and power', async () => {
      const spec = customerPod(fake, 'pve2');
      const vm = await proxmox.createVm(spec);
      const backup = await proxmox.backupVm(spec, backupName('bak'));
      await proxmox.resizeVm(spec, { vcpu: 3, memoryMb: 3072, diskGb: 25 });
      await proxmox.restoreBackup(spec, backup.backupId);
      const restore = fake.requests.find((r) => r.method === 'POST' && r.path === '/nodes/pve2/qemu');
      expect(restore?.body).toMatchObject({
        vmid: vm.vmId,
        archive: backup.backupId,
        force: '1',
        storage: 'local-lvm',
        cores: '3',
        memory: '3072',
        tags: `podplane;${podTag(spec.podId)}`,
      });
      const at = (path: string) => calls().indexOf(path);
      expect(at(`POST /nodes/pve2/qemu/${vm.vmId}/status/stop`)).toBeLessThan(at('POST /nodes/pve2/qemu'));
      expect(fake.vms.get(Number(vm.vmId))).toMatchObject({
        status: 'running',
        cores: 3,
        memoryMb: 3072,
        disks: { scsi0: 25 },
        tags: ['podplane', podTag(spec.podId)],
      });
      expect(fake.vmsTagged(podTag(spec.podId))).toHaveLength(1);
    });

    it('creates a pod from another pod’s backup as a new VM tagged for the new pod only', async () => {
      const source = customerPod(fake, 'pve2');
      const sourceVm = await proxmox.createVm(source);
      const backup = await proxmox.backupVm(source, backupName('bak'));
      const copy = { ...customerPod(fake, 'pve2'), fromBackupId: backup.backupId };
      const vm = await proxmox.createVm(copy);
      expect(vm.vmId).not.toBe(sourceVm.vmId);
      const restore = fake.requests.find((r) => r.method === 'POST' && r.path === '/nodes/pve2/qemu');
      expect(restore?.body).toMatchObject({
        vmid: vm.vmId,
        archive: backup.backupId,
        unique: '1',
        storage: 'local-lvm',
        name: copy.hostname,
        tags: `podplane;${podTag(copy.podId)}`,
      });
      expect(restore?.body.force).toBeUndefined();
      expect(fake.vmsTagged(podTag(source.podId)).map((v) => v.vmid)).toEqual([Number(sourceVm.vmId)]);
      expect(fake.vmsTagged(podTag(copy.podId)).map((v) => v.vmid)).toEqual([Number(vm.vmId)]);
      const restoredAt = fake.requests.indexOf(restore!);
      expect(fake.requests.slice(restoredAt).some((r) => r.path.endsWith('/clone'))).toBe(false);
    });

    it('removes the VM a failed restore leaves behind, and the retry succeeds', async () => {
      const source = customerPod(fake, 'pve2');
      await proxmox.createVm(source);
      const backup = await proxmox.backupVm(source, backupName('bak'));
      const before = [...fake.vms.keys()];
      fake.failNextTask('qmrestore', "command 'vma extract' failed: got signal 9");
      const copy = { ...customerPod(fake, 'pve2'), fromBackupId: backup.backupId };
      const err = await providerError(proxmox.createVm(copy));
      expect(err).toMatchObject({ code: 'TASK_FAILED', retryable: true });
      expect([...fake.vms.keys()]).toEqual(before);
      await proxmox.createVm(copy);
      expect(fake.vmsTagged(podTag(copy.podId))).toHaveLength(1);
    });

    it('refuses, without retrying, to restore onto a node that cannot read a node-local archive', async () => {
      const source = customerPod(fake, 'pve1');
      await proxmox.createVm(source);
      const backup = await proxmox.backupVm(source, backupName('bak'));
      expect(await proxmox.findBackup(backup.backupId)).toEqual(backup);
      const elsewhere = { ...customerPod(fake, 'pve2'), fromBackupId: backup.backupId };
      const err = await providerError(proxmox.createVm(elsewhere));
      expect(err).toMatchObject({ code: 'BACKUP_NOT_ON_NODE', retryable: false });
      expect(fake.vmsTagged(podTag(elsewhere.podId))).toHaveLength(0);
    });

    it('restores across nodes from a shared backup storage, and deletes on the storage', async () => {
      await fake.close();
      fake = await ProxmoxFake.start({
        tokenId: TOKEN_ID,
        tokenSecret: TOKEN_SECRET,
        storages: {
          'local-lvm': { type: 'lvmthin', content: ['images', 'rootdir'], shared: false },
          nfs: { type: 'nfs', content: ['backup', 'iso'], shared: true },
        },
      });
      proxmox = new ProxmoxHypervisor({
        baseUrl: fake.url,
        tokenId: TOKEN_ID,
        tokenSecret: TOKEN_SECRET,
        templateVmId: fake.templateVmId,
        taskPollMs: 5,
        backupStorage: 'nfs',
      });
      const source = customerPod(fake, 'pve1');
      await proxmox.createVm(source);
      const backup = await proxmox.backupVm(source, backupName('pt'));
      expect(backup.backupId).toMatch(/^nfs:backup\//);
      const elsewhere = { ...customerPod(fake, 'pve2'), fromBackupId: backup.backupId };
      expect(await proxmox.createVm(elsewhere)).toMatchObject({ node: 'pve2', podId: elsewhere.podId });
      await proxmox.deleteBackup(backup.backupId);
      const del = fake.requests.find((r) => r.method === 'DELETE' && r.path.includes('/storage/'));
      expect(del?.path).toBe(`/nodes/pve1/storage/nfs/content/${encodeURIComponent(backup.backupId)}`);
      expect(fake.backups()).toEqual([]);
      expect(await proxmox.findBackup(backup.backupId)).toBeNull();
    });

    it('says a backup is missing only when every node could be asked', async () => {
      const spec = customerPod(fake, 'pve2');
      await proxmox.createVm(spec);
      const backup = await proxmox.backupVm(spec, backupName('bak'));
      fake.inject({
        method: 'GET',
        path: /\/storage\/local\/content$/,
        status: 500,
        message: 'storage busy',
        times: 2,
      });
      expect(await providerError(proxmox.findBackup(backup.backupId))).toMatchObject({ retryable: true });
      expect(await proxmox.findBackup(backup.backupId)).toEqual(backup);
    });
  });
});

describe('the Proxmox fake refuses what Proxmox refuses', () => {
  let fake: ProxmoxFake;
  beforeAll(async () => {
    fake = await ProxmoxFake.start({ tokenId: TOKEN_ID, tokenSecret: TOKEN_SECRET });
    fake.addVm({ vmid: 120, name: 'web', node: 'pve1' });
  });
  afterAll(async () => {
    await fake.close();
  });

  async function call(method: string, path: string, form: Record<string, string> = {}) {
    const res = await fetch(`${fake.url}/api2/json${path}`, {
      method,
      headers: {
        Authorization: `PVEAPIToken=${TOKEN_ID}=${TOKEN_SECRET}`,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: method === 'GET' ? undefined : new URLSearchParams(form).toString(),
    });
    return {
      status: res.status,
      body: (await res.json()) as { data: unknown; errors?: Record<string, string> },
    };
  }

  async function taskExit(upid: unknown): Promise<string | undefined> {
    fake.finishTasks();
    const node = String(upid).split(':')[1] ?? '';
    const res = await call('GET', `/nodes/${node}/tasks/${encodeURIComponent(String(upid))}/status`);
    return (res.body.data as { exitstatus?: string }).exitstatus;
  }

  it('config: `lock` is root’s only, set or deleted — a 500 before any task', async () => {
    const set = await call('POST', '/nodes/pve1/qemu/120/config', { lock: 'suspended' });
    expect(set).toMatchObject({ status: 500, body: { message: "only root can set 'lock' config\n" } });
    const del = await call('POST', '/nodes/pve1/qemu/120/config', { delete: 'lock' });
    expect(del.status).toBe(500);
    expect(fake.vms.get(120)?.lock).toBeUndefined();
  });

  it('start: resumes a hibernated VM (lock `suspended`) and clears the lock, leaving pending changes pending', async () => {
    const vm = fake.addVm({ vmid: 141, name: 'sleepy', lock: 'suspended', pending: { cores: 4 } });
    expect(await taskExit((await call('POST', '/nodes/pve1/qemu/141/status/start')).body.data)).toBe('OK');
    expect(vm).toMatchObject({ status: 'running', cores: 1, pending: { cores: 4 } });
    expect(vm.lock).toBeUndefined();
    fake.addVm({ vmid: 142, name: 'busy', lock: 'backup' });
    const locked = await call('POST', '/nodes/pve1/qemu/142/status/start');
    expect(await taskExit(locked.body.data)).toBe('VM is locked (backup)');
  });

  it('config: cores and memory of a running VM stay pending; GET config shows them unless current=1', async () => {
    const vm = fake.addVm({ vmid: 143, name: 'busy-web', status: 'running', cores: 2, memoryMb: 2048 });
    const upid = (await call('POST', '/nodes/pve1/qemu/143/config', { cores: '4', memory: '4096' })).body
      .data;
    expect(await taskExit(upid)).toBe('OK');
    expect(vm).toMatchObject({ cores: 2, memoryMb: 2048 });
    expect((await call('GET', '/nodes/pve1/qemu/143/config')).body.data).toMatchObject({
      cores: 4,
      memory: '4096',
    });
    expect((await call('GET', '/nodes/pve1/qemu/143/config?current=1')).body.data).toMatchObject({
      cores: 2,
      memory: '2048',
    });
    expect((await call('GET', '/nodes/pve1/qemu/143/pending')).body.data).toContainEqual({
      key: 'cores',
      value: 2,
      pending: 4,
    });
    // memory hotplug applies memory at once; cores never hot-plug
    vm.hotplug = 'network,disk,usb,memory';
    await taskExit((await call('POST', '/nodes/pve1/qemu/143/config', { memory: '8192' })).body.data);
    expect(vm).toMatchObject({ cores: 2, memoryMb: 8192 });
  });

  it('cluster/resources: a VM younger than the status refresh has no name or status yet; lock and tags show at once', async () => {
    fake.addVm({ vmid: 144, name: 'fresh', tags: ['podplane'], lock: 'clone' });
    const fresh = ((await call('GET', '/cluster/resources?type=vm')).body.data as { vmid: number }[]).find(
      (r) => r.vmid === 144,
    );
    expect(fresh).toEqual({
      id: 'qemu/144',
      type: 'qemu',
      vmid: 144,
      node: 'pve1',
      status: 'unknown',
      tags: 'podplane',
      lock: 'clone',
    });
    fake.publishStatus();
    const later = ((await call('GET', '/cluster/resources?type=vm')).body.data as { vmid: number }[]).find(
      (r) => r.vmid === 144,
    );
    expect(later).toMatchObject({ name: 'fresh', status: 'stopped', template: 0 });
  });

  it('clone: `target` is refused for a template on local storage; a taken id is refused', async () => {
    const across = await call('POST', `/nodes/pve1/qemu/${fake.templateVmId}/clone`, {
      newid: '130',
      target: 'pve2',
    });
    expect(across).toMatchObject({
      status: 500,
      body: { message: "can't clone VM to node 'pve2' (VM uses local storage)\n" },
    });
    const taken = await call('POST', `/nodes/pve1/qemu/${fake.templateVmId}/clone`, { newid: '120' });
    expect(taken.status).toBe(500);
    expect(fake.vms.has(130)).toBe(false);
  });

  it('resize: every check runs in the task — shrinking fails it, not the request', async () => {
    const res = await call('PUT', '/nodes/pve1/qemu/120/resize', { disk: 'scsi0', size: '4G' });
    expect(res.status).toBe(200);
    expect(await taskExit(res.body.data)).toBe('shrinking disks is not supported');
  });

  it('privileges: a user without a role on the VM is refused (403); a role is granted only by a holder of all its privileges', async () => {
    fake.addUser('nobody@pve', { tokenId: 'nobody@pve!t', tokenSecret: 'nobody-secret' });
    const asNobody = await fetch(`${fake.url}/api2/json/nodes/pve1/qemu/120/status/start`, {
      method: 'POST',
      headers: { Authorization: 'PVEAPIToken=nobody@pve!t=nobody-secret' },
    });
    expect(asNobody.status).toBe(403);
    expect(asNobody.statusText).toBe('Permission check failed (/vms/120, VM.PowerMgmt)');

    fake.roles.Partial = ['VM.Allocate', 'VM.PowerMgmt', 'VM.Audit'];
    fake.addUser('partial@pve', { tokenId: 'partial@pve!t', tokenSecret: 'partial-secret' });
    fake.acls.push({
      path: '/vms/120',
      type: 'user',
      ugid: 'partial@pve',
      roleid: 'Partial',
      propagate: true,
    });
    const grant = await fetch(`${fake.url}/api2/json/access/acl`, {
      method: 'PUT',
      headers: {
        Authorization: 'PVEAPIToken=partial@pve!t=partial-secret',
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ path: '/vms/120', roles: 'PVEVMUser', users: 'nobody@pve' }).toString(),
    });
    expect(grant.status).toBe(400);
    expect(grant.statusText).toContain("requires 'Permissions.Modify' or superset of privileges");
    const unknown = await call('PUT', '/access/acl', {
      path: '/vms/120',
      roles: 'PVEVMUser',
      users: 'ghost@pve',
    });
    expect(unknown).toMatchObject({ status: 500, body: { message: "user 'ghost@pve' does not exist\n" } });
  });

  it('vzdump: bad parameters are 400s, a VM on another node is a silent OK', async () => {
    const unknownVar = await call('POST', '/nodes/pve1/vzdump', {
      vmid: '120',
      storage: 'local',
      'notes-template': '{{pod}}',
    });
    expect(unknownVar.status).toBe(400);
    expect(unknownVar.body.errors?.['notes-template']).toContain("variable 'pod'");
    const withoutStorage = await call('POST', '/nodes/pve1/vzdump', { vmid: '120', 'notes-template': 'x' });
    expect(withoutStorage.status).toBe(400);
    expect((await call('POST', '/nodes/pve1/vzdump', { vmid: '120', mode: 'live' })).status).toBe(400);
    expect((await call('POST', '/nodes/pve1/vzdump', { storage: 'local' })).status).toBe(400);
    const wrongNode = await call('POST', '/nodes/pve2/vzdump', { vmid: '120', storage: 'local' });
    expect(wrongNode).toMatchObject({ status: 200, body: { data: 'OK' } });
  });

  it('vzdump: a storage without backup content fails the task, not the request', async () => {
    const res = await call('POST', '/nodes/pve1/vzdump', { vmid: '120', storage: 'local-lvm' });
    expect(res.status).toBe(200);
    expect(await taskExit(res.body.data)).toContain('wrong content type');
    expect(fake.vms.get(120)?.lock).toBeUndefined();
  });

  it('restore: drive options conflict with archive; an existing VM needs force; a locked one is refused', async () => {
    const made = await call('POST', '/nodes/pve1/vzdump', { vmid: '120', storage: 'local' });
    expect(await taskExit(made.body.data)).toBe('OK');
    const archive = fake.backups()[0]?.volid ?? '';
    const drive = await call('POST', '/nodes/pve1/qemu', { vmid: '121', archive, scsi0: 'local-lvm:8' });
    expect(drive.status).toBe(400);
    expect(drive.body.errors?.scsi0).toBe("option conflicts with option 'archive'");
    expect((await call('POST', '/nodes/pve1/qemu', { vmid: '120', archive })).status).toBe(500);
    fake.vms.get(120)!.lock = 'suspended';
    expect((await call('POST', '/nodes/pve1/qemu', { vmid: '120', archive, force: '1' })).status).toBe(500);
    delete fake.vms.get(120)!.lock;
    const notBackup = await call('POST', '/nodes/pve1/qemu', {
      vmid: '122',
      archive: 'local-lvm:vm-120-disk-0',
    });
    expect(notBackup.status).toBe(500);
    const missing = await call('POST', '/nodes/pve1/qemu', {
      vmid: '123',
      archive: 'local:backup/vzdump-qemu-999-2020_01_01-00_00_00.vma.zst',
    });
    expect(missing.status).toBe(200);
    expect(await taskExit(missing.body.data)).toContain('unable to restore VM 123');
    // "VM state is NOT cleaned up": the failed restore's VM stays, unlocked
    expect(fake.vms.get(123)).toMatchObject({ tags: [] });
    expect(fake.vms.get(123)?.lock).toBeUndefined();
  });

  it('delete: a volume id of another storage is refused; a missing volume only warns', async () => {
    const mismatch = await call(
      'DELETE',
      `/nodes/pve1/storage/local/content/${encodeURIComponent('nfs:backup/x.vma.zst')}`,
    );
    expect(mismatch.status).toBe(400);
    const gone = await call(
      'DELETE',
      `/nodes/pve1/storage/local/content/${encodeURIComponent('local:backup/vzdump-qemu-999-2020_01_01-00_00_00.vma.zst')}`,
    );
    expect(await taskExit(gone.body.data)).toBe('WARNINGS: 1');
  });
});

describe('PowerDnsProvider specifics', () => {
  let fake: PowerDnsFake;
  let powerdns: PowerDnsProvider;
  beforeEach(async () => {
    ({ fake, powerdns } = await startPowerDns());
  });
  afterEach(async () => {
    await fake.close();
  });

  it('PATCHes the documented rrset with the X-API-Key header', async () => {
    await powerdns.upsertA({ fqdn: `web.${ZONE}`, podSlug: 'web' }, '10.1.2.3', 120);
    await powerdns.deleteA({ fqdn: `web.${ZONE}`, podSlug: 'web' });
    const [upsert, remove] = fake.requests;
    expect(upsert).toMatchObject({ method: 'PATCH', path: `/api/v1/servers/localhost/zones/${ZONE}.` });
    expect(upsert?.headers['x-api-key']).toBe(API_KEY);
    expect(upsert?.body).toEqual({
      rrsets: [
        {
          name: `web.${ZONE}.`,
          type: 'A',
          ttl: 120,
          changetype: 'REPLACE',
          records: [{ content: '10.1.2.3', disabled: false }],
        },
      ],
    });
    expect(remove?.body).toEqual({ rrsets: [{ name: `web.${ZONE}.`, type: 'A', changetype: 'DELETE' }] });
    expect(fake.record(`web.${ZONE}`)).toBeUndefined();
  });

  it('surfaces a 422 (name outside the zone) as a non-retryable error with PowerDNS’s message', async () => {
    const err = await providerError(
      powerdns.upsertA({ fqdn: 'web.example.org', podSlug: 'web' }, '10.1.2.3'),
    );
    expect(err).toMatchObject({
      provider: 'powerdns',
      operation: 'upsertA',
      code: 'HTTP_422',
      retryable: false,
    });
    expect(err.message).toContain('Name is out of zone');
  });

  it('surfaces an unknown zone (404) as non-retryable', async () => {
    const other = new PowerDnsProvider({
      baseUrl: fake.url,
      apiKey: API_KEY,
      serverId: 'localhost',
      zone: 'nope.test',
    });
    const err = await providerError(other.getA('a.nope.test'));
    expect(err).toMatchObject({ code: 'HTTP_404', retryable: false });
    expect(err.message).toContain("Could not find domain 'nope.test.'");
  });

  it.each([408, 409, 423, 429])(
    'surfaces a %i as retryable, with the Retry-After it names',
    async (status) => {
      fake.inject({
        method: 'PATCH',
        path: /zones/,
        status,
        error: 'slow down',
        headers: { 'Retry-After': '3' },
      });
      const err = await providerError(powerdns.upsertA({ fqdn: `web.${ZONE}`, podSlug: 'web' }, '10.1.2.3'));
      expect(err).toMatchObject({ code: `HTTP_${status}`, retryable: true, retryAfterMs: 3000 });
    },
  );

  it('surfaces a 5xx as retryable', async () => {
    fake.inject({ method: 'PATCH', path: /zones/, status: 500, error: 'Backend error: database is locked' });
    const err = await providerError(powerdns.upsertA({ fqdn: `web.${ZONE}`, podSlug: 'web' }, '10.1.2.3'));
    expect(err).toMatchObject({ code: 'HTTP_500', retryable: true });
    expect(err.message).toContain('database is locked');
  });

  it('rejects a wrong API key without repeating it', async () => {
    const wrong = new PowerDnsProvider({
      baseUrl: fake.url,
      apiKey: 'not-the-key-123',
      serverId: 'localhost',
      zone: ZONE,
    });
    const err = await providerError(wrong.getA(`web.${ZONE}`));
    expect(err).toMatchObject({ code: 'HTTP_401', retryable: false });
    expect(err.message).toContain('Unauthorized');
    expect(err.message).not.toContain('not-the-key-123');
  });
});

describe('createProviders', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('defaults to the simulators', () => {
    const providers = createProviders(parseConfig({}), db.orm);
    expect(providers.hypervisor).toBeInstanceOf(SimulatedHypervisor);
    expect(providers.dns).toBeInstanceOf(SimulatedDns);
    expect(providers.faults).toBeInstanceOf(FaultInjector);
  });

  it('builds the Proxmox and PowerDNS clients from their settings', () => {
    const config = parseConfig({
      HYPERVISOR: 'proxmox',
      PROXMOX_URL: 'https://pve.example.com:8006',
      PROXMOX_TOKEN_ID: TOKEN_ID,
      PROXMOX_TOKEN_SECRET: TOKEN_SECRET,
      PROXMOX_TEMPLATE_VMID: '9000',
      DNS_PROVIDER: 'powerdns',
      POWERDNS_URL: 'http://pdns.example.com:8081',
      POWERDNS_API_KEY: API_KEY,
    });
    const providers = createProviders(config, db.orm);
    expect(providers.hypervisor).toBeInstanceOf(ProxmoxHypervisor);
    expect(parseConfig({ PROXMOX_TEMPLATES: 'pve1=9000, pve2=9001' }).PROXMOX_TEMPLATES).toBeDefined();
    expect(parseTemplates('pve1=9000, pve2=9001')).toEqual({ pve1: 9000, pve2: 9001 });
    expect(parseCustomerAccess('group:customer-{customer}:PVEVMUser')).toEqual({
      type: 'group',
      pattern: 'customer-{customer}',
      role: 'PVEVMUser',
    });
    expect(providers.dns).toBeInstanceOf(PowerDnsProvider);
    expect(providers.faults).toBeInstanceOf(FaultInjector);
  });

  it('names the missing setting when a real provider is chosen without it', () => {
    const attempt = () => createProviders(parseConfig({ DNS_PROVIDER: 'powerdns' }), db.orm);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(expect.objectContaining({ variable: 'POWERDNS_URL' }));
  });
});
