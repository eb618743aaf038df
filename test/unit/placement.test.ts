/** Pure best-fit placement: per-dimension fit, ONLINE-only candidates, tightest fit first, ties by id. */
import type { NodeStatus, Resources } from '../../src/domain/cloudpods';
import { fits, leftoverScore, pickNode, rankNodes, type NodeCapacity } from '../../src/domain/placement';

const res = (vcpu: number, memoryMb: number, diskGb: number): Resources => ({ vcpu, memoryMb, diskGb });

function node(
  id: string,
  capacity: Resources,
  allocated: Resources = res(0, 0, 0),
  status: NodeStatus = 'ONLINE',
): NodeCapacity {
  return { id, status, capacity, allocated };
}

const CAP = res(8, 16384, 200);
const SMALL = res(1, 1024, 10);

describe('fits', () => {
  const table: [string, Resources, Resources, boolean][] = [
    ['empty node, small request', res(0, 0, 0), SMALL, true],
    ['request equal to the whole capacity', res(0, 0, 0), CAP, true],
    ['allocated + request exactly at capacity in every dimension', res(7, 15360, 190), SMALL, true],
    ['vCPU one over', res(8, 0, 0), res(1, 0, 0), false],
    ['vCPU exactly at capacity', res(7, 0, 0), res(1, 0, 0), true],
    ['memory one MB over', res(0, 16384, 0), res(0, 1, 0), false],
    ['memory exactly at capacity', res(0, 16000, 0), res(0, 384, 0), true],
    ['disk one GB over', res(0, 0, 200), res(0, 0, 1), false],
    ['disk exactly at capacity', res(0, 0, 150), res(0, 0, 50), true],
    ['only vCPU lacks room', res(8, 0, 0), SMALL, false],
    ['only memory lacks room', res(0, 16000, 0), SMALL, false],
    ['only disk lacks room', res(0, 0, 195), SMALL, false],
    ['request larger than the node in one dimension', res(0, 0, 0), res(9, 1024, 10), false],
    ['zero request on a full node', CAP, res(0, 0, 0), true],
  ];
  it.each(table)('%s → %s', (_name, allocated, req, expected) => {
    expect(fits(node('n', CAP, allocated), req)).toBe(expected);
  });

  it('does not depend on the node status (ranking filters status)', () => {
    expect(fits(node('n', CAP, res(0, 0, 0), 'OFFLINE'), SMALL)).toBe(true);
  });
});

describe('fits on a zero-capacity node', () => {
  const zero = node('zero', res(0, 0, 0));
  it.each([
    [res(0, 0, 0), true],
    [res(1, 0, 0), false],
    [res(0, 1, 0), false],
    [res(0, 0, 1), false],
  ])('%o → %s', (req, expected) => expect(fits(zero, req)).toBe(expected));
});

describe('leftoverScore', () => {
  it.each([
    ['empty node, zero request', res(0, 0, 0), res(0, 0, 0), 3],
    ['exact fit leaves nothing', res(0, 0, 0), CAP, 0],
    ['half used after placement', res(2, 4096, 50), res(2, 4096, 50), 1.5],
    ['already full, zero request', CAP, res(0, 0, 0), 0],
  ])('%s → %d', (_name, allocated, req, expected) => {
    expect(leftoverScore(node('n', CAP, allocated), req)).toBeCloseTo(expected, 10);
  });

  it('scores a zero-capacity dimension as no leftover instead of dividing by zero', () => {
    const n = node('n', res(0, 1000, 100), res(0, 500, 0));
    expect(leftoverScore(n, res(0, 0, 50))).toBeCloseTo(0 + 0.5 + 0.5, 10);
    expect(Number.isFinite(leftoverScore(node('z', res(0, 0, 0)), res(0, 0, 0)))).toBe(true);
    expect(leftoverScore(node('z', res(0, 0, 0)), res(0, 0, 0))).toBe(0);
  });
});

