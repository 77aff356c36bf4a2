/**
 * The lab's topology as a pure plan: which network namespaces exist, which veth pairs join them,
 * every address and route, and which PoP each client network reaches first. Everything else in
 * the lab (the inventory, the routers' BIRD configs, the plumbing) is derived from this plan.
 *
 * ```
 *            c1            c2            c3          client networks 10.2.N.0/24 (client .2)
 *            |             |             |
 *            r1            r2            r3          client routers, BIRD, AS6510N (router .1 on the LAN)
 *           /|\           /|\           /|\          every router peers with every PoP: 10.1.NK.0/24,
 *     pop1  pop2  pop3 (each router sees all three)  router .1, PoP .2; eBGP + BFD
 *        \    |    /
 *         origin                                     10.3.K.0/24 (origin .1, PoP .2); origin on 10.0.0.1
 * ```
 *
 * Each PoP (AS6500K) puts the anycast address 198.51.100.1/32 on `lo` and announces
 * 198.51.100.0/24 to every router, prepending its own ASN (K − N) mod 3 times towards router N,
 * so router N prefers PoP N, then PoP N+1, then PoP N+2: each client network's nearest PoP is a
 * different one, and its fallback order is fixed (no equal paths, so no ECMP, no tie-breaking by
 * router id). PoPs reach the clients and the origin through static routes, never through BGP:
 * the way back must not depend on what is being tested.
 *
 * Only private (RFC 1918) addresses and the documentation prefix 198.51.100.0/24 (RFC 5737) are
 * used, all inside the lab's namespaces; the host's own interfaces and routes are never touched.
 */

/** Every lab namespace is named `anycdn-lab-<id>-<node>`; the id is unique per run. */
export const LAB_PREFIX = 'anycdn-lab-';

export const ANYCAST_PREFIX = '198.51.100.0/24';
export const ANYCAST_ADDRESS = '198.51.100.1';
export const ORIGIN_ADDRESS = '10.0.0.1';
export const ORIGIN_PORT = 8081;
/** The edges listen on port 80 of every address in their PoP, the anycast one included. */
export const EDGE_PORT = 80;
/** The file the lab's origin serves and every client requests, and its body. */
export const LAB_PATH = '/lab.txt';
export const LAB_BODY = 'anycdn lab: served through the anycast address\n';
export const LAB_URL = `http://${ANYCAST_ADDRESS}${LAB_PATH}`;

export interface Endpoint {
  /** Namespace name. */
  ns: string;
  /** Interface name inside that namespace. */
  ifname: string;
  /** Address with prefix length, e.g. 10.1.11.1/24. */
  address: string;
}

/** A veth pair between two namespaces. */
export interface Link {
  a: Endpoint;
  b: Endpoint;
}

export interface Route {
  ns: string;
  /** Destination prefix. */
  to: string;
  via: string;
}

export interface LabPop {
  /** PoP name in the inventory and in `X-Served-By` (`pop1/edge1`). */
  name: string;
  node: string;
  asn: number;
  routerId: string;
  ns: string;
}

export interface RouterPeer {
  pop: string;
  /** The router's own address on the link. */
  local: string;
  /** The PoP's address on the link (the BGP neighbour). */
  neighbour: string;
  /** The router's interface towards the PoP. */
  ifname: string;
  /** How many extra copies of its ASN the PoP puts on the path to this router. */
  prepend: number;
}

export interface LabRouter {
  name: string;
  asn: number;
  routerId: string;
  ns: string;
  peers: RouterPeer[];
}

export interface LabClient {
  name: string;
  ns: string;
  address: string;
  router: string;
  /** PoP names from nearest to farthest (by AS-path length). */
  preference: string[];
}

export interface LabPlan {
  id: string;
  prefix: string;
  origin: { ns: string };
  pops: LabPop[];
  routers: LabRouter[];
  clients: LabClient[];
  links: Link[];
  routes: Route[];
  /** Namespaces that forward packets (the routers). */
  forwarding: string[];
  /** Every namespace, in creation order. */
  namespaces: string[];
}

