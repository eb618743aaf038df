/** `auditVerify` — started weekly by the `audit-verify` schedule: every audit chain recomputed. */
import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { AuditActivities, AuditTrailCheck } from '../activities/audit';

/** One long read of every chain, heartbeating per page; a lost worker resumes from the start. */
const acts = proxyActivities<AuditActivities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 3 },
});

export async function auditVerify(): Promise<AuditTrailCheck> {
  setCurrentDetails('Verifying every audit chain');
  const result = await acts.verifyAuditTrail();
  setCurrentDetails(
    result.breaks.length === 0
      ? `Verified ${result.events} events in ${result.chains} chains`
      : `${result.breaks.length} broken chains (CRITICAL security events raised)`,
  );
  return result;
}
