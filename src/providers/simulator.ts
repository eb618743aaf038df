/**
 * The embedded default hypervisor and DNS: state in PostgreSQL (survives restarts), a
 * configurable latency, and fault injection by rule so a demo or a test can make "Proxmox" fail.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Resources } from '../domain/cloudpods';
import { globToRegExp, type FaultOperation, type FaultRuleInput } from '../domain/faults';
import { newId } from '../domain/ids';
import { SimDnsRecord, SimFaultRule, SimVm } from '../db/entities';
import { systemEm, type MikroORM } from '../db/orm';
import type { ARecord, Dns, DnsRecordRef } from './dns';
import { ProviderError } from './errors';

import type { Hypervisor, Snapshot, VmInfo, VmRef, VmSpec } from './hypervisor';

export class FaultInjector {
  constructor(private readonly orm: MikroORM) {}

  async add(rule: FaultRuleInput, id: string = newId('fault')): Promise<SimFaultRule> {
    const em = systemEm(this.orm);
    const row = em.create(SimFaultRule, {
      id,
      operation: rule.operation,
      slugPattern: rule.slugPattern,
      remaining: rule.times ?? null,
      message: rule.message ?? `injected ${rule.operation} failure`,
    });
    await em.upsert(row);
    return row;
  }

  list(): Promise<SimFaultRule[]> {
    return systemEm(this.orm).find(SimFaultRule, {}, { orderBy: { createdAt: 'asc', id: 'asc' } });
  }

  async remove(id: string): Promise<boolean> {
    return (await systemEm(this.orm).nativeDelete(SimFaultRule, { id })) > 0;
  }

  async clear(): Promise<void> {
    await systemEm(this.orm).nativeDelete(SimFaultRule, {});
  }

  /** Consumes one matching rule (atomically) and throws its failure; returns when none matches. */
  async check(provider: string, operation: FaultOperation, podSlug: string): Promise<void> {
    const em = systemEm(this.orm);
    const rules = await em.find(SimFaultRule, { operation }, { orderBy: { createdAt: 'asc', id: 'asc' } });
    for (const rule of rules) {
      if (!globToRegExp(rule.slugPattern).test(podSlug)) continue;
      if (rule.remaining === null || rule.remaining === undefined) {
        throw new ProviderError(provider, operation, rule.message, true, 'INJECTED_FAULT');
      }
      const consumed = await em
        .getConnection()
        .execute<{ id: string }[]>(
          'update sim_fault_rules set remaining = remaining - 1 where id = ? and remaining > 0 returning id',
          [rule.id],
        );
      if (consumed.length > 0)
        throw new ProviderError(provider, operation, rule.message, true, 'INJECTED_FAULT');
    }
  }
}

function ipFor(podId: string): string {
  const h = createHash('sha256').update(podId).digest();
  return `10.${h[0] ?? 0}.${h[1] ?? 0}.${((h[2] ?? 0) % 250) + 2}`;
}

export interface SimulatorOptions {
  orm: MikroORM;
  faults: FaultInjector;
  /** added to every call, to make a demo watchable */
  latencyMs: number;
  /** how long a created VM reports `starting` before `running` */
  bootMs: number;
}

export class SimulatedHypervisor implements Hypervisor {
  readonly name = 'simulated-hypervisor';
  constructor(private readonly opts: SimulatorOptions) {}

  private em() {
    return systemEm(this.opts.orm);
  }

  private async enter(operation: FaultOperation, podSlug: string): Promise<void> {
    await this.opts.faults.check(this.name, operation, podSlug);
  }

  private async pause(): Promise<void> {
    if (this.opts.latencyMs > 0) await sleep(this.opts.latencyMs);
  }

  private toInfo(vm: SimVm): VmInfo {
    return {
      vmId: vm.vmId,
      podId: vm.podId,
      node: vm.node,
      status: vm.status as VmInfo['status'],
      locked: vm.locked,
      vcpu: vm.vcpu,
      memoryMb: vm.memoryMb,
      diskGb: vm.diskGb,
      ipAddress: vm.status === 'starting' ? null : vm.ipAddress,
    };
  }

  private async load(ref: VmRef): Promise<SimVm | null> {
    const vm = await this.em().findOne(SimVm, { podId: ref.podId });
    if (vm?.status === 'starting' && Date.now() - vm.createdAt.getTime() >= this.opts.bootMs) {
      vm.status = 'running';
      await this.em().nativeUpdate(SimVm, { vmId: vm.vmId, status: 'starting' }, { status: 'running' });
    }
    return vm;
  }

  private async mustLoad(ref: VmRef, operation: string): Promise<SimVm> {
    const vm = await this.load(ref);
    if (!vm)
      throw new ProviderError(this.name, operation, `no VM for pod ${ref.podId}`, false, 'VM_NOT_FOUND');
    return vm;
  }

