/**
 * A tenant's security policy as pure rules: which addresses its IP allowlist admits (CIDRs, IPv4
 * and IPv6; an IPv4-mapped IPv6 address counts as its IPv4 one), how long its sessions last
 * (never longer than the platform's SESSION_TTL_S), and the lockout that applies to a user who is
 * a member of several tenants (the strictest one among them).
 */
import { allowlistAdmits, compileAllowlist, parseCidr, parseIp } from './shield';

/** Bounds of what a tenant may set. */
export const POLICY_LIMITS = {
  sessionLifetimeS: { min: 300, max: 31_536_000 },
  lockoutThreshold: { min: 1, max: 1000 },
  lockoutDurationS: { min: 1, max: 86_400 },
  allowlistEntries: 100,
} as const;

/** A policy's values; null: the platform's default. */
export interface PolicyValues {
  requireMfa: boolean;
  sessionLifetimeS: number | null;
  ipAllowlist: string[];
  lockoutThreshold: number | null;
  lockoutDurationS: number | null;
}

/** What a tenant without a policy row has. */
export const DEFAULT_POLICY: PolicyValues = {
  requireMfa: false,
  sessionLifetimeS: null,
  ipAllowlist: [],
  lockoutThreshold: null,
  lockoutDurationS: null,
};

/**
 * Why an allowlist cannot be stored, one message per wrong entry; empty when it can. Entries are
 * parsed as the shield parses its rules (./shield.ts `parseCidr`): one reading of an address for
 * storing and for admitting.
 */
export function allowlistProblems(entries: readonly string[]): { index: number; message: string }[] {
  const problems = entries.flatMap((entry, index) =>
    parseCidr(entry) ? [] : [{ index, message: 'is not an IPv4 or IPv6 address or CIDR' }],
  );
  if (entries.length > POLICY_LIMITS.allowlistEntries) {
    problems.push({
      index: POLICY_LIMITS.allowlistEntries,
      message: `at most ${POLICY_LIMITS.allowlistEntries} entries`,
    });
  }
  return problems;
}

/** The allowlist as stored: each entry normalised (`10.1.2.3/8` → `10.0.0.0/8`), each once. */
export function normalisedAllowlist(entries: readonly string[]): string[] {
  return [...new Set(entries.map((e) => parseCidr(e)?.text ?? e))];
}

/**
 * Whether the allowlist admits `ip`: an empty list admits every address; an unknown address (none,
 * or not an IP) only an empty list. IPv4-mapped IPv6 addresses are their IPv4 address.
 */
export function ipAllowed(allowlist: readonly string[], ip: string | null | undefined): boolean {
  return allowlistAdmits(compileAllowlist(allowlist), ip ? parseIp(ip) : null);
}

/** How long a new session of the tenant lasts: its policy's lifetime, never more than the platform's. */
export function sessionLifetimeS(
  policy: Pick<PolicyValues, 'sessionLifetimeS'> | null,
  platformS: number,
): number {
  const own = policy?.sessionLifetimeS;
  return own == null ? platformS : Math.min(own, platformS);
}

export interface Lockout {
  threshold: number;
  durationMs: number;
}

/**
 * The lockout of a user who belongs to several tenants: the lowest threshold and the longest
 * duration among their tenants, one policy per membership, where a tenant that sets no value has
 * the platform's. A tenant may loosen the lockout of its own members, never of someone who also
 * belongs to a tenant that keeps the platform's (or a stricter) one.
 */
export function strictestLockout(
  policies: readonly Pick<PolicyValues, 'lockoutThreshold' | 'lockoutDurationS'>[],
  platform: Lockout,
): Lockout {
  if (policies.length === 0) return platform;
  return {
    threshold: Math.min(...policies.map((p) => p.lockoutThreshold ?? platform.threshold)),
    durationMs: Math.max(
      ...policies.map((p) => (p.lockoutDurationS == null ? platform.durationMs : p.lockoutDurationS * 1000)),
    ),
  };
}
