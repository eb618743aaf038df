/**
 * The shield's rules, pure: CIDRs parsed and normalised, rule lists compiled into `node:net`
 * BlockLists, and the verdict for one client address.
 *
 * Semantics (README, Security): rules are evaluated in order and the first whose CIDR holds the
 * address decides — ALLOW lets it through, DENY refuses it. An address no rule holds is refused
 * when the list has at least one ALLOW rule (the ALLOW rules are then an allow-list) and let
 * through otherwise. A tenant's IP allowlist (its security policy) is simpler: empty admits
 * everyone, otherwise an address must lie in one of its CIDRs.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** OFF: rules kept but not applied; MONITOR: refusals only recorded; ENFORCE: refused with 403. */
export const SHIELD_MODES = ['OFF', 'MONITOR', 'ENFORCE'] as const;
export type ShieldMode = (typeof SHIELD_MODES)[number];

export const SHIELD_RULE_ACTIONS = ['ALLOW', 'DENY'] as const;
export type ShieldRuleAction = (typeof SHIELD_RULE_ACTIONS)[number];

/** How many rules one tenant's shield holds at most. */
export const MAX_SHIELD_RULES = 100;

export type IpFamily = 'ipv4' | 'ipv6';

/** A network in canonical form: host bits cleared, IPv6 in RFC 5952 text. */
export interface Cidr {
  family: IpFamily;
  /** the network address */
  network: string;
  prefix: number;
  /** `network/prefix`: what is stored and shown */
  text: string;
}

/** An address in canonical form (an IPv4-mapped IPv6 address as IPv4). */
export interface IpAddress {
  family: IpFamily;
  address: string;
}

function ipv4Value(text: string): number | null {
  if (!isIPv4(text)) return null;
  const octets = text.split('.');
  // node accepts no leading zeros in dotted quads already; four octets is all that is left to check
  if (octets.length !== 4) return null;
  return octets.reduce((value, octet) => value * 256 + Number(octet), 0);
}

