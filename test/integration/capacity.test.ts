/**
 * Capacity reservations against real PostgreSQL: concurrent reservations never oversubscribe a
 * node, reserve/release are idempotent, DRAINING nodes take nothing new, plan changes adjust the
 * reservation in place, and the CHECK constraint is the last line of defence.
 */
import { CloudPod, CoreNode, type Customer, type Product, type Tenant } from '../../src/db/entities';
import { initOrm, systemEm, type MikroORM } from '../../src/db/orm';
import {
  NoCapacityError,
  adjustReservation,
  releaseCapacity,
  reserveCapacity,
} from '../../src/db/repositories/capacity';
import type { NodeStatus, Resources } from '../../src/domain/cloudpods';
import { seedCatalog } from '../helpers/catalog';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

interface NodeRow {
  id: string;
  name: string;
  status: NodeStatus;
  capacity_vcpu: number;
  capacity_memory_mb: number;
  capacity_disk_gb: number;
  allocated_vcpu: number;
  allocated_memory_mb: number;
  allocated_disk_gb: number;
}

interface PodRow {
  id: string;
  node_id: string | null;
  reserved_vcpu: number;
  reserved_memory_mb: number;
  reserved_disk_gb: number;
}

const res = (vcpu: number, memoryMb: number, diskGb: number): Resources => ({ vcpu, memoryMb, diskGb });
const SMALL = res(1, 1024, 10);

let db: TestDatabase;
let tenant: Tenant;
let customer: Customer;
let product: Product;
let podSeq = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  ({ tenant, customer, product } = await seedCatalog(db.orm, 'capacity', SMALL));
  // Hundreds of pods for one tenant: above the default quota the usage trigger enforces.
  await db.query(
    `insert into tenant_quotas (id, tenant_id, max_pods, max_vcpu, max_memory_mb, max_disk_gb, api_requests_per_day, created_at)
     values ('quo_capacity', $1, 100000, 100000, 100000000, 100000000, 100000, now())`,
    [tenant.id],
  );
});
afterAll(() => db.close());

// Placement considers every ONLINE node, so each test starts from an empty fleet.
beforeEach(async () => {
  await db.query('delete from cloud_pods');
  await db.query('delete from core_nodes');
});

async function addNode(name: string, capacity: Resources, status: NodeStatus = 'ONLINE'): Promise<string> {
  const em = systemEm(db.orm);
  const node = em.create(CoreNode, {
    name,
    region: 'test-1',
    status,
    capacityVcpu: capacity.vcpu,
    capacityMemoryMb: capacity.memoryMb,
    capacityDiskGb: capacity.diskGb,
  });
  await em.flush();
  return node.id;
}

async function addPods(count: number, size: Resources = SMALL): Promise<string[]> {
  const em = systemEm(db.orm);
  const pods = Array.from({ length: count }, () => {
    const slug = `pod-${++podSeq}`;
    return em.create(CloudPod, {
      tenant,
      customer,
      product,
      slug,
      hostname: `${slug}.capacity.pods.test`,
      vcpu: size.vcpu,
      memoryMb: size.memoryMb,
      diskGb: size.diskGb,
      workflowId: `cloudpod-${slug}`,
    });
  });
  await em.flush();
  return pods.map((p) => p.id);
}

async function addPod(size: Resources = SMALL): Promise<string> {
  const [id] = await addPods(1, size);
  if (!id) throw new Error('no pod inserted');
  return id;
}

const nodeRows = () => db.query<NodeRow>('select * from core_nodes order by name');

async function nodeRow(id: string): Promise<NodeRow> {
  const [row] = await db.query<NodeRow>('select * from core_nodes where id = $1', [id]);
  if (!row) throw new Error(`node ${id} is gone`);
  return row;
}

async function podRow(id: string): Promise<PodRow> {
  const [row] = await db.query<PodRow>(
    'select id, node_id, reserved_vcpu, reserved_memory_mb, reserved_disk_gb from cloud_pods where id = $1',
    [id],
  );
  if (!row) throw new Error(`pod ${id} is gone`);
  return row;
}

