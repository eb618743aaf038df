/**
 * A local Proxmox VE API: `{"data": …}` envelopes, UPID tasks, error status lines; state in memory.
 * It refuses what a real Proxmox VE 9 refuses, so that our client's mistakes fail our tests.
 *
 * How errors reach a client (pve-manager `PVE/HTTPServer.pm` `rest_handler`, pve-common
 * `src/PVE/Exception.pm`): a plain `die` is a 500 whose status line is the message; a parameter
 * error (`raise_param_exc`) a 400 with `errors`; a failed privilege check (`raise_perm_exc`) a 403
 * "Permission check failed (<path>, <privilege>)". A `die` inside a task's worker does not change
 * the answer — the request gets its UPID and the task stops with the message as exit status.
 *
 * Privileges are checked as the handlers' `permissions` blocks say (cited per method), against
 * ACLs and roles like pve-access-control's: an ACL entry grants its role's privileges on its
 * path and, with `propagate`, below it. Simplified: the entries that apply are united (Proxmox
 * lets a deeper path override a shallower one), and API tokens are not privilege-separated
 * (they have their user's privileges).
 *
 * The backup endpoints follow the real handlers (read with `fetch`, cited per method below):
 * - pve-manager `PVE/API2/VZDump.pm` (POST /nodes/{node}/vzdump) and `PVE/VZDump.pm` (the worker:
 *   storage checks, archive names, notes);
 * - pve-storage `src/PVE/API2/Storage/Content.pm` (list and delete volumes),
 *   `src/PVE/API2/Storage/Status.pm` (storage status) and `src/PVE/Storage/Plugin.pm`
 *   (`get_subdir_files`: the fields of a backup volume);
 * - qemu-server `src/PVE/API2/Qemu.pm` (`create_vm` with `archive`: restore into a new or, with
 *   `force`, an existing VM) and pve-guest-common `src/PVE/AbstractConfig.pm`
 *   (`create_and_lock_config`, `set_lock`).
 */
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
  ip: string;
  /** agent calls still to fail after a start, as a booting guest's agent does */
  agentWarmup: number;
  /** the storage holding its disks (a clone to another node needs a shared one) */
  diskStorage: string;
  /** the `hotplug` option (qemu-server `$confdesc`: default `network,disk,usb`) */
  hotplug: string;
  /** changes written while the VM ran that wait for its next start (the `[PENDING]` section) */
  pending: { cores?: number; memoryMb?: number };
  /**
   * when the VM's config appeared (ms since the epoch): `/cluster/resources` shows its status
   * data (`name`, `status`, `template`) only once pvestatd has published it, `statusRefreshMs` later
   */
  createdAt: number;
}

export interface RecordedRequest {
  /** when the request arrived (ms since the epoch) */
  at: number;
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
  /** extra response headers, e.g. `Retry-After` */
  headers?: Record<string, string>;
  /**
   * The request takes effect and only its answer is this error — what a proxy timeout or a
   * dropped connection looks like to the client.
   */
  after?: boolean;
}

/** A storage as `storage.cfg` defines it: which content it takes and whether every node sees it. */
export interface FakeStorage {
  type: string;
  content: string[];
  shared: boolean;
}

/** A vzdump archive on a backup storage, apart from any VM. */
export interface FakeBackup {
  volid: string;
  storage: string;
  /** the node that wrote it: the only one that sees it on a storage that is not shared */
  node: string;
  vmid: number;
  /** seconds since the epoch */
  ctime: number;
  /** bytes */
  size: number;
  notes?: string;
  /** the VM configuration inside the archive */
  config: Pick<FakeVm, 'name' | 'cores' | 'sockets' | 'memoryMb' | 'disks' | 'tags' | 'description'>;
}

interface FakeTask {
  upid: string;
  node: string;
  type: string;
  id: string;
  pid: number;
  pstart: number;
  starttime: number;
  /** the token that started it */
  user: string;
  pollsLeft: number;
  failWith?: string;
  exitstatus?: string;
  /** a returned string is the exit status instead of OK (e.g. `WARNINGS: 1`) */
  onFinish?: () => unknown;
  onFail?: () => void;
}

export interface ProxmoxFakeOptions {
  /** Podplane's API token: `user@realm!name` */
  tokenId: string;
  tokenSecret: string;
  /** the privileges of the role Podplane's token user has on `/` (default: every privilege) */
  privileges?: readonly string[];
  nodes?: string[];
  /** the templates: VM id → node (default: 9000 on the first node) */
  templates?: Record<number, string>;
  /** template disk size in GB */
  templateDiskGb?: number;
  /** the storage of the templates' disks (default `local-lvm`) */
  templateStorage?: string;
  /** default: `local` (dir: backups, ISOs, templates) and `local-lvm` (VM disks), neither shared */
  storages?: Record<string, FakeStorage>;
  /** how long a new VM's status data takes to reach `/cluster/resources`; default 10 s (pvestatd) */
  statusRefreshMs?: number;
}

/** An ACL entry (pve-access-control `src/PVE/API2/ACL.pm` `read_acl`). */
export interface FakeAcl {
  path: string;
  type: 'user' | 'group' | 'token';
  ugid: string;
  roleid: string;
  propagate: boolean;
}

/**
 * The built-in roles the tests use (pve-access-control `src/PVE/AccessControl.pm` `$privgroups`
 * and `create_roles`: `PVE<cat>User` is the category's user and audit privileges).
 */
export const BUILTIN_ROLES: Record<string, readonly string[]> = {
  PVEVMUser: [
    'VM.Config.CDROM',
    'VM.Config.Cloudinit',
    'VM.Console',
    'VM.Backup',
    'VM.GuestAgent.FileRead',
    'VM.GuestAgent.FileSystemMgmt',
    'VM.GuestAgent.FileWrite',
    'VM.PowerMgmt',
    'VM.Audit',
    'VM.GuestAgent.Audit',
  ],
  NoAccess: [],
};

/** Every privilege the fake checks: the default role of Podplane's token. */
const ALL_PRIVILEGES = [
  'Datastore.Allocate',
  'Datastore.AllocateSpace',
  'Datastore.Audit',
  'Permissions.Modify',
  'Sys.Audit',
  'VM.Allocate',
  'VM.Audit',
  'VM.Backup',
  'VM.Clone',
  'VM.Config.CDROM',
  'VM.Config.CPU',
  'VM.Config.Cloudinit',
  'VM.Config.Disk',
  'VM.Config.Memory',
  'VM.Config.Options',
  'VM.Console',
  'VM.GuestAgent.Audit',
  'VM.GuestAgent.FileRead',
  'VM.GuestAgent.FileSystemMgmt',
  'VM.GuestAgent.FileWrite',
  'VM.PowerMgmt',
];

