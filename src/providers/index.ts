/** Picks the provider implementations from configuration. */
import type { Config } from '../config';
import type { MikroORM } from '../db/orm';
import type { Dns } from './dns';
import type { Hypervisor } from './hypervisor';
import { FaultInjector, SimulatedDns, SimulatedHypervisor, parseFaultSpec } from './simulator';

export interface Providers {
  hypervisor: Hypervisor;
  dns: Dns;
  /** the simulators' fault rules (present whatever the providers, so the admin route always works) */
  faults: FaultInjector;
}

export function createProviders(config: Config, orm: MikroORM): Providers {
  const faults = new FaultInjector(orm);
  const sim = { orm, faults, latencyMs: config.SIMULATOR_LATENCY_MS, bootMs: config.SIMULATOR_BOOT_MS };
  const hypervisor: Hypervisor = new SimulatedHypervisor(sim);
  const dns: Dns = new SimulatedDns(sim);
  return { hypervisor, dns, faults };
}

/** Loads SIMULATOR_FAULTS into the rule table (stable ids, so a restart does not duplicate them). */
export async function loadFaultsFromConfig(config: Config, faults: FaultInjector): Promise<number> {
  if (!config.SIMULATOR_FAULTS) return 0;
  const rules = parseFaultSpec(config.SIMULATOR_FAULTS);
  for (const [i, rule] of rules.entries()) await faults.add(rule, `env-${i}`);
  return rules.length;
}
