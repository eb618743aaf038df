/**
 * /api/v1/ops/simulator: platform admins see what the simulators hold (VMs, DNS records, backups —
 * so leaks show) and steer fault rules; tenants and strangers do not; and with Proxmox and
 * PowerDNS configured the routes do not exist at all.
 */
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { parseConfig } from '../../src/config';
import { systemEm } from '../../src/db/orm';
import { newId } from '../../src/domain/ids';
import { createLogger } from '../../src/logger';
import type { VmSpec } from '../../src/providers/hypervisor';
import { issueToken } from '../../src/services/api-tokens';
import { startTestStack, type TestStack } from '../helpers/app';
import { expectProblem } from '../helpers/problem';
import { createActiveTenant, type ActiveTenant } from '../helpers/tenants';

const BASE = '/api/v1/ops/simulator';
let stack: TestStack;
let tenant: ActiveTenant;
let readOnlyAdmin: string;

beforeAll(async () => {
  stack = await startTestStack();
  tenant = await createActiveTenant(stack, 'simadmin-a');
  ({ secret: readOnlyAdmin } = await issueToken(systemEm(stack.db.orm), {
    tenantId: null,
    name: 'read-only admin',
    scopes: ['read'],
  }));
});
afterAll(async () => {
  await stack?.close();
});

const admin = () => `Bearer ${stack.adminToken}`;

function pod(slug: string): VmSpec {
  return {
    podId: newId('pod'),
    podSlug: slug,
    node: 'sim-node-1',
    hostname: `${slug}.pods.test`,
    vcpu: 2,
    memoryMb: 2048,
    diskGb: 20,
  };
}

describe('what the simulators hold', () => {
  it('lists VMs, DNS records and backups — a backup still listed after its VM is gone', async () => {
    const kept = pod('leak-vm');
    const gone = pod('gone-vm');
    await stack.providers.hypervisor.createVm(kept);
    await stack.providers.hypervisor.createVm(gone);
    const backup = await stack.providers.hypervisor.backupVm(gone, 'pt-simadmin-1');
    await stack.providers.hypervisor.destroyVm(gone);
    await stack.providers.dns.upsertA({ fqdn: 'leak-vm.pods.test', podSlug: 'leak-vm' }, '10.9.8.7', 120);

    const vms = await request(stack.app).get(`${BASE}/vms`).set('Authorization', admin());
    expect(vms.status).toBe(200);
    const vmRows = vms.body.data as { pod_id: string }[];
    expect(vmRows.find((v) => v.pod_id === kept.podId)).toEqual({
      vm_id: expect.any(String),
      pod_id: kept.podId,
      node: 'sim-node-1',
      name: 'leak-vm.pods.test',
      status: 'running',
      suspended: false,
      vcpu: 2,
      memory_mb: 2048,
      disk_gb: 20,
      ip_address: expect.stringMatching(/^10\./),
      created_at: expect.any(String),
    });
    expect(vmRows.some((v) => v.pod_id === gone.podId)).toBe(false);

    const dns = await request(stack.app).get(`${BASE}/dns-records`).set('Authorization', admin());
    expect(dns.status).toBe(200);
    expect(dns.body.data).toContainEqual({
      fqdn: 'leak-vm.pods.test',
      type: 'A',
      content: '10.9.8.7',
      ttl: 120,
    });

    const backups = await request(stack.app).get(`${BASE}/backups`).set('Authorization', admin());
    expect(backups.status).toBe(200);
    expect(backups.body.data).toContainEqual({
      id: backup.backupId,
      pod_id: gone.podId,
      vm_id: expect.any(String),
      vcpu: 2,
      memory_mb: 2048,
      disk_gb: 20,
      size_gb: 20,
      created_at: expect.any(String),
    });
  });
});

