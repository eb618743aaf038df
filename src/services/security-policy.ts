/**
 * Tenants' security policies: reading one (defaults when the tenant has none), replacing one, and
 * what sign-in needs of them — the policy of the tenant signed into, and the strictest lockout
 * among a user's tenants. Replacing a policy shortens the sessions already open into the tenant
 * when its lifetime shrinks, in the same transaction; it never lengthens one.
 */
import { Membership, TenantSecurityPolicy } from '../db/entities';
import type { EntityManager } from '../db/orm';
import { AppError } from '../domain/errors';
import {
  DEFAULT_POLICY,
  POLICY_LIMITS,
  allowlistProblems,
  ipAllowed,
  normalisedAllowlist,
  strictestLockout,
  type Lockout,
  type PolicyValues,
} from '../domain/security-policy';
import { recordSecurityEvent } from './security-events';

/** A tenant's policy as it applies; `updatedAt` null: the tenant has never set one (defaults). */
export interface StoredPolicy extends PolicyValues {
  tenantId: string;
  updatedAt: Date | null;
}

function valuesOf(row: TenantSecurityPolicy): PolicyValues {
  return {
    requireMfa: row.requireMfa,
    sessionLifetimeS: row.sessionLifetimeS ?? null,
    ipAllowlist: [...row.ipAllowlist],
    lockoutThreshold: row.lockoutThreshold ?? null,
    lockoutDurationS: row.lockoutDurationS ?? null,
  };
}

/** The tenant's policy, or the defaults when it has none. */
export async function policyOf(em: EntityManager, tenantId: string): Promise<StoredPolicy> {
  const row = await em.findOne(TenantSecurityPolicy, { tenant: tenantId });
  return row
    ? { ...valuesOf(row), tenantId, updatedAt: row.updatedAt }
    : { ...DEFAULT_POLICY, tenantId, updatedAt: null };
}

/** The lockout for a user: the strictest their tenants' policies set, else the platform's. */
export async function lockoutFor(em: EntityManager, userId: string, platform: Lockout): Promise<Lockout> {
  const memberships = await em.find(Membership, { user: userId }, { fields: ['tenant'] });
  if (memberships.length === 0) return platform;
  const policies = await em.find(TenantSecurityPolicy, {
    tenant: { $in: memberships.map((m) => m.tenant.id) },
  });
  // one entry per membership: a tenant without a policy row has the platform's lockout
  const silent = memberships.length - policies.length;
  const unset = { lockoutThreshold: null, lockoutDurationS: null };
  return strictestLockout([...policies.map(valuesOf), ...Array<typeof unset>(silent).fill(unset)], platform);
}

function outOfBounds(field: string, value: number | null, bounds: { min: number; max: number }) {
  return value !== null && (value < bounds.min || value > bounds.max)
    ? [{ field, message: `must be between ${bounds.min} and ${bounds.max}` }]
    : [];
}

/**
 * Replaces the tenant's policy. Refused (400) when a value is out of bounds or an allowlist entry is
 * not an address or CIDR, and (422) when the allowlist would shut out `callerIp`, the address of
 * the request making the change: the caller would lock themselves out. A shorter session lifetime
 * ends the tenant's open sessions that are older than it (each ends at its start plus the new
 * lifetime, if that is sooner than its end). Recorded as a security event.
 */
export async function replacePolicy(
  em: EntityManager,
  tenantId: string,
  values: PolicyValues,
  actor: { userId: string | null; tokenId: string | null; ip: string | null; userAgent: string | null },
): Promise<StoredPolicy> {
  const issues = [
    ...outOfBounds('session_lifetime_s', values.sessionLifetimeS, POLICY_LIMITS.sessionLifetimeS),
    ...outOfBounds('lockout_threshold', values.lockoutThreshold, POLICY_LIMITS.lockoutThreshold),
    ...outOfBounds('lockout_duration_s', values.lockoutDurationS, POLICY_LIMITS.lockoutDurationS),
    ...allowlistProblems(values.ipAllowlist).map((p) => ({
      field: `ip_allowlist.${p.index}`,
      message: p.message,
    })),
  ];
  if (issues.length > 0) {
    throw new AppError('validation_failed', 'the security policy is not valid', { errors: issues });
  }
  if (!ipAllowed(values.ipAllowlist, actor.ip)) {
    throw new AppError(
      'unprocessable',
      `the IP allowlist does not admit your own address (${actor.ip ?? 'unknown'}): it would lock you out; include it`,
      { errors: [{ field: 'ip_allowlist', message: `must admit ${actor.ip ?? 'your address'}` }] },
    );
  }
  const allowlist = normalisedAllowlist(values.ipAllowlist);
  return em.transactional(async (tx) => {
    let row = await tx.findOne(TenantSecurityPolicy, { tenant: tenantId });
    const before = row ? valuesOf(row) : DEFAULT_POLICY;
    if (!row) row = tx.create(TenantSecurityPolicy, { tenant: tenantId });
    row.requireMfa = values.requireMfa;
    row.sessionLifetimeS = values.sessionLifetimeS;
    row.ipAllowlist = allowlist;
    row.lockoutThreshold = values.lockoutThreshold;
    row.lockoutDurationS = values.lockoutDurationS;
    await tx.flush();
    let shortened = 0;
    if (values.sessionLifetimeS !== null) {
      // Every row of a family ends with its first: measure from the family's start.
      const rows = await tx.getConnection().execute<{ family_id: string }[]>(
        `update "sessions" s
            set "expires_at" = r."created_at" + make_interval(secs => ?), "updated_at" = now()
           from "sessions" r
          where r."id" = s."family_id" and r."tenant_id" = ? and s."revoked_at" is null
            and s."expires_at" > r."created_at" + make_interval(secs => ?)
          returning s."family_id"`,
        [values.sessionLifetimeS, tenantId, values.sessionLifetimeS],
        'all',
        tx.getTransactionContext(),
      );
      shortened = new Set(rows.map((r) => r.family_id)).size;
    }
    const after = valuesOf(row);
    const changed = (Object.keys(after) as (keyof PolicyValues)[]).filter(
      (k) => JSON.stringify(after[k]) !== JSON.stringify(before[k]),
    );
    await recordSecurityEvent(tx, {
      kind: 'SECURITY_POLICY_CHANGED',
      severity: 'MEDIUM',
      tenantId,
      userId: actor.userId,
      ip: actor.ip,
      userAgent: actor.userAgent,
      details: {
        changed,
        token_id: actor.tokenId,
        require_mfa: after.requireMfa,
        session_lifetime_s: after.sessionLifetimeS,
        ip_allowlist: after.ipAllowlist,
        lockout_threshold: after.lockoutThreshold,
        lockout_duration_s: after.lockoutDurationS,
        sessions_shortened: shortened,
      },
    });
    return { ...after, tenantId, updatedAt: row.updatedAt };
  });
}
