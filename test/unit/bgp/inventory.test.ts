import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { CdnError } from '../../../src/errors.js';
import { inventorySchema } from '../../../bgp/inventory.js';

/** A small valid inventory; each case below breaks one thing. */
function base(): any {
  return {
    anycast: { prefixes: ['203.0.113.0/24', '2001:db8:ac::/48'] },
    origin: { url: 'https://origin.example.net/' },
    pops: [
      {
        name: 'ams',
        asn: 65001,
        nodes: [
          {
            name: 'ams-1',
            routerId: '192.0.2.2',
            interfaces: [{ name: 'eth0', addresses: ['192.0.2.2/29', '2001:db8:a::2/64'] }],
            neighbours: [
              { address: '192.0.2.1', asn: 65101, password: { env: 'PW' } },
              { address: '2001:db8:a::1', asn: 65101 },
            ],
          },
          {
            name: 'ams-2',
            routerId: '192.0.2.3',
            interfaces: [{ name: 'eth0', addresses: ['192.0.2.3/29'] }],
            neighbours: [{ address: '192.0.2.1', asn: 65101 }],
          },
        ],
      },
      {
        name: 'fra',
        asn: 4200000002,
        nodes: [
          {
            name: 'fra-1',
            routerId: '192.0.2.10',
            interfaces: [{ name: 'eth0', addresses: ['192.0.2.10/29'] }, { name: 'eth1', addresses: ['2001:db8:f::10/64'] }],
            neighbours: [{ address: 'fe80::1', interface: 'eth1', asn: 65102 }],
          },
        ],
      },
    ],
  };
}

const env = { PW: 'secret' };

function problem(raw: unknown, environment: Record<string, string> = env): { field: string | undefined; message: string } {
  try {
    validateConfig(inventorySchema, raw, 'inventory.yaml', environment);
  } catch (err) {
    expect(err).toBeInstanceOf(CdnError);
    return { field: (err as CdnError).field, message: (err as CdnError).message };
  }
  throw new Error('expected the inventory to be refused');
}

function edit(change: (inv: any) => void): unknown {
  const inv = base();
  change(inv);
  return inv;
}

describe('inventory: valid', () => {
  it('parses with bounded defaults, secrets read from the environment', () => {
    const inv = validateConfig(inventorySchema, base(), 'inventory.yaml', env);
    expect(inv.origin.url).toBe('https://origin.example.net');
    expect(inv.edge).toEqual({ listen: { host: '0.0.0.0', port: 80 }, cacheDir: '/var/cache/anycdn', workers: 1 });
    expect(inv.health).toEqual({ interval: 1000, timeout: 1000, rise: 3, fall: 2 });
    expect(inv.damping).toEqual({ maxFlips: 4, window: 300_000, holdDown: 600_000 });
    expect(inv.drain).toEqual({ time: 30_000, gracefulShutdown: 5000, convergenceMargin: 10_000 });
    expect(inv.bfd).toEqual({ enabled: true, interval: 100, multiplier: 3 });
    expect(inv.sessions).toEqual({ holdTime: 90_000, connectDelayTime: 5000, connectRetryTime: 30_000, errorWaitTime: { min: 10_000, max: 300_000 } });
    expect(inv.paths).toEqual({ config: '/etc/anycdn', state: '/var/lib/anycdn-bgp', run: '/run/anycdn-bird' });
    expect(inv.pops[0]!.nodes[0]!.neighbours[0]).toEqual({ address: { family: 4, value: 0xc0000201n }, asn: 65101, password: 'secret', prepend: 0 });
    expect(inv.pops[0]!.nodes[0]!.kernelImport).toBe(false);
  });

  it('accepts a multihop neighbour with a source address, off every subnet', () => {
    const inv = validateConfig(
      inventorySchema,
      edit((i) => (i.pops[0].nodes[1].neighbours = [{ address: '198.51.100.1', asn: 65101, multihop: 2, sourceAddress: '192.0.2.3' }])),
      'inventory.yaml',
      env,
    );
    expect(inv.pops[0]!.nodes[1]!.neighbours[0]!.multihop).toBe(2);
  });

  it('takes a stall limit as given, and as short as the interval', () => {
    const parse = (health: unknown) => validateConfig(inventorySchema, edit((i) => (i.health = health)), 'inventory.yaml', env).health.stallLimit;
    expect(parse({ stallLimit: '10s' })).toBe(10_000);
    expect(parse({ interval: '2s', timeout: '1s', stallLimit: '2s' })).toBe(2000);
    expect(parse({})).toBeUndefined();
  });

  it('accepts a drain exactly as long as detection, graceful shutdown and convergence', () => {
    const raw = edit((i) => (i.drain = { time: '17s', gracefulShutdown: '5s', convergenceMargin: '10s' }));
    expect(validateConfig(inventorySchema, raw, 'inventory.yaml', env).drain.time).toBe(17_000);
  });
});

