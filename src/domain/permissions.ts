/**
 * What a caller may do: permissions named `<area>:<verb>`, and the sets each kind of caller holds.
 * Routes declare the one permission they need; authentication turns a credential into a principal
 * holding a set of them. API token scopes map onto these sets (a `read` token reads, a `write`
 * token also changes), and the membership roles of users will map onto them the same way.
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

export type Permission = (typeof TENANT_PERMISSIONS)[number] | (typeof PLATFORM_PERMISSIONS)[number];

export const PERMISSIONS: readonly Permission[] = [
  ...new Set([...TENANT_PERMISSIONS, ...PLATFORM_PERMISSIONS]),
];

const reads = (permissions: readonly Permission[]) => permissions.filter((p) => p.endsWith(':read'));

/**
 * Roles a principal can have (`anonymous`: the caller of a public route); membership roles
 * (OWNER, ADMIN, …) will join these.
 */
export type Role = 'tenant_editor' | 'tenant_viewer' | 'platform_admin' | 'platform_viewer' | 'anonymous';

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  tenant_editor: new Set(TENANT_PERMISSIONS),
  tenant_viewer: new Set(reads(TENANT_PERMISSIONS)),
  platform_admin: new Set(PLATFORM_PERMISSIONS),
  platform_viewer: new Set(reads(PLATFORM_PERMISSIONS)),
  anonymous: new Set(),
};

/** An API token's role: its tenant (or the platform) and whether it may write. */
export function tokenRole(tenantId: string | null, scopes: readonly TokenScope[]): Role {
  const write = scopes.includes('write');
  if (tenantId) return write ? 'tenant_editor' : 'tenant_viewer';
  return write ? 'platform_admin' : 'platform_viewer';
}
