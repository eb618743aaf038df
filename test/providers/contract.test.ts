/** One contract for every Hypervisor and Dns, run on the simulators and on the real clients against fakes. */
import { ConfigError, parseConfig } from '../../src/config';
import { newId } from '../../src/domain/ids';
import type { Dns } from '../../src/providers/dns';
import { ProviderError } from '../../src/providers/errors';
import type { Hypervisor, VmInfo, VmRef, VmSpec } from '../../src/providers/hypervisor';
import { createProviders } from '../../src/providers/index';
import { PowerDnsProvider } from '../../src/providers/powerdns';
import { ProxmoxHypervisor, podTag } from '../../src/providers/proxmox';
import { FaultInjector, SimulatedDns, SimulatedHypervisor } from '../../src/providers/simulator';
import { PowerDnsFake } from '../fakes/powerdns-fake';
import { ProxmoxFake } from '../fakes/proxmox-fake';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { waitFor } from '../helpers/wait';

const ZONE = 'pods.podplane.test';
const TOKEN_ID = 'podplane@pve!ci';
const TOKEN_SECRET = '6f1c1b0e-3d2a-4c55-9a7e-0c1d2e3f4a5b';
const API_KEY = 'pdns-test-key-8c1e5f';

interface HypervisorHarness {
  hypervisor: Hypervisor;
  /** the node new VMs are placed on */
  node: string;
  /** how many VMs the backend holds for the pod: adoption must keep it at one */
  vmCount(podId: string): Promise<number>;
  close(): Promise<void>;
}

interface DnsHarness {
  dns: Dns;
  close(): Promise<void>;
}

async function simulatedHypervisor(): Promise<HypervisorHarness> {
  const db = await createTestDatabase();
  const hypervisor = new SimulatedHypervisor({
    orm: db.orm,
    faults: new FaultInjector(db.orm),
    latencyMs: 0,
    bootMs: 0,
  });
  return {
    hypervisor,
    node: 'node-a',
    vmCount: async (podId) =>
      (await db.query<{ n: number }>('select count(*)::int as n from sim_vms where pod_id = $1', [podId]))[0]
        ?.n ?? 0,
    close: () => db.close(),
  };
}

async function startProxmox(): Promise<{ fake: ProxmoxFake; proxmox: ProxmoxHypervisor }> {
  const fake = await ProxmoxFake.start({ tokenId: TOKEN_ID, tokenSecret: TOKEN_SECRET });
  const proxmox = new ProxmoxHypervisor({
    baseUrl: fake.url,
    tokenId: TOKEN_ID,
    tokenSecret: TOKEN_SECRET,
    templateVmId: fake.templateVmId,
    taskPollMs: 5,
  });
  return { fake, proxmox };
}

