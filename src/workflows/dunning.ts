/**
 * `dunning` — `dunning-<invoiceId>`: collects an invoice whose charge failed, on the tenant's dunning
 * policy as copied onto the invoice when dunning begins.
 *
 *   DUNNING ──retry fails──▶ DUNNING (an email each time; a hard decline: reminders, no charges)
 *      │ after the last retry (locked re-read)
 *      ▼
 *   SUSPENDED (subscription SUSPENDED, pod suspended by its workflow)
 *      │ at the termination threshold (locked re-read)
 *      ▼
 *   CANCELED (subscription CANCELED, pod terminated with its pre-termination backup)
 *
 * From any state a payment — a retry that succeeds, or the `paymentSucceeded` signal of another
 * path — ends it as PAID: the subscription ACTIVE again, the pod unsuspended if dunning suspended
 * it. A voided invoice ends it as VOID the same way; a subscription canceled elsewhere as CANCELED.
 *
 * Every wait is `condition(() => paid || stop, until)` towards an absolute time computed once at
 * the start; the timeline and the position in it are carried through `continueAsNew`, so a rollover
 * never moves a date. Signals are only hints: what happens next is decided by re-reading the
 * invoice, and every destructive step re-reads it under a row lock.
 *
 * A sandbox customer on a test clock (behind `patched('test-clocks')`): the timeline is in the
 * clock's time and no timer runs; each `clockAdvanced` update moves the run's notion of now, the
 * waits that came due end, and the update answers once the run waits again, so the clock's advance
 * knows the step is done. A deleted clock detaches the run back onto timers.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DunningActivities } from '../activities/dunning';
import { paymentSucceededSignal } from './messages/billing';
import {
  TEST_CLOCKS_PATCH,
  clockAdvancedUpdate,
  dunningStateQuery,
  stopDunningSignal,
  testClockDetachedSignal,
  type DunningCarry,
  type DunningClock,
  type DunningRunInput,
  type DunningState,
  type DunningStatus,
  type DunningTimeline,
} from './messages/dunning';
import { SEARCH_ATTRIBUTES } from './shared';

/**
 * Every step is repeatable and must eventually happen — a dunning that gave up half-way would leave
 * a subscription suspended that was paid, or running that was not — so steps retry without a limit,
 * backing off to once a minute; a step that keeps failing shows in the UI as a pending activity with
 * its last error. Business refusals are non-retryable and fail the workflow visibly.
 */
const acts = proxyActivities<DunningActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

type Ending = Exclude<DunningStatus, 'DUNNING' | 'SUSPENDED'>;

/** How a wait ended: its time came, a signal asked to look again, or the history should roll over. */
type Wake = 'due' | 'signal' | 'rollover';

/** The run's state and the messages that change it; the workflow function is the loop around it. */
class Dunning {
  readonly state: DunningState;
  carry: DunningCarry | null;
  /** Signals that arrived while the first step ran, before there was a carry to hold them. */
  earlyPaid = false;
  earlyStop = false;
  /** Runs recorded before test clocks existed never look at a clock (their histories replay as they were). */
  readonly clockAware = patched(TEST_CLOCKS_PATCH);
  /** The run is ending or rolling over: update handlers answer now rather than wait for the next wait. */
  closing = false;

  constructor(readonly input: DunningRunInput) {
    this.carry = input.carried ?? null;
    const clock = this.clockAware ? (this.carry?.clock ?? null) : null;
    this.state = {
      invoiceId: input.invoiceId,
      subscriptionId: input.subscriptionId,
      invoiceNumber: this.carry?.invoiceNumber ?? null,
      status: this.carry?.suspended ? 'SUSPENDED' : 'DUNNING',
      timeline: this.carry?.timeline ?? null,
      nextRetry: null,
      suspended: this.carry?.suspended ?? false,
      remindersOnly: this.carry?.remindersOnly ?? false,
      lastOutcome: null,
      wakeAt: null,
      waiting: false,
      testClockId: clock?.testClockId ?? null,
      clockNow: clock?.now ?? null,
    };
  }

  /** The customer's test clock, or null on the wall clock (always null before the patch). */
  get clock(): DunningClock | null {
    return this.carry?.clock ?? null;
  }

  /** The run waits for something its clock has not reached: a clock update may answer. */
  settled(): boolean {
    if (this.closing) return true;
    if (!this.state.waiting) return false;
    const { clock } = this;
    const at = this.state.wakeAt;
    return !clock || at === null || Date.parse(clock.now) < Date.parse(at);
  }

  /** Where the run is on its timeline: what continueAsNew carries. */
  get progress(): DunningCarry {
    if (!this.carry) throw new Error('dunning has not begun');
    return this.carry;
  }

  /** Hints: set by signals, cleared once the invoice has been re-read. */
  wakeRequested(): boolean {
    return this.progress.paid || this.progress.stopRequested;
  }