describe('rankNodes', () => {
  const ids = (nodes: NodeCapacity[]) => nodes.map((n) => n.id);

  it.each<[NodeStatus, boolean]>([
    ['ONLINE', true],
    ['DRAINING', false],
    ['OFFLINE', false],
  ])('a %s node with room is a candidate: %s', (status, candidate) => {
    const ranked = rankNodes([node('n', CAP, res(0, 0, 0), status)], SMALL);
    expect(ids(ranked)).toEqual(candidate ? ['n'] : []);
  });

  it('drops non-ONLINE nodes even when they would be the tightest fit', () => {
    const nodes = [
      node('draining-tight', CAP, res(7, 15360, 190), 'DRAINING'),
      node('offline-tight', CAP, res(7, 15360, 190), 'OFFLINE'),
      node('online-loose', CAP),
    ];
    expect(ids(rankNodes(nodes, SMALL))).toEqual(['online-loose']);
  });

  it('drops ONLINE nodes without room', () => {
    const nodes = [
      node('full-cpu', CAP, res(8, 0, 0)),
      node('full-disk', CAP, res(0, 0, 200)),
      node('ok', CAP),
    ];
    expect(ids(rankNodes(nodes, SMALL))).toEqual(['ok']);
  });

  it('orders by the least capacity left after placement (best fit first)', () => {
    const nodes = [
      node('empty', CAP),
      node('three-quarters', CAP, res(6, 12288, 150)),
      node('half', CAP, res(4, 8192, 100)),
      node('exact', CAP, res(7, 15360, 190)),
    ];
    expect(ids(rankNodes(nodes, SMALL))).toEqual(['exact', 'three-quarters', 'half', 'empty']);
  });

  it('compares free capacity as a fraction, so a small full-ish node beats a big empty-ish one', () => {
    const nodes = [
      node('big', res(64, 262144, 4000), res(8, 16384, 200)),
      node('small', CAP, res(4, 8192, 100)),
    ];
    expect(ids(rankNodes(nodes, SMALL))).toEqual(['small', 'big']);
  });

  it('breaks ties by id regardless of input order', () => {
    const make = (id: string) => node(id, CAP, res(2, 2048, 20));
    const forward = [make('node-a'), make('node-b'), make('node-c')];
    const backward = [...forward].reverse();
    const shuffled = [forward[1], forward[2], forward[0]] as NodeCapacity[];
    for (const input of [forward, backward, shuffled]) {
      expect(ids(rankNodes(input, SMALL))).toEqual(['node-a', 'node-b', 'node-c']);
    }
  });

  it('applies the id tie-break only among equal scores', () => {
    const nodes = [
      node('a-loose', CAP),
      node('z-tight', CAP, res(6, 12288, 150)),
      node('b-tight', CAP, res(6, 12288, 150)),
    ];
    expect(ids(rankNodes(nodes, SMALL))).toEqual(['b-tight', 'z-tight', 'a-loose']);
  });

  it('does not mutate its input', () => {
    const nodes = [node('b', CAP), node('a', CAP, res(4, 8192, 100))];
    const before = structuredClone(nodes);
    rankNodes(nodes, SMALL);
    expect(nodes).toEqual(before);
  });

  it('places a zero request on zero-capacity and full nodes', () => {
    const nodes = [node('zero', res(0, 0, 0)), node('full', CAP, CAP), node('empty', CAP)];
    expect(ids(rankNodes(nodes, res(0, 0, 0)))).toEqual(['full', 'zero', 'empty']);
  });

  it('never offers a zero-capacity node for a non-zero request', () => {
    expect(rankNodes([node('zero', res(0, 0, 0))], SMALL)).toEqual([]);
  });

  it('returns nothing for no nodes', () => {
    expect(rankNodes([], SMALL)).toEqual([]);
  });
});

describe('pickNode', () => {
  it('picks the best-fitting ONLINE node', () => {
    const nodes = [
      node('empty', CAP),
      node('draining', CAP, res(7, 15360, 190), 'DRAINING'),
      node('tight', CAP, res(6, 14336, 180)),
    ];
    expect(pickNode(nodes, SMALL)?.id).toBe('tight');
  });

  it.each<[string, NodeCapacity[], Resources]>([
    ['no nodes', [], SMALL],
    ['only full nodes', [node('a', CAP, CAP), node('b', CAP, res(8, 0, 0))], SMALL],
    [
      'only non-ONLINE nodes',
      [node('a', CAP, res(0, 0, 0), 'DRAINING'), node('b', CAP, res(0, 0, 0), 'OFFLINE')],
      SMALL,
    ],
    ['a request bigger than any node', [node('a', CAP), node('b', CAP)], res(9, 1024, 10)],
  ])('is undefined with %s', (_name, nodes, req) => {
    expect(pickNode(nodes, req)).toBeUndefined();
  });
});