  async createVm(spec: VmSpec): Promise<VmInfo> {
    await this.enter('createVm', spec.podSlug);
    // Keyed by pod: a retried create (after a crash mid-call) finds and adopts this row.
    await this.em()
      .createQueryBuilder(SimVm)
      .insert({
        vmId: `sim-${spec.podId.slice(4)}`,
        podId: spec.podId,
        node: spec.node,
        name: spec.hostname,
        status: this.opts.bootMs > 0 ? 'starting' : 'running',
        locked: false,
        vcpu: spec.vcpu,
        memoryMb: spec.memoryMb,
        diskGb: spec.diskGb,
        ipAddress: ipFor(spec.podId),
        snapshots: [],
        createdAt: new Date(),
      })
      .onConflict('pod_id')
      .ignore()
      .execute();
    await this.pause();
    return this.toInfo(await this.mustLoad(spec, 'createVm'));
  }

  async findVm(ref: VmRef): Promise<VmInfo | null> {
    await this.enter('findVm', ref.podSlug);
    const vm = await this.load(ref);
    return vm ? this.toInfo(vm) : null;
  }

  async startVm(ref: VmRef): Promise<void> {
    await this.enter('startVm', ref.podSlug);
    const vm = await this.mustLoad(ref, 'startVm');
    if (vm.locked)
      throw new ProviderError(this.name, 'startVm', `VM ${vm.vmId} is locked`, false, 'VM_LOCKED');
    await this.pause();
    await this.em().nativeUpdate(SimVm, { vmId: vm.vmId }, { status: 'running' });
  }

  async stopVm(ref: VmRef): Promise<void> {
    await this.enter('stopVm', ref.podSlug);
    const vm = await this.mustLoad(ref, 'stopVm');
    await this.pause();
    await this.em().nativeUpdate(SimVm, { vmId: vm.vmId }, { status: 'stopped' });
  }

  async setLocked(ref: VmRef, locked: boolean): Promise<void> {
    await this.enter('setLocked', ref.podSlug);
    const vm = await this.mustLoad(ref, 'setLocked');
    await this.em().nativeUpdate(SimVm, { vmId: vm.vmId }, { locked });
  }

  async resizeVm(ref: VmRef, to: Resources): Promise<void> {
    await this.enter('resizeVm', ref.podSlug);
    const vm = await this.mustLoad(ref, 'resizeVm');
    if (to.diskGb < vm.diskGb) {
      throw new ProviderError(this.name, 'resizeVm', 'disks cannot shrink', false, 'DISK_SHRINK');
    }
    await this.pause();
    await this.em().nativeUpdate(
      SimVm,
      { vmId: vm.vmId },
      { vcpu: to.vcpu, memoryMb: to.memoryMb, diskGb: to.diskGb },
    );
  }

  async destroyVm(ref: VmRef): Promise<void> {
    await this.enter('destroyVm', ref.podSlug);
    await this.pause();
    await this.em().nativeDelete(SimVm, { podId: ref.podId });
  }

  async snapshotVm(ref: VmRef, name: string): Promise<Snapshot> {
    await this.enter('snapshotVm', ref.podSlug);
    const vm = await this.mustLoad(ref, 'snapshotVm');
    await this.pause();
    if (!vm.snapshots.some((s) => s.id === name)) {
      vm.snapshots = [...vm.snapshots, { id: name, sizeGb: vm.diskGb, createdAt: new Date().toISOString() }];
      await this.em().nativeUpdate(SimVm, { vmId: vm.vmId }, { snapshots: vm.snapshots });
    }
    return { snapshotId: name, sizeGb: vm.diskGb };
  }

  async restoreSnapshot(ref: VmRef, snapshotId: string): Promise<void> {
    await this.enter('restoreSnapshot', ref.podSlug);
    const vm = await this.mustLoad(ref, 'restoreSnapshot');
    if (!vm.snapshots.some((s) => s.id === snapshotId)) {
      throw new ProviderError(
        this.name,
        'restoreSnapshot',
        `no snapshot ${snapshotId}`,
        false,
        'SNAPSHOT_NOT_FOUND',
      );
    }
    await this.pause();
  }
}

export class SimulatedDns implements Dns {
  readonly name = 'simulated-dns';
  constructor(private readonly opts: SimulatorOptions) {}

  async upsertA(ref: DnsRecordRef, ip: string, ttl = 300): Promise<void> {
    await this.opts.faults.check(this.name, 'upsertA', ref.podSlug);
    if (this.opts.latencyMs > 0) await sleep(this.opts.latencyMs);
    await systemEm(this.opts.orm).upsert(SimDnsRecord, { fqdn: ref.fqdn, type: 'A', content: ip, ttl });
  }

  async deleteA(ref: DnsRecordRef): Promise<void> {
    await this.opts.faults.check(this.name, 'deleteA', ref.podSlug);
    await systemEm(this.opts.orm).nativeDelete(SimDnsRecord, { fqdn: ref.fqdn });
  }

  async getA(fqdn: string): Promise<ARecord | null> {
    const row = await systemEm(this.opts.orm).findOne(SimDnsRecord, { fqdn });
    return row ? { content: row.content, ttl: row.ttl } : null;
  }
}
