/**
 * Starts an invoice's dunning as a child of the workflow whose charge failed, rather than through
 * an activity: the start is a command in that history (deterministic, no client needed, linked
 * parent → child in the UI), and ABANDON lets dunning run on for weeks after the parent has
 * finished. Reuse is rejected, so a dunning already started for the invoice (a reset of the
 * parent) is found, not duplicated.
 */
import { ParentClosePolicy, TemporalFailure, startChild } from '@temporalio/workflow';
import { dunning } from './dunning';
import type { DunningInput } from './messages/billing';
import { dunningStartOptions } from './messages/dunning';

export async function startDunningChild(input: DunningInput): Promise<void> {
  try {
    await startChild(dunning, {
      ...dunningStartOptions(input),
      args: [input],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  } catch (err) {
    // The SDK's workflow package does not export this error's class; its type name identifies it.
    if (!(err instanceof TemporalFailure && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
  }
}