const allocated = (n: NodeRow): Resources =>
  res(n.allocated_vcpu, n.allocated_memory_mb, n.allocated_disk_gb);
const reserved = (p: PodRow): Resources => res(p.reserved_vcpu, p.reserved_memory_mb, p.reserved_disk_gb);

/** Every node within capacity, and its allocation exactly the sum of its pods' reservations. */
async function expectConsistentLedger(): Promise<void> {
  const sums = await db.query<{ node_id: string; vcpu: number; memory_mb: number; disk_gb: number }>(
    `select node_id, sum(reserved_vcpu)::int as vcpu, sum(reserved_memory_mb)::int as memory_mb,
            sum(reserved_disk_gb)::int as disk_gb
       from cloud_pods where node_id is not null group by node_id`,
  );
  const byNode = new Map(sums.map((s) => [s.node_id, res(s.vcpu, s.memory_mb, s.disk_gb)]));
  for (const n of await nodeRows()) {
    expect(n.allocated_vcpu).toBeGreaterThanOrEqual(0);
    expect(n.allocated_memory_mb).toBeGreaterThanOrEqual(0);
    expect(n.allocated_disk_gb).toBeGreaterThanOrEqual(0);
    expect(n.allocated_vcpu).toBeLessThanOrEqual(n.capacity_vcpu);
    expect(n.allocated_memory_mb).toBeLessThanOrEqual(n.capacity_memory_mb);
    expect(n.allocated_disk_gb).toBeLessThanOrEqual(n.capacity_disk_gb);
    expect({ node: n.name, ...allocated(n) }).toEqual({
      node: n.name,
      ...(byNode.get(n.id) ?? res(0, 0, 0)),
    });
  }
  const [unplaced] = await db.query<{ count: number }>(
    `select count(*)::int as count from cloud_pods
      where node_id is null and (reserved_vcpu <> 0 or reserved_memory_mb <> 0 or reserved_disk_gb <> 0)`,
  );
  expect(unplaced?.count).toBe(0);
}

