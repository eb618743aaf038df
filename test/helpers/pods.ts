/** CloudPod fixtures for e2e tests: a tenant with a customer and two plans, made through the API. */
import request from 'supertest';
import { CoreNode } from '../../src/db/entities';
import { systemEm } from '../../src/db/orm';
import type { TestStack } from './app';
import { createActiveTenant } from './tenants';
import { waitFor } from './wait';

export interface PodTenant {
  id: string;
  /** `Bearer …` header value */
  auth: string;
  customerId: string;
  /** 1 vCPU / 1024 MB / 20 GB */
  starter: string;
  /** 2 vCPU / 4096 MB / 40 GB */
  pro: string;
}

export async function registerNode(stack: TestStack, name: string, vcpu = 16): Promise<string> {
  const res = await request(stack.app)
    .post('/api/v1/nodes')
    .set('Authorization', `Bearer ${stack.adminToken}`)
    .send({ name, region: 'test-1', capacity_vcpu: vcpu, capacity_memory_mb: 65536, capacity_disk_gb: 2000 });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

/**
 * A tenant with a customer and the STARTER and PRO plans. Priced plans (1000 minor units per
 * vCPU) are the default: a pod of a priced plan comes with a subscription that bills it. Pod
 * lifecycle tests take `free` plans (a price of 0), whose pods run without one.
 */
export async function podTenant(
  stack: TestStack,
  slug: string,
  opts: { free?: boolean } = {},
): Promise<PodTenant> {
  const tenant = await createActiveTenant(stack, slug);
  const auth = `Bearer ${tenant.token}`;
  const customer = await request(stack.app)
    .post('/api/v1/customers')
    .set('Authorization', auth)
    .send({ email: `customer@${slug}.test`, name: 'Customer' });
  expect(customer.status).toBe(201);
  const plan = async (code: string, vcpu: number, memory_mb: number, disk_gb: number) => {
    const res = await request(stack.app)
      .post('/api/v1/products')
      .set('Authorization', auth)
      .send({
        code,
        name: code,
        interval: 'MONTH',
        unit_amount: opts.free ? 0 : 1000 * vcpu,
        vcpu,
        memory_mb,
        disk_gb,
        included_bandwidth_gb: 100,
      });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  return {
    id: tenant.id,
    auth,
    customerId: customer.body.id as string,
    starter: await plan('STARTER', 1, 1024, 20),
    pro: await plan('PRO', 2, 4096, 40),
  };
}

export async function getPod(stack: TestStack, t: PodTenant, podId: string) {
  return (await request(stack.app).get(`/api/v1/cloudpods/${podId}`).set('Authorization', t.auth)).body;
}

/** Waits until the pod has `status` and no open job. */
export async function waitPod(
  stack: TestStack,
  t: PodTenant,
  podId: string,
  status: string,
  timeoutMs = 30000,
) {
  return waitFor(
    async () => {
      const pod = await getPod(stack, t, podId);
      const open = pod.current_job && ['QUEUED', 'RUNNING'].includes(pod.current_job.status);
      return pod.status === status && !open ? pod : undefined;
    },
    { what: `pod ${podId} ${status}`, timeoutMs },
  );
}

/** What every node has allocated, summed: the capacity ledger a test compares before and after. */
export async function allocatedCapacity(stack: TestStack) {
  const nodes = await systemEm(stack.db.orm).find(CoreNode, {});
  return nodes.reduce(
    (a, n) => ({
      vcpu: a.vcpu + n.allocatedVcpu,
      memoryMb: a.memoryMb + n.allocatedMemoryMb,
      diskGb: a.diskGb + n.allocatedDiskGb,
    }),
    { vcpu: 0, memoryMb: 0, diskGb: 0 },
  );
}
