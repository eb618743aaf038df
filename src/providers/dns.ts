/** Authoritative DNS for pod host names: PowerDNS in production, the simulator by default. */

export interface DnsRecordRef {
  /** fully qualified name without the trailing dot */
  fqdn: string;
  /** lets the simulator inject faults per pod */
  podSlug: string;
}

export interface ARecord {
  content: string;
  ttl: number;
}

/** Idempotent: upsert replaces, delete of a missing record succeeds. */
export interface Dns {
  readonly name: string;
  upsertA(ref: DnsRecordRef, ip: string, ttl?: number): Promise<void>;
  deleteA(ref: DnsRecordRef): Promise<void>;
  getA(fqdn: string): Promise<ARecord | null>;
}
