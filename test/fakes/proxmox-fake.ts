/** A local Proxmox VE API: `{"data": …}` envelopes, UPID tasks, error status lines; state in memory. */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeVm {
  vmid: number;
  node: string;
  name: string;
  template: boolean;
  status: 'running' | 'stopped';
  lock?: string;
  cores: number;
  sockets: number;
  memoryMb: number;
  /** disk name → size in GB */
  disks: Record<string, number>;
  tags: string[];
  description?: string;
  snapshots: string[];
  ip: string;
  /** agent calls still to fail after a start, as a booting guest's agent does */
  agentWarmup: number;
}

export interface RecordedRequest {
  method: string;
  /** without the `/api2/json` prefix and the query */
  path: string;
  query: URLSearchParams;
  body: Record<string, string>;
  headers: IncomingHttpHeaders;
}

export interface InjectedError {
  method?: string;
  /** an exact path (without `/api2/json`) or a pattern */
  path: string | RegExp;
  status: number;
  /** the status line message, where Proxmox puts its error text */
  message: string;
  errors?: Record<string, string>;
  /** how many requests fail; default 1 */
  times?: number;
}

interface FakeTask {
  upid: string;
  node: string;
  type: string;
  id: string;
  pid: number;
  pstart: number;
  starttime: number;
  pollsLeft: number;
  failWith?: string;
  exitstatus?: string;
  onFinish?: () => void;
  onFail?: () => void;
}

export interface ProxmoxFakeOptions {
  tokenId: string;
  tokenSecret: string;
  nodes?: string[];
  templateVmId?: number;
  /** template disk size in GB */
  templateDiskGb?: number;
}

class FakeError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
  ) {
    super(message);
  }
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

export class ProxmoxFake {
  readonly vms = new Map<number, FakeVm>();
  readonly requests: RecordedRequest[] = [];
  readonly tasks = new Map<string, FakeTask>();
  /** how many status polls a task answers `running` before it stops */
  taskPolls = 2;
  /** how many agent calls fail after a start */
  agentWarmupCalls = 1;
  readonly nodes: string[];
  readonly templateVmId: number;
  url = '';
  private readonly injected: (InjectedError & { remaining: number })[] = [];
  private readonly taskFailures: { type: string; exitstatus: string }[] = [];
  private readonly server: Server;
  private nextPid = 4000;

  private constructor(private readonly opts: ProxmoxFakeOptions) {
    this.nodes = opts.nodes ?? ['pve1', 'pve2'];
    this.templateVmId = opts.templateVmId ?? 9000;
    this.vms.set(this.templateVmId, {
      vmid: this.templateVmId,
      node: this.nodes[0] ?? 'pve1',
      name: 'podplane-template',
      template: true,
      status: 'stopped',
      cores: 1,
      sockets: 1,
      memoryMb: 1024,
      disks: { scsi0: opts.templateDiskGb ?? 8 },
      tags: ['template'],
      snapshots: [],
      ip: '',
      agentWarmup: 0,
    });
    this.server = createServer((req, res) => {
      void this.handle(req)
        .catch((err: unknown) => ({
          status: 500,
          message: 'fake failure',
          payload: { data: null, message: String(err) },
        }))
        .then(({ status, message, payload }) => {
          res.writeHead(status, message, { 'Content-Type': 'application/json;charset=UTF-8' });
          res.end(JSON.stringify(payload));
        });
    });
  }

  static async start(opts: ProxmoxFakeOptions): Promise<ProxmoxFake> {
    const fake = new ProxmoxFake(opts);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
  }

  /** Makes the next matching request(s) fail with this status line and body. */
  inject(error: InjectedError): void {
    this.injected.push({ ...error, remaining: error.times ?? 1 });
  }

  /** The next task of this type (`qmclone`, `qmstart`, …) stops with this exit status instead of OK. */
  failNextTask(type: string, exitstatus: string): void {
    this.taskFailures.push({ type, exitstatus });
  }

