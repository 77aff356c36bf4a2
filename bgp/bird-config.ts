/**
 * bird.conf for one node, as a pure function of the inventory. What it guarantees:
 *
 * - Fail-closed: each neighbour's export filter accepts only the anycast prefixes of our own
 *   static protocols, and only while the announce include (announce.ts) says so.
 * - Draining adds GRACEFUL_SHUTDOWN (RFC 8326 §3: 65535:0; on iBGP also LOCAL_PREF 0, §4).
 * - Nothing is imported unless the node asks (`kernelImport`); our own prefixes never are.
 * - BFD on every session by default; timers, prepends, MEDs and passwords per the inventory.
 * - `log stderr all` (BIRD in the foreground says nothing on a fatal error otherwise) and an
 *   explicit router id (BIRD cannot choose one without a non-loopback IPv4 address).
 * - Every name BIRD sees is a fixed `anycdn_` prefix plus a sanitised id: user-chosen names such
 *   as `client` are BIRD keywords.
 */
import { ANNOUNCE_SYMBOL, GSHUT_SYMBOL } from './announce.js';
import type { Inventory, InventoryNode, Neighbour, Pop } from './inventory.js';
import { formatIp, formatPrefix, isLinkLocal, prefixContains, type IpFamily } from './ip.js';

/** Where the node's files live once installed (from `paths` in the inventory). */
export function announceFilePath(inv: Inventory): string {
  return `${inv.paths.state}/announce.conf`;
}

/** BIRD's protocol name for the neighbour at `index` (0-based). */
export function peerProtocolName(neighbour: Neighbour, index: number): string {
  const label = neighbour.name === undefined ? '' : `_${neighbour.name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
  return `anycdn_peer${index + 1}${label}`;
}

const prefixSet = (family: IpFamily): string => `ANYCDN_ANYCAST${family}`;
const staticProtocol = (family: IpFamily): string => `anycdn_anycast${family}`;
const channel = (family: IpFamily): string => (family === 4 ? 'ipv4' : 'ipv6');

export function renderBirdConfig(inv: Inventory, pop: Pop, node: InventoryNode): string {
  const families = ([4, 6] as const).filter((f) => inv.anycast.prefixes.some((p) => p.family === f));
  const usesBfd = node.neighbours.some((n) => n.bfd ?? inv.bfd.enabled);
  const sections = [
    header(pop, node),
    [
      'log stderr all;',
      `router id ${node.routerId};`,
      '',
      `# ${ANNOUNCE_SYMBOL} (0 withdrawn, 1 announced) and ${GSHUT_SYMBOL} (1: graceful shutdown, RFC 8326),`,
      '# rewritten by anycdn bgp agent and read again on every `configure`.',
      `include "${announceFilePath(inv)}";`,
    ].join('\n'),
    families.map((f) => `define ${prefixSet(f)} = [ ${inv.anycast.prefixes.filter((p) => p.family === f).map(formatPrefix).join(', ')} ];`).join('\n'),
    'protocol device anycdn_device {\n  scan time 10;\n}',
    '# The anycast prefixes, in BIRD\'s table only (no kernel protocol exports them).\n' +
      families
        .map(
          (f) =>
            `protocol static ${staticProtocol(f)} {\n  ${channel(f)};\n` +
            inv.anycast.prefixes
              .filter((p) => p.family === f)
              .map((p) => `  route ${formatPrefix(p)} blackhole;\n`)
              .join('') +
            '}',
        )
        .join('\n\n'),
    ...(usesBfd ? ['protocol bfd anycdn_bfd {\n}'] : []),
    ...(node.kernelImport ? families.map((f) => kernelSection(inv, f)) : []),
    ...node.neighbours.flatMap((n, i) => [exportFilter(pop, n, i), bgpProtocol(inv, pop, node, n, i)]),
  ];
  return sections.join('\n\n') + '\n';
}

function header(pop: Pop, node: InventoryNode): string {
  return [
    `# BIRD 2 configuration of anycdn node ${node.name} in PoP ${pop.name} (AS${pop.asn}).`,
    '# Rendered by `anycdn bgp render` from the inventory: change the inventory and render again.',
  ].join('\n');
}

