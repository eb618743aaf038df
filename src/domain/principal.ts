/**
 * Who is calling: one shape for an API token, a signed-in user and the system itself.
 * Authentication produces it; authorization, idempotency, logs and the audit trail read it.
 * A user's principal acts in the tenant of their session with the permissions of their
 * membership role there (a platform administrator signed in without a tenant acts for the platform).
 */
import type { Permission, Role } from './permissions';

export type ActorType = 'api_token' | 'user' | 'system';

export interface Principal {
  actorType: ActorType;
  /** the token's, user's or system component's id */
  actorId: string;
  /** the tenant the caller acts in; null for the platform */
  tenantId: string | null;
  role: Role;
  permissions: ReadonlySet<Permission>;
  /** the API token used, when the caller is one */
  tokenId: string | null;
  /** the session used, when the caller is a user: stable across refreshes (the id of its first row) */
  sessionId: string | null;
  /**
   * set: a user whose tenant requires MFA and who has not enabled it; they hold only `account:self`
   * (to set MFA up) and every other route answers 403 `mfa-setup-required`
   */
  mfaSetupRequired?: boolean;
}

/** A principal acting inside one tenant. */
export type TenantPrincipal = Principal & { tenantId: string };

export function can(principal: Principal, permission: Permission): boolean {
  return principal.permissions.has(permission);
}
