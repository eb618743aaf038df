/** Backup and restore: one step each, dead-lettered for an operator retry on failure. */
import { runSingleStep, type OperationContext } from './cloudpods-context';
import type { PodOperation } from './messages/cloudpods';

export function backup(ctx: OperationContext, op: Extract<PodOperation, { kind: 'BACKUP' }>): Promise<void> {
  return runSingleStep(ctx, op, {
    details: 'Taking a backup',
    run: () => ctx.steps.takeBackup(ctx.podId, op.backupId),
    // The backup's own row says it failed, so it is not listed as pending forever.
    recordFailure: () => ctx.books.markBackupFailed(op.backupId),
  });
}

export function restore(
  ctx: OperationContext,
  op: Extract<PodOperation, { kind: 'RESTORE' }>,
): Promise<void> {
  return runSingleStep(ctx, op, {
    details: 'Restoring a backup',
    run: () => ctx.steps.restoreBackup(ctx.podId, op.backupId),
  });
}
