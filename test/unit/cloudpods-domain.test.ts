/** CloudPod rules: which operation runs in which status, plan changes, quotas and resource arithmetic. */
import {
  JOB_TYPES,
  POD_STATUSES,
  ZERO,
  addResources,
  operationProblem,
  planChangeProblem,
  podHostname,
  quotaViolation,
  subtractResources,
  type JobType,
  type PodStatus,
  type QuotaLimitsForPods,
  type QuotaViolation,
  type Resources,
} from '../../src/domain/cloudpods';

type Operation = Exclude<JobType, 'PROVISION'>;

const res = (vcpu: number, memoryMb: number, diskGb: number): Resources => ({ vcpu, memoryMb, diskGb });

describe('operationProblem', () => {
  // Written out by hand rather than derived from the source: this is the contract.
  const allowedFrom: Record<Operation, PodStatus[]> = {
    CHANGE_PLAN: ['ACTIVE'],
    SUSPEND: ['ACTIVE'],
    UNSUSPEND: ['SUSPENDED'],
    // Every pod but a TERMINATED one can be deleted: a provisioning stops and rolls back, an
    // operation in progress finishes first, a dead-lettered terminate (TERMINATING) runs again.
    TERMINATE: ['PENDING', 'PROVISIONING', 'ACTIVE', 'UPDATING', 'SUSPENDED', 'TERMINATING', 'FAILED'],
    BACKUP: ['ACTIVE', 'SUSPENDED'],
    RESTORE: ['ACTIVE', 'SUSPENDED'],
  };
  const operations = JOB_TYPES.filter((t): t is Operation => t !== 'PROVISION');
  const table: [Operation, PodStatus, boolean][] = operations.flatMap((op) =>
    POD_STATUSES.map((status): [Operation, PodStatus, boolean] => [
      op,
      status,
      allowedFrom[op].includes(status),
    ]),
  );

  it('covers every operation and every status', () => {
    expect(operations).toHaveLength(6);
    expect(table).toHaveLength(6 * POD_STATUSES.length);
  });

  it.each(table)('%s on a %s pod allowed: %s', (op, status, allowed) => {
    const problem = operationProblem(op, status);
    if (allowed) {
      expect(problem).toBeUndefined();
    } else {
      expect(problem).toEqual(expect.any(String));
      expect(problem).toContain(status);
      for (const from of allowedFrom[op]) expect(problem).toContain(from);
    }
  });

  it.each<PodStatus>(['PENDING', 'PROVISIONING', 'UPDATING', 'TERMINATING'])(
    'a %s pod accepts only a terminate',
    (status) => {
      for (const op of operations)
        expect(operationProblem(op, status) === undefined).toBe(op === 'TERMINATE');
    },
  );

  it('a TERMINATED pod accepts no operation at all', () => {
    for (const op of operations) expect(operationProblem(op, 'TERMINATED')).toBeDefined();
  });
});

describe('planChangeProblem', () => {
  const current = res(2, 4096, 50);
  const table: [string, PodStatus, Resources, string | undefined][] = [
    ['valid upgrade of every dimension', 'ACTIVE', res(4, 8192, 100), undefined],
    ['disk-only upgrade', 'ACTIVE', res(2, 4096, 51), undefined],
    ['vCPU-only upgrade', 'ACTIVE', res(3, 4096, 50), undefined],
    ['memory and vCPU downgrade with the same disk', 'ACTIVE', res(1, 2048, 50), undefined],
    ['memory downgrade with a bigger disk', 'ACTIVE', res(2, 1024, 80), undefined],
    ['same limits', 'ACTIVE', res(2, 4096, 50), 'same limits'],
    ['disk shrink by one GB', 'ACTIVE', res(4, 8192, 49), 'cannot shrink'],
    ['disk shrink with nothing else changed', 'ACTIVE', res(2, 4096, 10), 'cannot shrink'],
    ['SUSPENDED pod', 'SUSPENDED', res(4, 8192, 100), 'only on ACTIVE'],
    ['UPDATING pod', 'UPDATING', res(4, 8192, 100), 'only on ACTIVE'],
    ['PENDING pod', 'PENDING', res(4, 8192, 100), 'only on ACTIVE'],
    ['FAILED pod', 'FAILED', res(4, 8192, 100), 'only on ACTIVE'],
    ['TERMINATED pod with the same plan reports the status first', 'TERMINATED', current, 'only on ACTIVE'],
    [
      'non-ACTIVE pod with a shrinking disk reports the status first',
      'SUSPENDED',
      res(2, 4096, 1),
      'only on ACTIVE',
    ],
  ];
  it.each(table)('%s', (_name, status, target, problem) => {
    const got = planChangeProblem(status, current, target);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(problem);
  });

  it.each(POD_STATUSES.filter((s) => s !== 'ACTIVE'))('refuses a %s pod', (status) => {
    expect(planChangeProblem(status, current, res(4, 8192, 100))).toContain(status);
  });
});

