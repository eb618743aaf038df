/** Messages of `usageRollup`: what it starts with and what its `state` query answers. */
import { defineQuery } from '@temporalio/workflow';

/** Days a scheduled run rolls up: yesterday and the two days before it. */
export const ROLLUP_LOOKBACK_DAYS = 3;

/**
 * `usageRollup` — the schedule starts it with no argument (the days before the day it starts);
 * an operator names the days to roll up again.
 */
export interface UsageRollupInput {
  /** UTC days as `YYYY-MM-DD`, rolled up in this order */
  days?: string[];
  /** days rolled up by the runs this one continues, carried through `continueAsNew` */
  rolledUp?: UsageRollupDay[];
}

export interface UsageRollupDay {
  day: string;
  /** daily rows written (new, or a changed sum) */
  rows: number;
}

export interface UsageRollupState {
  /** the days this run rolls up */
  days: string[];
  rolledUp: UsageRollupDay[];
  done: boolean;
}

export const usageRollupStateQuery = defineQuery<UsageRollupState>('state');