describe('concurrent reservations', () => {
  // createTestDatabase's ORM has 5 connections; this needs real parallelism.
  let orm: MikroORM;
  beforeAll(async () => {
    orm = await initOrm({ databaseUrl: db.url, poolMax: 20 });
  });
  afterAll(() => orm.close());

  it('200 at once on nodes that hold 150 place exactly 150 and never oversubscribe', async () => {
    // Each node runs out in a different dimension: 70 by vCPU, 50 by memory, 30 by disk.
    const nodeIds = new Set([
      await addNode('node-cpu-bound', res(70, 100 * 1024, 1000)),
      await addNode('node-memory-bound', res(100, 50 * 1024, 1000)),
      await addNode('node-disk-bound', res(100, 100 * 1024, 300)),
    ]);
    const podIds = await addPods(200);

    const outcomes = await Promise.allSettled(podIds.map((id) => reserveCapacity(systemEm(orm), id)));

    const placed = new Map<string, string>();
    const refused: unknown[] = [];
    outcomes.forEach((o, i) => {
      if (o.status === 'fulfilled') placed.set(podIds[i] as string, o.value.nodeId);
      else refused.push(o.reason);
    });
    expect(placed.size).toBe(150);
    expect(refused).toHaveLength(50);
    for (const reason of refused) expect(reason).toBeInstanceOf(NoCapacityError);

    const rows = await nodeRows();
    expect(rows.map((n) => [n.name, n.allocated_vcpu, n.allocated_memory_mb, n.allocated_disk_gb])).toEqual([
      ['node-cpu-bound', 70, 70 * 1024, 700],
      ['node-disk-bound', 30, 30 * 1024, 300],
      ['node-memory-bound', 50, 50 * 1024, 500],
    ]);
    await expectConsistentLedger();

    const pods = await db.query<PodRow>('select * from cloud_pods');
    for (const pod of pods) {
      const nodeId = placed.get(pod.id);
      if (nodeId === undefined) {
        expect(pod.node_id).toBeNull();
        expect(reserved(pod)).toEqual(res(0, 0, 0));
      } else {
        expect(nodeIds.has(nodeId)).toBe(true);
        expect(pod.node_id).toBe(nodeId);
        expect(reserved(pod)).toEqual(SMALL);
      }
    }

    // Releasing everything at once (placed or not) returns every node to empty.
    const released = await Promise.all(podIds.map((id) => releaseCapacity(systemEm(orm), id)));
    expect(released.filter(Boolean)).toHaveLength(150);
    for (const n of await nodeRows()) expect(allocated(n)).toEqual(res(0, 0, 0));
    await expectConsistentLedger();
  });

  it('reserves a pod once when the same reservation runs concurrently (an activity retried mid-flight)', async () => {
    const nodeId = await addNode('node-1', res(64, 64 * 1024, 1000));
    const podId = await addPod();

    const results = await Promise.all(
      Array.from({ length: 10 }, () => reserveCapacity(systemEm(orm), podId)),
    );

    expect(new Set(results.map((r) => r.nodeId))).toEqual(new Set([nodeId]));
    expect(allocated(await nodeRow(nodeId))).toEqual(SMALL);
    expect(reserved(await podRow(podId))).toEqual(SMALL);
    await expectConsistentLedger();
  });

  it('releases a pod once when the same release runs concurrently', async () => {
    const nodeId = await addNode('node-1', res(64, 64 * 1024, 1000));
    const [podId, otherId] = (await addPods(2)) as [string, string];
    await reserveCapacity(systemEm(orm), podId);
    await reserveCapacity(systemEm(orm), otherId);

    const results = await Promise.all(
      Array.from({ length: 10 }, () => releaseCapacity(systemEm(orm), podId)),
    );

    expect(results.filter(Boolean)).toHaveLength(1);
    expect(allocated(await nodeRow(nodeId))).toEqual(SMALL);
    await expectConsistentLedger();
  });
});

describe('reserveCapacity and releaseCapacity', () => {
  it('are idempotent: a second reserve returns the same node and a second release does nothing', async () => {
    const nodeId = await addNode('node-1', res(8, 16384, 200));
    const podId = await addPod();

    const first = await reserveCapacity(systemEm(db.orm), podId);
    const second = await reserveCapacity(systemEm(db.orm), podId);
    expect(first).toEqual({ nodeId, nodeName: 'node-1' });
    expect(second).toEqual(first);
    expect(allocated(await nodeRow(nodeId))).toEqual(SMALL);
    expect(await podRow(podId)).toMatchObject({ node_id: nodeId });
    expect(reserved(await podRow(podId))).toEqual(SMALL);

    expect(await releaseCapacity(systemEm(db.orm), podId)).toBe(true);
    expect(await releaseCapacity(systemEm(db.orm), podId)).toBe(false);
    expect(allocated(await nodeRow(nodeId))).toEqual(res(0, 0, 0));
    expect(await podRow(podId)).toEqual({
      id: podId,
      node_id: null,
      reserved_vcpu: 0,
      reserved_memory_mb: 0,
      reserved_disk_gb: 0,
    });
  });

  it('release of a pod that was never placed returns false and touches no node', async () => {
    const nodeId = await addNode('node-1', res(8, 16384, 200));
    const placedId = await addPod();
    await reserveCapacity(systemEm(db.orm), placedId);
    const neverPlaced = await addPod();

    expect(await releaseCapacity(systemEm(db.orm), neverPlaced)).toBe(false);
    expect(allocated(await nodeRow(nodeId))).toEqual(SMALL);
  });

  it('places on the tightest ONLINE node that fits', async () => {
    await addNode('node-roomy', res(32, 65536, 1000));
    const tight = await addNode('node-tight', res(2, 2048, 20));
    const podId = await addPod();

    expect((await reserveCapacity(systemEm(db.orm), podId)).nodeId).toBe(tight);
  });

  it('records what it reserved, so a later plan change on the pod row cannot skew the release', async () => {
    const nodeId = await addNode('node-1', res(8, 16384, 200));
    const podId = await addPod(res(2, 2048, 20));
    await reserveCapacity(systemEm(db.orm), podId);
    await db.query('update cloud_pods set vcpu = 4, memory_mb = 4096, disk_gb = 40 where id = $1', [podId]);

    await releaseCapacity(systemEm(db.orm), podId);
    expect(allocated(await nodeRow(nodeId))).toEqual(res(0, 0, 0));
  });

  it('fails for a pod that does not exist, without NoCapacityError', async () => {
    await addNode('node-1', res(8, 16384, 200));
    const outcome = reserveCapacity(systemEm(db.orm), 'pod_doesnotexist');
    await expect(outcome).rejects.toBeInstanceOf(Error);
    await expect(outcome).rejects.not.toBeInstanceOf(NoCapacityError);
  });
});

