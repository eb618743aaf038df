/** The one permission table: membership roles, platform administrators and API token roles. */
import {
  MEMBERSHIP_ROLES,
  PERMISSIONS,
  ROLE_PERMISSIONS,
  SELF_PERMISSIONS,
  isMembershipRole,
  tokenRole,
  userPermissions,
  type Permission,
  type Role,
} from '../../src/domain/permissions';

const sorted = (set: ReadonlySet<Permission>) => [...set].sort();

const TENANT = [
  'billing:read',
  'billing:write',
  'catalog:read',
  'catalog:write',
  'pods:read',
  'pods:write',
  'tenants:read',
  'tokens:read',
  'tokens:write',
];
const PLATFORM = ['nodes:read', 'nodes:write', 'ops:admin', 'ops:read', 'tenants:admin', 'tenants:read'];
/** reading security events: not a plain read, so READONLY and read tokens lack it */
const SECURITY = ['security:read'];

describe('role × permission', () => {
  it.each<[Role, string[]]>([
    ['OWNER', [...TENANT, ...SECURITY]],
    ['ADMIN', [...TENANT, ...SECURITY]],
    ['BILLING', ['billing:read', 'billing:write', 'catalog:read', 'pods:read']],
    ['SUPPORT', ['billing:read', 'catalog:read', 'pods:read', 'pods:write']],
    ['READONLY', ['billing:read', 'catalog:read', 'pods:read', 'tenants:read', 'tokens:read']],
    // the API token roles, unchanged
    ['tenant_editor', [...TENANT, ...SECURITY]],
    ['tenant_viewer', ['billing:read', 'catalog:read', 'pods:read', 'tenants:read', 'tokens:read']],
    ['platform_admin', [...PLATFORM, ...SECURITY]],
    ['platform_viewer', ['nodes:read', 'ops:read', 'tenants:read']],
    ['anonymous', []],
  ])('%s holds exactly %j', (role, permissions) => {
    expect(sorted(ROLE_PERMISSIONS[role])).toEqual([...permissions].sort());
  });

  it.each([
    ['pods:write', ['OWNER', 'ADMIN', 'SUPPORT']],
    ['billing:write', ['OWNER', 'ADMIN', 'BILLING']],
    ['catalog:write', ['OWNER', 'ADMIN']],
    ['tokens:write', ['OWNER', 'ADMIN']],
    ['catalog:read', ['OWNER', 'ADMIN', 'BILLING', 'SUPPORT', 'READONLY']],
    ['tenants:admin', []],
    ['security:read', ['OWNER', 'ADMIN']],
  ])('%s is held by the membership roles %j', (permission, roles) => {
    expect(MEMBERSHIP_ROLES.filter((r) => ROLE_PERMISSIONS[r].has(permission as Permission))).toEqual(roles);
  });

  it('gives READONLY every read a tenant has and nothing else', () => {
    const reads = TENANT.filter((p) => p.endsWith(':read'));
    expect(sorted(ROLE_PERMISSIONS.READONLY)).toEqual(reads.sort());
  });

  it('gives no membership role a platform permission other than reading its tenant', () => {
    for (const role of MEMBERSHIP_ROLES) {
      const platformOnly = PLATFORM.filter((p) => p !== 'tenants:read');
      expect({
        role,
        platform: platformOnly.filter((p) => ROLE_PERMISSIONS[role].has(p as Permission)),
      }).toEqual({
        role,
        platform: [],
      });
    }
  });

  it('lets every signed-in user manage their own sign-in, and no API token', () => {
    for (const role of [...MEMBERSHIP_ROLES, 'platform_admin' as const]) {
      expect(sorted(userPermissions(role))).toEqual(
        sorted(new Set([...ROLE_PERMISSIONS[role], ...SELF_PERMISSIONS])),
      );
    }
    for (const tenantId of ['ten_x', null]) {
      for (const scopes of [['read'], ['write'], ['read', 'write']] as const) {
        const role = tokenRole(tenantId, [...scopes]);
        expect({ role, self: ROLE_PERMISSIONS[role].has('account:self') }).toEqual({ role, self: false });
      }
    }
  });

  it('maps token scopes to the token roles as before', () => {
    expect(tokenRole('ten_x', ['read', 'write'])).toBe('tenant_editor');
    expect(tokenRole('ten_x', ['read'])).toBe('tenant_viewer');
    expect(tokenRole(null, ['read', 'write'])).toBe('platform_admin');
    expect(tokenRole(null, ['read'])).toBe('platform_viewer');
  });

  it('lists every permission any role holds', () => {
    const held = new Set<Permission>();
    for (const set of Object.values(ROLE_PERMISSIONS)) for (const p of set) held.add(p);
    for (const p of SELF_PERMISSIONS) held.add(p);
    expect([...held].sort()).toEqual([...PERMISSIONS].sort());
  });

  it.each([
    ['OWNER', true],
    ['READONLY', true],
    ['owner', false],
    ['tenant_editor', false],
    ['', false],
  ])('isMembershipRole(%j) → %s', (value, expected) => {
    expect(isMembershipRole(value)).toBe(expected);
  });
});
