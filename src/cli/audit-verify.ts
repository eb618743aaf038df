/** `podplane audit:verify`: what it prints and its exit code, apart from argument parsing so tests can call it. */
import type { EntityManager } from '../db/orm';
import { PLATFORM_CHAIN } from '../domain/audit';
import { isId } from '../domain/ids';
import { verifyAuditChains } from '../services/audit';

/** Exit 0 with "verified N events in M chains", or 1 naming each broken chain and its first broken seq. */
export async function auditVerifyCommand(
  em: EntityManager,
  opts: { tenant?: string | undefined },
): Promise<{ exitCode: 0 | 1; output: string }> {
  if (opts.tenant !== undefined && opts.tenant !== PLATFORM_CHAIN && !isId('tenant', opts.tenant)) {
    throw new Error(`--tenant: '${opts.tenant}' is not a tenant id (ten_…) or '${PLATFORM_CHAIN}'`);
  }
  const result = await verifyAuditChains(em, { chain: opts.tenant });
  if (result.breaks.length === 0) {
    return { exitCode: 0, output: `verified ${result.events} events in ${result.chains} chains\n` };
  }
  const lines = result.breaks.map(
    (b) => `chain ${b.chain} is broken at seq ${b.seq} (${b.reason}): ${b.detail}`,
  );
  lines.push(`audit trail NOT verified: ${result.breaks.length} of ${result.chains} chains broken`);
  return { exitCode: 1, output: lines.join('\n') + '\n' };
}