describe('quotaViolation', () => {
  const limits: QuotaLimitsForPods = { maxPods: 5, maxVcpu: 10, maxMemoryMb: 20480, maxDiskGb: 500 };
  const used = { pods: 2, vcpu: 4, memoryMb: 8192, diskGb: 200 };
  const pod = (vcpu: number, memoryMb: number, diskGb: number) => ({ pods: 1, vcpu, memoryMb, diskGb });

  const table: [string, typeof used, ReturnType<typeof pod>, QuotaViolation | undefined][] = [
    ['well within every quota', used, pod(2, 4096, 50), undefined],
    ['exactly at every limit', used, { pods: 3, vcpu: 6, memoryMb: 12288, diskGb: 300 }, undefined],
    [
      'one pod too many',
      { ...used, pods: 5 },
      pod(1, 1024, 10),
      { quota: 'max_pods', limit: 5, used: 5, requested: 1 },
    ],
    ['one vCPU too many', used, pod(7, 1024, 10), { quota: 'max_vcpu', limit: 10, used: 4, requested: 7 }],
    [
      'one MB of memory too many',
      used,
      pod(1, 12289, 10),
      { quota: 'max_memory_mb', limit: 20480, used: 8192, requested: 12289 },
    ],
    [
      'one GB of disk too many',
      used,
      pod(1, 1024, 301),
      { quota: 'max_disk_gb', limit: 500, used: 200, requested: 301 },
    ],
    [
      'every quota exceeded reports max_pods first',
      { pods: 5, vcpu: 10, memoryMb: 20480, diskGb: 500 },
      pod(1, 1, 1),
      { quota: 'max_pods', limit: 5, used: 5, requested: 1 },
    ],
    [
      'vCPU, memory and disk exceeded reports max_vcpu first',
      used,
      pod(100, 100000, 1000),
      { quota: 'max_vcpu', limit: 10, used: 4, requested: 100 },
    ],
    [
      'memory and disk exceeded reports max_memory_mb first',
      used,
      pod(1, 100000, 1000),
      { quota: 'max_memory_mb', limit: 20480, used: 8192, requested: 100000 },
    ],
    [
      'zero requested never violates, even when usage is already over the limits',
      { pods: 9, vcpu: 99, memoryMb: 99999, diskGb: 9999 },
      { pods: 0, vcpu: 0, memoryMb: 0, diskGb: 0 },
      undefined,
    ],
    [
      'a zero dimension is not checked against an exhausted quota',
      { pods: 2, vcpu: 10, memoryMb: 8192, diskGb: 200 },
      pod(0, 1024, 10),
      undefined,
    ],
  ];
  it.each(table)('%s', (_name, u, requested, expected) => {
    expect(quotaViolation(limits, u, requested)).toEqual(expected);
  });

  it('allows a first pod under zero usage up to the exact limits', () => {
    expect(quotaViolation(limits, { pods: 0, ...ZERO }, pod(10, 20480, 500))).toBeUndefined();
    expect(quotaViolation(limits, { pods: 0, ...ZERO }, pod(10, 20480, 501))?.quota).toBe('max_disk_gb');
  });
});

describe('resource arithmetic', () => {
  it.each<[Resources, Resources, Resources, Resources]>([
    [res(1, 1024, 10), res(2, 2048, 20), res(3, 3072, 30), res(-1, -1024, -10)],
    [res(4, 8192, 100), ZERO, res(4, 8192, 100), res(4, 8192, 100)],
    [ZERO, ZERO, ZERO, ZERO],
  ])('%o and %o', (a, b, sum, difference) => {
    expect(addResources(a, b)).toEqual(sum);
    expect(subtractResources(a, b)).toEqual(difference);
    expect(subtractResources(addResources(a, b), b)).toEqual(a);
  });

  it('returns new objects and leaves ZERO frozen', () => {
    const a = res(1, 2, 3);
    expect(addResources(a, ZERO)).not.toBe(a);
    expect(a).toEqual(res(1, 2, 3));
    expect(Object.isFrozen(ZERO)).toBe(true);
    expect(ZERO).toEqual(res(0, 0, 0));
  });
});

describe('podHostname', () => {
  it.each([
    ['web-1', 'acme', 'pods.example.net', 'web-1.acme.pods.example.net'],
    ['db', 'acme-hosting-2', 'cloud.test', 'db.acme-hosting-2.cloud.test'],
  ])('%s of %s in %s → %s', (podSlug, tenantSlug, zone, expected) => {
    expect(podHostname(podSlug, tenantSlug, zone)).toBe(expected);
  });
});