  /** Puts a VM in place as if someone (or an earlier, interrupted call) had made it. */
  addVm(vm: Partial<FakeVm> & { vmid: number; name: string }): FakeVm {
    const full: FakeVm = {
      node: this.nodes[0] ?? 'pve1',
      template: false,
      status: 'stopped',
      cores: 1,
      sockets: 1,
      memoryMb: 1024,
      disks: { scsi0: 8 },
      tags: [],
      snapshots: [],
      ip: this.ipFor(vm.vmid),
      agentWarmup: 0,
      ...vm,
    };
    this.vms.set(full.vmid, full);
    return full;
  }

  /** The VMs carrying a tag (the client tags each VM with its pod). */
  vmsTagged(tag: string): FakeVm[] {
    return [...this.vms.values()].filter((vm) => vm.tags.includes(tag));
  }

  private ipFor(vmid: number): string {
    return `10.20.${Math.floor(vmid / 250) % 250}.${(vmid % 250) + 2}`;
  }

  private async handle(req: IncomingMessage): Promise<{
    status: number;
    message: string;
    payload: { data: unknown; errors?: Record<string, string> };
  }> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const raw = await readBody(req);
    const body = parseBody(raw, req.headers['content-type']);
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/^\/api2\/json/, '');
    this.requests.push({ method, path, query: url.searchParams, body, headers: req.headers });
    try {
      if (!url.pathname.startsWith('/api2/json/')) throw new FakeError(404, 'Not Found');
      if (req.headers.authorization !== `PVEAPIToken=${this.opts.tokenId}=${this.opts.tokenSecret}`) {
        throw new FakeError(401, 'authentication failure');
      }
      const injected = this.injected.find(
        (e) =>
          e.remaining > 0 &&
          (!e.method || e.method === method) &&
          (typeof e.path === 'string' ? e.path === path : e.path.test(path)),
      );
      if (injected) {
        injected.remaining -= 1;
        throw new FakeError(injected.status, injected.message, injected.errors);
      }
      const params = method === 'GET' || method === 'DELETE' ? Object.fromEntries(url.searchParams) : body;
      return { status: 200, message: 'OK', payload: { data: this.route(method, path, params) } };
    } catch (err) {
      if (!(err instanceof FakeError)) throw err;
      return {
        status: err.status,
        message: err.message,
        payload: err.errors ? { data: null, errors: err.errors } : { data: null },
      };
    }
  }

  private route(method: string, path: string, params: Record<string, string>): unknown {
    const key = `${method} ${path}`;
    if (key === 'GET /cluster/resources') return this.resources(params.type);
    if (key === 'GET /cluster/nextid') return String(this.nextId());
    let m = /^GET \/nodes\/([^/]+)\/tasks\/([^/]+)\/status$/.exec(key);
    if (m) return this.taskStatus(m[1] ?? '', decodeURIComponent(m[2] ?? ''));
    m = /^(GET|POST|PUT|DELETE) \/nodes\/([^/]+)\/qemu\/(\d+)(\/.*)?$/.exec(key);
    if (!m) throw new FakeError(501, `Method '${key}' not implemented`);
    const vm = this.vmOn(m[2] ?? '', Number(m[3]));
    const rest = `${m[1] ?? ''} ${m[4] ?? ''}`;
    switch (rest) {
      case 'POST /clone':
        return this.clone(vm, params);
      case 'GET /config':
        return this.configOf(vm);
      case 'POST /config':
        return this.updateConfig(vm, params);
      case 'PUT /resize':
        return this.resize(vm, params);
      case 'GET /status/current':
        return this.statusOf(vm);
      case 'POST /status/start':
        return this.start(vm);
      case 'POST /status/shutdown':
      case 'POST /status/stop':
        return this.stop(vm, rest.endsWith('shutdown') ? 'qmshutdown' : 'qmstop');
      case 'GET /agent/network-get-interfaces':
        return this.interfaces(vm);
      case 'DELETE ':
        return this.destroy(vm);
      case 'GET /snapshot':
        return [
          ...vm.snapshots.map((name) => ({ name, snaptime: 1700000000, description: '' })),
          { name: 'current', running: vm.status === 'running' ? 1 : 0, description: 'You are here!' },
        ];
      case 'POST /snapshot':
        return this.snapshot(vm, params);
    }
    const rollback = /^POST \/snapshot\/([^/]+)\/rollback$/.exec(rest);
    if (rollback) return this.rollback(vm, decodeURIComponent(rollback[1] ?? ''), params);
    throw new FakeError(501, `Method '${key}' not implemented`);
  }

  private vmOn(node: string, vmid: number): FakeVm {
    if (!this.nodes.includes(node)) throw new FakeError(595, `no such node '${node}'`);
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node) {
      throw new FakeError(500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
    }
    return vm;
  }

  private checkLock(vm: FakeVm): void {
    if (vm.lock) throw new FakeError(500, `VM ${vm.vmid} is locked (${vm.lock})`);
  }

  private resources(type: string | undefined): unknown[] {
    if (type && type !== 'vm') return [];
    return [...this.vms.values()].map((vm) => ({
      id: `qemu/${vm.vmid}`,
      type: 'qemu',
      vmid: vm.vmid,
      node: vm.node,
      name: vm.name,
      status: vm.status,
      template: vm.template ? 1 : 0,
      maxcpu: vm.cores * vm.sockets,
      maxmem: vm.memoryMb * 1024 ** 2,
      maxdisk: (vm.disks.scsi0 ?? 0) * 1024 ** 3,
      ...(vm.tags.length > 0 ? { tags: vm.tags.join(';') } : {}),
      ...(vm.lock ? { lock: vm.lock } : {}),
    }));
  }

  private nextId(): number {
    let id = 100;
    while (this.vms.has(id)) id += 1;
    return id;
  }

  private newTask(
    node: string,
    type: string,
    id: string,
    handlers: Pick<FakeTask, 'onFinish' | 'onFail'>,
  ): string {
    const pid = this.nextPid++;
    const starttime = Math.floor(Date.now() / 1000);
    const upid = [
      'UPID',
      node,
      hex8(pid),
      hex8(pid * 7),
      hex8(starttime),
      type,
      id,
      this.opts.tokenId,
      '',
    ].join(':');
    const failure = this.taskFailures.findIndex((f) => f.type === type);
    const failWith = failure >= 0 ? this.taskFailures.splice(failure, 1)[0]?.exitstatus : undefined;
    this.tasks.set(upid, {
      upid,
      node,
      type,
      id,
      pid,
      pstart: pid * 7,
      starttime,
      pollsLeft: this.taskPolls,
      failWith,
      ...handlers,
    });
    return upid;
  }

  private taskStatus(node: string, upid: string): unknown {
    const task = this.tasks.get(upid);
    if (!task || task.node !== node) throw new FakeError(500, `no such task`);
    if (task.exitstatus === undefined) {
      if (task.pollsLeft > 0) {
        task.pollsLeft -= 1;
      } else if (task.failWith !== undefined) {
        task.onFail?.();
        task.exitstatus = task.failWith;
      } else {
        task.onFinish?.();
        task.exitstatus = 'OK';
      }
    }
    return {
      upid: task.upid,
      node: task.node,
      pid: task.pid,
      pstart: task.pstart,
      starttime: task.starttime,
      type: task.type,
      id: task.id,
      user: this.opts.tokenId,
      status: task.exitstatus === undefined ? 'running' : 'stopped',
      ...(task.exitstatus === undefined ? {} : { exitstatus: task.exitstatus }),
    };
  }

  private clone(template: FakeVm, params: Record<string, string>): string {
    const newid = Number(params.newid);
    if (!params.newid || !Number.isInteger(newid)) {
      throw new FakeError(400, 'Parameter verification failed.', {
        newid: 'property is missing and it is not optional',
      });
    }
    if (this.vms.has(newid))
      throw new FakeError(500, `unable to create VM ${newid}: config file already exists`);
    const target = params.target ?? template.node;
    if (!this.nodes.includes(target)) throw new FakeError(500, `no such cluster node '${target}'`);
    // The new VM exists (locked) from the start of the clone, as on a real cluster.
    const vm: FakeVm = {
      ...template,
      vmid: newid,
      node: target,
      name: params.name ?? `Copy-of-VM-${template.name}`,
      template: false,
      status: 'stopped',
      lock: 'clone',
      disks: { ...template.disks },
      tags: [...template.tags],
      description: params.description,
      snapshots: [],
      ip: this.ipFor(newid),
    };
    this.vms.set(newid, vm);
    return this.newTask(template.node, 'qmclone', String(template.vmid), {
      onFinish: () => delete vm.lock,
      onFail: () => this.vms.delete(newid),
    });
  }

  private configOf(vm: FakeVm): unknown {
    return {
      name: vm.name,
      cores: vm.cores,
      sockets: vm.sockets,
      // recent Proxmox returns memory as a string
      memory: String(vm.memoryMb),
      ...Object.fromEntries(
        Object.entries(vm.disks).map(([disk, gb]) => [disk, `local-lvm:vm-${vm.vmid}-disk-0,size=${gb}G`]),
      ),
      ...(vm.tags.length > 0 ? { tags: vm.tags.join(';') } : {}),
      ...(vm.description ? { description: vm.description } : {}),
      ...(vm.lock ? { lock: vm.lock } : {}),
      digest: 'f'.repeat(40),
    };
  }

  private updateConfig(vm: FakeVm, params: Record<string, string>): string {
    const deletes = (params.delete ?? '').split(/[,;\s]+/).filter(Boolean);
    const onlyLock =
      Object.keys(params).every((k) => k === 'lock' || k === 'delete') && deletes.every((d) => d === 'lock');
    if (!onlyLock) this.checkLock(vm);
    const errors: Record<string, string> = {};
    const cores = params.cores === undefined ? undefined : Number(params.cores);
    if (cores !== undefined && !(Number.isInteger(cores) && cores >= 1)) errors.cores = 'value must be >= 1';
    const memory = params.memory === undefined ? undefined : Number(params.memory);
    if (memory !== undefined && !(Number.isInteger(memory) && memory >= 16))
      errors.memory = 'value must be >= 16';
    const tags = params.tags === undefined ? undefined : params.tags.split(/[;,\s]+/).filter(Boolean);
    if (tags?.some((t) => !/^[a-z0-9_][a-z0-9_+.-]*$/i.test(t))) errors.tags = 'invalid format';
    const locks = [
      'backup',
      'clone',
      'create',
      'migrate',
      'rollback',
      'snapshot',
      'snapshot-delete',
      'suspending',
      'suspended',
    ];
    if (params.lock !== undefined && !locks.includes(params.lock)) errors.lock = 'value is not a valid lock';
    if (Object.keys(errors).length > 0) throw new FakeError(400, 'Parameter verification failed.', errors);
    return this.newTask(vm.node, 'qmconfig', String(vm.vmid), {
      onFinish: () => {
        if (cores !== undefined) vm.cores = cores;
        if (memory !== undefined) vm.memoryMb = memory;
        if (tags !== undefined) vm.tags = tags;
        if (params.lock !== undefined) vm.lock = params.lock;
        if (deletes.includes('lock')) delete vm.lock;
      },
    });
  }

  private resize(vm: FakeVm, params: Record<string, string>): string {
    this.checkLock(vm);
    const disk = params.disk ?? '';
    const current = vm.disks[disk];
    if (current === undefined) throw new FakeError(500, `disk '${disk}' does not exist`);
    const size = /^(\+)?(\d+(?:\.\d+)?)([KMGT])?$/.exec(params.size ?? '');
    if (!size)
      throw new FakeError(400, 'Parameter verification failed.', {
        size: 'value does not match the regex pattern',
      });
    const unitGb = { K: 1 / 1024 ** 2, M: 1 / 1024, G: 1, T: 1024 }[size[3] ?? 'G'] ?? 1;
    const requested = Number(size[2]) * unitGb;
    const next = size[1] ? current + requested : requested;
    if (next < current) throw new FakeError(500, 'shrinking disks is not supported');
    return this.newTask(vm.node, 'qmresize', String(vm.vmid), {
      onFinish: () => {
        vm.disks[disk] = next;
      },
    });
  }

  private statusOf(vm: FakeVm): unknown {
    return {
      vmid: vm.vmid,
      name: vm.name,
      status: vm.status,
      qmpstatus: vm.status,
      cpus: vm.cores * vm.sockets,
      maxmem: vm.memoryMb * 1024 ** 2,
      maxdisk: (vm.disks.scsi0 ?? 0) * 1024 ** 3,
      uptime: vm.status === 'running' ? 42 : 0,
      ...(vm.lock ? { lock: vm.lock } : {}),
    };
  }

  private start(vm: FakeVm): string {
    this.checkLock(vm);
    if (vm.status === 'running') throw new FakeError(500, `VM ${vm.vmid} already running`);
    return this.newTask(vm.node, 'qmstart', String(vm.vmid), {
      onFinish: () => {
        vm.status = 'running';
        vm.agentWarmup = this.agentWarmupCalls;
      },
    });
  }

  private stop(vm: FakeVm, type: 'qmshutdown' | 'qmstop'): string {
    this.checkLock(vm);
    if (vm.status !== 'running') throw new FakeError(500, `VM ${vm.vmid} not running`);
    return this.newTask(vm.node, type, String(vm.vmid), {
      onFinish: () => {
        vm.status = 'stopped';
      },
    });
  }

  private interfaces(vm: FakeVm): unknown {
    if (vm.status !== 'running') throw new FakeError(500, `VM ${vm.vmid} is not running`);
    if (vm.agentWarmup > 0) {
      vm.agentWarmup -= 1;
      throw new FakeError(500, 'QEMU guest agent is not running');
    }
    return {
      result: [
        {
          name: 'lo',
          'hardware-address': '00:00:00:00:00:00',
          'ip-addresses': [
            { 'ip-address-type': 'ipv4', 'ip-address': '127.0.0.1', prefix: 8 },
            { 'ip-address-type': 'ipv6', 'ip-address': '::1', prefix: 128 },
          ],
        },
        {
          name: 'eth0',
          'hardware-address': 'bc:24:11:00:00:01',
          'ip-addresses': [
            { 'ip-address-type': 'ipv6', 'ip-address': 'fe80::be24:11ff:fe00:1', prefix: 64 },
            { 'ip-address-type': 'ipv4', 'ip-address': vm.ip, prefix: 24 },
          ],
        },
      ],
    };
  }

  private destroy(vm: FakeVm): string {
    this.checkLock(vm);
    if (vm.status === 'running') throw new FakeError(500, `VM ${vm.vmid} is running - destroy failed`);
    return this.newTask(vm.node, 'qmdestroy', String(vm.vmid), {
      onFinish: () => this.vms.delete(vm.vmid),
    });
  }

  private snapshot(vm: FakeVm, params: Record<string, string>): string {
    const name = params.snapname ?? '';
    if (!/^[a-zA-Z][a-zA-Z0-9_-]{1,39}$/.test(name)) {
      throw new FakeError(400, 'Parameter verification failed.', {
        snapname: 'invalid format - invalid configuration ID',
      });
    }
    this.checkLock(vm);
    if (vm.snapshots.includes(name)) throw new FakeError(500, `snapshot name '${name}' already used`);
    return this.newTask(vm.node, 'qmsnapshot', String(vm.vmid), {
      onFinish: () => vm.snapshots.push(name),
    });
  }

  private rollback(vm: FakeVm, name: string, params: Record<string, string>): string {
    if (!vm.snapshots.includes(name)) throw new FakeError(500, `snapshot '${name}' does not exist`);
    this.checkLock(vm);
    return this.newTask(vm.node, 'qmrollback', String(vm.vmid), {
      // Without saved RAM a rollback leaves the VM stopped unless asked to start it.
      onFinish: () => {
        vm.status = params.start === '1' ? 'running' : 'stopped';
      },
    });
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

function parseBody(raw: string, contentType: string | undefined): Record<string, string> {
  if (!raw) return {};
  if (contentType?.includes('application/json')) {
    const json = JSON.parse(raw) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, String(v)]));
  }
  return Object.fromEntries(new URLSearchParams(raw));
}