const ipv4Text = (value: number) =>
  [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');

/** The eight 16-bit words of an IPv6 address, or null (zone ids are refused: they name a link, not a network). */
function ipv6Words(text: string): number[] | null {
  if (!isIPv6(text) || text.includes('%')) return null;
  let source = text.toLowerCase();
  const lastColon = source.lastIndexOf(':');
  const tail = source.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = ipv4Value(tail);
    if (v4 === null) return null;
    source = `${source.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = source.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string | undefined) => (part ? part.split(':').map((w) => parseInt(w, 16)) : []);
  const head = parse(halves[0]);
  const rest = parse(halves[1]);
  const words =
    halves.length === 2
      ? [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest]
      : head;
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff)
    ? words
    : null;
}

/** RFC 5952: lower case, no leading zeros, the first longest run of two or more zero words as `::`. */
function ipv6Text(words: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** `::ffff:a.b.c.d` (and its hex spelling) holds an IPv4 address in its last two words. */
const isV4Mapped = (words: readonly number[]) =>
  words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff;

/** The address `text` names, canonical, or null when it is not an IP address. */
export function parseIp(text: string): IpAddress | null {
  const v4 = ipv4Value(text);
  if (v4 !== null) return { family: 'ipv4', address: ipv4Text(v4) };
  const words = ipv6Words(text);
  if (!words) return null;
  if (isV4Mapped(words)) {
    return {
      family: 'ipv4',
      address: ipv4Text(((words[6] as number) * 0x10000 + (words[7] as number)) >>> 0),
    };
  }
  return { family: 'ipv6', address: ipv6Text(words) };
}

/**
 * A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address (as `/32` or `/128`), normalised:
 * host bits cleared (`10.1.2.3/8` is `10.0.0.0/8`), IPv6 in RFC 5952 form, an IPv4-mapped IPv6
 * network of prefix ≥ 96 as the IPv4 network it covers. Null when it is none of these.
 */
export function parseCidr(input: string): Cidr | null {
  const text = input.trim();
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? null : text.slice(slash + 1);
  if (prefixText !== null && !/^(0|[1-9]\d{0,2})$/.test(prefixText)) return null;
  const v4 = ipv4Value(addressText);
  if (v4 !== null) {
    const prefix = prefixText === null ? 32 : Number(prefixText);
    if (prefix > 32) return null;
    return ipv4Cidr(v4, prefix);
  }
  const words = ipv6Words(addressText);
  if (!words) return null;
  const prefix = prefixText === null ? 128 : Number(prefixText);
  if (prefix > 128) return null;
  if (isV4Mapped(words) && prefix >= 96) {
    return ipv4Cidr(((words[6] as number) * 0x10000 + (words[7] as number)) >>> 0, prefix - 96);
  }
  const masked = words.map((w, i) => {
    const bits = Math.min(16, Math.max(0, prefix - i * 16));
    return bits === 0 ? 0 : w & ((0xffff << (16 - bits)) & 0xffff);
  });
  const network = ipv6Text(masked);
  return { family: 'ipv6', network, prefix, text: `${network}/${prefix}` };
}

function ipv4Cidr(value: number, prefix: number): Cidr {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = ipv4Text((value & mask) >>> 0);
  return { family: 'ipv4', network, prefix, text: `${network}/${prefix}` };
}

/** One rule as the shield evaluates it; `id` and `cidr` are what a recorded refusal names. */
export interface ShieldRuleInput {
  id: string;
  action: ShieldRuleAction;
  cidr: string;
}

/** A run of consecutive rules with the same action: one BlockList answers for all of them. */
interface RuleRun {
  action: ShieldRuleAction;
  list: BlockList;
  rules: { rule: ShieldRuleInput; list: BlockList }[];
}

export interface CompiledShield {
  runs: RuleRun[];
  hasAllow: boolean;
}

function blockListOf(cidrs: readonly Cidr[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) list.addSubnet(c.network, c.prefix, c.family);
  return list;
}

/** Compiles rules in order; a rule whose CIDR does not parse (never stored) is an error here. */
export function compileShield(rules: readonly ShieldRuleInput[]): CompiledShield {
  const runs: RuleRun[] = [];
  for (const rule of rules) {
    const cidr = parseCidr(rule.cidr);
    if (!cidr) throw new Error(`shield rule ${rule.id} has an invalid CIDR`);
    const own = blockListOf([cidr]);
    let run = runs[runs.length - 1];
    if (!run || run.action !== rule.action) {
      run = { action: rule.action, list: new BlockList(), rules: [] };
      runs.push(run);
    }
    run.list.addSubnet(cidr.network, cidr.prefix, cidr.family);
    run.rules.push({ rule, list: own });
  }
  return { runs, hasAllow: rules.some((r) => r.action === 'ALLOW') };
}

/**
 * What the shield says of one address: let through, or refused by a DENY rule (`rule`) or by
 * matching no ALLOW rule (`rule` null). An address that is not an IP address matches no rule.
 */
export type ShieldVerdict = { allowed: true } | { allowed: false; rule: ShieldRuleInput | null };

const ALLOWED: ShieldVerdict = { allowed: true };

export function evaluateShield(shield: CompiledShield, ip: IpAddress | null): ShieldVerdict {
  if (ip) {
    for (const run of shield.runs) {
      if (!run.list.check(ip.address, ip.family)) continue;
      if (run.action === 'ALLOW') return ALLOWED;
      const hit = run.rules.find((r) => r.list.check(ip.address, ip.family));
      return { allowed: false, rule: hit?.rule ?? null };
    }
  }
  return shield.hasAllow ? { allowed: false, rule: null } : ALLOWED;
}

/**
 * A tenant's IP allowlist, compiled; null when it is empty (every address admitted). An entry that
 * does not parse admits nobody (the policy's own validation keeps such entries out).
 */
export function compileAllowlist(cidrs: readonly string[]): BlockList | null {
  if (cidrs.length === 0) return null;
  return blockListOf(cidrs.map(parseCidr).filter((c): c is Cidr => c !== null));
}

/** Whether the allowlist admits the address (an unknown address is admitted only by no allowlist). */
export function allowlistAdmits(allowlist: BlockList | null, ip: IpAddress | null): boolean {
  if (!allowlist) return true;
  return ip !== null && allowlist.check(ip.address, ip.family);
}
