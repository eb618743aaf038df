/** Fault rules from SIMULATOR_FAULTS: loaded at start without duplicates, consumed atomically, scoped by slug. */
import { parseConfig } from '../../src/config';
import { ProviderError } from '../../src/providers/errors';
import { createProviders, loadFaultsFromConfig } from '../../src/providers';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.close());

it('loads env rules once per start, fails matching pods N times, then lets them through', async () => {
  const config = parseConfig({
    SIMULATOR_FAULTS: 'createVm:env-*:2; upsertA:dns-*',
    SIMULATOR_LATENCY_MS: '0',
  });
  const { faults } = createProviders(config, db.orm);
  expect(await loadFaultsFromConfig(config, faults)).toBe(2);
  expect(await loadFaultsFromConfig(config, faults)).toBe(2);
  const rules = await faults.list();
  expect(rules.map((r) => [r.id, r.operation, r.slugPattern, r.remaining])).toEqual([
    ['env-0', 'createVm', 'env-*', 2],
    ['env-1', 'upsertA', 'dns-*', null],
  ]);

  const attempts = await Promise.allSettled(
    Array.from({ length: 5 }, () => faults.check('simulated-hypervisor', 'createVm', 'env-pod')),
  );
  const failed = attempts.filter((a) => a.status === 'rejected');
  expect(failed).toHaveLength(2);
  for (const f of failed) expect(f.reason).toBeInstanceOf(ProviderError);
  await expect(faults.check('simulated-hypervisor', 'createVm', 'other-pod')).resolves.toBeUndefined();
  await expect(faults.check('simulated-dns', 'upsertA', 'dns-1')).rejects.toMatchObject({
    retryable: true,
    code: 'INJECTED_FAULT',
  });
  await expect(faults.check('simulated-dns', 'upsertA', 'dns-1')).rejects.toBeInstanceOf(ProviderError);
});

it('refuses a malformed SIMULATOR_FAULTS at configuration time, naming the entry', () => {
  expect(() => parseConfig({ SIMULATOR_FAULTS: 'explode:*' })).toThrow(
    /^invalid configuration: SIMULATOR_FAULTS: .*explode:\*/,
  );
});
