/** Picks the provider implementations from configuration. */
import { ConfigError, type Config } from '../config';
import type { MikroORM } from '../db/orm';
import type { Dns } from './dns';
import type { Hypervisor } from './hypervisor';
import type { PaymentProvider } from './payments';
import { PowerDnsProvider } from './powerdns';
import { ProxmoxHypervisor, parseCustomerAccess, parseTemplates } from './proxmox';
import { parseFaultSpec } from '../domain/faults';
import { FaultInjector, SimulatedDns, SimulatedHypervisor, SimulatedPayments } from './simulator';
import { StripePayments, stripeEndpoint } from './stripe';

export interface Providers {
  hypervisor: Hypervisor;
  dns: Dns;
  /** Stripe when STRIPE_SECRET_KEY is set, else the simulator */
  payments: PaymentProvider;
  /** the simulators' fault rules (SIMULATOR_FAULTS is loaded into them where the providers run) */
  faults: FaultInjector;
}

/** The config schema leaves provider settings optional; they become required once that provider is chosen. */
function required<K extends keyof Config>(config: Config, key: K, when: string): NonNullable<Config[K]> {
  const value = config[key];
  if (value === undefined || value === null) throw new ConfigError(key, `is required when ${when}`);
  return value;
}

export function createProviders(config: Config, orm: MikroORM): Providers {
  const faults = new FaultInjector(orm);
  const sim = { orm, faults, latencyMs: config.SIMULATOR_LATENCY_MS, bootMs: config.SIMULATOR_BOOT_MS };
  const hypervisor: Hypervisor =
    config.HYPERVISOR === 'proxmox'
      ? new ProxmoxHypervisor({
          baseUrl: required(config, 'PROXMOX_URL', 'HYPERVISOR=proxmox'),
          tokenId: required(config, 'PROXMOX_TOKEN_ID', 'HYPERVISOR=proxmox'),
          tokenSecret: required(config, 'PROXMOX_TOKEN_SECRET', 'HYPERVISOR=proxmox'),
          templateVmId: required(config, 'PROXMOX_TEMPLATE_VMID', 'HYPERVISOR=proxmox'),
          templates: config.PROXMOX_TEMPLATES ? parseTemplates(config.PROXMOX_TEMPLATES) : {},
          customerAccess: config.PROXMOX_CUSTOMER_ACCESS
            ? parseCustomerAccess(config.PROXMOX_CUSTOMER_ACCESS)
            : null,
          taskPollMs: config.PROXMOX_TASK_POLL_MS,
          backupStorage: config.PROXMOX_BACKUP_STORAGE,
        })
      : new SimulatedHypervisor(sim);
  const dns: Dns =
    config.DNS_PROVIDER === 'powerdns'
      ? new PowerDnsProvider({
          baseUrl: required(config, 'POWERDNS_URL', 'DNS_PROVIDER=powerdns'),
          apiKey: required(config, 'POWERDNS_API_KEY', 'DNS_PROVIDER=powerdns'),
          serverId: config.POWERDNS_SERVER_ID,
          zone: config.DNS_ZONE,
        })
      : new SimulatedDns(sim);
  return { hypervisor, dns, payments: createPayments(config), faults };
}

/** STRIPE_API_BASE points the client elsewhere than api.stripe.com (stripe-mock in tests). */
export function createPayments(config: Config): PaymentProvider {
  if (!config.STRIPE_SECRET_KEY) return new SimulatedPayments({ delayMs: config.SIMULATED_PAYMENT_DELAY_MS });
  return new StripePayments({
    apiKey: config.STRIPE_SECRET_KEY,
    ...(config.STRIPE_API_BASE ? stripeEndpoint(config.STRIPE_API_BASE) : {}),
  });
}

/** Loads SIMULATOR_FAULTS into the rule table (stable ids, so a restart does not duplicate them). */
export async function loadFaultsFromConfig(config: Config, faults: FaultInjector): Promise<number> {
  if (!config.SIMULATOR_FAULTS) return 0;
  const rules = parseFaultSpec(config.SIMULATOR_FAULTS);
  for (const [i, rule] of rules.entries()) await faults.add(rule, `env-${i}`);
  return rules.length;
}
