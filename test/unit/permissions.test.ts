/** The one permission table: membership roles, platform administrators and API token roles. */
import {
  DEFAULT_TOKEN_LIFETIME_DAYS,
  FINE_TOKEN_SCOPES,
  MAX_TOKEN_LIFETIME_DAYS,
  TOKEN_SCOPES,
  tokenExpiry,
  type TokenOwner,
  type TokenScope,
} from '../../src/domain/api-tokens';
import {
  MEMBERSHIP_ROLES,
  PERMISSIONS,
  ROLE_PERMISSIONS,
  SELF_PERMISSIONS,
  isMembershipRole,
  permissionsWithin,
  refusedScopes,
  tokenPermissions,
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
  'members:read',
  'members:write',
  'pods:read',
  'pods:write',
  'tenants:read',
  'tokens:read',
  'tokens:write',
];
const PLATFORM = ['nodes:read', 'nodes:write', 'ops:admin', 'ops:read', 'tenants:admin', 'tenants:read'];
/** security events, policy and audit trail: not plain reads, so READONLY and read tokens lack them */
const SECURITY = ['audit:read', 'security:read', 'security:write'];
const TENANT_READS = TENANT.filter((p) => p.endsWith(':read'));

describe('role × permission', () => {
  it.each<[Role, string[]]>([
    ['OWNER', [...TENANT, ...SECURITY]],
    ['ADMIN', [...TENANT, ...SECURITY]],
    ['BILLING', ['billing:read', 'billing:write', 'catalog:read', 'pods:read']],
    ['SUPPORT', ['billing:read', 'catalog:read', 'pods:read', 'pods:write']],
    ['READONLY', TENANT_READS],
    // the API token roles, unchanged
    ['tenant_editor', [...TENANT, ...SECURITY]],
    ['tenant_viewer', TENANT_READS],
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
    ['security:write', ['OWNER', 'ADMIN']],
    ['audit:read', ['OWNER', 'ADMIN']],
    ['members:write', ['OWNER', 'ADMIN']],
    ['members:read', ['OWNER', 'ADMIN', 'READONLY']],
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

describe('API token scopes → permissions', () => {
  it.each<[TokenOwner, TokenScope[], string[]]>([
    // the scopes tokens had before fine scopes keep their meaning
    ['tenant', ['read'], TENANT_READS],
    ['tenant', ['write'], [...TENANT, ...SECURITY]],
    ['tenant', ['read', 'write'], [...TENANT, ...SECURITY]],
    ['tenant', ['admin'], [...TENANT, ...SECURITY]],
    // a fine scope grants its permission; a :write one the :read of its area too
    ['tenant', ['pods:read'], ['pods:read']],
    ['tenant', ['pods:write'], ['pods:read', 'pods:write']],
    ['tenant', ['catalog:read'], ['catalog:read']],
    ['tenant', ['catalog:write'], ['catalog:read', 'catalog:write']],
    ['tenant', ['billing:read'], ['billing:read']],
    ['tenant', ['billing:write'], ['billing:read', 'billing:write']],
    ['tenant', ['tokens:read'], ['tokens:read']],
    ['tenant', ['tokens:write'], ['tokens:read', 'tokens:write']],
    ['tenant', ['members:read'], ['members:read']],
    ['tenant', ['members:write'], ['members:read', 'members:write']],
    ['tenant', ['tenants:read'], ['tenants:read']],
    ['tenant', ['security:read'], ['security:read']],
    ['tenant', ['security:write'], ['security:read', 'security:write']],
    ['tenant', ['audit:read'], ['audit:read']],
    ['tenant', ['pods:read', 'billing:read'], ['billing:read', 'pods:read']],
    ['tenant', ['read', 'pods:write'], [...TENANT_READS, 'pods:write']],
    ['tenant', ['read', 'audit:read'], [...TENANT_READS, 'audit:read']],
    ['tenant', [], []],
    // a platform token: read, write and admin as before; the few fine scopes a platform holds
    ['platform', ['read'], ['nodes:read', 'ops:read', 'tenants:read']],
    ['platform', ['write'], [...PLATFORM, ...SECURITY]],
    ['platform', ['admin'], [...PLATFORM, ...SECURITY]],
    ['platform', ['security:read'], ['security:read']],
    ['platform', ['audit:read', 'tenants:read'], ['audit:read', 'tenants:read']],
    // tenant-only scopes grant a platform token nothing (and are refused when one is made)
    ['platform', ['pods:read'], []],
    ['platform', ['read', 'billing:write'], ['nodes:read', 'ops:read', 'tenants:read']],
  ])('a %s token with %j holds exactly %j', (owner, scopes, permissions) => {
    expect(sorted(tokenPermissions(owner, scopes))).toEqual([...new Set(permissions)].sort());
  });

  it('never gives a token a permission of its own sign-in, nor one beyond its owner’s admin', () => {
    for (const owner of ['tenant', 'platform'] as const) {
      const admin = tokenPermissions(owner, ['admin']);
      for (const scope of TOKEN_SCOPES) {
        const granted = tokenPermissions(owner, [scope]);
        expect({ owner, scope, self: granted.has('account:self') }).toEqual({ owner, scope, self: false });
        expect({ owner, scope, within: permissionsWithin(granted, admin) }).toEqual({
          owner,
          scope,
          within: true,
        });
      }
    }
    // a tenant token never holds a platform permission other than reading its own tenant
    const tenantAdmin = tokenPermissions('tenant', ['admin']);
    expect(PLATFORM.filter((p) => p !== 'tenants:read' && tenantAdmin.has(p as Permission))).toEqual([]);
  });

  it('names every fine scope after a permission', () => {
    for (const scope of FINE_TOKEN_SCOPES) expect(PERMISSIONS).toContain(scope);
  });

  it('ignores scopes it does not know (stored by another version)', () => {
    expect(sorted(tokenPermissions('tenant', ['pods:read', 'pods:delete', 'root']))).toEqual(['pods:read']);
  });

  it.each<[TokenOwner, TokenScope[], TokenScope[]]>([
    ['tenant', [...TOKEN_SCOPES], []],
    [
      'platform',
      ['read', 'write', 'admin', 'tenants:read', 'security:read', 'security:write', 'audit:read'],
      [],
    ],
    [
      'platform',
      ['read', 'pods:read', 'billing:write', 'tokens:read', 'members:read'],
      ['pods:read', 'billing:write', 'tokens:read', 'members:read'],
    ],
  ])('a %s token refuses, of %j, %j', (owner, scopes, refused) => {
    expect(refusedScopes(owner, scopes)).toEqual(refused);
  });

  it.each<[string, TokenScope[], boolean, ReadonlySet<Permission>]>([
    ['an OWNER mints admin', ['admin'], true, userPermissions('OWNER')],
    ['an ADMIN mints write', ['write'], true, userPermissions('ADMIN')],
    ['a BILLING member cannot mint pods:write', ['pods:write'], false, userPermissions('BILLING')],
    ['a BILLING member mints billing:write', ['billing:write'], true, userPermissions('BILLING')],
    ['a read token cannot mint write', ['write'], false, tokenPermissions('tenant', ['read'])],
    [
      'a tokens:write token mints tokens:read',
      ['tokens:read'],
      true,
      tokenPermissions('tenant', ['tokens:write']),
    ],
    [
      'a tokens:write token cannot mint pods:read',
      ['pods:read'],
      false,
      tokenPermissions('tenant', ['tokens:write']),
    ],
    [
      'a write token mints admin (the same permissions)',
      ['admin'],
      true,
      tokenPermissions('tenant', ['write']),
    ],
    [
      'a read+pods:write token mints pods:write',
      ['pods:write'],
      true,
      tokenPermissions('tenant', ['read', 'pods:write']),
    ],
  ])('%s: %j → %s', (_what, scopes, allowed, held) => {
    expect(permissionsWithin(tokenPermissions('tenant', scopes), held)).toBe(allowed);
  });

  it.each<[string | null, TokenScope[], Role]>([
    ['ten_x', ['pods:read', 'billing:read'], 'tenant_viewer'],
    ['ten_x', ['pods:write'], 'tenant_editor'],
    ['ten_x', ['admin'], 'tenant_editor'],
    [null, ['admin'], 'platform_admin'],
    [null, ['audit:read'], 'platform_viewer'],
  ])('labels a token of %s with %j a %s', (tenantId, scopes, role) => {
    expect(tokenRole(tenantId, scopes)).toBe(role);
  });
});

describe('API token lifetime', () => {
  const now = new Date('2026-11-24T00:00:00.000Z');
  const day = 86_400_000;
  it.each<[string, { inDays?: number; at?: Date }, Date | string]>([
    ['the default', {}, new Date(now.getTime() + DEFAULT_TOKEN_LIFETIME_DAYS * day)],
    ['a day', { inDays: 1 }, new Date(now.getTime() + day)],
    [
      'the longest',
      { inDays: MAX_TOKEN_LIFETIME_DAYS },
      new Date(now.getTime() + MAX_TOKEN_LIFETIME_DAYS * day),
    ],
    ['longer', { inDays: MAX_TOKEN_LIFETIME_DAYS + 1 }, 'expires_in_days'],
    ['none', { inDays: 0 }, 'expires_in_days'],
    ['a fraction', { inDays: 1.5 }, 'expires_in_days'],
    ['a time', { at: new Date('2027-01-31T00:00:00Z') }, new Date('2027-01-31T00:00:00Z')],
    ['a time past', { at: new Date(now.getTime() - 1) }, 'expires_at'],
    ['now', { at: now }, 'expires_at'],
    ['a time too far', { at: new Date(now.getTime() + MAX_TOKEN_LIFETIME_DAYS * day + 1) }, 'expires_at'],
    ['an invalid time', { at: new Date('nope') }, 'expires_at'],
    ['both', { inDays: 3, at: new Date(now.getTime() + day) }, 'expires_at'],
  ])('%s: %j → %s', (_what, requested, expected) => {
    const expiry = tokenExpiry(now, requested);
    if (typeof expected === 'string') expect(expiry).toMatchObject({ field: expected });
    else expect(expiry).toEqual({ expiresAt: expected });
  });
});