describe('node status', () => {
  it('a DRAINING node receives no new reservation even when it is the tightest fit', async () => {
    const draining = await addNode('node-draining', res(2, 2048, 20), 'DRAINING');
    const online = await addNode('node-online', res(32, 65536, 1000));
    const podId = await addPod();

    expect((await reserveCapacity(systemEm(db.orm), podId)).nodeId).toBe(online);
    expect(allocated(await nodeRow(draining))).toEqual(res(0, 0, 0));
  });

  it.each<NodeStatus>(['DRAINING', 'OFFLINE'])(
    'with only a %s node left, reservation fails',
    async (status) => {
      const nodeId = await addNode('node-1', res(32, 65536, 1000), status);
      const podId = await addPod();

      await expect(reserveCapacity(systemEm(db.orm), podId)).rejects.toBeInstanceOf(NoCapacityError);
      expect(allocated(await nodeRow(nodeId))).toEqual(res(0, 0, 0));
      expect((await podRow(podId)).node_id).toBeNull();
    },
  );

  it('a node drained after placement keeps its existing reservation and releases it', async () => {
    const nodeId = await addNode('node-1', res(8, 16384, 200));
    const podId = await addPod();
    await reserveCapacity(systemEm(db.orm), podId);
    await db.query("update core_nodes set status = 'DRAINING' where id = $1", [nodeId]);

    expect((await reserveCapacity(systemEm(db.orm), podId)).nodeId).toBe(nodeId);
    expect(await releaseCapacity(systemEm(db.orm), podId)).toBe(true);
    expect(allocated(await nodeRow(nodeId))).toEqual(res(0, 0, 0));
  });
});