describe('fault rules', () => {
  it('adds rules in every mode, lists them, deletes one, and a second delete is 404', async () => {
    const after = await request(stack.app)
      .post(`${BASE}/faults`)
      .set('Authorization', admin())
      .send({ operation: 'createVm', slug_pattern: 'lost-*', times: 2, mode: 'after' });
    expect(after.status).toBe(201);
    expect(after.body).toEqual({
      id: expect.stringMatching(/^flt_/),
      operation: 'createVm',
      slug_pattern: 'lost-*',
      remaining: 2,
      mode: 'after',
      delay_ms: null,
      message: expect.any(String),
      created_at: expect.any(String),
    });
    const delay = await request(stack.app).post(`${BASE}/faults`).set('Authorization', admin()).send({
      operation: 'upsertA',
      slug_pattern: 'slow-*',
      mode: 'delay',
      delay_ms: 5000,
      message: 'slow DNS',
    });
    expect(delay.status).toBe(201);
    expect(delay.body).toMatchObject({ mode: 'delay', delay_ms: 5000, remaining: null, message: 'slow DNS' });
    const fail = await request(stack.app)
      .post(`${BASE}/faults`)
      .set('Authorization', admin())
      .send({ operation: 'backupVm', slug_pattern: '*', times: null });
    expect(fail.status).toBe(201);
    expect(fail.body).toMatchObject({ mode: 'fail', delay_ms: null, remaining: null });

    const list = await request(stack.app).get(`${BASE}/faults`).set('Authorization', admin());
    expect(list.status).toBe(200);
    const ids = (list.body.data as { id: string }[]).map((r) => r.id);
    expect(ids).toEqual(expect.arrayContaining([after.body.id, delay.body.id, fail.body.id]));

    const removed = await request(stack.app)
      .delete(`${BASE}/faults/${fail.body.id}`)
      .set('Authorization', admin());
    expect(removed.status).toBe(204);
    expectProblem(
      await request(stack.app).delete(`${BASE}/faults/${fail.body.id}`).set('Authorization', admin()),
      404,
      'not-found',
    );
    const again = await request(stack.app).get(`${BASE}/faults`).set('Authorization', admin());
    expect((again.body.data as { id: string }[]).map((r) => r.id)).not.toContain(fail.body.id);
    await stack.providers.faults.clear();
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['an unknown field', { operation: 'createVm', slug_pattern: 'x', count: 2 }, 'body'],
    ['an unknown operation', { operation: 'launchVm', slug_pattern: 'x' }, 'operation'],
    ['a retired snapshot operation', { operation: 'snapshotVm', slug_pattern: 'x' }, 'operation'],
    ['a missing slug pattern', { operation: 'createVm' }, 'slug_pattern'],
    ['an empty slug pattern', { operation: 'createVm', slug_pattern: '' }, 'slug_pattern'],
    ['a count of zero', { operation: 'createVm', slug_pattern: 'x', times: 0 }, 'times'],
    ['an unknown mode', { operation: 'createVm', slug_pattern: 'x', mode: 'later' }, 'mode'],
    [
      'a delay rule without its delay',
      { operation: 'upsertA', slug_pattern: 'x', mode: 'delay' },
      'delay_ms',
    ],
    ['a delay on a fail rule', { operation: 'upsertA', slug_pattern: 'x', delay_ms: 100 }, 'delay_ms'],
    ['a delay of zero', { operation: 'upsertA', slug_pattern: 'x', mode: 'delay', delay_ms: 0 }, 'delay_ms'],
  ])('refuses %s with a 400 naming the field', async (_name, body, field) => {
    const res = await request(stack.app).post(`${BASE}/faults`).set('Authorization', admin()).send(body);
    expectProblem(res, 400, 'validation-failed');
    expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
    expect(await stack.providers.faults.list()).toEqual([]);
  });
});

