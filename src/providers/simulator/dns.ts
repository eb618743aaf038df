/** The embedded default DNS: A records in PostgreSQL, with the fault rules of `faults.ts`. */
import { setTimeout as sleep } from 'node:timers/promises';
import { SimDnsRecord } from '../../db/entities';
import { systemEm } from '../../db/orm';
import type { ARecord, Dns, DnsRecordRef } from '../dns';
import type { SimulatorOptions } from './faults';

export class SimulatedDns implements Dns {
  readonly name = 'simulated-dns';
  constructor(private readonly opts: SimulatorOptions) {}

  upsertA(ref: DnsRecordRef, ip: string, ttl = 300): Promise<void> {
    return this.opts.faults.around(this.name, 'upsertA', ref.podSlug, async () => {
      if (this.opts.latencyMs > 0) await sleep(this.opts.latencyMs);
      await systemEm(this.opts.orm).upsert(SimDnsRecord, { fqdn: ref.fqdn, type: 'A', content: ip, ttl });
    });
  }

  deleteA(ref: DnsRecordRef): Promise<void> {
    return this.opts.faults.around(this.name, 'deleteA', ref.podSlug, async () => {
      await systemEm(this.opts.orm).nativeDelete(SimDnsRecord, { fqdn: ref.fqdn });
    });
  }

  async getA(fqdn: string): Promise<ARecord | null> {
    const row = await systemEm(this.opts.orm).findOne(SimDnsRecord, { fqdn });
    return row ? { content: row.content, ttl: row.ttl } : null;
  }
}
