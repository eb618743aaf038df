/**
 * The embedded default providers, one file each: the simulated hypervisor and DNS, their fault
 * rules, and what they hold for the operators' admin routes.
 */
export { SimulatedDns } from './dns';
export { FaultInjector, type SimulatorOptions } from './faults';
export { SimulatedHypervisor, simBackupId } from './hypervisor';
export { SimulatorInventory, VmSuspendedError } from './inventory';
