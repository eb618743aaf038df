/**
 * Fault rules of the simulated providers: loaded from SIMULATOR_FAULTS without duplicates,
 * consumed atomically, scoped by slug, and the three modes — fail before acting, fail after
 * acting (the step took effect, the answer was lost), answer late (outlast a timeout).
 */
import { parseConfig } from '../../src/config';
import { newId } from '../../src/domain/ids';
import { ProviderError } from '../../src/providers/errors';
import type { VmSpec } from '../../src/providers/hypervisor';
import { createProviders, loadFaultsFromConfig } from '../../src/providers';
import { FaultInjector, SimulatedDns, SimulatedHypervisor } from '../../src/providers/simulator';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { waitFor } from '../helpers/wait';

let db: TestDatabase;
let faults: FaultInjector;
let hypervisor: SimulatedHypervisor;
let dns: SimulatedDns;

beforeAll(async () => {
  db = await createTestDatabase();
  faults = new FaultInjector(db.orm);
  const sim = { orm: db.orm, faults, latencyMs: 0, bootMs: 0 };
  hypervisor = new SimulatedHypervisor(sim);
  dns = new SimulatedDns(sim);
});
afterAll(() => db.close());
beforeEach(() => faults.clear());

function pod(slug: string): VmSpec {
  const podId = newId('pod');
  return {
    podId,
    podSlug: slug,
    node: 'node-a',
    hostname: `${slug}.pods.test`,
    vcpu: 1,
    memoryMb: 1024,
    diskGb: 10,
  };
}

async function vmRows(podId: string): Promise<number> {
  const [row] = await db.query<{ n: number }>('select count(*)::int as n from sim_vms where pod_id = $1', [
    podId,
  ]);
  return row?.n ?? -1;
}

