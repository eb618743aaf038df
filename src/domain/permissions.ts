/**
 * What a caller may do: permissions named `<area>:<verb>`, and the sets each kind of caller holds.
 * Routes declare the one permission they need; authentication turns a credential into a principal
 * holding a set of them. API token scopes map onto these sets (a `read` token reads, a `write`
 * token also changes), and a user's membership role in a tenant maps onto them the same way:
 * both kinds of caller are checked against the one table below.
 */
import type { TokenScope } from './api-tokens';

/** What a tenant's principals may hold: acting inside that one tenant. */
const TENANT_PERMISSIONS = [
  'pods:read',
  'pods:write',
  'catalog:read',
  'catalog:write',
  'billing:read',
  'billing:write',
  'tokens:read',
  'tokens:write',
  'tenants:read',
] as const;

/** What the platform's principals may hold (`tenants:read` too: they see every tenant). */
const PLATFORM_PERMISSIONS = [
  'tenants:read',
  'tenants:admin',
  'nodes:read',
  'nodes:write',
  'ops:read',
  'ops:admin',
] as const;

/**
 * What every signed-in user holds whatever their role, and no API token does: ending their own
 * sessions and changing their own password. A token has neither sessions nor a password.
 */
export const SELF_PERMISSIONS = ['account:self'] as const;

/**
 * Reading security events. Kept apart from the tenant's reads: a READONLY member or a read token
 * does not see who failed to sign in; OWNER, ADMIN and a tenant write token see their tenant's
 * events, a platform administrator (or platform write token) everyone's.
 */
const SECURITY_PERMISSIONS = ['security:read'] as const;

export type Permission =
  | (typeof TENANT_PERMISSIONS)[number]
  | (typeof PLATFORM_PERMISSIONS)[number]
  | (typeof SELF_PERMISSIONS)[number]
  | (typeof SECURITY_PERMISSIONS)[number];

export const PERMISSIONS: readonly Permission[] = [
  ...new Set([...TENANT_PERMISSIONS, ...PLATFORM_PERMISSIONS, ...SELF_PERMISSIONS, ...SECURITY_PERMISSIONS]),
];

const reads = (permissions: readonly Permission[]) => permissions.filter((p) => p.endsWith(':read'));

/** Every permission of one area (`billing:*`). */
const area = (name: string) => TENANT_PERMISSIONS.filter((p) => p.startsWith(`${name}:`));

/** A user's role in one tenant, held through their membership of it. */
export const MEMBERSHIP_ROLES = ['OWNER', 'ADMIN', 'BILLING', 'SUPPORT', 'READONLY'] as const;
export type MembershipRole = (typeof MEMBERSHIP_ROLES)[number];

/**
 * Roles a principal can have: an API token's (lower case), a user's membership role in the tenant
 * they act in (upper case; a platform administrator acting for the platform is `platform_admin`
 * like a platform write token), and `anonymous`, the caller of a public route.
 */
export type Role =
  'tenant_editor' | 'tenant_viewer' | 'platform_admin' | 'platform_viewer' | 'anonymous' | MembershipRole;

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  tenant_editor: new Set([...TENANT_PERMISSIONS, ...SECURITY_PERMISSIONS]),
  tenant_viewer: new Set(reads(TENANT_PERMISSIONS)),
  platform_admin: new Set([...PLATFORM_PERMISSIONS, ...SECURITY_PERMISSIONS]),
  platform_viewer: new Set(reads(PLATFORM_PERMISSIONS)),
  anonymous: new Set(),
  // OWNER and ADMIN act alike on every route; what sets an OWNER apart concerns the memberships themselves.
  OWNER: new Set([...TENANT_PERMISSIONS, ...SECURITY_PERMISSIONS]),
  ADMIN: new Set([...TENANT_PERMISSIONS, ...SECURITY_PERMISSIONS]),
  BILLING: new Set([...area('billing'), 'catalog:read', 'pods:read']),
  SUPPORT: new Set([...area('pods'), 'catalog:read', 'billing:read']),
  READONLY: new Set(reads(TENANT_PERMISSIONS)),
};

/** The roles a signed-in user can act with: a membership role, or the platform's administrator. */
export type UserRole = MembershipRole | 'platform_admin';

const USER_ROLE_PERMISSIONS = new Map<UserRole, ReadonlySet<Permission>>(
  [...MEMBERSHIP_ROLES, 'platform_admin' as const].map((role) => [
    role,
    new Set([...ROLE_PERMISSIONS[role], ...SELF_PERMISSIONS]),
  ]),
);

/** A signed-in user's permissions: their role's, plus managing their own sign-in. */
export function userPermissions(role: UserRole): ReadonlySet<Permission> {
  return USER_ROLE_PERMISSIONS.get(role) as ReadonlySet<Permission>;
}

export function isMembershipRole(value: string): value is MembershipRole {
  return (MEMBERSHIP_ROLES as readonly string[]).includes(value);
}

/** An API token's role: its tenant (or the platform) and whether it may write. */
export function tokenRole(tenantId: string | null, scopes: readonly TokenScope[]): Role {
  const write = scopes.includes('write');
  if (tenantId) return write ? 'tenant_editor' : 'tenant_viewer';
  return write ? 'platform_admin' : 'platform_viewer';
}
