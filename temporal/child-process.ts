/** Stopping the binaries the platform starts beside itself (Temporal dev server, stripe-mock). */
import type { ChildProcess } from 'node:child_process';

/**
 * SIGTERM, and SIGKILL if the process has not exited within `graceMs`; resolves on its exit (at
 * once when it has already exited). The grace is a deadline for the escalation, not a wait: an
 * orderly exit resolves as soon as it happens.
 */
export function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const escalate = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(escalate);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