async function dnsRow(fqdn: string): Promise<{ content: string } | undefined> {
  const [row] = await db.query<{ content: string }>('select content from sim_dns_records where fqdn = $1', [
    fqdn,
  ]);
  return row;
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

it('loads env rules once per start (modes included), fails matching pods N times, then lets them through', async () => {
  const config = parseConfig({
    SIMULATOR_FAULTS: 'findVm:env-*:2; upsertA:dns-*; createVm:lost-*:1:after; upsertA:slow-*::delay=250',
    SIMULATOR_LATENCY_MS: '0',
  });
  const providers = createProviders(config, db.orm);
  expect(await loadFaultsFromConfig(config, providers.faults)).toBe(4);
  expect(await loadFaultsFromConfig(config, providers.faults)).toBe(4);
  const rules = await faults.list();
  expect(
    rules.map((r) => [r.id, r.operation, r.slugPattern, r.remaining, r.mode, r.delayMs ?? null]),
  ).toEqual([
    ['env-0', 'findVm', 'env-*', 2, 'fail', null],
    ['env-1', 'upsertA', 'dns-*', null, 'fail', null],
    ['env-2', 'createVm', 'lost-*', 1, 'after', null],
    ['env-3', 'upsertA', 'slow-*', null, 'delay', 250],
  ]);

  // Five concurrent calls race for two failures: exactly two get one.
  const attempts = await Promise.allSettled(
    Array.from({ length: 5 }, () => hypervisor.findVm(pod('env-pod'))),
  );
  const failed = attempts.filter((a) => a.status === 'rejected');
  expect(failed).toHaveLength(2);
  for (const f of failed) expect(f.reason).toMatchObject({ code: 'INJECTED_FAULT', retryable: true });
  expect((await faults.list()).find((r) => r.id === 'env-0')?.remaining).toBe(0);
  await expect(hypervisor.findVm(pod('env-pod'))).resolves.toBeNull();
  await expect(hypervisor.findVm(pod('other-pod'))).resolves.toBeNull();
  const ref = { fqdn: 'dns-1.pods.test', podSlug: 'dns-1' };
  for (let i = 0; i < 2; i++) {
    expect(await providerError(dns.upsertA(ref, '10.0.0.1'))).toMatchObject({
      retryable: true,
      code: 'INJECTED_FAULT',
    });
  }
  expect(await dnsRow(ref.fqdn)).toBeUndefined();
});

it('fail (the default) fails before the call does anything', async () => {
  await faults.add({ operation: 'createVm', slugPattern: 'refused-*', times: 1 });
  const spec = pod('refused-1');
  const err = await providerError(hypervisor.createVm(spec));
  expect(err).toMatchObject({ code: 'INJECTED_FAULT', retryable: true, operation: 'createVm' });
  expect(await vmRows(spec.podId)).toBe(0);
  await hypervisor.createVm(spec);
  expect(await vmRows(spec.podId)).toBe(1);
});

it('after: createVm makes the VM and then fails; the retry adopts that VM instead of making a second', async () => {
  await faults.add({ operation: 'createVm', slugPattern: 'lost-*', times: 1, mode: 'after' });
  const spec = pod('lost-1');
  const err = await providerError(hypervisor.createVm(spec));
  expect(err).toMatchObject({ code: 'INJECTED_FAULT', retryable: true, operation: 'createVm' });
  expect(await vmRows(spec.podId)).toBe(1);
  const adopted = await hypervisor.createVm(spec);
  expect(adopted).toMatchObject({ podId: spec.podId, status: 'running' });
  expect(await vmRows(spec.podId)).toBe(1);
});

it('after: upsertA writes the record and then fails; destroyVm destroys and then fails', async () => {
  await faults.add({ operation: 'upsertA', slugPattern: 'dnslost-*', mode: 'after' });
  const ref = { fqdn: 'dnslost-1.pods.test', podSlug: 'dnslost-1' };
  expect(await providerError(dns.upsertA(ref, '10.0.0.9'))).toMatchObject({ code: 'INJECTED_FAULT' });
  expect(await dnsRow(ref.fqdn)).toEqual({ content: '10.0.0.9' });

  const spec = pod('gone-1');
  await hypervisor.createVm(spec);
  await faults.add({ operation: 'destroyVm', slugPattern: 'gone-*', times: 1, mode: 'after' });
  expect(await providerError(hypervisor.destroyVm(spec))).toMatchObject({ code: 'INJECTED_FAULT' });
  expect(await vmRows(spec.podId)).toBe(0);
  await hypervisor.destroyVm(spec);
});

it('after: backupVm makes the backup and then fails; the retry with the same name returns that backup', async () => {
  const spec = pod('bklost-1');
  await hypervisor.createVm(spec);
  await faults.add({ operation: 'backupVm', slugPattern: 'bklost-*', times: 1, mode: 'after' });
  expect(await providerError(hypervisor.backupVm(spec, 'pt-lost-1'))).toMatchObject({
    code: 'INJECTED_FAULT',
  });
  const [count] = await db.query<{ n: number }>(
    'select count(*)::int as n from sim_backups where pod_id = $1',
    [spec.podId],
  );
  expect(count?.n).toBe(1);
  const backup = await hypervisor.backupVm(spec, 'pt-lost-1');
  expect(await hypervisor.findBackup(backup.backupId)).toEqual(backup);
  const [again] = await db.query<{ n: number }>(
    'select count(*)::int as n from sim_backups where pod_id = $1',
    [spec.podId],
  );
  expect(again?.n).toBe(1);
});

it('delay: the call takes effect at once but answers only after the delay', async () => {
  const delayMs = 1500;
  await faults.add({ operation: 'upsertA', slugPattern: 'slow-*', times: 1, mode: 'delay', delayMs });
  const ref = { fqdn: 'slow-1.pods.test', podSlug: 'slow-1' };
  const started = Date.now();
  let settled = false;
  const call = dns.upsertA(ref, '10.0.0.7').finally(() => {
    settled = true;
  });
  await waitFor(() => dnsRow(ref.fqdn), { what: 'the record written', timeoutMs: delayMs, intervalMs: 10 });
  expect(settled).toBe(false);
  await call;
  expect(Date.now() - started).toBeGreaterThanOrEqual(delayMs - 5);
  // consumed: the next call answers at once
  const next = Date.now();
  await dns.upsertA(ref, '10.0.0.8');
  expect(Date.now() - next).toBeLessThan(delayMs);
});

it('matches findBackup and deleteBackup rules (which have no pod) against the backup id', async () => {
  const spec = pod('bk-1');
  await hypervisor.createVm(spec);
  const backup = await hypervisor.backupVm(spec, 'bak-match-1');
  await faults.add({ operation: 'deleteBackup', slugPattern: 'sbk-bak-match-*', times: 1 });
  await faults.add({ operation: 'findBackup', slugPattern: 'nothing-*' });
  expect(await hypervisor.findBackup(backup.backupId)).toEqual(backup);
  expect(await providerError(hypervisor.deleteBackup(backup.backupId))).toMatchObject({
    code: 'INJECTED_FAULT',
  });
  expect(await hypervisor.findBackup(backup.backupId)).toEqual(backup);
  await hypervisor.deleteBackup(backup.backupId);
  expect(await hypervisor.findBackup(backup.backupId)).toBeNull();
});

it('refuses a rule whose mode and delay disagree', async () => {
  await expect(faults.add({ operation: 'upsertA', slugPattern: '*', mode: 'delay' })).rejects.toThrow(Error);
  await expect(
    faults.add({ operation: 'upsertA', slugPattern: '*', mode: 'after', delayMs: 10 }),
  ).rejects.toThrow(Error);
  expect(await faults.list()).toEqual([]);
});

it('refuses a malformed SIMULATOR_FAULTS at configuration time, naming the entry', () => {
  expect(() => parseConfig({ SIMULATOR_FAULTS: 'explode:*' })).toThrow(
    /^invalid configuration: SIMULATOR_FAULTS: .*explode:\*/,
  );
  expect(() => parseConfig({ SIMULATOR_FAULTS: 'createVm:x:1:after:oops' })).toThrow(
    /^invalid configuration: SIMULATOR_FAULTS: .*createVm:x:1:after:oops/,
  );
});
