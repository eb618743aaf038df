/**
 * What a caller may do: permissions named `<area>:<verb>`, and the sets each kind of caller holds.
 * Routes declare the one permission they need; authentication turns a credential into a principal
 * holding a set of them. A user's membership role in a tenant maps onto them through the table
 * below, an API token's scopes through `tokenPermissions`: both kinds of caller are checked
 * against the same permissions.
 */
import { COARSE_TOKEN_SCOPES, isFineScope, type TokenOwner, type TokenScope } from './api-tokens';

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
  'members:read',
  'members:write',
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
 * Security: reading security events and the audit trail, and setting the tenant's security policy
 * and shield. Kept apart from the tenant's reads: a READONLY member or a read token does not see
 * who failed to sign in; OWNER, ADMIN and a tenant write token see their tenant's events and
 * trail, a platform administrator (or platform write token) everyone's.
 */
const SECURITY_PERMISSIONS = ['security:read', 'security:write', 'audit:read'] as const;

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
 * Roles a principal can have: an API token's (lower case: a label, editor or viewer, its
 * permissions coming from its scopes; the sets below are what the `read` and `write` scopes grant),
 * a user's membership role in the tenant they act in (upper case; a platform administrator acting
 * for the platform is `platform_admin` like a platform write token), and `anonymous`, the caller
 * of a public route.
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

/**
 * Everything a token of its owner may hold (what `admin` grants): a tenant's token acts in its
 * tenant, a platform token for the platform; neither ever holds `account:self`.
 */
const TOKEN_CEILING: Record<TokenOwner, ReadonlySet<Permission>> = {
  tenant: ROLE_PERMISSIONS.tenant_editor,
  platform: ROLE_PERMISSIONS.platform_admin,
};

/** What the coarse scopes grant, by owner: `read` and `write` keep the meaning they had before fine scopes. */
const COARSE_SCOPE_PERMISSIONS: Record<
  TokenOwner,
  Record<(typeof COARSE_TOKEN_SCOPES)[number], ReadonlySet<Permission>>
> = {
  tenant: {
    read: ROLE_PERMISSIONS.tenant_viewer,
    write: ROLE_PERMISSIONS.tenant_editor,
    admin: TOKEN_CEILING.tenant,
  },
  platform: {
    read: ROLE_PERMISSIONS.platform_viewer,
    write: ROLE_PERMISSIONS.platform_admin,
    admin: TOKEN_CEILING.platform,
  },
};

/**
 * What one scope grants a token of `owner`: a coarse scope its set; a fine scope its permission,
 * and a `:write` one the `:read` of its area too. Empty when the owner's tokens cannot hold it
 * (`pods:read` on a platform token).
 */
function scopeGrant(owner: TokenOwner, scope: string): Permission[] {
  const ceiling = TOKEN_CEILING[owner];
  if ((COARSE_TOKEN_SCOPES as readonly string[]).includes(scope)) {
    return [...COARSE_SCOPE_PERMISSIONS[owner][scope as (typeof COARSE_TOKEN_SCOPES)[number]]];
  }
  if (!isFineScope(scope) || !ceiling.has(scope)) return [];
  const [area, verb] = scope.split(':') as [string, string];
  const read = `${area}:read` as Permission;
  return verb === 'write' && ceiling.has(read) ? [scope, read] : [scope];
}

/**
 * The permissions an API token of `owner` holds with `scopes`: the union of what each grants.
 * A scope its owner's tokens cannot hold (or one unknown, from an older or newer version) grants
 * nothing; `refusedScopes` names them so they are refused when a token is made.
 */
export function tokenPermissions(owner: TokenOwner, scopes: readonly string[]): ReadonlySet<Permission> {
  return new Set(scopes.flatMap((s) => scopeGrant(owner, s)));
}

/** The scopes a token of `owner` cannot hold: tenant-only fine scopes on a platform token. */
export function refusedScopes(owner: TokenOwner, scopes: readonly TokenScope[]): TokenScope[] {
  return scopes.filter((s) => scopeGrant(owner, s).length === 0);
}

/** Whether every permission of `requested` is in `held`: a principal mints tokens within its own permissions. */
export function permissionsWithin(
  requested: ReadonlySet<Permission>,
  held: ReadonlySet<Permission>,
): boolean {
  return [...requested].every((p) => held.has(p));
}

/**
 * An API token's role, a label for logs and security events (its permissions come from
 * `tokenPermissions`): an editor when it may change anything, a viewer when it only reads.
 */
export function tokenRole(tenantId: string | null, scopes: readonly string[]): Role {
  const owner: TokenOwner = tenantId ? 'tenant' : 'platform';
  const changes = [...tokenPermissions(owner, scopes)].some((p) => !p.endsWith(':read'));
  if (owner === 'tenant') return changes ? 'tenant_editor' : 'tenant_viewer';
  return changes ? 'platform_admin' : 'platform_viewer';
}
