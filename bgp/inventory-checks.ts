/**
 * How the inventory's fields relate: names and router ids unique, every neighbour reachable from
 * the node as configured (BIRD would otherwise wait forever for a subnet that never appears),
 * health timings the agent accepts, and a drain long enough for the agent to see it, send the
 * graceful-shutdown community, withdraw and let routers converge before the edge stops. Pure; each
 * issue carries the field path.
 */
import type { z } from 'zod';
import type { InventoryFields } from './inventory.js';
import { formatIp, formatPrefix, isLinkLocal, prefixContains, type IpAddress, type IpPrefix } from './ip.js';

type Path = (string | number)[];
type Node = InventoryFields['pops'][number]['nodes'][number];

/** `1500` → `1.5s`, `250` → `250ms`, `600000` → `10m`: durations as operators write them. */
export function formatDuration(ms: number): string {
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function checkInventory(inv: InventoryFields, ctx: z.RefinementCtx): void {
  const issue = (path: Path, message: string): void => ctx.addIssue({ code: 'custom', path, message });
  checkTimings(inv, issue);
  checkUnique(
    inv.anycast.prefixes.map((p, i) => [formatPrefix(p), ['anycast', 'prefixes', i]]),
    (text) => `prefix ${text} is listed twice`,
    issue,
  );
  checkUnique(
    inv.pops.map((p, i) => [p.name, ['pops', i, 'name']]),
    (name) => `duplicate PoP name "${name}"`,
    issue,
  );
  const nodes = inv.pops.flatMap((pop, i) => pop.nodes.map((node, j) => ({ node, path: ['pops', i, 'nodes', j] as Path })));
  checkUnique(
    nodes.map(({ node, path }) => [node.name, [...path, 'name']]),
    (name) => `duplicate node name "${name}"`,
    issue,
  );
  checkUnique(
    nodes.map(({ node, path }) => [node.routerId, [...path, 'routerId']]),
    (id) => `duplicate router id ${id} (every BIRD needs its own)`,
    issue,
  );
  const families = new Set(inv.anycast.prefixes.map((p) => p.family));
  for (const { node, path } of nodes) checkNode(node, path, families, issue);
}

type Issue = (path: Path, message: string) => void;

function checkUnique(entries: [string, Path][], message: (key: string) => string, issue: Issue): void {
  const seen = new Set<string>();
  for (const [key, path] of entries) {
    if (seen.has(key)) issue(path, message(key));
    seen.add(key);
  }
}

function checkTimings(inv: InventoryFields, issue: Issue): void {
  const { health, drain, sessions } = inv;
  if (health.timeout > health.interval) {
    issue(['health', 'timeout'], `${formatDuration(health.timeout)} is longer than health.interval (${formatDuration(health.interval)}): probes run one at a time`);
  }
  // As the agent's own schema checks it: rendered below the interval, agent.yaml would be refused at start.
  if (health.stallLimit !== undefined && health.stallLimit < health.interval) {
    issue(['health', 'stallLimit'], `${formatDuration(health.stallLimit)} is shorter than health.interval (${formatDuration(health.interval)}): an agent waiting for its next probe is not stalled`);
  }
  // From health turning 503 the agent needs up to one interval plus one timeout to see it, then
  // sends the graceful-shutdown community, withdraws, and routers need time to move away; the
  // edge must still be serving all along, or clients routed to it are refused.
  const needed = health.interval + health.timeout + drain.gracefulShutdown + drain.convergenceMargin;
  if (drain.time < needed) {
    const parts = [health.interval, health.timeout, drain.gracefulShutdown, drain.convergenceMargin].map(formatDuration).join(' + ');
    issue(
      ['drain', 'time'],
      `${formatDuration(drain.time)} is shorter than health.interval + health.timeout + drain.gracefulShutdown + drain.convergenceMargin = ${parts} = ${formatDuration(needed)}`,
    );
  }
  if (sessions.holdTime !== 0 && sessions.holdTime < 3000) {
    issue(['sessions', 'holdTime'], `must be 0 or at least 3s (RFC 4271 §4.2), got ${formatDuration(sessions.holdTime)}`);
  }
  if (sessions.keepaliveTime !== undefined && (sessions.keepaliveTime === 0 || (sessions.holdTime !== 0 && sessions.keepaliveTime >= sessions.holdTime))) {
    issue(['sessions', 'keepaliveTime'], `must be at least 1s and shorter than sessions.holdTime (${formatDuration(sessions.holdTime)})`);
  }
  if (sessions.errorWaitTime.min > sessions.errorWaitTime.max) {
    issue(['sessions', 'errorWaitTime', 'min'], `${formatDuration(sessions.errorWaitTime.min)} is longer than errorWaitTime.max (${formatDuration(sessions.errorWaitTime.max)})`);
  }
}

function checkNode(node: Node, path: Path, families: Set<number>, issue: Issue): void {
  checkUnique(
    node.interfaces.map((itf, i) => [itf.name, [...path, 'interfaces', i, 'name']]),
    (name) => `interface "${name}" is listed twice`,
    issue,
  );
  const own = node.interfaces.flatMap((itf) => itf.addresses.map((a) => ({ itf: itf.name, address: a })));
  const subnets = own.map(({ itf, address }) => `${itf} ${formatPrefix(address)}`).join(', ');
  checkUnique(
    node.neighbours.map((n, k) => [formatIp(n.address), [...path, 'neighbours', k, 'address']]),
    (address) => `neighbour ${address} is listed twice`,
    issue,
  );
  node.neighbours.forEach((n, k) => {
    const at = [...path, 'neighbours', k];
    const address = formatIp(n.address);
    if (!families.has(n.address.family)) {
      issue([...at, 'address'], `an IPv${n.address.family} neighbour, but anycast.prefixes has no IPv${n.address.family} prefix to announce to it`);
      return;
    }
    if (own.some((o) => sameAddress(o.address, n.address))) {
      issue([...at, 'address'], `${address} is this node's own address`);
      return;
    }
    if (n.interface !== undefined && !node.interfaces.some((itf) => itf.name === n.interface)) {
      issue([...at, 'interface'], `no interface "${n.interface}" on this node (it has ${node.interfaces.map((itf) => itf.name).join(', ')})`);
      return;
    }
    if (n.sourceAddress !== undefined) {
      const source = n.sourceAddress;
      if (source.family !== n.address.family) {
        issue([...at, 'sourceAddress'], `${formatIp(source)} is IPv${source.family}, the neighbour IPv${n.address.family}`);
        return;
      }
      if (!own.some((o) => sameAddress(o.address, source))) {
        issue([...at, 'sourceAddress'], `${formatIp(source)} is none of this node's addresses (${subnets})`);
        return;
      }
    }
    if (n.multihop !== undefined) {
      if (n.sourceAddress === undefined) issue([...at, 'sourceAddress'], 'required with multihop: a session that is not direct needs a stable source address');
      return;
    }
    if (isLinkLocal(n.address)) {
      if (n.interface === undefined) issue([...at, 'interface'], `required for the link-local neighbour ${address}`);
      return;
    }
    const candidates = own.filter((o) => n.interface === undefined || o.itf === n.interface);
    if (!candidates.some((o) => prefixContains(o.address, n.address))) {
      const where = n.interface === undefined ? "any of this node's subnets" : `a subnet of ${n.interface}`;
      issue([...at, 'address'], `${address} is not on ${where} (${subnets}); set multihop for a neighbour further away`);
    }
  });
}

function sameAddress(a: IpPrefix | IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}