async function proxmoxOnFake(): Promise<HypervisorHarness> {
  const { fake, proxmox } = await startProxmox();
  return {
    hypervisor: proxmox,
    // not the template's node, so every create exercises a clone onto another node
    node: 'pve2',
    vmCount: (podId) => Promise.resolve(fake.vmsTagged(podTag(podId)).length),
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

function newPod(node: string, size = { vcpu: 2, memoryMb: 2048, diskGb: 20 }): VmSpec {
  const podId = newId('pod');
  const podSlug = `pod-${podId.slice(-8)}`;
  return { podId, podSlug, node, hostname: `${podSlug}.${ZONE}`, ...size };
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
    const spec = newPod(h.node);
    const created = await h.hypervisor.createVm(spec);
    expect(created).toMatchObject({
      podId: spec.podId,
      node: spec.node,
      locked: false,
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
    const spec = newPod(h.node);
    const first = await h.hypervisor.createVm(spec);
    const second = await h.hypervisor.createVm(spec);
    expect(second.vmId).toBe(first.vmId);
    expect(await h.vmCount(spec.podId)).toBe(1);
  });

  it('finds no VM for an unknown pod', async () => {
    expect(await h.hypervisor.findVm(newPod(h.node))).toBeNull();
  });

  it('fails operations on a missing VM with VM_NOT_FOUND, not retryable', async () => {
    const err = await providerError(h.hypervisor.startVm(newPod(h.node)));
    expect(err).toMatchObject({ code: 'VM_NOT_FOUND', retryable: false });
  });

  it('stops and starts, each idempotently', async () => {
    const spec = newPod(h.node);
    await h.hypervisor.createVm(spec);
    await h.hypervisor.stopVm(spec);
    await h.hypervisor.stopVm(spec);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ status: 'stopped' });
    await h.hypervisor.startVm(spec);
    await h.hypervisor.startVm(spec);
    await waitForState(h.hypervisor, spec, 'the VM running again', running);
  });

  it('refuses to start a locked VM until it is unlocked', async () => {
    const spec = newPod(h.node);
    await h.hypervisor.createVm(spec);
    await h.hypervisor.stopVm(spec);
    await h.hypervisor.setLocked(spec, true);
    await h.hypervisor.setLocked(spec, true);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ locked: true, status: 'stopped' });
    const err = await providerError(h.hypervisor.startVm(spec));
    expect(err).toMatchObject({ code: 'VM_LOCKED', retryable: false });
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ status: 'stopped' });
    await h.hypervisor.setLocked(spec, false);
    await h.hypervisor.setLocked(spec, false);
    await h.hypervisor.startVm(spec);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ locked: false, status: 'running' });
  });

  it('resizes cores, memory and disk, and refuses to shrink the disk', async () => {
    const spec = newPod(h.node);
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
    const spec = newPod(h.node);
    await h.hypervisor.createVm(spec);
    await h.hypervisor.destroyVm(spec);
    await h.hypervisor.destroyVm(spec);
    expect(await h.hypervisor.findVm(spec)).toBeNull();
    expect(await h.vmCount(spec.podId)).toBe(0);
  });

  it('destroys a locked (suspended) VM', async () => {
    const spec = newPod(h.node);
    await h.hypervisor.createVm(spec);
    await h.hypervisor.stopVm(spec);
    await h.hypervisor.setLocked(spec, true);
    await h.hypervisor.destroyVm(spec);
    expect(await h.hypervisor.findVm(spec)).toBeNull();
  });

  it('snapshots idempotently and restores, keeping the power state', async () => {
    const spec = newPod(h.node);
    await h.hypervisor.createVm(spec);
    const name = newId('backup');
    expect(await h.hypervisor.snapshotVm(spec, name)).toEqual({ snapshotId: name, sizeGb: 20 });
    expect(await h.hypervisor.snapshotVm(spec, name)).toEqual({ snapshotId: name, sizeGb: 20 });
    await h.hypervisor.restoreSnapshot(spec, name);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ status: 'running' });
    const err = await providerError(h.hypervisor.restoreSnapshot(spec, newId('backup')));
    expect(err).toMatchObject({ code: 'SNAPSHOT_NOT_FOUND', retryable: false });
  });

  it('snapshots and restores a locked VM and leaves it locked', async () => {
    const spec = newPod(h.node);
    await h.hypervisor.createVm(spec);
    await h.hypervisor.stopVm(spec);
    await h.hypervisor.setLocked(spec, true);
    const name = newId('backup');
    await h.hypervisor.snapshotVm(spec, name);
    await h.hypervisor.restoreSnapshot(spec, name);
    expect(await h.hypervisor.findVm(spec)).toMatchObject({ locked: true, status: 'stopped' });
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
    await proxmox.findVm(newPod('pve1'));
    expect(fake.requests.length).toBeGreaterThan(0);
    for (const req of fake.requests) {
      expect(req.headers.authorization).toBe(`PVEAPIToken=${TOKEN_ID}=${TOKEN_SECRET}`);
    }
  });

  it('clones, polls the task until it stops, configures, grows the disk and starts', async () => {
    fake.taskPolls = 3;
    const spec = newPod('pve2');
    const vm = await proxmox.createVm(spec);
    const calls = fake.requests.map((r) => `${r.method} ${r.path.replace(/UPID[^/]+/, 'UPID')}`);
    const vmPath = `/nodes/pve2/qemu/${vm.vmId}`;
    expect(calls.slice(0, 3)).toEqual([
      'GET /cluster/resources',
      'GET /cluster/nextid',
      `POST /nodes/pve1/qemu/${fake.templateVmId}/clone`,
    ]);
    // the clone's task on the template's node: three `running` answers, then `stopped`
    expect(calls.slice(3, 7)).toEqual(Array(4).fill('GET /nodes/pve1/tasks/UPID/status'));
    expect(calls[7]).toBe(`POST ${vmPath}/config`);
    expect(calls).toContain(`POST ${vmPath}/config`);
    expect(calls).toContain(`PUT ${vmPath}/resize`);
    expect(calls).toContain(`POST ${vmPath}/status/start`);
    expect(calls.indexOf(`POST ${vmPath}/config`)).toBeLessThan(calls.indexOf(`PUT ${vmPath}/resize`));
    expect(calls.indexOf(`PUT ${vmPath}/resize`)).toBeLessThan(calls.indexOf(`POST ${vmPath}/status/start`));

    const clone = fake.requests.find((r) => r.path.endsWith('/clone'));
    expect(clone?.body).toMatchObject({ newid: vm.vmId, name: spec.hostname, full: '1', target: 'pve2' });
    const resize = fake.requests.find((r) => r.path.endsWith('/resize'));
    expect(resize?.body).toEqual({ disk: 'scsi0', size: '20G' });
    const upid = fake.requests.find((r) => r.path.includes('/tasks/'))?.path.split('/')[4] ?? '';
    expect(decodeURIComponent(upid)).toMatch(
      /^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmclone:\d+:podplane@pve!ci:$/,
    );
    expect(fake.vms.get(Number(vm.vmId))).toMatchObject({
      node: 'pve2',
      cores: 2,
      memoryMb: 2048,
      disks: { scsi0: 20 },
      status: 'running',
      tags: ['podplane', podTag(spec.podId)],
    });
  });

  it('tags VMs with a Proxmox-safe, lower-case pod tag', () => {
    expect(podTag('pod_01J9ZQ8XKQ3W5V7M2N4P6R8T0A')).toBe('podplane-pod-pod_01j9zq8xkq3w5v7m2n4p6r8t0a');
    expect(podTag('Pod:with spaces')).toMatch(/^[a-z0-9_][a-z0-9_+.-]*$/);
  });

  it('reports no IP while the guest agent is not answering', async () => {
    fake.agentWarmupCalls = 1_000;
    const spec = newPod('pve1');
    await proxmox.createVm(spec);
    expect(await proxmox.findVm(spec)).toMatchObject({ status: 'running', ipAddress: null });
  });

  it('fails create with the task’s exit status when the clone task fails, and leaves no VM', async () => {
    fake.failNextTask('qmclone', "clone failed: storage 'local-lvm' is not online");
    const spec = newPod('pve1');
    const err = await providerError(proxmox.createVm(spec));
    expect(err).toMatchObject({ code: 'TASK_FAILED', retryable: true });
    expect(err.message).toContain("clone failed: storage 'local-lvm' is not online");
    expect([...fake.vms.values()].filter((vm) => !vm.template)).toEqual([]);
    await proxmox.createVm(spec);
    expect(fake.vmsTagged(podTag(spec.podId))).toHaveLength(1);
  });

  it('adopts the untagged VM of a create that died after cloning', async () => {
    const spec = newPod('pve1');
    fake.addVm({ vmid: 150, name: spec.hostname, description: `podplane-pod:${spec.podId}` });
    fake.addVm({ vmid: 151, name: spec.hostname });
    const vm = await proxmox.createVm(spec);
    expect(vm.vmId).toBe('150');
    expect(fake.vms.get(150)).toMatchObject({ tags: ['podplane', podTag(spec.podId)], status: 'running' });
    expect(fake.vms.get(151)?.tags).toEqual([]);
    expect(fake.requests.some((r) => r.path.endsWith('/clone'))).toBe(false);
  });

  it('refuses to create when the template is missing, without retrying', async () => {
    fake.vms.delete(fake.templateVmId);
    const err = await providerError(proxmox.createVm(newPod('pve1')));
    expect(err).toMatchObject({ code: 'TEMPLATE_NOT_FOUND', retryable: false });
  });

  it.each([500, 595])('maps a %i to a retryable error carrying Proxmox’s message', async (status) => {
    fake.inject({ path: '/cluster/resources', status, message: 'proxy handshake failed' });
    const err = await providerError(proxmox.findVm(newPod('pve1')));
    expect(err).toMatchObject({
      provider: 'proxmox',
      operation: 'findVm',
      code: `HTTP_${status}`,
      retryable: true,
    });
    expect(err.message).toContain('proxy handshake failed');
  });

  it('maps a 4xx to a non-retryable error carrying the parameter errors', async () => {
    const spec = newPod('pve1');
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
    const err = await providerError(gone.proxmox.findVm(newPod('pve1')));
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
    const denied = await providerError(wrong.findVm(newPod('pve1')));
    expect(denied).toMatchObject({ code: 'HTTP_401', retryable: false });
    expect(denied.message).not.toContain('wrong-secret-0000');

    // a misbehaving proxy that echoes the request header back in its error
    fake.inject({
      path: '/cluster/resources',
      status: 502,
      message: `bad gateway for PVEAPIToken=${TOKEN_ID}=${TOKEN_SECRET}`,
    });
    const echoed = await providerError(proxmox.findVm(newPod('pve1')));
    expect(echoed.message).toContain('bad gateway');
    expect(echoed.message).not.toContain(TOKEN_SECRET);
    expect(echoed.stack ?? '').not.toContain(TOKEN_SECRET);
  });

  it('stops with a graceful shutdown that falls back to a hard stop, and destroys with purge', async () => {
    const spec = newPod('pve1');
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
    const spec = newPod('pve1');
    const created = await proxmox.createVm(spec);
    const vm = fake.vms.get(Number(created.vmId));
    if (vm) vm.node = 'pve2';
    expect(await proxmox.findVm(spec)).toMatchObject({ vmId: created.vmId, node: 'pve2' });
    await proxmox.stopVm(spec);
    expect(vm?.status).toBe('stopped');
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
    expect(providers.dns).toBeInstanceOf(PowerDnsProvider);
    expect(providers.faults).toBeInstanceOf(FaultInjector);
  });

  it('names the missing setting when a real provider is chosen without it', () => {
    const attempt = () => createProviders(parseConfig({ DNS_PROVIDER: 'powerdns' }), db.orm);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(expect.objectContaining({ variable: 'POWERDNS_URL' }));
  });
});
