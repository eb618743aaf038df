/** The shield's pure rules: CIDRs parsed and normalised, addresses canonical, first-match evaluation, the allowlist. */
import {
  allowlistAdmits,
  compileAllowlist,
  compileShield,
  evaluateShield,
  parseCidr,
  parseIp,
  type ShieldRuleAction,
  type ShieldRuleInput,
} from '../../src/domain/shield';

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8', 'ipv4'],
    ['10.1.2.3/8', '10.0.0.0/8', 'ipv4'],
    ['192.168.1.77/24', '192.168.1.0/24', 'ipv4'],
    ['203.0.113.9', '203.0.113.9/32', 'ipv4'],
    ['0.0.0.0/0', '0.0.0.0/0', 'ipv4'],
    ['255.255.255.255/31', '255.255.255.254/31', 'ipv4'],
    [' 198.51.100.0/24 ', '198.51.100.0/24', 'ipv4'],
    ['2001:DB8::/32', '2001:db8::/32', 'ipv6'],
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1/128', 'ipv6'],
    ['2001:0db8:abcd:1234:5678::1/48', '2001:db8:abcd::/48', 'ipv6'],
    ['2001:db8:abcd:12ff::/57', '2001:db8:abcd:1280::/57', 'ipv6'],
    ['::/0', '::/0', 'ipv6'],
    ['::1', '::1/128', 'ipv6'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1/128', 'ipv6'],
    ['fe80::1:0:0:0:1/128', 'fe80:0:0:1::1/128', 'ipv6'],
    ['::ffff:10.0.0.0/104', '10.0.0.0/8', 'ipv4'],
    ['::ffff:a00:1', '10.0.0.1/32', 'ipv4'],
    ['::ffff:0:0/64', '::/64', 'ipv6'],
  ])('%j is %j', (input, text, family) => {
    expect(parseCidr(input)).toMatchObject({ text, family });
  });

  it.each([
    '',
    'not an address',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/',
    '10.0.0.0/8/8',
    '10.0.0.0/08',
    '010.0.0.0/8',
    '10.0.0/8',
    '256.0.0.0/8',
    '2001:db8::/129',
    '2001:db8:::/32',
    '1::2::3',
    'fe80::1%eth0/64',
    '10.0.0.0 /8',
    '10.0.0.0/1e1',
    '::ffff:10.0.0.1.2',
  ])('refuses %j', (input) => {
    expect(parseCidr(input)).toBeNull();
  });
});

describe('parseIp', () => {
  it.each([
    ['198.51.100.7', { family: 'ipv4', address: '198.51.100.7' }],
    ['::ffff:198.51.100.7', { family: 'ipv4', address: '198.51.100.7' }],
    ['::FFFF:C633:6407', { family: 'ipv4', address: '198.51.100.7' }],
    ['2001:DB8:0::0:1', { family: 'ipv6', address: '2001:db8::1' }],
    ['::1', { family: 'ipv6', address: '::1' }],
  ])('%j is %j', (input, expected) => {
    expect(parseIp(input)).toEqual(expected);
  });

  it.each(['', 'unknown', '1.2.3', '198.51.100.7/32', 'fe80::1%lo'])('refuses %j', (input) => {
    expect(parseIp(input)).toBeNull();
  });
});

const rules = (...list: [ShieldRuleAction, string][]): ShieldRuleInput[] =>
  list.map(([action, cidr], i) => ({ id: `r${i}`, action, cidr }));

const verdict = (list: ShieldRuleInput[], ip: string) => evaluateShield(compileShield(list), parseIp(ip));

