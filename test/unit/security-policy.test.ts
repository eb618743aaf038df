/** A tenant's security policy as pure rules: CIDR allowlists, session lifetime, the strictest lockout. */
import {
  allowlistProblems,
  ipAllowed,
  normalisedAllowlist,
  sessionLifetimeS,
  strictestLockout,
} from '../../src/domain/security-policy';

describe('IP allowlist entries', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['192.0.2.7', '192.0.2.7/32'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['::1', '::1/128'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['::ffff:10.0.0.0/104', '10.0.0.0/8'],
  ])('%p is stored as %p', (entry, stored) => {
    expect(allowlistProblems([entry])).toEqual([]);
    expect(normalisedAllowlist([entry])).toEqual([stored]);
  });

  it.each([
    '10.0.0.0/33',
    '2001:db8::/129',
    '10.0.0/8',
    'example.com',
    '',
    'fe80::1%eth0',
    "1.2.3.4/8'; drop table users;--",
  ])('%p is refused', (entry) => {
    expect(allowlistProblems([entry])).toEqual([{ index: 0, message: expect.any(String) }]);
  });

  it('stores each network once, however it was spelled', () => {
    expect(normalisedAllowlist(['10.0.0.0/8', '10.9.9.9/8', '2001:db8::/32', '2001:DB8:0::/32'])).toEqual([
      '10.0.0.0/8',
      '2001:db8::/32',
    ]);
  });

  it('names every wrong entry by its index', () => {
    expect(allowlistProblems(['10.0.0.0/8', 'nope', '::/0', '300.1.1.1'])).toEqual([
      { index: 1, message: expect.any(String) },
      { index: 3, message: expect.any(String) },
    ]);
    expect(allowlistProblems([])).toEqual([]);
    expect(allowlistProblems(Array.from({ length: 101 }, () => '10.0.0.1'))).toHaveLength(1);
  });
});

describe('whether an allowlist admits an address', () => {
  const list = ['203.0.113.0/24', '2001:db8::/32', '198.51.100.9'];
  it.each([
    ['an address inside an IPv4 range', list, '203.0.113.77', true],
    ['an address outside every range', list, '203.0.114.1', false],
    ['a single listed address', list, '198.51.100.9', true],
    ['its neighbour', list, '198.51.100.10', false],
    ['an IPv6 address inside a range', list, '2001:db8:1::5', true],
    ['an IPv6 address outside', list, '2001:db9::1', false],
    ['an IPv4-mapped IPv6 address inside (as Node reports IPv4 clients)', list, '::ffff:203.0.113.5', true],
    ['an IPv4-mapped IPv6 address outside', list, '::ffff:10.0.0.1', false],
    ['an unknown address', list, null, false],
    ['something that is not an address', list, 'localhost', false],
    ['any address, with an empty list', [], '10.9.8.7', true],
    ['an unknown address, with an empty list', [], null, true],
  ])('%s', (_what, allowlist, ip, expected) => {
    expect(ipAllowed(allowlist, ip)).toBe(expected);
  });
});

describe('session lifetime', () => {
  it.each([
    ['no policy', null, 86_400, 86_400],
    ['a policy without a lifetime', { sessionLifetimeS: null }, 86_400, 86_400],
    ['a shorter policy lifetime', { sessionLifetimeS: 3600 }, 86_400, 3600],
    ['a longer policy lifetime is capped by the platform', { sessionLifetimeS: 999_999 }, 86_400, 86_400],
  ])('%s', (_what, policy, platform, expected) => {
    expect(sessionLifetimeS(policy, platform)).toBe(expected);
  });
});

describe('the lockout of a member of several tenants', () => {
  const platform = { threshold: 10, durationMs: 900_000 };
  it.each([
    ['no tenant sets one: the platform’s', [], platform],
    ['no policy sets either value', [{ lockoutThreshold: null, lockoutDurationS: null }], platform],
    [
      'the lowest threshold and the longest duration',
      [
        { lockoutThreshold: 5, lockoutDurationS: 60 },
        { lockoutThreshold: 3, lockoutDurationS: null },
        { lockoutThreshold: null, lockoutDurationS: 3600 },
      ],
      { threshold: 3, durationMs: 3_600_000 },
    ],
    [
      'one tenant looser than the platform, the other silent: the platform’s, which is stricter',
      [
        { lockoutThreshold: 20, lockoutDurationS: 30 },
        { lockoutThreshold: null, lockoutDurationS: null },
      ],
      platform,
    ],
    [
      'a member of one tenant only: that tenant’s own, looser or not',
      [{ lockoutThreshold: 20, lockoutDurationS: 30 }],
      { threshold: 20, durationMs: 30_000 },
    ],
  ])('%s', (_what, policies, expected) => {
    expect(strictestLockout(policies, platform)).toEqual(expected);
  });
});
