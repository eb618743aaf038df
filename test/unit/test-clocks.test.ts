/** Test clocks' pure rules: how far an advance may go, and the order it walks events in. */
import {
  advanceProblem,
  clockEventKey,
  nextClockStep,
  trialReminderEvents,
  type ClockEvent,
  type TimedClockEvent,
} from '../../src/domain/test-clocks';

const at = (iso: string) => new Date(iso);
const DAY = 86_400_000;

function timed(time: string, event: ClockEvent): TimedClockEvent {
  return { at: time, key: clockEventKey(event), event };
}

const renewal = (subscriptionId: string, periodStart: string) =>
  timed(periodStart, {
    kind: 'renewal',
    subscriptionId,
    tenantId: 'ten_x',
    customerId: 'cus_x',
    periodStart,
  });
const dunning = (invoiceId: string, wakeAt: string) => timed(wakeAt, { kind: 'dunning', invoiceId, wakeAt });
const reminder = (subscriptionId: string, daysBefore: number, time: string) =>
  timed(time, { kind: 'trial-reminder', subscriptionId, daysBefore });

describe('advanceProblem', () => {
  const frozen = at('2026-01-31T10:00:00Z');
  it.each([
    ['a second later', '2026-01-31T10:00:01Z', undefined],
    ['exactly 24 months later (month ends clamp)', '2028-01-31T10:00:00Z', undefined],
    ['the same time', '2026-01-31T10:00:00Z', 'later than'],
    ['earlier', '2026-01-30T10:00:00Z', 'later than'],
    ['past 24 months', '2028-01-31T10:00:00.001Z', 'at most 24 months'],
    ['not a time', 'nonsense', 'not a valid time'],
  ])('%s', (_what, target, problem) => {
    const found = advanceProblem(frozen, new Date(target));
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toContain(problem);
  });
});

describe('nextClockStep', () => {
  const frozen = at('2026-01-01T00:00:00Z');
  const target = at('2026-03-01T00:00:00Z');

  it('stops at the earliest event by the target, with every event due then, reminders before renewals before dunning', () => {
    const events = [
      dunning('inv_b', '2026-02-01T00:00:00.000Z'),
      renewal('sub_a', '2026-02-01T00:00:00.000Z'),
      renewal('sub_late', '2026-02-15T00:00:00.000Z'),
      reminder('sub_t', 3, '2026-02-01T00:00:00.000Z'),
      renewal('sub_after', '2026-03-01T00:00:00.001Z'),
    ];
    const step = nextClockStep(events, frozen, target, new Set());
    expect(step?.at).toBe('2026-02-01T00:00:00.000Z');
    expect(step?.events.map((e) => e.event.kind)).toEqual(['trial-reminder', 'renewal', 'dunning']);
  });

  it('runs an event the clock has already passed at once, at the frozen time, never earlier', () => {
    const step = nextClockStep([renewal('sub_a', '2025-12-01T00:00:00.000Z')], frozen, target, new Set());
    expect(step).toEqual({
      at: frozen.toISOString(),
      events: [renewal('sub_a', '2025-12-01T00:00:00.000Z')],
    });
  });

  it('skips events this advance has run, and answers null when nothing is left by the target', () => {
    const done = renewal('sub_a', '2026-02-01T00:00:00.000Z');
    const later = renewal('sub_a', '2026-03-01T00:00:00.000Z');
    expect(nextClockStep([done, later], frozen, target, new Set([done.key]))?.events).toEqual([later]);
    expect(nextClockStep([done, later], frozen, target, new Set([done.key, later.key]))).toBeNull();
    expect(nextClockStep([], frozen, target, new Set())).toBeNull();
  });

  it('names each event by what it is and when', () => {
    expect(renewal('sub_a', '2026-02-01T00:00:00.000Z').key).toBe('renewal:sub_a:2026-02-01T00:00:00.000Z');
    expect(dunning('inv_a', '2026-02-01T00:00:00.000Z').key).toBe('dunning:inv_a:2026-02-01T00:00:00.000Z');
    expect(reminder('sub_a', 7, '2026-02-01T00:00:00.000Z').key).toBe('trial-reminder:sub_a:7');
  });
});

describe('trialReminderEvents', () => {
  const trialStart = at('2026-01-01T00:00:00Z');
  const trialEnd = at('2026-01-15T00:00:00Z');
  const days = (events: TimedClockEvent[]) =>
    events.map((e) => (e.event.kind === 'trial-reminder' ? [e.event.daysBefore, e.at] : null));

  it('puts each reminder of a trial at its own time', () => {
    expect(
      days(
        trialReminderEvents({
          subscriptionId: 'sub_t',
          trialStart,
          trialEnd,
          frozen: trialStart,
          sentDaysBefore: [],
        }),
      ),
    ).toEqual([
      [7, new Date(trialEnd.getTime() - 7 * DAY).toISOString()],
      [3, new Date(trialEnd.getTime() - 3 * DAY).toISOString()],
      [1, new Date(trialEnd.getTime() - 1 * DAY).toISOString()],
    ]);
  });

  it('leaves out reminders sent, and those a later one made stale', () => {
    const sent = trialReminderEvents({
      subscriptionId: 'sub_t',
      trialStart,
      trialEnd,
      frozen: trialStart,
      sentDaysBefore: [7],
    });
    expect(days(sent).map((d) => d?.[0])).toEqual([3, 1]);
    // the clock stands past the 3-day reminder with none sent: the 7-day one is stale, the 3-day one due now
    const late = trialReminderEvents({
      subscriptionId: 'sub_t',
      trialStart,
      trialEnd,
      frozen: new Date(trialEnd.getTime() - 2 * DAY),
      sentDaysBefore: [],
    });
    expect(days(late).map((d) => d?.[0])).toEqual([3, 1]);
  });

  it('gives a short trial only the reminders after its start', () => {
    const short = trialReminderEvents({
      subscriptionId: 'sub_t',
      trialStart,
      trialEnd: new Date(trialStart.getTime() + 5 * DAY),
      frozen: trialStart,
      sentDaysBefore: [],
    });
    expect(days(short).map((d) => d?.[0])).toEqual([3, 1]);
  });
});