describe('evaluateShield', () => {
  it.each<[string, ShieldRuleInput[], string, { allowed: boolean; rule?: string | null }]>([
    ['no rules admit everyone', rules(), '198.51.100.7', { allowed: true }],
    [
      'a matching DENY refuses',
      rules(['DENY', '198.51.100.0/24']),
      '198.51.100.7',
      { allowed: false, rule: 'r0' },
    ],
    ['a DENY elsewhere admits', rules(['DENY', '198.51.100.0/24']), '203.0.113.1', { allowed: true }],
    ['an ALLOW list admits a member', rules(['ALLOW', '203.0.113.0/24']), '203.0.113.1', { allowed: true }],
    [
      'an ALLOW list refuses an outsider with no rule named',
      rules(['ALLOW', '203.0.113.0/24']),
      '198.51.100.7',
      { allowed: false, rule: null },
    ],
    [
      'first match wins: ALLOW before a wider DENY',
      rules(['ALLOW', '10.1.0.0/16'], ['DENY', '10.0.0.0/8']),
      '10.1.2.3',
      { allowed: true },
    ],
    [
      'first match wins: DENY before a wider ALLOW',
      rules(['DENY', '10.1.0.0/16'], ['ALLOW', '10.0.0.0/8']),
      '10.1.2.3',
      { allowed: false, rule: 'r0' },
    ],
    [
      'the rule named is the one that matched within a run of DENYs',
      rules(['DENY', '192.0.2.0/24'], ['DENY', '198.51.100.0/24'], ['ALLOW', '0.0.0.0/0']),
      '198.51.100.9',
      { allowed: false, rule: 'r1' },
    ],
    [
      'DENY rules with an ALLOW elsewhere: the ALLOW makes it an allow-list',
      rules(['DENY', '192.0.2.0/24'], ['ALLOW', '203.0.113.0/24']),
      '198.51.100.9',
      { allowed: false, rule: null },
    ],
    ['IPv6 DENY', rules(['DENY', '2001:db8::/32']), '2001:db8:1::5', { allowed: false, rule: 'r0' }],
    ['IPv6 outside the DENY', rules(['DENY', '2001:db8::/32']), '2001:db9::5', { allowed: true }],
    [
      'an IPv4 rule does not hold an IPv6 address',
      rules(['ALLOW', '0.0.0.0/0']),
      '2001:db8::1',
      { allowed: false, rule: null },
    ],
    [
      'an IPv4-mapped client address is its IPv4 address',
      rules(['DENY', '198.51.100.0/24']),
      '::ffff:198.51.100.7',
      { allowed: false, rule: 'r0' },
    ],
    [
      'both families in one list',
      rules(['ALLOW', '203.0.113.0/24'], ['ALLOW', '2001:db8::/32']),
      '2001:db8::1',
      { allowed: true },
    ],
  ])('%s', (_name, list, ip, expected) => {
    const result = verdict(list, ip);
    expect(result.allowed).toBe(expected.allowed);
    if (!result.allowed) expect(result.rule?.id ?? null).toBe(expected.rule);
  });

  it('matches no rule for an address that is not one: DENY lists admit it, ALLOW lists refuse it', () => {
    expect(evaluateShield(compileShield(rules(['DENY', '0.0.0.0/0'])), null)).toEqual({ allowed: true });
    expect(evaluateShield(compileShield(rules(['ALLOW', '0.0.0.0/0'])), null)).toEqual({
      allowed: false,
      rule: null,
    });
  });

  it('refuses to compile a rule whose CIDR is invalid', () => {
    expect(() => compileShield(rules(['DENY', '10.0.0.0/33']))).toThrow();
  });
});

describe('the IP allowlist', () => {
  it.each<[string[], string | null, boolean]>([
    [[], '198.51.100.7', true],
    [[], null, true],
    [['203.0.113.0/24'], '203.0.113.200', true],
    [['203.0.113.0/24'], '198.51.100.7', false],
    [['203.0.113.0/24'], null, false],
    [['203.0.113.5'], '203.0.113.5', true],
    [['203.0.113.5'], '203.0.113.6', false],
    [['2001:db8::/48'], '2001:db8:0:ffff::1', true],
    [['2001:db8::/48'], '2001:db8:1::1', false],
    [['203.0.113.0/24'], '::ffff:203.0.113.9', true],
    [['not a cidr'], '198.51.100.7', false],
  ])('%j admits %j: %j', (list, ip, admitted) => {
    expect(allowlistAdmits(compileAllowlist(list), ip === null ? null : parseIp(ip))).toBe(admitted);
  });
});
