/** Dunning schedule arithmetic: retries, suspension and termination from the tenant's policy. */
import fc from 'fast-check';
import {
  dunningPolicyInMilliseconds,
  dunningPolicyProblem,
  dunningSchedule,
  MAX_DUNNING_RETRIES,
  MS_PER_DAY,
} from '../../src/domain/billing';
import { DEFAULT_DUNNING_POLICY, type DunningPolicy } from '../../src/domain/tenants';
import { d, reasonOf } from '../helpers/billing-core';

const policy = (overrides: Partial<DunningPolicy>): DunningPolicy => ({
  ...DEFAULT_DUNNING_POLICY,
  retryOffsetsDays: [...DEFAULT_DUNNING_POLICY.retryOffsetsDays],
  ...overrides,
});

/** The schedule as ISO strings, for readable tables. */
function timeline(invoice: { dueAt: Date; failedAt: Date }, p: DunningPolicy) {
  const s = dunningSchedule(invoice, p);
  return {
    startsAt: s.startsAt.toISOString(),
    retries: s.retries.map((r) => `#${r.attempt} ${r.at.toISOString()}`),
    suspendAt: s.suspendAt?.toISOString() ?? null,
    terminateAt: s.terminateAt?.toISOString() ?? null,
  };
}

describe('dunningSchedule', () => {
  it('default policy: +1, +3, +5, +7 days, suspend after the last retry, terminate 30 days overdue', () => {
    const at = d('2028-02-27T10:00:00Z');
    expect(timeline({ dueAt: at, failedAt: at }, DEFAULT_DUNNING_POLICY)).toEqual({
      startsAt: '2028-02-27T10:00:00.000Z',
      retries: [
        '#2 2028-02-28T10:00:00.000Z',
        '#3 2028-03-01T10:00:00.000Z',
        '#4 2028-03-03T10:00:00.000Z',
        '#5 2028-03-05T10:00:00.000Z',
      ],
      suspendAt: '2028-03-05T10:00:00.000Z',
      terminateAt: '2028-03-28T10:00:00.000Z',
    });
  });

  it('runs in milliseconds for tests', () => {
    const at = d('2028-01-01T00:00:00.000Z');
    const fast = dunningPolicyInMilliseconds({ retryOffsetsMs: [10, 20, 30], terminateAfterMsOverdue: 100 });
    expect(timeline({ dueAt: at, failedAt: at }, fast)).toEqual({
      startsAt: '2028-01-01T00:00:00.000Z',
      retries: ['#2 2028-01-01T00:00:00.010Z', '#3 2028-01-01T00:00:00.020Z', '#4 2028-01-01T00:00:00.030Z'],
      suspendAt: '2028-01-01T00:00:00.030Z',
      terminateAt: '2028-01-01T00:00:00.100Z',
    });
  });

  it('accepts fractional days', () => {
    const at = d('2028-01-01T00:00:00Z');
    const s = dunningSchedule({ dueAt: at, failedAt: at }, policy({ retryOffsetsDays: [0.5, 1.25] }));
    expect(s.retries.map((r) => r.at.toISOString())).toEqual([
      '2028-01-01T12:00:00.000Z',
      '2028-01-02T06:00:00.000Z',
    ]);
  });

  it.each<[string, { dueAt: string; failedAt: string }, Partial<DunningPolicy>, ReturnType<typeof timeline>]>(
    [
      [
        'a charge that failed after the due date gets every retry; termination counts from the due date',
        { dueAt: '2028-03-01T00:00:00Z', failedAt: '2028-03-10T00:00:00Z' },
        {},
        {
          startsAt: '2028-03-10T00:00:00.000Z',
          retries: [
            '#2 2028-03-11T00:00:00.000Z',
            '#3 2028-03-13T00:00:00.000Z',
            '#4 2028-03-15T00:00:00.000Z',
            '#5 2028-03-17T00:00:00.000Z',
          ],
          suspendAt: '2028-03-17T00:00:00.000Z',
          terminateAt: '2028-03-31T00:00:00.000Z',
        },
      ],
      [
        'a failure past the termination threshold terminates at once, with no retries',
        { dueAt: '2028-03-01T00:00:00Z', failedAt: '2028-04-15T00:00:00Z' },
        {},
        {
          startsAt: '2028-04-15T00:00:00.000Z',
          retries: [],
          suspendAt: '2028-04-15T00:00:00.000Z',
          terminateAt: '2028-04-15T00:00:00.000Z',
        },
      ],
      [
        'retries that would reach the termination are dropped',
        { dueAt: '2028-03-01T00:00:00Z', failedAt: '2028-03-25T00:00:00Z' },
        {},
        {
          startsAt: '2028-03-25T00:00:00.000Z',
          retries: [
            '#2 2028-03-26T00:00:00.000Z',
            '#3 2028-03-28T00:00:00.000Z',
            '#4 2028-03-30T00:00:00.000Z',
          ],
          suspendAt: '2028-03-30T00:00:00.000Z',
          terminateAt: '2028-03-31T00:00:00.000Z',
        },
      ],
      [
        'a charge that failed before the due date waits for the due date',
        { dueAt: '2028-03-15T00:00:00Z', failedAt: '2028-03-01T00:00:00Z' },
        { retryOffsetsDays: [1, 2] },
        {
          startsAt: '2028-03-15T00:00:00.000Z',
          retries: ['#2 2028-03-16T00:00:00.000Z', '#3 2028-03-17T00:00:00.000Z'],
          suspendAt: '2028-03-17T00:00:00.000Z',
          terminateAt: '2028-04-14T00:00:00.000Z',
        },
      ],
      [
        'termination disabled',
        { dueAt: '2028-03-01T00:00:00Z', failedAt: '2028-03-01T00:00:00Z' },
        { retryOffsetsDays: [2], terminateAfterDaysOverdue: null },
        {
          startsAt: '2028-03-01T00:00:00.000Z',
          retries: ['#2 2028-03-03T00:00:00.000Z'],
          suspendAt: '2028-03-03T00:00:00.000Z',
          terminateAt: null,
        },
      ],
      [
        'no suspension',
        { dueAt: '2028-03-01T00:00:00Z', failedAt: '2028-03-01T00:00:00Z' },
        { retryOffsetsDays: [2], suspendAfterLastRetry: false },
        {
          startsAt: '2028-03-01T00:00:00.000Z',
          retries: ['#2 2028-03-03T00:00:00.000Z'],
          suspendAt: null,
          terminateAt: '2028-03-31T00:00:00.000Z',
        },
      ],
      [
        'no retries: suspend right after the failure',
        { dueAt: '2028-03-01T00:00:00Z', failedAt: '2028-03-01T00:00:00Z' },
        { retryOffsetsDays: [], terminateAfterDaysOverdue: 0 },
        {
          startsAt: '2028-03-01T00:00:00.000Z',
          retries: [],
          suspendAt: '2028-03-01T00:00:00.000Z',
          terminateAt: '2028-03-01T00:00:00.000Z',
        },
      ],
    ],
  )('%s', (_name, invoice, overrides, expected) => {
    expect(timeline({ dueAt: d(invoice.dueAt), failedAt: d(invoice.failedAt) }, policy(overrides))).toEqual(
      expected,
    );
  });

  it('refuses an unusable policy and invalid dates', () => {
    const at = d('2028-03-01T00:00:00Z');
    expect(
      reasonOf(() => dunningSchedule({ dueAt: at, failedAt: at }, policy({ retryOffsetsDays: [3, 1] }))),
    ).toBe('invalid_dunning_policy');
    expect(
      reasonOf(() => dunningSchedule({ dueAt: new Date(NaN), failedAt: at }, DEFAULT_DUNNING_POLICY)),
    ).toBe('invalid_date');
  });
});

