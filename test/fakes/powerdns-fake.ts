/** A local PowerDNS Authoritative API: zones with rrsets, PATCH REPLACE/DELETE, `{"error": …}` bodies. */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRrset {
  name: string;
  type: string;
  ttl: number;
  records: { content: string; disabled: boolean }[];
  comments: unknown[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** the parsed JSON body, or undefined */
  body: unknown;
}

export interface InjectedError {
  method?: string;
  path: string | RegExp;
  status: number;
  error: string;
  times?: number;
  /** extra response headers, e.g. `Retry-After` */
  headers?: Record<string, string>;
}

export interface PowerDnsFakeOptions {
  apiKey: string;
  serverId?: string;
  /** zone names without the trailing dot */
  zones: string[];
}

class FakeError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export class PowerDnsFake {
  /** zone name with the trailing dot → `name|type` → rrset */
  readonly zones = new Map<string, Map<string, FakeRrset>>();
  readonly requests: RecordedRequest[] = [];
  readonly serverId: string;
  url = '';
  private readonly injected: (InjectedError & { remaining: number })[] = [];
  private readonly server: Server;

  private constructor(private readonly opts: PowerDnsFakeOptions) {
    this.serverId = opts.serverId ?? 'localhost';
    for (const zone of opts.zones) {
      const name = `${zone}.`;
      this.zones.set(
        name,
        new Map([
          [
            `${name}|SOA`,
            {
              name,
              type: 'SOA',
              ttl: 3600,
              records: [
                { content: `ns1.${name} hostmaster.${name} 1 10800 3600 604800 3600`, disabled: false },
              ],
              comments: [],
            },
          ],
        ]),
      );
    }
    this.server = createServer((req, res) => {
      void this.handle(req)
        .catch((err: unknown) => ({
          status: 500,
          headers: {},
          payload: { error: `fake failure: ${String(err)}` },
        }))
        .then(({ status, headers = {}, payload }) => {
          if (payload === undefined) {
            res.writeHead(status, headers).end();
          } else {
            res
              .writeHead(status, { 'Content-Type': 'application/json', ...headers })
              .end(JSON.stringify(payload));
          }
        });
    });
  }

  static async start(opts: PowerDnsFakeOptions): Promise<PowerDnsFake> {
    const fake = new PowerDnsFake(opts);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
  }

  inject(error: InjectedError): void {
    this.injected.push({ ...error, remaining: error.times ?? 1 });
  }

  /** The rrset for a name (without the trailing dot), wherever its zone. */
  record(fqdn: string, type = 'A'): FakeRrset | undefined {
    for (const rrsets of this.zones.values()) {
      const rrset = rrsets.get(`${fqdn}.|${type}`);
      if (rrset) return rrset;
    }
    return undefined;
  }

  private async handle(
    req: IncomingMessage,
  ): Promise<{ status: number; headers?: Record<string, string>; payload?: unknown }> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const raw = await readBody(req);
    const method = req.method ?? 'GET';
    const path = decodeURIComponent(url.pathname);
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return { status: 400, payload: { error: 'Unable to parse JSON' } };
    }
    this.requests.push({ method, path, query: url.searchParams, headers: req.headers, body });
    try {
      if (req.headers['x-api-key'] !== this.opts.apiKey) throw new FakeError(401, 'Unauthorized');
      const injected = this.injected.find(
        (e) =>
          e.remaining > 0 &&
          (!e.method || e.method === method) &&
          (typeof e.path === 'string' ? e.path === path : e.path.test(path)),
      );
      if (injected) {
        injected.remaining -= 1;
        throw new FakeError(injected.status, injected.error, injected.headers);
      }
      const m = /^\/api\/v1\/servers\/([^/]+)\/zones\/([^/]+)$/.exec(path);
      if (!m) throw new FakeError(404, 'Not Found');
      if (m[1] !== this.serverId) throw new FakeError(404, 'Not Found');
      const zoneName = (m[2] ?? '').toLowerCase();
      const zone = this.zones.get(zoneName);
      if (!zone) throw new FakeError(404, `Could not find domain '${zoneName}'`);
      if (method === 'GET') return { status: 200, payload: this.zoneJson(zoneName, zone, url.searchParams) };
      if (method === 'PATCH') {
        this.patch(zoneName, zone, body);
        return { status: 204 };
      }
      throw new FakeError(405, 'Method Not Allowed');
    } catch (err) {
      if (!(err instanceof FakeError)) throw err;
      return { status: err.status, headers: err.headers, payload: { error: err.message } };
    }
  }

  private zoneJson(zoneName: string, zone: Map<string, FakeRrset>, query: URLSearchParams): unknown {
    const name = query.get('rrset_name')?.toLowerCase();
    const type = query.get('rrset_type');
    return {
      id: zoneName,
      name: zoneName,
      kind: 'Native',
      serial: 1,
      url: `/api/v1/servers/${this.serverId}/zones/${zoneName}`,
      rrsets: [...zone.values()].filter((r) => (!name || r.name === name) && (!type || r.type === type)),
    };
  }

  /** Validates every rrset before applying any, as PowerDNS applies a PATCH atomically. */
  private patch(zoneName: string, zone: Map<string, FakeRrset>, body: unknown): void {
    const rrsets = (body as { rrsets?: unknown } | undefined)?.rrsets;
    if (!Array.isArray(rrsets)) throw new FakeError(400, 'No rrsets given in update request');
    const changes = rrsets.map((value) => {
      const rr = value as Partial<FakeRrset> & { changetype?: string };
      const name = typeof rr.name === 'string' ? rr.name.toLowerCase() : '';
      const type = typeof rr.type === 'string' ? rr.type : '';
      const label = `RRset ${name} IN ${type}`;
      if (!name.endsWith('.')) throw new FakeError(422, `${label}: Name is not canonical`);
      if (name !== zoneName && !name.endsWith(`.${zoneName}`))
        throw new FakeError(422, `${label}: Name is out of zone`);
      const changetype = rr.changetype?.toUpperCase();
      if (changetype === 'DELETE') return { key: `${name}|${type}`, rrset: undefined };
      if (changetype !== 'REPLACE') throw new FakeError(422, `Changetype not understood`);
      if (typeof rr.ttl !== 'number' || !Number.isInteger(rr.ttl)) {
        throw new FakeError(422, `Key 'ttl' not present or not an Integer`);
      }
      if (!Array.isArray(rr.records)) throw new FakeError(422, `Key 'records' not present or not an Array`);
      for (const record of rr.records) {
        if (type === 'A' && !IPV4.test(record.content)) {
          throw new FakeError(
            422,
            `Record ${name}/A '${record.content}': Parsing record content (try 'pdnsutil check-zone'): ` +
              'unable to parse IP address',
          );
        }
      }
      const rrset: FakeRrset = {
        name,
        type,
        ttl: rr.ttl,
        records: rr.records.map((r) => ({ content: r.content, disabled: r.disabled === true })),
        comments: [],
      };
      return { key: `${name}|${type}`, rrset };
    });
    for (const { key, rrset } of changes) {
      if (rrset) zone.set(key, rrset);
      else zone.delete(key);
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