function kernelSection(inv: Inventory, family: IpFamily): string {
  const ours = inv.anycast.prefixes.filter((p) => p.family === family).map((p) => `${formatPrefix(p)}+`);
  return [
    '# Routes learnt from neighbours go to the kernel (kernelImport); our own prefixes never do.',
    `filter anycdn_import${family} {`,
    `  if net ~ [ ${ours.join(', ')} ] then reject;`,
    '  accept;',
    '}',
    '',
    `protocol kernel anycdn_kernel${family} {`,
    `  ${channel(family)} {`,
    '    import none;',
    '    export where source = RTS_BGP;',
    '  };',
    '}',
  ].join('\n');
}

function exportFilter(pop: Pop, n: Neighbour, index: number): string {
  const family = n.address.family;
  const lines = [
    `filter anycdn_export_peer${index + 1} {`,
    `  if ${ANNOUNCE_SYMBOL} != 1 then reject;`,
    `  if proto != "${staticProtocol(family)}" then reject;`,
    `  if net !~ ${prefixSet(family)} then reject;`,
  ];
  for (let i = 0; i < n.prepend; i++) lines.push(`  bgp_path.prepend(${pop.asn});`);
  if (n.med !== undefined) lines.push(`  bgp_med = ${n.med};`);
  const internal = n.asn === pop.asn;
  lines.push(
    internal
      ? `  if ${GSHUT_SYMBOL} = 1 then { bgp_community.add((65535, 0)); bgp_local_pref = 0; }`
      : `  if ${GSHUT_SYMBOL} = 1 then bgp_community.add((65535, 0));`,
  );
  lines.push('  accept;', '}');
  return lines.join('\n');
}

/** The local address of a direct session: the node's address on the neighbour's subnet. */
function sourceAddressOf(node: InventoryNode, n: Neighbour): string | undefined {
  if (n.sourceAddress !== undefined) return formatIp(n.sourceAddress);
  if (n.multihop !== undefined || isLinkLocal(n.address)) return undefined;
  for (const itf of node.interfaces) {
    if (n.interface !== undefined && itf.name !== n.interface) continue;
    const own = itf.addresses.find((a) => prefixContains(a, n.address));
    if (own !== undefined) return formatIp(own);
  }
  return undefined;
}

function bgpProtocol(inv: Inventory, pop: Pop, node: InventoryNode, n: Neighbour, index: number): string {
  const { sessions, bfd } = inv;
  const address = formatIp(n.address);
  const internal = n.asn === pop.asn;
  const source = sourceAddressOf(node, n);
  const lines = [
    `protocol bgp ${peerProtocolName(n, index)} {`,
    `  description "${n.name === undefined ? '' : `${n.name} `}${address} AS${n.asn}";`,
    `  local as ${pop.asn};`,
    `  neighbor ${address} as ${n.asn};`,
  ];
  if (source !== undefined) lines.push(`  source address ${source};`);
  if (n.interface !== undefined) lines.push(`  interface "${n.interface}";`);
  if (n.multihop !== undefined) lines.push(`  multihop ${n.multihop};`);
  else if (internal) lines.push('  direct;'); // BIRD's default for iBGP is multihop
  if (n.password !== undefined) lines.push(`  password "${n.password}";`);
  lines.push(`  hold time ${sessions.holdTime / 1000};`);
  if (sessions.keepaliveTime !== undefined) lines.push(`  keepalive time ${sessions.keepaliveTime / 1000};`);
  lines.push(
    `  connect delay time ${sessions.connectDelayTime / 1000};`,
    `  connect retry time ${sessions.connectRetryTime / 1000};`,
    `  error wait time ${sessions.errorWaitTime.min / 1000}, ${sessions.errorWaitTime.max / 1000};`,
  );
  if (n.bfd ?? bfd.enabled) {
    // `idle tx interval` (BIRD's default 1 s) is what a session advertises while not Up, and the
    // peer times out a session at multiplier x that rate. A stale session of a BIRD that was
    // stopped and resumed may briefly be answered by a peer before BIRD replaces it; with the
    // default the peer keeps that ghost Up for seconds, then drops the re-established BGP session.
    // At the BFD interval the ghost expires before BGP comes back.
    lines.push(`  bfd { min rx interval ${bfd.interval} ms; min tx interval ${bfd.interval} ms; idle tx interval ${bfd.interval} ms; multiplier ${bfd.multiplier}; };`);
  }
  const family = n.address.family;
  lines.push(
    `  ${channel(family)} {`,
    node.kernelImport ? `    import filter anycdn_import${family};` : '    import none;',
    `    export filter anycdn_export_peer${index + 1};`,
    '  };',
    '}',
  );
  return lines.join('\n');
}