describe('who may use them', () => {
  const routes: [string, string][] = [
    ['get', '/faults'],
    ['post', '/faults'],
    ['delete', '/faults/flt_01jabcdefghjkmnpqrstvwxyz0'],
    ['get', '/vms'],
    ['get', '/dns-records'],
    ['get', '/backups'],
  ];
  const send = (method: string, path: string, auth?: string) => {
    const r = request(stack.app)[method as 'get'](`${BASE}${path}`);
    if (auth) r.set('Authorization', auth);
    return method === 'post' ? r.send({ operation: 'createVm', slug_pattern: 'x' }) : r;
  };

  it.each(routes)('%s %s is 401 without a token and 403 for a tenant token', async (method, path) => {
    expectProblem(await send(method, path), 401, 'unauthenticated');
    expectProblem(await send(method, path, `Bearer ${tenant.token}`), 403, 'forbidden');
  });

  it('lets a read-only admin look but not change the rules', async () => {
    expect((await send('get', '/faults', `Bearer ${readOnlyAdmin}`)).status).toBe(200);
    expectProblem(await send('post', '/faults', `Bearer ${readOnlyAdmin}`), 403, 'forbidden');
    expect(await stack.providers.faults.list()).toEqual([]);
  });

  it('documents every route in OpenAPI', async () => {
    const doc = await request(stack.app).get('/openapi.json');
    const paths = doc.body.paths as Record<string, Record<string, unknown>>;
    expect(Object.keys(paths[`${BASE}/faults`] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(paths[`${BASE}/faults/{id}`] ?? {})).toEqual(['delete']);
    for (const path of ['/vms', '/dns-records', '/backups']) {
      expect(Object.keys(paths[`${BASE}${path}`] ?? {})).toEqual(['get']);
    }
  });
});

describe('with real providers configured', () => {
  const PROXMOX = {
    HYPERVISOR: 'proxmox',
    PROXMOX_URL: 'https://pve.invalid:8006',
    PROXMOX_TOKEN_ID: 'podplane@pve!ci',
    PROXMOX_TOKEN_SECRET: 'not-used-by-the-api',
    PROXMOX_TEMPLATE_VMID: '9000',
  };
  const POWERDNS = {
    DNS_PROVIDER: 'powerdns',
    POWERDNS_URL: 'http://pdns.invalid:8081',
    POWERDNS_API_KEY: 'not-used-by-the-api',
  };
  const appWith = (env: Record<string, string>) =>
    createApp({
      config: parseConfig({ NODE_ENV: 'test', ...env }),
      orm: stack.db.orm,
      temporal: stack.temporal,
      logger: createLogger({ level: 'silent' }),
      version: 'test',
      commit: 'test',
    });

  it('does not mount the simulator routes with Proxmox and PowerDNS (404)', async () => {
    const app = appWith({ ...PROXMOX, ...POWERDNS });
    for (const path of ['/faults', '/vms', '/dns-records', '/backups']) {
      expectProblem(await request(app).get(`${BASE}${path}`).set('Authorization', admin()), 404, 'not-found');
    }
    const post = await request(app)
      .post(`${BASE}/faults`)
      .set('Authorization', admin())
      .send({ operation: 'createVm', slug_pattern: 'x' });
    expectProblem(post, 404, 'not-found');
    // the rest of ops is still there
    expect((await request(app).get('/api/v1/ops/overview').set('Authorization', admin())).status).toBe(200);
  });

  it('serves only the simulator that is configured', async () => {
    const dnsOnly = appWith(PROXMOX);
    expect((await request(dnsOnly).get(`${BASE}/faults`).set('Authorization', admin())).status).toBe(200);
    expect((await request(dnsOnly).get(`${BASE}/dns-records`).set('Authorization', admin())).status).toBe(
      200,
    );
    expectProblem(await request(dnsOnly).get(`${BASE}/vms`).set('Authorization', admin()), 404, 'not-found');
    expectProblem(
      await request(dnsOnly).get(`${BASE}/backups`).set('Authorization', admin()),
      404,
      'not-found',
    );

    const hypervisorOnly = appWith(POWERDNS);
    expect((await request(hypervisorOnly).get(`${BASE}/vms`).set('Authorization', admin())).status).toBe(200);
    expect((await request(hypervisorOnly).get(`${BASE}/backups`).set('Authorization', admin())).status).toBe(
      200,
    );
    expectProblem(
      await request(hypervisorOnly).get(`${BASE}/dns-records`).set('Authorization', admin()),
      404,
      'not-found',
    );
  });
});