describe('inventory: refused, naming the file and the field', () => {
  const nbr = 'pops.0.nodes.0.neighbours';
  it.each<[string, (inv: any) => void, string, string]>([
    ['a prefix with host bits', (i) => (i.anycast.prefixes[0] = '203.0.113.1/24'), 'anycast.prefixes.0', '203.0.113.1/24 has host bits set (did you mean 203.0.113.0/24?)'],
    ['an IPv6 prefix with host bits', (i) => (i.anycast.prefixes[1] = '2001:db8:ac::1/48'), 'anycast.prefixes.1', '2001:db8:ac::1/48 has host bits set (did you mean 2001:db8:ac::/48?)'],
    ['a prefix that is none', (i) => (i.anycast.prefixes[0] = '203.0.113.0/40'), 'anycast.prefixes.0', 'expected an IPv4 or IPv6 prefix such as 198.51.100.0/24 or 2001:db8::/48, got "203.0.113.0/40"'],
    ['a prefix twice', (i) => i.anycast.prefixes.push('2001:0db8:00ac::/48'), 'anycast.prefixes.2', 'prefix 2001:db8:ac::/48 is listed twice'],
    ['no prefix', (i) => (i.anycast.prefixes = []), 'anycast.prefixes', 'Too small: expected array to have >=1 items'],
    ['AS 0', (i) => (i.pops[0].asn = 0), 'pops.0.asn', 'expected an AS number from 1 to 4294967295, got 0'],
    ['AS 23456', (i) => (i.pops[1].asn = 23456), 'pops.1.asn', 'AS 23456 is AS_TRANS (RFC 6793), reserved: not a usable AS number'],
    ['an AS beyond 32 bits', (i) => (i.pops[0].nodes[0].neighbours[0].asn = 4294967296), `${nbr}.0.asn`, 'expected an AS number from 1 to 4294967295, got 4294967296'],
    ['a fractional AS', (i) => (i.pops[0].asn = 65001.5), 'pops.0.asn', 'expected an AS number from 1 to 4294967295, got 65001.5'],
    ['an AS as text', (i) => (i.pops[0].asn = 'AS65001'), 'pops.0.asn', 'expected an AS number (1 to 4294967295)'],
    ['duplicate PoP names', (i) => (i.pops[1].name = 'ams'), 'pops.1.name', 'duplicate PoP name "ams"'],
    ['duplicate node names across PoPs', (i) => (i.pops[1].nodes[0].name = 'ams-2'), 'pops.1.nodes.0.name', 'duplicate node name "ams-2"'],
    ['duplicate router ids', (i) => (i.pops[1].nodes[0].routerId = '192.0.2.2'), 'pops.1.nodes.0.routerId', 'duplicate router id 192.0.2.2 (every BIRD needs its own)'],
    ['an IPv6 router id', (i) => (i.pops[0].nodes[0].routerId = '2001:db8::1'), 'pops.0.nodes.0.routerId', 'expected a non-zero IPv4 address (BIRD\'s router id), got "2001:db8::1"'],
    ['router id 0.0.0.0', (i) => (i.pops[0].nodes[0].routerId = '0.0.0.0'), 'pops.0.nodes.0.routerId', 'expected a non-zero IPv4 address (BIRD\'s router id), got "0.0.0.0"'],
    ['a node name BIRD or X-Served-By cannot carry', (i) => (i.pops[0].nodes[0].name = 'ams 1'), 'pops.0.nodes.0.name', 'letters, digits, _, . and - (1–64)'],
    ['a neighbour on no subnet', (i) => (i.pops[0].nodes[0].neighbours[0].address = '192.0.2.9'), `${nbr}.0.address`, "192.0.2.9 is not on any of this node's subnets (eth0 192.0.2.2/29, eth0 2001:db8:a::2/64); set multihop for a neighbour further away"],
    ['a neighbour not on its interface', (i) => { i.pops[1].nodes[0].neighbours = [{ address: '192.0.2.9', interface: 'eth1', asn: 65102 }]; i.pops[1].nodes[0].interfaces[1].addresses.push('192.0.2.20/30'); }, 'pops.1.nodes.0.neighbours.0.address', '192.0.2.9 is not on a subnet of eth1 (eth0 192.0.2.10/29, eth1 2001:db8:f::10/64, eth1 192.0.2.20/30); set multihop for a neighbour further away'],
    ['a neighbour on an interface the node lacks', (i) => (i.pops[0].nodes[0].neighbours[0].interface = 'eth7'), `${nbr}.0.interface`, 'no interface "eth7" on this node (it has eth0)'],
    ['a link-local neighbour without interface', (i) => delete i.pops[1].nodes[0].neighbours[0].interface, 'pops.1.nodes.0.neighbours.0.interface', 'required for the link-local neighbour fe80::1'],
    ['the node\'s own address as neighbour', (i) => (i.pops[0].nodes[0].neighbours[0].address = '192.0.2.2'), `${nbr}.0.address`, "192.0.2.2 is this node's own address"],
    ['a neighbour twice', (i) => (i.pops[0].nodes[0].neighbours[1].address = '192.0.2.1'), `${nbr}.1.address`, 'neighbour 192.0.2.1 is listed twice'],
    ['a neighbour of a family with no prefix', (i) => (i.anycast.prefixes = ['203.0.113.0/24']), `${nbr}.1.address`, 'an IPv6 neighbour, but anycast.prefixes has no IPv6 prefix to announce to it'],
    ['a source address the node does not have', (i) => (i.pops[0].nodes[0].neighbours[0].sourceAddress = '192.0.2.5'), `${nbr}.0.sourceAddress`, "192.0.2.5 is none of this node's addresses (eth0 192.0.2.2/29, eth0 2001:db8:a::2/64)"],
    ['a source address of the other family', (i) => (i.pops[0].nodes[0].neighbours[0].sourceAddress = '2001:db8:a::2'), `${nbr}.0.sourceAddress`, '2001:db8:a::2 is IPv6, the neighbour IPv4'],
    ['multihop without a source address', (i) => (i.pops[0].nodes[0].neighbours[0].multihop = 2), `${nbr}.0.sourceAddress`, 'required with multihop: a session that is not direct needs a stable source address'],
    ['a password BIRD cannot quote', (i) => (i.pops[0].nodes[0].neighbours[0].password = 'a"b'), `${nbr}.0.password`, 'a BGP password is 1 to 80 printable ASCII characters without " or \\'],
    ['a password from an unset variable', (i) => (i.pops[0].nodes[0].neighbours[0].password = { env: 'NOPE' }), `${nbr}.0.password`, 'environment variable NOPE is not set'],
    ['an interface address without length', (i) => (i.pops[0].nodes[0].interfaces[0].addresses[0] = '192.0.2.2'), 'pops.0.nodes.0.interfaces.0.addresses.0', 'expected an interface address with its prefix length such as 192.0.2.11/24, got "192.0.2.2"'],
    ['an interface twice', (i) => i.pops[0].nodes[0].interfaces.push({ name: 'eth0', addresses: ['198.51.100.1/24'] }), 'pops.0.nodes.0.interfaces.1.name', 'interface "eth0" is listed twice'],
    ['a prepend beyond 10', (i) => (i.pops[0].nodes[0].neighbours[0].prepend = 11), `${nbr}.0.prepend`, 'Too big: expected number to be <=10'],
    ['an unknown neighbour key', (i) => (i.pops[0].nodes[0].neighbours[0].weight = 5), `${nbr}.0.weight`, 'unknown key'],
    [
      'a drain shorter than the agent needs',
      (i) => (i.drain = { time: '10s' }),
      'drain.time',
      '10s is shorter than health.interval + health.timeout + drain.gracefulShutdown + drain.convergenceMargin = 1s + 1s + 5s + 10s = 17s',
    ],
    [
      'a drain shorter than slow probes need',
      (i) => { i.health = { interval: '5s', timeout: '2s' }; i.drain = { time: '19s', gracefulShutdown: '2500ms', convergenceMargin: '10s' }; },
      'drain.time',
      '19s is shorter than health.interval + health.timeout + drain.gracefulShutdown + drain.convergenceMargin = 5s + 2s + 2.5s + 10s = 19.5s',
    ],
    ['a stall limit shorter than the interval', (i) => (i.health = { interval: '1s', stallLimit: '999ms' }), 'health.stallLimit', '999ms is shorter than health.interval (1s): an agent waiting for its next probe is not stalled'],
    ['a stall limit over an hour', (i) => (i.health = { stallLimit: '61m' }), 'health.stallLimit', 'Too big: expected number to be <=3600000'],
    ['a probe timeout longer than the interval', (i) => (i.health = { interval: '1s', timeout: '1500ms' }), 'health.timeout', '1.5s is longer than health.interval (1s): probes run one at a time'],
    ['a hold time of 2 s', (i) => (i.sessions = { holdTime: '2s' }), 'sessions.holdTime', 'must be 0 or at least 3s (RFC 4271 §4.2), got 2s'],
    ['a hold time in milliseconds', (i) => (i.sessions = { holdTime: '9500ms' }), 'sessions.holdTime', 'BGP timers are whole seconds'],
    ['a keepalive as long as the hold time', (i) => (i.sessions = { holdTime: '9s', keepaliveTime: '9s' }), 'sessions.keepaliveTime', 'must be at least 1s and shorter than sessions.holdTime (9s)'],
    ['error wait min above max', (i) => (i.sessions = { errorWaitTime: { min: '2m', max: '60s' } }), 'sessions.errorWaitTime.min', '2m is longer than errorWaitTime.max (1m)'],
    ['a relative path', (i) => (i.paths = { state: 'var/lib' }), 'paths.state', 'an absolute path of letters, digits, ., _, - and /'],
  ])('%s', (_what, change, field, message) => {
    const p = problem(edit(change));
    expect(p.field).toBe(field);
    expect(p.message).toBe(`inventory.yaml: ${field}: ${message}`);
  });
});
