/** The production DNS: PowerDNS Authoritative over its HTTP API, one A rrset per pod host name. */
import { z } from 'zod';
import type { ARecord, Dns, DnsRecordRef } from './dns';
import type { ProviderError } from './errors';
import { ProviderHttp } from './http';

export interface PowerDnsOptions {
  /** `http://pdns.example.com:8081`, with or without the `/api/v1` suffix */
  baseUrl: string;
  apiKey: string;
  /** almost always `localhost` */
  serverId: string;
  /** the zone pod host names live in, without the trailing dot */
  zone: string;
  /** one HTTP request; default 30 seconds */
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
}

const zoneSchema = z.object({
  rrsets: z.array(
    z.object({
      name: z.string(),
      type: z.string(),
      ttl: z.number(),
      records: z.array(z.object({ content: z.string(), disabled: z.boolean().optional() })),
    }),
  ),
});

/** PowerDNS names are absolute: lower case with the trailing dot. */
function canonical(name: string): string {
  return `${name.toLowerCase().replace(/\.+$/, '')}.`;
}

function powerDnsMessage(statusText: string, body: string): string {
  try {
    const parsed = z.object({ error: z.string() }).safeParse(JSON.parse(body));
    if (parsed.success) return parsed.data.error;
  } catch {
    if (body.trim()) return body.trim().slice(0, 300);
  }
  return statusText || 'no error message';
}

export class PowerDnsProvider implements Dns {
  readonly name = 'powerdns';
  private readonly apiUrl: string;
  private readonly http: ProviderHttp;

  constructor(private readonly opts: PowerDnsOptions) {
    const base = opts.baseUrl.replace(/\/+$/, '');
    this.apiUrl = base.endsWith('/api/v1') ? base : `${base}/api/v1`;
    this.http = new ProviderHttp({
      provider: this.name,
      fetch: opts.fetch ?? fetch,
      timeoutMs: opts.requestTimeoutMs ?? 30_000,
      secret: opts.apiKey,
      errorMessage: powerDnsMessage,
    });
  }

  async upsertA(ref: DnsRecordRef, ip: string, ttl = 300): Promise<void> {
    await this.patch('upsertA', {
      name: canonical(ref.fqdn),
      type: 'A',
      ttl,
      changetype: 'REPLACE',
      records: [{ content: ip, disabled: false }],
    });
  }

  /** PowerDNS answers 204 to deleting an rrset that does not exist, which makes this idempotent. */
  async deleteA(ref: DnsRecordRef): Promise<void> {
    await this.patch('deleteA', { name: canonical(ref.fqdn), type: 'A', changetype: 'DELETE' });
  }

  async getA(fqdn: string): Promise<ARecord | null> {
    const name = canonical(fqdn);
    // The filter spares transferring the whole zone on servers that know it; older ones ignore it.
    const text = await this.request('getA', 'GET', `?rrset_name=${encodeURIComponent(name)}&rrset_type=A`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw this.fail('getA', 'GET zone: the response is not JSON', false, 'BAD_RESPONSE');
    }
    const zone = zoneSchema.safeParse(body);
    if (!zone.success) {
      throw this.fail(
        'getA',
        `GET zone: unexpected response: ${zone.error.issues[0]?.message ?? 'invalid'}`,
        false,
        'BAD_RESPONSE',
      );
    }
    const rrset = zone.data.rrsets.find((r) => r.type === 'A' && canonical(r.name) === name);
    const record = rrset?.records.find((r) => !r.disabled);
    return rrset && record ? { content: record.content, ttl: rrset.ttl } : null;
  }

  private async patch(op: string, rrset: Record<string, unknown>): Promise<void> {
    await this.request(op, 'PATCH', '', JSON.stringify({ rrsets: [rrset] }));
  }

  private async request(op: string, method: 'GET' | 'PATCH', suffix: string, body?: string): Promise<string> {
    const zone = encodeURIComponent(canonical(this.opts.zone));
    const path = `/servers/${encodeURIComponent(this.opts.serverId)}/zones/${zone}`;
    const headers: Record<string, string> = { 'X-API-Key': this.opts.apiKey, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const what = `${method} ${path}`;
    const text = await this.http.send(op, what, {
      url: `${this.apiUrl}${path}${suffix}`,
      method,
      headers,
      body,
    });
    return text;
  }

  private fail(op: string, message: string, retryable: boolean, code: string): ProviderError {
    return this.http.fail(op, message, retryable, code);
  }
}