describe('dunningPolicyProblem', () => {
  it.each<[string, Partial<DunningPolicy>, boolean]>([
    ['the default', {}, true],
    ['no retries', { retryOffsetsDays: [] }, true],
    ['no retries, immediate termination', { retryOffsetsDays: [], terminateAfterDaysOverdue: 0 }, true],
    ['termination disabled', { terminateAfterDaysOverdue: null }, true],
    ['millisecond offsets', { retryOffsetsDays: [1 / MS_PER_DAY, 2 / MS_PER_DAY] }, true],
    [
      'the maximum number of retries',
      { retryOffsetsDays: Array.from({ length: MAX_DUNNING_RETRIES }, (_, i) => i + 1) },
      true,
    ],
    [
      'too many retries',
      { retryOffsetsDays: Array.from({ length: MAX_DUNNING_RETRIES + 1 }, (_, i) => i + 1) },
      false,
    ],
    ['a repeated offset', { retryOffsetsDays: [1, 1] }, false],
    ['offsets out of order', { retryOffsetsDays: [3, 1] }, false],
    ['a zero offset', { retryOffsetsDays: [0, 1] }, false],
    ['a negative offset', { retryOffsetsDays: [-1, 1] }, false],
    ['offsets equal to the millisecond', { retryOffsetsDays: [1, 1 + 0.1 / MS_PER_DAY] }, false],
    ['a NaN offset', { retryOffsetsDays: [NaN] }, false],
    ['an offset beyond a year', { retryOffsetsDays: [366] }, false],
    ['termination before the last retry', { terminateAfterDaysOverdue: 5 }, false],
    ['termination at the last retry', { terminateAfterDaysOverdue: 7 }, false],
    ['negative termination', { retryOffsetsDays: [], terminateAfterDaysOverdue: -1 }, false],
    ['infinite termination', { terminateAfterDaysOverdue: Infinity }, false],
  ])('%s → usable: %s', (_name, overrides, usable) => {
    expect(dunningPolicyProblem(policy(overrides)) === undefined).toBe(usable);
  });
});