/** A run id: letters, digits and `-`, so names stay plain in `ip netns list` and file paths. */
export function isLabId(id: string): boolean {
  return /^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(id) && id.length <= 40;
}

/** The plan for `pops` PoPs and as many client networks (1 to 9 each). */
export function labPlan(id: string, size = 3): LabPlan {
  if (!isLabId(id)) throw new Error(`lab id ${JSON.stringify(id)}: lower-case letters, digits and single dashes, at most 40`);
  if (!Number.isInteger(size) || size < 1 || size > 9) throw new Error(`lab size ${size}: 1 to 9 PoPs`);
  const prefix = `${LAB_PREFIX}${id}-`;
  const ns = (name: string): string => `${prefix}${name}`;
  const indexes = Array.from({ length: size }, (_, i) => i + 1);
  const pops: LabPop[] = indexes.map((k) => ({ name: `pop${k}`, node: `edge${k}`, asn: 65000 + k, routerId: `10.0.1.${k}`, ns: ns(`pop${k}`) }));
  const origin = { ns: ns('origin') };
  const links: Link[] = [];
  const routes: Route[] = [];
  const routers: LabRouter[] = indexes.map((n) => {
    const peers = indexes.map((k): RouterPeer => {
      const subnet = `10.1.${n}${k}`;
      links.push({ a: { ns: ns(`r${n}`), ifname: `pop${k}`, address: `${subnet}.1/24` }, b: { ns: ns(`pop${k}`), ifname: `r${n}`, address: `${subnet}.2/24` } });
      // The PoP answers clients of this router's network through it.
      routes.push({ ns: ns(`pop${k}`), to: `10.2.${n}.0/24`, via: `${subnet}.1` });
      return { pop: `pop${k}`, local: `${subnet}.1`, neighbour: `${subnet}.2`, ifname: `pop${k}`, prepend: (((k - n) % size) + size) % size };
    });
    return { name: `r${n}`, asn: 65100 + n, routerId: `10.0.2.${n}`, ns: ns(`r${n}`), peers };
  });
  const clients: LabClient[] = indexes.map((n) => {
    links.push({ a: { ns: ns(`r${n}`), ifname: 'lan', address: `10.2.${n}.1/24` }, b: { ns: ns(`c${n}`), ifname: 'lan', address: `10.2.${n}.2/24` } });
    routes.push({ ns: ns(`c${n}`), to: 'default', via: `10.2.${n}.1` });
    const router = routers[n - 1]!;
    const preference = [...router.peers].sort((x, y) => x.prepend - y.prepend).map((p) => p.pop);
    return { name: `c${n}`, ns: ns(`c${n}`), address: `10.2.${n}.2`, router: router.name, preference };
  });
  for (const k of indexes) {
    links.push({ a: { ns: origin.ns, ifname: `pop${k}`, address: `10.3.${k}.1/24` }, b: { ns: ns(`pop${k}`), ifname: 'origin', address: `10.3.${k}.2/24` } });
    routes.push({ ns: ns(`pop${k}`), to: `${ORIGIN_ADDRESS}/32`, via: `10.3.${k}.1` });
  }
  return {
    id,
    prefix,
    origin,
    pops,
    routers,
    clients,
    links,
    routes,
    forwarding: routers.map((r) => r.ns),
    namespaces: [origin.ns, ...pops.map((p) => p.ns), ...routers.map((r) => r.ns), ...clients.map((c) => c.ns)],
  };
}

/** The id of a lab namespace name, or undefined when the name is not one of ours. */
export function labIdOf(namespace: string): string | undefined {
  if (!namespace.startsWith(LAB_PREFIX)) return undefined;
  const rest = namespace.slice(LAB_PREFIX.length);
  const cut = rest.lastIndexOf('-');
  if (cut <= 0) return undefined;
  const id = rest.slice(0, cut);
  return isLabId(id) ? id : undefined;
}

/** `X-Served-By` of a PoP's edge. */
export function servedBy(pop: LabPop): string {
  return `${pop.name}/${pop.node}`;
}