  register(): void {
    setHandler(dunningStateQuery, () => this.state);
    setHandler(paymentSucceededSignal, () => {
      if (this.carry) this.carry.paid = true;
      else this.earlyPaid = true;
    });
    setHandler(stopDunningSignal, () => {
      if (this.carry) this.carry.stopRequested = true;
      else this.earlyStop = true;
    });
    setHandler(
      clockAdvancedUpdate,
      async ({ now }) => {
        const { clock } = this;
        if (clock && Date.parse(now) > Date.parse(clock.now)) {
          clock.now = now;
          this.state.clockNow = now;
        }
        await condition(() => this.settled());
        return this.state;
      },
      {
        validator: ({ now }: { now: string }) => {
          if (!this.clock) throw new Error('this dunning does not run on a test clock');
          if (Number.isNaN(Date.parse(now))) throw new Error(`not a time: ${now}`);
        },
      },
    );
    setHandler(testClockDetachedSignal, () => {
      if (this.carry) this.carry.clock = null;
      this.state.testClockId = null;
      this.state.clockNow = null;
    });
  }

  begin(invoiceNumber: string, timeline: DunningTimeline, clock: DunningClock | null): void {
    this.carry = {
      invoiceNumber,
      timeline,
      next: 0,
      suspended: false,
      remindersOnly: false,
      paid: this.earlyPaid,
      stopRequested: this.earlyStop,
      ...(this.clockAware ? { clock } : {}),
    };
    this.state.invoiceNumber = invoiceNumber;
    this.state.timeline = timeline;
    this.state.testClockId = this.clock?.testClockId ?? null;
    this.state.clockNow = this.clock?.now ?? null;
  }

  setStatus(status: DunningStatus): void {
    this.state.status = status;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.PodplaneStatus, value: status }]);
  }

  /**
   * Waits until `at` (ISO; null: no end) unless a signal or a rollover comes first: on a timer, or
   * on a test clock until an update brings the clock to `at` (or the clock is detached).
   */
  async waitUntil(at: string | null): Promise<Wake> {
    const wake = () => this.wakeRequested() || workflowInfo().continueAsNewSuggested;
    this.state.wakeAt = at;
    try {
      for (;;) {
        const { clock } = this;
        if (!clock) break;
        const reached = () => at !== null && Date.parse(clock.now) >= Date.parse(at);
        if (reached() && !wake()) return 'due';
        this.state.waiting = true;
        await condition(() => wake() || reached() || this.clock !== clock);
        this.state.waiting = false;
        if (wake()) return this.wakeRequested() ? 'signal' : 'rollover';
        if (this.clock === clock) return 'due';
      }
      this.state.waiting = true;
      if (at === null) await condition(wake);
      else {
        const ms = Date.parse(at) - Date.now();
        const woken = ms > 0 ? await condition(wake, ms) : wake();
        if (!woken) return 'due';
      }
      return this.wakeRequested() ? 'signal' : 'rollover';
    } finally {
      this.state.waiting = false;
    }
  }

  /** A rollover: a fresh history with the same timeline and position. */
  async rollOver(): Promise<never> {
    this.closing = true;
    await condition(allHandlersFinished);
    return continueAsNew<typeof dunning>({ ...this.input, carried: this.progress });
  }
}

/** `2026-11-24T10:00:00.000Z` → `2026-11-24 10:00:00 UTC`, for the details shown in the UI. */
const when = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;

/** Collects one unpaid invoice on its copied policy (states in the module comment). */
export async function dunning(input: DunningRunInput): Promise<DunningState> {
  const run = new Dunning(input);
  run.register();
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.TenantId, value: input.tenantId },
    { key: SEARCH_ATTRIBUTES.CustomerId, value: input.customerId },
    { key: SEARCH_ATTRIBUTES.InvoiceId, value: input.invoiceId },
    ...(input.subscriptionId ? [{ key: SEARCH_ATTRIBUTES.SubscriptionId, value: input.subscriptionId }] : []),
    { key: SEARCH_ATTRIBUTES.PodplaneStatus, value: run.state.status },
  ]);

  if (!run.carry) {
    setCurrentDetails(`Copying the dunning policy onto invoice ${input.invoiceId}`);
    const begun = await acts.beginDunning(input.invoiceId, input.failedAt);
    run.begin(begun.invoiceNumber, begun.timeline, begun.clock ?? null);
    if (begun.standing !== 'OPEN') return finish(run, begun.standing);
    const first = begun.timeline.retries[0]?.at ?? null;
    await acts.notifyDunning(input.invoiceId, 1, 'FAILED', first);
  }

  const ending = (await retry(run)) ?? (await suspend(run)) ?? (await awaitTermination(run));
  return finish(run, ending);
}

/**
 * The retries, each at its time: re-read and charge (retryDunningCharge), then tell the customer.
 * Returns how dunning ended, or null when the retries ran out with the invoice still unpaid.
 */