describe('dunning properties', () => {
  const policyArb = fc
    .record({
      gaps: fc.array(fc.integer({ min: 1, max: 5 * MS_PER_DAY }), { maxLength: MAX_DUNNING_RETRIES }),
      terminateExtra: fc.option(fc.integer({ min: 1, max: 30 * MS_PER_DAY }), { nil: null }),
      suspendAfterLastRetry: fc.boolean(),
    })
    .map(({ gaps, terminateExtra, suspendAfterLastRetry }) => {
      const offsets = gaps.reduce<number[]>((acc, gap) => [...acc, (acc.at(-1) ?? 0) + gap], []);
      return dunningPolicyInMilliseconds({
        retryOffsetsMs: offsets,
        terminateAfterMsOverdue: terminateExtra === null ? null : (offsets.at(-1) ?? 0) + terminateExtra,
        suspendAfterLastRetry,
      });
    });
  const invoiceArb = fc
    .tuple(
      fc.date({ min: d('2000-01-01T00:00:00Z'), max: d('2100-01-01T00:00:00Z'), noInvalidDate: true }),
      fc.integer({ min: -10 * MS_PER_DAY, max: 60 * MS_PER_DAY }),
    )
    .map(([dueAt, lag]) => ({ dueAt, failedAt: new Date(dueAt.getTime() + lag) }));

  it('retries are ordered, after the start and before termination; suspension lies between', () => {
    fc.assert(
      fc.property(invoiceArb, policyArb, (invoice, p) => {
        expect(dunningPolicyProblem(p)).toBeUndefined();
        const s = dunningSchedule(invoice, p);
        const start = s.startsAt.getTime();
        expect(start).toBe(Math.max(invoice.dueAt.getTime(), invoice.failedAt.getTime()));
        let previous = start;
        s.retries.forEach((retry, i) => {
          expect(retry.attempt).toBe(i + 2);
          expect(retry.at.getTime()).toBeGreaterThan(previous);
          if (s.terminateAt) expect(retry.at.getTime()).toBeLessThan(s.terminateAt.getTime());
          previous = retry.at.getTime();
        });
        if (s.terminateAt) expect(s.terminateAt.getTime()).toBeGreaterThanOrEqual(start);
        if (s.suspendAt) {
          expect(s.suspendAt.getTime()).toBe(previous);
          if (s.terminateAt) expect(s.suspendAt.getTime()).toBeLessThanOrEqual(s.terminateAt.getTime());
        }
        expect(s.suspendAt === null).toBe(!p.suspendAfterLastRetry);
        expect(s.terminateAt === null).toBe(p.terminateAfterDaysOverdue === null);
        // with no lag every retry of the policy happens
        if (invoice.failedAt.getTime() <= invoice.dueAt.getTime()) {
          expect(s.retries).toHaveLength(p.retryOffsetsDays.length);
        }
      }),
    );
  });
});
