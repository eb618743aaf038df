/**
 * State of the simulated hypervisor and DNS (the embedded default providers), kept in
 * PostgreSQL so it survives restarts like a real Proxmox or PowerDNS would.
 */
import { Entity, PrimaryKey, Property, type Opt } from '@mikro-orm/core';

@Entity({ tableName: 'sim_vms' })
export class SimVm {
  @PrimaryKey({ type: 'string', length: 40 })
  vmId!: string;

  /** a VM is keyed by its pod: a retried create adopts this row */
  @Property({ type: 'string', length: 40, unique: true })
  podId!: string;

  @Property({ type: 'string', length: 100 })
  node!: string;

  @Property({ type: 'string', length: 253 })
  name!: string;

  @Property({ type: 'string', length: 20 })
  status: string & Opt = 'stopped';

  @Property({ type: 'boolean' })
  locked: boolean & Opt = false;

  @Property({ type: 'integer' })
  vcpu!: number;

  @Property({ type: 'integer' })
  memoryMb!: number;

  @Property({ type: 'integer' })
  diskGb!: number;

  @Property({ type: 'string', length: 45 })
  ipAddress!: string;

  @Property({ type: 'json' })
  snapshots: { id: string; sizeGb: number; createdAt: string }[] & Opt = [];

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date & Opt = new Date();
}

@Entity({ tableName: 'sim_dns_records' })
export class SimDnsRecord {
  @PrimaryKey({ type: 'string', length: 253 })
  fqdn!: string;

  @Property({ type: 'string', length: 10 })
  type: string & Opt = 'A';

  @Property({ type: 'string', length: 45 })
  content!: string;

  @Property({ type: 'integer' })
  ttl: number & Opt = 300;
}

/** Fault injection: fail `operation` for pods whose slug matches, N times or always. */
@Entity({ tableName: 'sim_fault_rules' })
export class SimFaultRule {
  @PrimaryKey({ type: 'string', length: 40 })
  id!: string;

  @Property({ type: 'string', length: 50 })
  operation!: string;

  /** glob over the pod slug: `*` matches any run of characters */
  @Property({ type: 'string', length: 100 })
  slugPattern!: string;

  /** failures left; null fails every time */
  @Property({ type: 'integer', nullable: true })
  remaining?: number | null;

  /** `fail` fails before the call does anything; `after` lets it take effect and then fails; `delay` answers late */
  @Property({ type: 'string', length: 10 })
  mode: string & Opt = 'fail';

  /** how late a `delay` rule answers */
  @Property({ type: 'integer', nullable: true })
  delayMs?: number | null;

  @Property({ type: 'string', length: 300 })
  message!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date & Opt = new Date();
}

/** Backups of the simulated hypervisor, kept apart from the VMs (like vzdump archives): they outlive a destroy. */
@Entity({ tableName: 'sim_backups' })
export class SimBackup {
  @PrimaryKey({ type: 'string', length: 40 })
  id!: string;

  /** the pod whose VM was backed up */
  @Property({ type: 'string', length: 40 })
  podId!: string;

  @Property({ type: 'string', length: 40 })
  vmId!: string;

  @Property({ type: 'integer' })
  vcpu!: number;

  @Property({ type: 'integer' })
  memoryMb!: number;

  @Property({ type: 'integer' })
  diskGb!: number;

  @Property({ type: 'integer' })
  sizeGb!: number;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date & Opt = new Date();
}