const DEFAULT_STORAGES: Record<string, FakeStorage> = {
  local: { type: 'dir', content: ['backup', 'iso', 'vztmpl'], shared: false },
  'local-lvm': { type: 'lvmthin', content: ['images', 'rootdir'], shared: false },
};

/** Drive keys a restore refuses next to `archive` (qemu-server `is_valid_drivename`). */
const DRIVE_KEY = /^(ide|sata|scsi|virtio|efidisk|tpmstate|unused)\d+$/;

class FakeError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** `vzdump-qemu-<vmid>-YYYY_MM_DD-HH_MM_SS` (PVE/VZDump.pm `exec_backup_task`; the real one uses local time). */
function archiveStamp(seconds: number): string {
  const d = new Date(seconds * 1000);
  return (
    `${d.getUTCFullYear()}_${pad2(d.getUTCMonth() + 1)}_${pad2(d.getUTCDate())}-` +
    `${pad2(d.getUTCHours())}_${pad2(d.getUTCMinutes())}_${pad2(d.getUTCSeconds())}`
  );
}

/**
 * The checks `$verify_notes_template` makes (PVE/VZDump.pm): one line, only `\n` and `\\` escapes,
 * only the `cluster`, `guestname`, `node` and `vmid` variables.
 */
function notesTemplateProblem(template: string): string | null {
  if (template.includes('\n')) return 'contains a line feed';
  const problems: string[] = [];
  for (const m of template.matchAll(/\\(.)/g)) {
    if (!/^[n\\]$/.test(m[1] ?? ''))
      problems.push(`escape sequence '\\${m[1] ?? ''}' at char ${m.index ?? 0}`);
  }
  for (const m of template.matchAll(/\{\{([^\s{}]+)\}\}/g)) {
    if (!/^(cluster|guestname|node|vmid)$/.test(m[1] ?? ''))
      problems.push(`variable '${m[1] ?? ''}' at char ${m.index ?? 0}`);
  }
  return problems.length > 0 ? `found unknown: ${problems.join(', ')}` : null;
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

/** `podplane@pve!ci` → `podplane@pve`; a user id stays as it is. */
function userOfToken(id: string): string {
  return id.split('!')[0] ?? id;
}

/** `/` is above `/vms/100`, `/vms` is above `/vms/100`, `/vms/1` is not. */
function isAncestorPath(above: string, path: string): boolean {
  return above === '/' || path.startsWith(`${above}/`);
}

/** Tag and option lists are split on `;`, `,` and spaces (pve-common `PVE::Tools::split_list`). */
function splitList(value: string): string[] {
  return value.split(/[;,\s]+/).filter(Boolean);
}

export class ProxmoxFake {
  readonly vms = new Map<number, FakeVm>();
  readonly requests: RecordedRequest[] = [];
  readonly tasks = new Map<string, FakeTask>();
  /** how many status polls a task answers `running` before it stops */
  taskPolls = 2;
  /** how many agent calls fail after a start */
  agentWarmupCalls = 1;
  readonly nodes: string[];
  /** the first template (the one a single-template setup clones) */
  readonly templateVmId: number;
  readonly storages: Record<string, FakeStorage>;
  /** role → privileges (`Podplane` is the role of Podplane's token user) */
  readonly roles: Record<string, readonly string[]>;
  readonly acls: FakeAcl[] = [];
  /** user id → the groups it belongs to */
  private readonly users = new Map<string, string[]>();
  /** token id (`user@realm!name`) → secret */
  private readonly tokens = new Map<string, string>();
  private readonly statusRefreshMs: number;
  /** vzdump archives by volid */
  private readonly archives = new Map<string, FakeBackup>();
  url = '';
  private readonly injected: (InjectedError & { remaining: number })[] = [];
  private readonly taskFailures: { type: string; exitstatus: string }[] = [];
  private readonly server: Server;
  private nextPid = 4000;
  /** the token of the request being routed (routing is synchronous, so one at a time) */
  private who = '';

  private constructor(private readonly opts: ProxmoxFakeOptions) {
    this.nodes = opts.nodes ?? ['pve1', 'pve2'];
    this.storages = opts.storages ?? DEFAULT_STORAGES;
    this.statusRefreshMs = opts.statusRefreshMs ?? 10_000;
    this.roles = { ...BUILTIN_ROLES, Podplane: opts.privileges ?? ALL_PRIVILEGES };
    const podplaneUser = userOfToken(opts.tokenId);
    this.addUser(podplaneUser, { tokenId: opts.tokenId, tokenSecret: opts.tokenSecret });
    this.acls.push({ path: '/', type: 'user', ugid: podplaneUser, roleid: 'Podplane', propagate: true });
    const templates = opts.templates ?? { 9000: this.nodes[0] ?? 'pve1' };
    this.templateVmId = Number(Object.keys(templates)[0]);
    for (const [vmid, node] of Object.entries(templates)) {
      this.vms.set(Number(vmid), {
        vmid: Number(vmid),
        node,
        name: `podplane-template-${node}`,
        template: true,
        status: 'stopped',
        cores: 1,
        sockets: 1,
        memoryMb: 1024,
        disks: { scsi0: opts.templateDiskGb ?? 8 },
        tags: ['template'],
        ip: '',
        agentWarmup: 0,
        diskStorage: opts.templateStorage ?? 'local-lvm',
        hotplug: 'network,disk,usb',
        pending: {},
        createdAt: 0,
      });
    }
    this.server = createServer((req, res) => {
      void this.handle(req)
        .catch((err: unknown) => ({
          status: 500,
          message: 'fake failure',
          headers: {},
          payload: { data: null, message: String(err) },
        }))
        .then(({ status, message, headers, payload }) => {
          res.writeHead(status, message, { 'Content-Type': 'application/json;charset=UTF-8', ...headers });
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

  /** A Proxmox user (`name@realm`), in these groups, optionally with an API token. */
  addUser(userid: string, opts: { groups?: string[]; tokenId?: string; tokenSecret?: string } = {}): void {
    this.users.set(userid, opts.groups ?? []);
    if (opts.tokenId && opts.tokenSecret) this.tokens.set(opts.tokenId, opts.tokenSecret);
  }

  /** Whether the user (or token) holds the privilege on the path. */
  can(principal: string, path: string, privilege: string): boolean {
    const user = userOfToken(principal);
    const groups = this.users.get(user) ?? [];
    return this.acls.some(
      (acl) =>
        (acl.path === path || (acl.propagate && isAncestorPath(acl.path, path))) &&
        ((acl.type === 'user' && acl.ugid === user) ||
          (acl.type === 'token' && acl.ugid === principal) ||
          (acl.type === 'group' && groups.includes(acl.ugid))) &&
        (this.roles[acl.roleid] ?? []).includes(privilege),
    );
  }

  /** Makes the next matching request(s) fail with this status line and body. */
  inject(error: InjectedError): void {
    this.injected.push({ ...error, remaining: error.times ?? 1 });
  }

  /** The next task of this type (`qmclone`, `qmstart`, …) stops with this exit status instead of OK. */
  failNextTask(type: string, exitstatus: string): void {
    this.taskFailures.push({ type, exitstatus });
  }

  /** Time passes: every running task runs to its end, as it would on a real node with nobody polling. */
  finishTasks(): void {
    for (const task of this.tasks.values()) {
      task.pollsLeft = 0;
      this.advance(task);
    }
  }

  /** The vzdump archives on every storage. */
  backups(): FakeBackup[] {
    return [...this.archives.values()];
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
      ip: this.ipFor(vm.vmid),
      agentWarmup: 0,
      diskStorage: 'local-lvm',
      hotplug: 'network,disk,usb',
      pending: {},
      createdAt: Date.now(),
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
    headers: Record<string, string>;
    payload: { data: unknown; message?: string; errors?: Record<string, string> };
  }> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const raw = await readBody(req);
    const body = parseBody(raw, req.headers['content-type']);
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/^\/api2\/json/, '');
    this.requests.push({ at: Date.now(), method, path, query: url.searchParams, body, headers: req.headers });
    try {
      if (!url.pathname.startsWith('/api2/json/')) throw new FakeError(404, 'Not Found');
      // `PVEAPIToken=<user@realm!name>=<secret>` (pve-http-server AnyEvent.pm, pve-access-control
      // `verify_token`); any other credential is refused
      const auth = /^PVEAPIToken=([^=\s]+)=(\S+)$/.exec(req.headers.authorization ?? '');
      if (!auth?.[1] || this.tokens.get(auth[1]) !== auth[2])
        throw new FakeError(401, 'authentication failure');
      this.who = auth[1];
      const injected = this.injected.find(
        (e) =>
          e.remaining > 0 &&
          (!e.method || e.method === method) &&
          (typeof e.path === 'string' ? e.path === path : e.path.test(path)),
      );
      const params = method === 'GET' || method === 'DELETE' ? Object.fromEntries(url.searchParams) : body;
      if (injected) {
        injected.remaining -= 1;
        // An answer lost after the fact: the request did its work, the client sees only the error.
        if (injected.after) this.route(method, path, params);
        throw new FakeError(injected.status, injected.message, injected.errors, injected.headers);
      }
      return { status: 200, message: 'OK', headers: {}, payload: { data: this.route(method, path, params) } };
    } catch (err) {
      if (!(err instanceof FakeError)) throw err;
      return {
        status: err.status,
        message: err.message,
        headers: err.headers ?? {},
        payload: {
          data: null,
          message: `${err.message}\n`,
          ...(err.errors ? { errors: err.errors } : {}),
        },
      };
    }
  }

  private route(method: string, path: string, params: Record<string, string>): unknown {
    const key = `${method} ${path}`;
    // pve-manager PVE/API2/Cluster.pm `resources`, `nextid`; PVE/API2/Nodes.pm `index`: any user
    if (key === 'GET /cluster/resources') return this.resources(params.type);
    if (key === 'GET /cluster/nextid') return String(this.nextId());
    if (key === 'GET /nodes') return this.nodes.map((node) => ({ node, type: 'node', status: 'online' }));
    if (key === 'GET /access/acl') return this.readAcl();
    if (key === 'PUT /access/acl') return this.updateAcl(params);
    let m = /^GET \/nodes\/([^/]+)\/tasks\/([^/]+)\/status$/.exec(key);
    if (m) return this.taskStatus(m[1] ?? '', decodeURIComponent(m[2] ?? ''));
    m = /^POST \/nodes\/([^/]+)\/vzdump$/.exec(key);
    if (m) return this.vzdump(this.node(m[1] ?? ''), params);
    m = /^POST \/nodes\/([^/]+)\/qemu$/.exec(key);
    if (m) return this.createVm(this.node(m[1] ?? ''), params);
    m = /^GET \/nodes\/([^/]+)\/storage\/([^/]+)\/status$/.exec(key);
    if (m) return this.storageStatus(this.node(m[1] ?? ''), decodeURIComponent(m[2] ?? ''));
    m = /^GET \/nodes\/([^/]+)\/storage\/([^/]+)\/content$/.exec(key);
    if (m) return this.storageContent(this.node(m[1] ?? ''), decodeURIComponent(m[2] ?? ''), params);
    m = /^DELETE \/nodes\/([^/]+)\/storage\/([^/]+)\/content\/([^/]+)$/.exec(key);
    if (m) {
      return this.deleteVolume(
        this.node(m[1] ?? ''),
        decodeURIComponent(m[2] ?? ''),
        decodeURIComponent(m[3] ?? ''),
      );
    }
    m = /^(GET|POST|PUT|DELETE) \/nodes\/([^/]+)\/qemu\/(\d+)(\/.*)?$/.exec(key);
    if (!m) throw new FakeError(501, `Method '${key}' not implemented`);
    const vm = this.vmOn(m[2] ?? '', Number(m[3]));
    const rest = `${m[1] ?? ''} ${m[4] ?? ''}`;
    const onVm = `/vms/${vm.vmid}`;
    // qemu-server src/PVE/API2/Qemu.pm: each method's `permissions` block
    switch (rest) {
      case 'POST /clone':
        return this.clone(vm, params);
      case 'GET /config':
        this.need(onVm, 'VM.Audit');
        return this.configOf(vm, params.current === '1');
      case 'GET /pending':
        this.need(onVm, 'VM.Audit');
        return this.pendingOf(vm);
      case 'POST /config':
        return this.updateConfig(vm, params);
      case 'PUT /resize':
        this.need(onVm, 'VM.Config.Disk');
        return this.resize(vm, params);
      case 'GET /status/current':
        this.need(onVm, 'VM.Audit');
        return this.statusOf(vm);
      case 'POST /status/start':
        this.need(onVm, 'VM.PowerMgmt');
        return this.start(vm);
      case 'POST /status/shutdown':
      case 'POST /status/stop':
        this.need(onVm, 'VM.PowerMgmt');
        return this.stop(vm, rest.endsWith('shutdown') ? 'qmshutdown' : 'qmstop');
      case 'POST /status/suspend':
        this.need(onVm, 'VM.PowerMgmt');
        return this.hibernate(vm, params);
      case 'GET /agent/network-get-interfaces':
        // src/PVE/API2/Qemu/Agent.pm: `VM.GuestAgent.Audit` or `VM.GuestAgent.Unrestricted` (PVE 9)
        this.need(onVm, 'VM.GuestAgent.Audit', 'VM.GuestAgent.Unrestricted');
        return this.interfaces(vm);
      case 'DELETE ':
        this.need(onVm, 'VM.Allocate');
        return this.destroy(vm);
    }
    throw new FakeError(501, `Method '${key}' not implemented`);
  }

  /** `raise_perm_exc("$path, $priv")` (pve-access-control RPCEnvironment.pm `check`): any of `privileges`. */
  private need(path: string, ...privileges: string[]): void {
    if (privileges.some((p) => this.can(this.who, path, p))) return;
    throw new FakeError(403, `Permission check failed (${path}, ${privileges.join('|')})`);
  }

  private isRoot(): boolean {
    return userOfToken(this.who) === 'root@pam';
  }

  private node(node: string): string {
    if (!this.nodes.includes(node)) throw new FakeError(595, `no such node '${node}'`);
    return node;
  }

  private vmOn(node: string, vmid: number): FakeVm {
    if (!this.nodes.includes(node)) throw new FakeError(595, `no such node '${node}'`);
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node) {
      throw new FakeError(500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
    }
    return vm;
  }

  /** pve-guest-common src/PVE/AbstractConfig.pm `check_lock`: "VM is locked (<lock>)". */
  private lockProblem(vm: FakeVm): string | undefined {
    return vm.lock ? `VM is locked (${vm.lock})` : undefined;
  }

  private checkLock(vm: FakeVm): void {
    const problem = this.lockProblem(vm);
    if (problem) throw new FakeError(500, problem);
  }

  /**
   * pve-manager PVE/API2/Cluster.pm `resources` with PVE/API2Tools.pm `extract_vm_stats`: a VM
   * the caller may not `VM.Audit` is left out. `vmid`, `node` and `type` come from the cluster's
   * VM list and `lock` and `tags` from the config file, so they show at once; `name`, `status`,
   * `template` and the sizes come from the status data pvestatd publishes every 10 s
   * (PVE/Service/pvestatd.pm), so a VM younger than that has `status: 'unknown'` and no name.
   */
  private resources(type: string | undefined): unknown[] {
    if (type && type !== 'vm') return [];
    return [...this.vms.values()]
      .filter((vm) => this.can(this.who, `/vms/${vm.vmid}`, 'VM.Audit'))
      .map((vm) => ({
        id: `qemu/${vm.vmid}`,
        type: 'qemu',
        vmid: vm.vmid,
        node: vm.node,
        ...(Date.now() - vm.createdAt >= this.statusRefreshMs
          ? {
              name: vm.name,
              status: vm.status,
              template: vm.template ? 1 : 0,
              maxcpu: vm.cores * vm.sockets,
              maxmem: vm.memoryMb * 1024 ** 2,
              maxdisk: (vm.disks.scsi0 ?? 0) * 1024 ** 3,
            }
          : { status: 'unknown' }),
        ...(vm.tags.length > 0 ? { tags: vm.tags.join(';') } : {}),
        ...(vm.lock ? { lock: vm.lock } : {}),
      }));
  }

  /** Makes the status data of every VM current, as pvestatd's next round does. */
  publishStatus(): void {
    for (const vm of this.vms.values())
      vm.createdAt = Math.min(vm.createdAt, Date.now() - this.statusRefreshMs);
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
    handlers: Pick<FakeTask, 'onFinish' | 'onFail' | 'failWith'>,
  ): string {
    const pid = this.nextPid++;
    const starttime = Math.floor(Date.now() / 1000);
    const upid = ['UPID', node, hex8(pid), hex8(pid * 7), hex8(starttime), type, id, this.who, ''].join(':');
    const failure = this.taskFailures.findIndex((f) => f.type === type);
    const injected = failure >= 0 ? this.taskFailures.splice(failure, 1)[0]?.exitstatus : undefined;
    this.tasks.set(upid, {
      upid,
      node,
      type,
      id,
      pid,
      pstart: pid * 7,
      starttime,
      user: this.who,
      pollsLeft: this.taskPolls,
      ...handlers,
      failWith: injected ?? handlers.failWith,
    });
    return upid;
  }

  /** One step of a task: still running while polls are left, then it stops (once). */
  private advance(task: FakeTask): void {
    if (task.exitstatus !== undefined) return;
    if (task.pollsLeft > 0) {
      task.pollsLeft -= 1;
    } else if (task.failWith !== undefined) {
      task.onFail?.();
      task.exitstatus = task.failWith;
    } else {
      const exit = task.onFinish?.();
      task.exitstatus = typeof exit === 'string' ? exit : 'OK';
    }
  }

  private taskStatus(node: string, upid: string): unknown {
    const task = this.tasks.get(upid);
    if (!task || task.node !== node) throw new FakeError(500, `no such task`);
    this.advance(task);
    return {
      upid: task.upid,
      node: task.node,
      pid: task.pid,
      pstart: task.pstart,
      starttime: task.starttime,
      type: task.type,
      id: task.id,
      user: task.user,
      status: task.exitstatus === undefined ? 'running' : 'stopped',
      ...(task.exitstatus === undefined ? {} : { exitstatus: task.exitstatus }),
    };
  }

  /**
   * POST …/clone (Qemu.pm `clone_vm`). Before the worker forks: `VM.Clone` on the source,
   * `VM.Allocate` on the new id, `Datastore.AllocateSpace` on the disks' storage (403s); a locked
   * source, a taken id, and a `target` node when the source's disks are not on shared storage
   * ("can't clone VM to node '<target>' (VM uses local storage)") are 500s. The worker first
   * writes the new config on the *source* node, locked `clone`, and moves it to the target node
   * when the copy is done; a failed clone removes it.
   */
  private clone(template: FakeVm, params: Record<string, string>): string {
    const newid = Number(params.newid);
    if (!params.newid || !Number.isInteger(newid)) {
      throw new FakeError(400, 'Parameter verification failed.', {
        newid: 'property is missing and it is not optional',
      });
    }
    this.need(`/vms/${template.vmid}`, 'VM.Clone');
    this.need(`/vms/${newid}`, 'VM.Allocate');
    this.need(`/storage/${template.diskStorage}`, 'Datastore.AllocateSpace');
    this.checkLock(template);
    if (this.vms.has(newid))
      throw new FakeError(500, `unable to create VM ${newid}: config file already exists`);
    const target = params.target;
    if (target !== undefined && !this.nodes.includes(target))
      throw new FakeError(500, `no such cluster node '${target}'`);
    if (target !== undefined && target !== template.node && !this.storages[template.diskStorage]?.shared)
      throw new FakeError(500, `can't clone VM to node '${target}' (VM uses local storage)`);
    const vm: FakeVm = {
      ...template,
      vmid: newid,
      node: template.node,
      name: params.name ?? `Copy-of-VM-${template.name}`,
      template: false,
      status: 'stopped',
      lock: 'clone',
      disks: { ...template.disks },
      tags: [...template.tags],
      description: params.description,
      ip: this.ipFor(newid),
      pending: {},
      createdAt: Date.now(),
    };
    this.vms.set(newid, vm);
    return this.newTask(template.node, 'qmclone', String(template.vmid), {
      onFinish: () => {
        delete vm.lock;
        if (target !== undefined) vm.node = target;
      },
      onFail: () => this.vms.delete(newid),
    });
  }

  /**
   * GET …/config (Qemu.pm `vm_config`): "with pending configuration changes applied. Set the
   * 'current' parameter to get the current configuration instead."
   */
  private configOf(vm: FakeVm, current: boolean): unknown {
    const cores = current ? vm.cores : (vm.pending.cores ?? vm.cores);
    const memoryMb = current ? vm.memoryMb : (vm.pending.memoryMb ?? vm.memoryMb);
    return {
      name: vm.name,
      cores,
      sockets: vm.sockets,
      // recent Proxmox returns memory as a string
      memory: String(memoryMb),
      hotplug: vm.hotplug,
      ...Object.fromEntries(
        Object.entries(vm.disks).map(([disk, gb]) => [
          disk,
          `${vm.diskStorage}:vm-${vm.vmid}-disk-0,size=${gb}G`,
        ]),
      ),
      ...(vm.tags.length > 0 ? { tags: vm.tags.join(';') } : {}),
      ...(vm.description ? { description: vm.description } : {}),
      ...(vm.lock ? { lock: vm.lock } : {}),
      digest: 'f'.repeat(40),
    };
  }

  /** GET …/pending (Qemu.pm `vm_pending`, pve-guest-common GuestHelpers `config_with_pending_array`). */
  private pendingOf(vm: FakeVm): unknown[] {
    const item = (key: string, value: unknown, pending: unknown) => ({
      key,
      value,
      ...(pending === undefined ? {} : { pending }),
    });
    return [
      item('name', vm.name, undefined),
      item('cores', vm.cores, vm.pending.cores),
      item(
        'memory',
        String(vm.memoryMb),
        vm.pending.memoryMb === undefined ? undefined : String(vm.pending.memoryMb),
      ),
      item('sockets', vm.sockets, undefined),
    ];
  }

  /** Everything in `[PENDING]` takes effect (a start that is not a resume, a config write on a stopped VM). */
  private applyPending(vm: FakeVm): void {
    if (vm.pending.cores !== undefined) vm.cores = vm.pending.cores;
    if (vm.pending.memoryMb !== undefined) vm.memoryMb = vm.pending.memoryMb;
    vm.pending = {};
  }

  /**
   * POST …/config (Qemu.pm `update_vm_api`). Privileges per option (`$check_vm_modify_config_perm`):
   * cores → `VM.Config.CPU`, memory → `VM.Config.Memory`, name/description/tags →
   * `VM.Config.Options`; `lock`, set or deleted, is root's only — "only root can set 'lock'
   * config", a 500 before any task. A locked VM is refused (`check_lock`, 500). On a running VM
   * only the "fast plug" options (`name`, `description`, `tags`, …) apply at once;
   * `vmconfig_hotplug_pending` leaves `cores` pending always and `memory` pending unless
   * `hotplug` has `memory`; on a stopped VM everything pending applies (`vmconfig_apply_pending`).
   */
  private updateConfig(vm: FakeVm, params: Record<string, string>): string {
    const deletes = splitList(params.delete ?? '');
    const onVm = `/vms/${vm.vmid}`;
    if (!this.isRoot()) {
      if (params.lock !== undefined || deletes.includes('lock'))
        throw new FakeError(500, "only root can set 'lock' config");
      if (params.cores !== undefined) this.need(onVm, 'VM.Config.CPU');
      if (params.memory !== undefined) this.need(onVm, 'VM.Config.Memory');
      for (const option of ['name', 'description', 'tags']) {
        if (params[option] !== undefined || deletes.includes(option)) this.need(onVm, 'VM.Config.Options');
      }
    }
    const onlyLock =
      Object.keys(params).every((k) => k === 'lock' || k === 'delete') && deletes.every((d) => d === 'lock');
    if (!onlyLock) this.checkLock(vm);
    const errors: Record<string, string> = {};
    const cores = params.cores === undefined ? undefined : Number(params.cores);
    if (cores !== undefined && !(Number.isInteger(cores) && cores >= 1)) errors.cores = 'value must be >= 1';
    const memory = params.memory === undefined ? undefined : Number(params.memory);
    if (memory !== undefined && !(Number.isInteger(memory) && memory >= 16))
      errors.memory = 'value must be >= 16';
    const tags = params.tags === undefined ? undefined : splitList(params.tags);
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
        if (tags !== undefined) vm.tags = tags;
        if (params.name !== undefined) vm.name = params.name;
        if (params.description !== undefined) vm.description = params.description;
        if (params.lock !== undefined) vm.lock = params.lock;
        if (deletes.includes('lock')) delete vm.lock;
        if (cores !== undefined) vm.pending.cores = cores;
        if (memory !== undefined) vm.pending.memoryMb = memory;
        if (vm.status !== 'running') {
          this.applyPending(vm);
        } else if (vm.pending.memoryMb !== undefined && splitList(vm.hotplug).includes('memory')) {
          vm.memoryMb = vm.pending.memoryMb;
          delete vm.pending.memoryMb;
        }
      },
    });
  }

  /**
   * PUT …/resize (Qemu.pm `resize_vm`): every check — the lock, the disk, "shrinking disks is not
   * supported" — runs inside the `resize` worker, so the request always gets its task.
   */
  private resize(vm: FakeVm, params: Record<string, string>): string {
    const size = /^(\+)?(\d+(?:\.\d+)?)([KMGT])?$/.exec(params.size ?? '');
    if (!size)
      throw new FakeError(400, 'Parameter verification failed.', {
        size: 'value does not match the regex pattern',
      });
    const disk = params.disk ?? '';
    const current = vm.disks[disk];
    const unitGb = { K: 1 / 1024 ** 2, M: 1 / 1024, G: 1, T: 1024 }[size[3] ?? 'G'] ?? 1;
    const requested = Number(size[2]) * unitGb;
    const next = size[1] ? (current ?? 0) + requested : requested;
    const failWith =
      this.lockProblem(vm) ??
      (current === undefined
        ? `disk '${disk}' does not exist`
        : next < current
          ? 'shrinking disks is not supported'
          : undefined);
    return this.newTask(vm.node, 'resize', String(vm.vmid), {
      failWith,
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

  /**
   * POST …/status/start (Qemu.pm `vm_start`, QemuServer.pm `vm_start`/`vm_start_nolock`): the
   * lock check is skipped for a `suspended` lock — a hibernated VM is resumed from its saved
   * state, without applying pending changes, and the lock is removed. Any other lock fails the
   * `qmstart` task. A start that is not a resume applies the pending changes.
   */
  private start(vm: FakeVm): string {
    const resume = vm.lock === 'suspended';
    if (vm.status === 'running') throw new FakeError(500, `VM ${vm.vmid} already running`);
    return this.newTask(vm.node, 'qmstart', String(vm.vmid), {
      failWith: resume ? undefined : this.lockProblem(vm),
      onFinish: () => {
        if (resume) delete vm.lock;
        else this.applyPending(vm);
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

  /**
   * POST …/status/suspend with `todisk=1` (Qemu.pm `vm_suspend`): hibernation — the RAM goes to
   * a state volume, the VM stops and its config is locked `suspended` (the same lock name a
   * root user could set by hand). Plain suspend (pause in RAM) is not modelled.
   */
  private hibernate(vm: FakeVm, params: Record<string, string>): string {
    if (params.todisk !== '1') throw new FakeError(501, 'the fake models hibernation (todisk=1) only');
    this.need(`/vms/${vm.vmid}`, 'VM.Config.Disk');
    if (vm.status !== 'running') throw new FakeError(500, `VM ${vm.vmid} not running`);
    this.checkLock(vm);
    return this.newTask(vm.node, 'qmsuspend', String(vm.vmid), {
      onFinish: () => {
        vm.status = 'stopped';
        vm.lock = 'suspended';
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

  /**
   * DELETE …/qemu/{vmid} (Qemu.pm `destroy_vm`): a running VM is refused before the task (500);
   * the lock is checked inside the `qmdestroy` worker, which ignores a `suspended` lock
   * (QemuServer.pm `destroy_vm`). With purge the VM's ACL entries go too
   * (pve-access-control `remove_vm_access`).
   */
  private destroy(vm: FakeVm): string {
    if (vm.status === 'running') throw new FakeError(500, `VM ${vm.vmid} is running - destroy failed`);
    return this.newTask(vm.node, 'qmdestroy', String(vm.vmid), {
      failWith: vm.lock === 'suspended' ? undefined : this.lockProblem(vm),
      onFinish: () => {
        this.vms.delete(vm.vmid);
        for (let i = this.acls.length - 1; i >= 0; i--) {
          if (this.acls[i]?.path === `/vms/${vm.vmid}`) this.acls.splice(i, 1);
        }
      },
    });
  }

  /**
   * GET /access/acl (pve-access-control src/PVE/API2/ACL.pm `read_acl`): the entries on paths
   * where the caller has `Sys.Audit` on /access or may modify the path's permissions.
   */
  private readAcl(): unknown[] {
    return this.acls
      .filter((acl) => this.can(this.who, '/access', 'Sys.Audit') || this.mayModify(acl.path))
      .map((acl) => ({ ...acl, propagate: acl.propagate ? 1 : 0 }));
  }

  /** `check_perm_modify` (RPCEnvironment.pm): `Permissions.Modify`, or `VM.Allocate` on a /vms path. */
  private mayModify(path: string): boolean {
    return (
      this.can(this.who, path, 'Permissions.Modify') ||
      (path.startsWith('/vms/') && this.can(this.who, path, 'VM.Allocate'))
    );
  }

  /**
   * PUT /access/acl (ACL.pm `update_acl`): `perm-modify` on the path (403); without
   * `Permissions.Modify` a role can be granted or taken only when the caller holds every one of
   * its privileges ("requires 'Permissions.Modify' or superset of privileges", 400); an unknown
   * role, user or group is a 500; `delete` removes the matching entries.
   */
  private updateAcl(params: Record<string, string>): null {
    const path = params.path ?? '';
    const errors: Record<string, string> = {};
    if (!path) errors.path = 'property is missing and it is not optional';
    else if (!/^\/(vms\/[1-9][0-9]{2,}|pool\/[A-Za-z0-9.\-_]+|storage\/[^/]+|nodes\/[^/]+)?$/.test(path))
      errors.path = `invalid ACL path '${path}'`;
    if (!params.roles) errors.roles = 'property is missing and it is not optional';
    if (!params.users && !params.groups && !params.tokens)
      throw new FakeError(400, "either 'users', 'groups' or 'tokens' is required.");
    if (Object.keys(errors).length > 0) throw new FakeError(400, 'Parameter verification failed.', errors);
    if (!this.mayModify(path))
      throw new FakeError(403, `Permission check failed (${path}, Permissions.Modify)`);
    const remove = params.delete === '1';
    const propagate = params.propagate !== '0';
    const roles = splitList(params.roles ?? '');
    for (const role of roles) {
      const privileges = this.roles[role];
      if (!privileges) throw new FakeError(500, `role '${role}' does not exist`);
      if (
        !this.can(this.who, path, 'Permissions.Modify') &&
        (role === 'NoAccess' || privileges.some((p) => !this.can(this.who, path, p)))
      ) {
        throw new FakeError(
          400,
          `Cannot ${remove ? 'remove' : 'add'} role '${role}' - requires 'Permissions.Modify' or superset of privileges.`,
        );
      }
    }
    const subjects: [FakeAcl['type'], string][] = [
      ...splitList(params.users ?? '').map((u): [FakeAcl['type'], string] => ['user', u]),
      ...splitList(params.groups ?? '').map((g): [FakeAcl['type'], string] => ['group', g]),
      ...splitList(params.tokens ?? '').map((t): [FakeAcl['type'], string] => ['token', t]),
    ];
    for (const [type, ugid] of subjects) {
      const known =
        type === 'user'
          ? this.users.has(ugid)
          : type === 'group'
            ? [...this.users.values()].some((groups) => groups.includes(ugid))
            : this.tokens.has(ugid);
      if (!known) throw new FakeError(500, `${type} '${ugid}' does not exist`);
      for (const roleid of roles) {
        const at = this.acls.findIndex(
          (a) => a.path === path && a.type === type && a.ugid === ugid && a.roleid === roleid,
        );
        if (at >= 0) this.acls.splice(at, 1);
        if (!remove) this.acls.push({ path, type, ugid, roleid, propagate });
      }
    }
    return null;
  }

  private storage(name: string): FakeStorage {
    const storage = this.storages[name];
    if (!storage) throw new FakeError(500, `storage '${name}' does not exist`);
    return storage;
  }

  /**
   * pve-storage `check_volume_access` for a backup volume: `Datastore.Allocate` on its storage, or
   * `Datastore.AllocateSpace` there and `VM.Backup` on the VM it was taken of.
   */
  private mayAccessBackup(storage: string, owner: number): boolean {
    return (
      this.can(this.who, `/storage/${storage}`, 'Datastore.Allocate') ||
      (this.can(this.who, `/storage/${storage}`, 'Datastore.AllocateSpace') &&
        this.can(this.who, `/vms/${owner}`, 'VM.Backup'))
    );
  }

  /** Whether `node` sees the archive: every node on a shared storage, only its writer otherwise. */
  private visible(backup: FakeBackup, node: string): boolean {
    return backup.node === node || (this.storages[backup.storage]?.shared ?? false);
  }

  /**
   * POST /nodes/{node}/vzdump (pve-manager PVE/API2/VZDump.pm `vzdump`). Parameter errors are
   * 400s; a VM on another node is a silent `OK` instead of a task; everything else — the
   * storage's existence and content type (PVE/VZDump.pm `new`/`storage_info`), the VM lock
   * (`lock_vm` → `set_lock` dies on any lock) — fails the task, not the request.
   */
  private vzdump(node: string, params: Record<string, string>): string {
    const errors: Record<string, string> = {};
    if (!params.vmid) errors.vmid = 'property is missing';
    else if (!/^\d+$/.test(params.vmid)) errors.vmid = 'value does not look like a valid VM ID';
    if (params.mode !== undefined && !['snapshot', 'suspend', 'stop'].includes(params.mode))
      errors.mode = `value '${params.mode}' does not have a value in the enumeration 'snapshot, suspend, stop'`;
    if (params.compress !== undefined && !['0', '1', 'gzip', 'lzo', 'zstd'].includes(params.compress))
      errors.compress = `value '${params.compress}' does not have a value in the enumeration '0, 1, gzip, lzo, zstd'`;
    const template = params['notes-template'];
    if (template !== undefined) {
      // pve-guest-common src/PVE/VZDump/Common.pm: `requires => 'storage'`, `maxLength => 1024`
      const problem =
        params.storage === undefined
          ? "missing property - 'notes-template' requires this property"
          : template.length > 1024
            ? 'value may only be 1024 characters long'
            : notesTemplateProblem(template);
      if (problem) errors['notes-template'] = problem;
    }
    if (Object.keys(errors).length > 0) throw new FakeError(400, 'Parameter verification failed.', errors);

    const vmid = Number(params.vmid);
    const vm = this.vms.get(vmid);
    // "silent exit if specified VMs run on other nodes"
    if (vm && vm.node !== node) return 'OK';
    const storageName = params.storage ?? 'local';
    // checked before the worker (403); `VM.Backup` only inside it (PVE/VZDump.pm `exec_backup`)
    this.need(`/storage/${storageName}`, 'Datastore.AllocateSpace');
    const mayBackUp = this.can(this.who, `/vms/${vmid}`, 'VM.Backup');
    const storage = this.storages[storageName];
    let failWith: string | undefined;
    if (!storage) {
      failWith = `could not activate storage '${storageName}': storage '${storageName}' does not exist`;
    } else if (!storage.content.includes('backup')) {
      failWith =
        `could not get storage information for '${storageName}': ` +
        `can't use storage '${storageName}' for backups - wrong content type`;
    } else if (!vm || vm.lock || !mayBackUp) {
      // the per-guest error ("unable to find VM", "VM is locked (…)" — a hibernated VM's
      // `suspended` lock too: qemu-server src/PVE/VZDump/QemuServer.pm `lock_vm` → `set_lock`)
      // ends the job with this status
      failWith = 'job errors';
    } else {
      vm.lock = 'backup';
    }
    return this.newTask(node, 'vzdump', String(vmid), {
      failWith,
      onFail: () => {
        if (vm?.lock === 'backup') delete vm.lock;
      },
      onFinish: () => {
        if (!vm) return;
        delete vm.lock;
        let ctime = Math.floor(Date.now() / 1000);
        const volidAt = (t: number) => `${storageName}:backup/vzdump-qemu-${vmid}-${archiveStamp(t)}.vma.zst`;
        while (this.archives.has(volidAt(ctime))) ctime += 1;
        const notes =
          template === undefined
            ? undefined
            : template
                .replace(/\{\{(cluster|guestname|node|vmid)\}\}/g, (_m, v: string) =>
                  v === 'vmid'
                    ? String(vmid)
                    : v === 'guestname'
                      ? vm.name
                      : v === 'node'
                        ? node
                        : 'standalone node',
                )
                .replace(/\\([n\\])/g, (_m, c: string) => (c === 'n' ? '\n' : '\\'));
        this.archives.set(volidAt(ctime), {
          volid: volidAt(ctime),
          storage: storageName,
          node,
          vmid,
          ctime,
          size: Object.values(vm.disks).reduce((sum, gb) => sum + gb, 0) * 1024 ** 3,
          ...(notes === undefined ? {} : { notes }),
          config: {
            name: vm.name,
            cores: vm.cores,
            sockets: vm.sockets,
            memoryMb: vm.memoryMb,
            disks: { ...vm.disks },
            tags: [...vm.tags],
            ...(vm.description === undefined ? {} : { description: vm.description }),
          },
        });
      },
    });
  }

  /** GET /nodes/{node}/storage/{storage}/status (pve-storage src/PVE/API2/Storage/Status.pm `read_status`). */
  private storageStatus(_node: string, name: string): unknown {
    this.need(`/storage/${name}`, 'Datastore.Audit', 'Datastore.AllocateSpace');
    const storage = this.storages[name];
    if (!storage) throw new FakeError(400, 'Parameter verification failed.', { storage: 'No such storage.' });
    return {
      type: storage.type,
      content: storage.content.join(','),
      enabled: 1,
      active: 1,
      shared: storage.shared ? 1 : 0,
      total: 1024 ** 4,
      used: 0,
      avail: 1024 ** 4,
    };
  }

  /**
   * GET /nodes/{node}/storage/{storage}/content (pve-storage Content.pm `index`); backup entries
   * carry what `get_subdir_files` in src/PVE/Storage/Plugin.pm reports — `notes` is the first line only.
   * Needs `Datastore.Audit` or `Datastore.AllocateSpace`; a backup is listed only to a caller who
   * may access it (`check_volume_access`).
   */
  private storageContent(node: string, name: string, params: Record<string, string>): unknown[] {
    this.need(`/storage/${name}`, 'Datastore.Audit', 'Datastore.AllocateSpace');
    const storage = this.storage(name);
    if (params.content !== undefined && params.content !== 'backup') return [];
    if (!storage.content.includes('backup')) return [];
    const vmid = params.vmid === undefined ? undefined : Number(params.vmid);
    return [...this.archives.values()]
      .filter((b) => b.storage === name && this.visible(b, node) && (vmid === undefined || b.vmid === vmid))
      .filter((b) => this.mayAccessBackup(b.storage, b.vmid))
      .map((b) => ({
        volid: b.volid,
        format: 'vma.zst',
        content: 'backup',
        subtype: 'qemu',
        vmid: b.vmid,
        ctime: b.ctime,
        size: b.size,
        ...(b.notes === undefined ? {} : { notes: b.notes.split('\n')[0] }),
      }));
  }

  /**
   * DELETE /nodes/{node}/storage/{storage}/content/{volume} (pve-storage Content.pm `delete`): a
   * volume id must name this storage; the removal is an `imgdel` task, and a file that is not
   * there only warns (Plugin.pm `free_image`: "disk image '…' does not exist").
   */
  private deleteVolume(node: string, name: string, volume: string): string {
    let volid = `${name}:${volume}`;
    if (volume.includes(':')) {
      const sid = volume.slice(0, volume.indexOf(':'));
      if (sid !== name) {
        throw new FakeError(400, 'Parameter verification failed.', {
          volume: `storage ID mismatch (${sid} != ${name})`,
        });
      }
      volid = volume;
    }
    this.storage(name);
    const owner = /^[^:]+:backup\/vzdump-qemu-(\d+)-/.exec(volid)?.[1];
    // "You need 'Datastore.Allocate' privilege on the storage (or 'Datastore.AllocateSpace' for
    // backup volumes if you have VM.Backup privilege on the VM)."
    if (
      !(owner
        ? this.mayAccessBackup(name, Number(owner))
        : this.can(this.who, `/storage/${name}`, 'Datastore.Allocate'))
    )
      throw new FakeError(403, `Permission check failed (/storage/${name}, Datastore.Allocate)`);
    return this.newTask(node, 'imgdel', `${owner ? `${owner}@` : ''}${name}`, {
      onFinish: () => {
        const backup = this.archives.get(volid);
        if (!backup || !this.visible(backup, node)) return 'WARNINGS: 1';
        this.archives.delete(volid);
        return undefined;
      },
    });
  }

  /**
   * POST /nodes/{node}/qemu with `archive` (qemu-server src/PVE/API2/Qemu.pm `create_vm`): a
   * restore. Drive options conflict with `archive`; other options override the restored config.
   * Before the worker starts, `create_and_lock_config` (pve-guest-common AbstractConfig.pm)
   * refuses an existing VM unless `force`, and any locked VM; it writes the config locked
   * `create`. The worker refuses a running VM and an archive it cannot read; a failed restore
   * only removes the lock — "VM state is NOT cleaned up".
   */
  private createVm(node: string, params: Record<string, string>): string {
    const errors: Record<string, string> = {};
    if (!params.vmid) errors.vmid = 'property is missing and it is not optional';
    const archive = params.archive;
    for (const option of ['force', 'unique']) {
      if (params[option] !== undefined && archive === undefined)
        errors[option] = `missing property - '${option}' requires this property`;
    }
    if (archive !== undefined) {
      for (const key of Object.keys(params)) {
        if (DRIVE_KEY.test(key)) errors[key] = "option conflicts with option 'archive'";
      }
    }
    if (Object.keys(errors).length > 0) throw new FakeError(400, 'Parameter verification failed.', errors);
    if (archive === undefined) throw new FakeError(501, 'the fake creates VMs by clone or restore only');

    const vmid = Number(params.vmid);
    const what = `unable to restore VM ${vmid} -`;
    if (!/^[^:]+:backup\//.test(archive)) {
      throw new FakeError(500, `unable to use volume ${archive} - content type needs to be 'backup'`);
    }
    let vm = this.vms.get(vmid);
    // `VM.Allocate` on the new id, or `VM.Backup` to restore over an existing VM with `force`;
    // `Datastore.AllocateSpace` on the disks' storage; access to the archive (`check_volume_access`)
    const owner = Number(/:backup\/vzdump-qemu-(\d+)-/.exec(archive)?.[1] ?? 0);
    const archiveStorage = archive.slice(0, archive.indexOf(':'));
    if (
      !this.can(this.who, `/vms/${vmid}`, 'VM.Allocate') &&
      !(vm && params.force === '1' && this.can(this.who, `/vms/${vmid}`, 'VM.Backup'))
    )
      throw new FakeError(403, `Permission check failed (/vms/${vmid}, VM.Allocate)`);
    if (params.storage !== undefined) this.need(`/storage/${params.storage}`, 'Datastore.AllocateSpace');
    if (!this.mayAccessBackup(archiveStorage, owner))
      throw new FakeError(403, `Permission check failed (/vms/${owner}, VM.Backup)`);
    if (vm && (params.force !== '1' || vm.node !== node)) {
      throw new FakeError(500, `${what} VM ${vmid} already exists on node '${vm.node}'`);
    }
    if (vm?.lock) throw new FakeError(500, `${what} VM is locked (${vm.lock})`);
    const running = vm?.status === 'running';
    if (!vm) {
      vm = {
        vmid,
        node,
        name: `VM ${vmid}`,
        template: false,
        status: 'stopped',
        cores: 1,
        sockets: 1,
        memoryMb: 512,
        disks: {},
        tags: [],
        ip: this.ipFor(vmid),
        agentWarmup: 0,
        diskStorage: params.storage ?? 'local-lvm',
        hotplug: 'network,disk,usb',
        pending: {},
        createdAt: Date.now(),
      };
      this.vms.set(vmid, vm);
    }
    vm.lock = 'create';
    const target = vm;
    const backup = this.archives.get(archive);
    const disksOn = params.storage;
    let failWith: string | undefined;
    if (running) failWith = `${what} vm is running`;
    else if (!backup || !this.visible(backup, node))
      failWith = `${what} archive '${archive}' not found on node '${node}'`;
    else if (disksOn !== undefined && !this.storages[disksOn]?.content.includes('images'))
      failWith = `storage '${disksOn}' does not support vm images`;
    return this.newTask(node, 'qmrestore', String(vmid), {
      failWith,
      onFail: () => {
        delete target.lock;
      },
      onFinish: () => {
        if (!backup) return;
        const tags =
          params.tags === undefined ? backup.config.tags : params.tags.split(/[;,\s]+/).filter(Boolean);
        Object.assign(target, {
          name: params.name ?? backup.config.name,
          cores: params.cores === undefined ? backup.config.cores : Number(params.cores),
          sockets: params.sockets === undefined ? backup.config.sockets : Number(params.sockets),
          memoryMb: params.memory === undefined ? backup.config.memoryMb : Number(params.memory),
          disks: { ...backup.config.disks },
          tags,
          description: params.description ?? backup.config.description,
          status: 'stopped',
        });
        // `unique` gives the restored NICs new MAC addresses, hence a new address
        if (params.unique === '1') target.ip = this.ipFor(vmid);
        delete target.lock;
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