describe('adjustReservation', () => {
  async function placedPod(capacity: Resources, size: Resources) {
    const nodeId = await addNode('node-1', capacity);
    const podId = await addPod(size);
    await reserveCapacity(systemEm(db.orm), podId);
    return { nodeId, podId };
  }

  it('grows within capacity, up to exactly the node size', async () => {
    const { nodeId, podId } = await placedPod(res(4, 8192, 100), res(1, 1024, 10));

    await adjustReservation(systemEm(db.orm), podId, res(2, 4096, 50));
    expect(allocated(await nodeRow(nodeId))).toEqual(res(2, 4096, 50));
    expect(reserved(await podRow(podId))).toEqual(res(2, 4096, 50));

    await adjustReservation(systemEm(db.orm), podId, res(4, 8192, 100));
    expect(allocated(await nodeRow(nodeId))).toEqual(res(4, 8192, 100));
    expect(reserved(await podRow(podId))).toEqual(res(4, 8192, 100));
    await expectConsistentLedger();
  });

  it.each<[string, Resources]>([
    ['vCPU', res(5, 1024, 10)],
    ['memory', res(1, 8193, 10)],
    ['disk', res(1, 1024, 101)],
  ])('throws NoCapacityError and changes nothing when the node lacks %s', async (_dim, to) => {
    const { nodeId, podId } = await placedPod(res(4, 8192, 100), res(1, 1024, 10));
    const nodeBefore = await nodeRow(nodeId);
    const podBefore = await podRow(podId);

    await expect(adjustReservation(systemEm(db.orm), podId, to)).rejects.toBeInstanceOf(NoCapacityError);
    expect(await nodeRow(nodeId)).toEqual(nodeBefore);
    expect(await podRow(podId)).toEqual(podBefore);
  });

  it('counts the other pods on the node when growing', async () => {
    const { nodeId, podId } = await placedPod(res(4, 8192, 100), res(2, 2048, 20));
    const neighbour = await addPod(res(2, 2048, 20));
    await reserveCapacity(systemEm(db.orm), neighbour);

    await expect(adjustReservation(systemEm(db.orm), podId, res(3, 2048, 20))).rejects.toBeInstanceOf(
      NoCapacityError,
    );
    expect(allocated(await nodeRow(nodeId))).toEqual(res(4, 4096, 40));
    expect(reserved(await podRow(podId))).toEqual(res(2, 2048, 20));
    await expectConsistentLedger();
  });

  it('shrinks and frees the difference', async () => {
    const { nodeId, podId } = await placedPod(res(8, 16384, 200), res(4, 8192, 100));

    await adjustReservation(systemEm(db.orm), podId, res(1, 2048, 100));
    expect(allocated(await nodeRow(nodeId))).toEqual(res(1, 2048, 100));
    expect(reserved(await podRow(podId))).toEqual(res(1, 2048, 100));

    // A release afterwards gives back exactly the adjusted reservation.
    expect(await releaseCapacity(systemEm(db.orm), podId)).toBe(true);
    expect(allocated(await nodeRow(nodeId))).toEqual(res(0, 0, 0));
  });

  it('is a no-op when the reservation already matches', async () => {
    const { nodeId, podId } = await placedPod(res(8, 16384, 200), res(2, 2048, 20));
    const before = await nodeRow(nodeId);
    await adjustReservation(systemEm(db.orm), podId, res(2, 2048, 20));
    expect(await nodeRow(nodeId)).toEqual(before);
  });

  it('refuses a pod without a reservation, without NoCapacityError', async () => {
    await addNode('node-1', res(8, 16384, 200));
    const podId = await addPod();
    const outcome = adjustReservation(systemEm(db.orm), podId, res(2, 2048, 20));
    await expect(outcome).rejects.toBeInstanceOf(Error);
    await expect(outcome).rejects.not.toBeInstanceOf(NoCapacityError);
  });
});

describe('core_nodes_allocation_check', () => {
  it.each<[string, string]>([
    ['vCPU above capacity', 'allocated_vcpu = capacity_vcpu + 1'],
    ['memory above capacity', 'allocated_memory_mb = capacity_memory_mb + 1'],
    ['disk above capacity', 'allocated_disk_gb = capacity_disk_gb + 1'],
    ['negative allocation', 'allocated_vcpu = -1'],
  ])('refuses an UPDATE that sets %s', async (_name, assignment) => {
    const nodeId = await addNode('node-1', res(4, 8192, 100));
    const before = await nodeRow(nodeId);

    await expect(
      db.query(`update core_nodes set ${assignment} where id = $1`, [nodeId]),
    ).rejects.toMatchObject({
      code: '23514',
      constraint: 'core_nodes_allocation_check',
    });
    expect(await nodeRow(nodeId)).toEqual(before);
  });

  it('allows an allocation of exactly the capacity', async () => {
    const nodeId = await addNode('node-1', res(4, 8192, 100));
    await db.query(
      `update core_nodes set allocated_vcpu = capacity_vcpu, allocated_memory_mb = capacity_memory_mb,
         allocated_disk_gb = capacity_disk_gb where id = $1`,
      [nodeId],
    );
    expect(allocated(await nodeRow(nodeId))).toEqual(res(4, 8192, 100));
  });
});
