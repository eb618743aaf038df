/**
 * What a caller may do: permissions named `<area>:<verb>`, and the sets each kind of caller holds.
 * Routes declare the one permission they need; authentication turns a credential into a principal
 * holding a set of them. API token scopes map onto these sets (a `read` token reads, a `write`
 * token also changes), and the membership roles of users will map onto them the same way.
 */
import type { TokenScope } from './api-tokens';

/** Tenant permissions first, then the platform's. */
export const PERMISSIONS = [
  'pods:read',
  'pods:write',
  'catalog:read',
  'catalog:write',
  'tokens:read',
  'tokens:write',
  'tenants:read',
  'tenants:admin',
  'nodes:read',
  'nodes:write',
  'ops:read',
  'ops:admin',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Permissions that act inside one tenant; the rest belong to the platform. */
const TENANT_PERMISSIONS: readonly Permission[] = [
  'pods:read',
  'pods:write',
  'catalog:read',
  'catalog:write',
  'tokens:read',
  'tokens:write',
  'tenants:read',
];

const READS: readonly Permission[] = PERMISSIONS.filter((p) => p.endsWith(':read'));

/** Roles a principal can have; membership roles (OWNER, ADMIN, …) will join these. */
export const ROLES = [
  'tenant_editor',
  'tenant_viewer',
  'platform_admin',
  'platform_viewer',
  'system',
] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  tenant_editor: new Set(TENANT_PERMISSIONS),
  tenant_viewer: new Set(TENANT_PERMISSIONS.filter((p) => READS.includes(p))),
  platform_admin: new Set(PERMISSIONS.filter((p) => !TENANT_PERMISSIONS.includes(p) || p === 'tenants:read')),
  platform_viewer: new Set(READS.filter((p) => !TENANT_PERMISSIONS.includes(p) || p === 'tenants:read')),
  system: new Set(PERMISSIONS),
};

/** An API token's role: its tenant (or the platform) and whether it may write. */
export function tokenRole(tenantId: string | null, scopes: readonly TokenScope[]): Role {
  const write = scopes.includes('write');
  if (tenantId) return write ? 'tenant_editor' : 'tenant_viewer';
  return write ? 'platform_admin' : 'platform_viewer';
}
