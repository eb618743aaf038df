/** The weekly `audit-verify` schedule's activity: verify every audit chain, raise a CRITICAL security event on a break. */
import { heartbeat } from '@temporalio/activity';
import { Tenant } from '../db/entities';
import { systemEm, type MikroORM } from '../db/orm';
import { PLATFORM_CHAIN, type ChainBreak } from '../domain/audit';
import { verifyAuditChains } from '../services/audit';
import { recordSecurityEvent } from '../services/security-events';

export interface AuditActivityDeps {
  orm: MikroORM;
}

export interface AuditTrailCheck {
  chains: number;
  events: number;
  /** the first break of each broken chain (at most 100; every one is a security event) */
  breaks: ChainBreak[];
}

/** Outside an activity (a test calling the factory directly) there is nothing to heartbeat. */
function tryHeartbeat(details: unknown): void {
  try {
    heartbeat(details);
  } catch {
    // not running inside an activity
  }
}

export function createAuditActivities({ orm }: AuditActivityDeps) {
  return {
    /**
     * Recomputes every chain (heartbeating per page read). Each broken chain is recorded as a
     * CRITICAL `AUDIT_CHAIN_BROKEN` security event naming the chain and its first broken seq — in
     * the tenant's events when the chain is a live tenant's, in the platform's otherwise.
     */
    async verifyAuditTrail(): Promise<AuditTrailCheck> {
      const result = await verifyAuditChains(systemEm(orm), { onProgress: tryHeartbeat });
      for (const broken of result.breaks) {
        const em = systemEm(orm);
        const tenant =
          broken.chain === PLATFORM_CHAIN
            ? null
            : await em.findOne(Tenant, { id: broken.chain }, { fields: ['id'] });
        await recordSecurityEvent(em, {
          kind: 'AUDIT_CHAIN_BROKEN',
          severity: 'CRITICAL',
          tenantId: tenant?.id ?? null,
          details: { chain: broken.chain, seq: broken.seq, reason: broken.reason, detail: broken.detail },
        });
      }
      return { chains: result.chains, events: result.events, breaks: result.breaks.slice(0, 100) };
    },
  };
}

export type AuditActivities = ReturnType<typeof createAuditActivities>;
