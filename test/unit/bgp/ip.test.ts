import { describe, expect, it } from 'vitest';
import { formatIp, formatPrefix, isLinkLocal, parseAddressWithLength, parseIp, parsePrefix, prefixContains } from '../../../bgp/ip.js';

describe('parseIp and formatIp', () => {
  it.each([
    ['192.0.2.1', 4, 0xc0000201n, '192.0.2.1'],
    ['0.0.0.0', 4, 0n, '0.0.0.0'],
    ['255.255.255.255', 4, 0xffffffffn, '255.255.255.255'],
    ['2001:db8::1', 6, 0x20010db8000000000000000000000001n, '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', 6, 0x20010db8000000000000000000000001n, '2001:db8::1'],
    ['::', 6, 0n, '::'],
    ['::1', 6, 1n, '::1'],
    ['fe80::', 6, 0xfe80n << 112n, 'fe80::'],
    // RFC 5952 §4.2.2: a single zero group is not shortened; §4.2.3: the first of equal runs.
    ['2001:db8:0:1:1:1:1:1', 6, 0x20010db8000000010001000100010001n, '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', 6, 0x20010000000000010000000000000001n, '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', 6, 0x20010db8000000000001000000000001n, '2001:db8::1:0:0:1'],
    ['::ffff:192.0.2.1', 6, 0xffffc0000201n, '::ffff:c000:201'],
  ])('%s', (text, family, value, canonical) => {
    const address = parseIp(text);
    expect(address).toEqual({ family, value });
    expect(formatIp(address!)).toBe(canonical);
  });

  it.each(['', '192.0.2', '192.0.2.256', '01.2.3.4', '2001:db8::1::2', 'fe80::1%eth0', 'host.example', ' 192.0.2.1'])('refuses %j', (text) => {
    expect(parseIp(text)).toBeUndefined();
  });
});

describe('parsePrefix', () => {
  it.each([
    ['198.51.100.0/24', '198.51.100.0/24'],
    ['203.0.113.7/32', '203.0.113.7/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:db8:ac::/48', '2001:db8:ac::/48'],
    ['2001:0DB8:00AC:0000::/48', '2001:db8:ac::/48'],
    ['::/0', '::/0'],
  ])('%s is %s', (text, canonical) => {
    const r = parsePrefix(text);
    expect(r.ok && formatPrefix(r.prefix)).toBe(canonical);
  });

  it.each([
    ['198.51.100.1/24', '198.51.100.1/24 has host bits set (did you mean 198.51.100.0/24?)'],
    ['2001:db8:ac::1/48', '2001:db8:ac::1/48 has host bits set (did you mean 2001:db8:ac::/48?)'],
    ['198.51.100.0/33', 'expected an IPv4 or IPv6 prefix such as 198.51.100.0/24 or 2001:db8::/48, got "198.51.100.0/33"'],
    ['2001:db8::/129', 'expected an IPv4 or IPv6 prefix such as 198.51.100.0/24 or 2001:db8::/48, got "2001:db8::/129"'],
    ['198.51.100.0', 'expected an IPv4 or IPv6 prefix such as 198.51.100.0/24 or 2001:db8::/48, got "198.51.100.0"'],
    ['198.51.100.0/', 'expected an IPv4 or IPv6 prefix such as 198.51.100.0/24 or 2001:db8::/48, got "198.51.100.0/"'],
  ])('refuses %s', (text, reason) => {
    expect(parsePrefix(text)).toEqual({ ok: false, reason });
  });
});

describe('subnets', () => {
  it.each([
    ['192.0.2.11/26', '192.0.2.1', true],
    ['192.0.2.11/26', '192.0.2.63', true],
    ['192.0.2.11/26', '192.0.2.64', false],
    ['192.0.2.11/26', '2001:db8:a::1', false],
    ['2001:db8:a::11/64', '2001:db8:a::ffff', true],
    ['2001:db8:a::11/64', '2001:db8:b::1', false],
    ['0.0.0.0/0', '203.0.113.1', true],
  ])('%s holds %s: %s', (prefix, address, inside) => {
    expect(prefixContains(parseAddressWithLength(prefix)!, parseIp(address)!)).toBe(inside);
  });

  it.each([
    ['fe80::1', true],
    ['febf:ffff::1', true],
    ['fec0::1', false],
    ['2001:db8::1', false],
    ['192.0.2.1', false],
  ])('%s is link-local: %s', (address, expected) => {
    expect(isLinkLocal(parseIp(address)!)).toBe(expected);
  });
});