async function retry(run: Dunning): Promise<Ending | null> {
  const { retries } = run.progress.timeline;
  while (run.progress.next < retries.length) {
    const due = retries[run.progress.next];
    if (!due) break;
    run.state.nextRetry = due;
    const charging = run.progress.remindersOnly ? 'reminder' : 'retry';
    setCurrentDetails(
      `Invoice ${run.progress.invoiceNumber}: ${charging} ${run.progress.next + 1} of ${retries.length} (attempt ${due.attempt}) at ${when(due.at)}` +
        (run.progress.timeline.suspendAt ? `; suspension at ${when(run.progress.timeline.suspendAt)}` : ''),
    );
    const wake = await run.waitUntil(due.at);
    if (wake === 'rollover') return run.rollOver();
    if (wake === 'signal') {
      const ended = await lookAgain(run);
      if (ended) return ended;
      continue;
    }
    const outcome = await acts.retryDunningCharge(run.input.invoiceId, due.attempt);
    run.state.lastOutcome = outcome;
    run.progress.next += 1;
    const nextAt = retries[run.progress.next]?.at ?? null;
    switch (outcome) {
      case 'PAID':
      case 'VOID':
      case 'CANCELED':
        return outcome;
      case 'FAILED':
      case 'REQUIRES_ACTION':
        await acts.notifyDunning(run.input.invoiceId, due.attempt, outcome, nextAt);
        break;
      case 'HARD_DECLINED':
        run.progress.remindersOnly = true;
        run.state.remindersOnly = true;
        await acts.notifyDunning(run.input.invoiceId, due.attempt, 'REMINDER', nextAt);
        break;
      case 'IN_FLIGHT':
      case 'OPEN':
        break;
    }
  }
  run.state.nextRetry = null;
  return null;
}

/** After the last retry: the subscription SUSPENDED and its pod suspended, unless paid meanwhile. */
async function suspend(run: Dunning): Promise<Ending | null> {
  const { suspendAt } = run.progress.timeline;
  if (!run.input.subscriptionId) return 'UNPAID';
  if (!suspendAt || run.progress.suspended) return null;
  for (;;) {
    setCurrentDetails(
      `Invoice ${run.progress.invoiceNumber}: retries exhausted; suspending at ${when(suspendAt)}`,
    );
    const wake = await run.waitUntil(suspendAt);
    if (wake === 'rollover') return run.rollOver();
    if (wake === 'due') break;
    const ended = await lookAgain(run);
    if (ended) return ended;
  }
  const outcome = await acts.suspendForNonPayment(run.input.invoiceId);
  run.state.lastOutcome = outcome;
  switch (outcome) {
    case 'PAID':
    case 'VOID':
    case 'CANCELED':
      return outcome;
    case 'DONE':
      run.progress.suspended = true;
      run.state.suspended = true;
      run.setStatus('SUSPENDED');
      return null;
    case 'NOT_SUSPENDABLE':
    case 'NO_SUBSCRIPTION':
      return null;
  }
}

/**
 * Waits for the termination threshold (or, when the policy never terminates, for a payment), then
 * cancels the subscription and terminates its pod, unless the locked re-read finds it paid.
 */
async function awaitTermination(run: Dunning): Promise<Ending> {
  const { terminateAt } = run.progress.timeline;
  for (;;) {
    setCurrentDetails(
      `Invoice ${run.progress.invoiceNumber} unpaid${run.progress.suspended ? '; subscription suspended' : ''}; ` +
        (terminateAt ? `cancellation and pod termination at ${when(terminateAt)}` : 'waiting for a payment'),
    );
    const wake = await run.waitUntil(terminateAt);
    if (wake === 'rollover') return run.rollOver();
    if (wake === 'due') break;
    const ended = await lookAgain(run);
    if (ended) return ended;
  }
  const outcome = await acts.cancelForNonPayment(run.input.invoiceId);
  run.state.lastOutcome = outcome;
  switch (outcome) {
    case 'PAID':
    case 'VOID':
      return outcome;
    case 'NO_SUBSCRIPTION':
      return 'UNPAID';
    default:
      return 'CANCELED';
  }
}

/** A signal woke the run: re-read; an invoice still due clears the hints and keeps the timeline. */
async function lookAgain(run: Dunning): Promise<Ending | null> {
  run.progress.paid = false;
  run.progress.stopRequested = false;
  const standing = await acts.dunningStanding(run.input.invoiceId);
  return standing === 'OPEN' ? null : standing;
}

/** The end: a paid or voided invoice is settled (the pod unsuspended if dunning suspended it). */
async function finish(run: Dunning, ending: Ending): Promise<DunningState> {
  run.state.nextRetry = null;
  if (ending === 'PAID' || ending === 'VOID') {
    setCurrentDetails(
      `Invoice ${run.state.invoiceNumber ?? run.input.invoiceId} ${ending}: settling the subscription`,
    );
    await acts.settleDunnedInvoice(run.input.invoiceId, run.state.suspended);
  }
  run.setStatus(ending);
  setCurrentDetails(
    {
      PAID: 'Paid: dunning ended and the subscription is settled',
      VOID: 'The invoice was voided: nothing left to collect',
      CANCELED: 'The subscription is canceled: dunning ended',
      UNPAID: 'Retries exhausted; the invoice stays open (no subscription to suspend)',
    }[ending],
  );
  run.closing = true;
  await condition(allHandlersFinished);
  return run.state;
}
