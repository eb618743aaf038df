/** What the simulators hold, read (and, for a start from outside Podplane, changed) by the admin routes. */
import { SimBackup, SimDnsRecord, SimVm } from '../../db/entities';
import { systemEm, type MikroORM } from '../../db/orm';

/** What the simulators hold, for the operators' admin routes: leaks show up here. */
export class SimulatorInventory {
  constructor(private readonly orm: MikroORM) {}

  vms(): Promise<SimVm[]> {
    return systemEm(this.orm).find(SimVm, {}, { orderBy: { createdAt: 'asc', vmId: 'asc' } });
  }

  dnsRecords(): Promise<SimDnsRecord[]> {
    return systemEm(this.orm).find(SimDnsRecord, {}, { orderBy: { fqdn: 'asc' } });
  }

  backups(): Promise<SimBackup[]> {
    return systemEm(this.orm).find(SimBackup, {}, { orderBy: { createdAt: 'asc', id: 'asc' } });
  }

  /**
   * A start from outside Podplane: by the customer from their own panel, refused while the VM is
   * suspended (on Proxmox their role on the VM is gone), or by one of the provider's
   * administrators, which nothing stops — how a suspended pod comes to be found running.
   * Null when there is no such VM.
   */
  async startFromOutside(vmId: string, by: 'customer' | 'administrator'): Promise<SimVm | null> {
    const em = systemEm(this.orm);
    const vm = await em.findOne(SimVm, { vmId });
    if (!vm) return null;
    if (vm.locked && by === 'customer') throw new VmSuspendedError(vmId);
    vm.status = 'running';
    await em.flush();
    return vm;
  }
}

/** The customer tried to start a suspended VM. */
export class VmSuspendedError extends Error {
  constructor(readonly vmId: string) {
    super(`VM ${vmId} is suspended: its customer cannot start it`);
  }
}
