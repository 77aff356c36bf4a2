/**
 * IP addresses and prefixes as numbers: parsing, canonical text (RFC 5952 for IPv6), host-bit
 * checks and containment. Pure; the inventory uses it to refuse prefixes BIRD would refuse or
 * silently widen, and to check that every BGP neighbour sits on one of a node's subnets.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  value: bigint;
}

/** An address with a prefix length: a route (`198.51.100.0/24`) or an interface address (`192.0.2.11/26`). */
export interface IpPrefix extends IpAddress {
  length: number;
}

export function familyBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/** Parse `192.0.2.1` or `2001:db8::1` (no zone, no brackets); undefined when it is neither. */
export function parseIp(text: string): IpAddress | undefined {
  if (isIPv4(text)) {
    const value = text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return { family: 4, value };
  }
  if (isIPv6(text) && !text.includes('%')) return { family: 6, value: parseIpv6(text) };
  return undefined;
}

function parseIpv6(text: string): bigint {
  let groups: string[];
  // An embedded IPv4 tail (`::ffff:192.0.2.1`) counts as two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let source = text;
  if (v4) {
    const n = parseIp(v4[1]!)!.value;
    source = `${text.slice(0, v4.index)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const halves = source.split('::');
  if (halves.length === 2) {
    const head = halves[0] === '' ? [] : halves[0]!.split(':');
    const tail = halves[1] === '' ? [] : halves[1]!.split(':');
    groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  } else {
    groups = source.split(':');
  }
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Canonical text: dotted quad, or RFC 5952 §4 (lower case, longest run of two or more zero groups as `::`). */
export function formatIp(address: IpAddress): string {
  if (address.family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((address.value >> shift) & 0xffn)).join('.');
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((address.value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function formatPrefix(prefix: IpPrefix): string {
  return `${formatIp(prefix)}/${prefix.length}`;
}

function hostMask(family: IpFamily, length: number): bigint {
  return (1n << BigInt(familyBits(family) - length)) - 1n;
}

/** Parse `address/length`; host bits are allowed (an interface address). */
export function parseAddressWithLength(text: string): IpPrefix | undefined {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const address = parseIp(m[1]!);
  const length = Number(m[2]);
  if (address === undefined || length > familyBits(address.family)) return undefined;
  return { ...address, length };
}

export type PrefixParse = { ok: true; prefix: IpPrefix } | { ok: false; reason: string };

/** Parse a route prefix: `address/length` with every host bit zero. */
export function parsePrefix(text: string): PrefixParse {
  const p = parseAddressWithLength(text);
  if (p === undefined) return { ok: false, reason: `expected an IPv4 or IPv6 prefix such as 198.51.100.0/24 or 2001:db8::/48, got ${JSON.stringify(text)}` };
  const host = p.value & hostMask(p.family, p.length);
  if (host !== 0n) {
    const network = formatPrefix({ ...p, value: p.value & ~hostMask(p.family, p.length) });
    return { ok: false, reason: `${text} has host bits set (did you mean ${network}?)` };
  }
  return { ok: true, prefix: p };
}

/** Is `address` inside the subnet of `prefix` (host bits of the prefix ignored)? */
export function prefixContains(prefix: IpPrefix, address: IpAddress): boolean {
  if (prefix.family !== address.family) return false;
  const mask = ~hostMask(prefix.family, prefix.length);
  return (prefix.value & mask) === (address.value & mask);
}

/** fe80::/10: needs an interface to be reachable (RFC 4291 §2.5.6). */
export function isLinkLocal(address: IpAddress): boolean {
  return address.family === 6 && address.value >> 118n === 0x3fan;
}
