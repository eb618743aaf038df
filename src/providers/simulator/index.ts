/**
 * The embedded default providers, one file each: the simulated hypervisor, DNS and payments, the
 * fault rules of the first two, and what they hold for the operators' admin routes.
 */
export { SimulatedDns } from './dns';
export { FaultInjector, type SimulatorOptions } from './faults';
export { SimulatedHypervisor, simBackupId } from './hypervisor';
export { SimulatorInventory, VmSuspendedError } from './inventory';
export { SimulatedPayments, type SimulatedPaymentsOptions } from './payments';
