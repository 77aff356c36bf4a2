/**
 * The anycast inventory (`anycdn bgp render --inventory FILE`): one file describing a whole
 * deployment — the anycast prefixes, the origin, every PoP with its ASN, every node with its router
 * id, interfaces and BGP neighbours, and the timings of health checks, BFD, sessions and drains.
 * The schema checks each field; `inventory-checks.ts` checks how fields relate (duplicates,
 * neighbours on no subnet, a drain too short for the agent to withdraw in time). Errors name the
 * file and the field path, like every other config.
 */
import { z } from 'zod';
import { duration, listenAddress } from '../src/config/common.js';
import { secret } from '../src/config/load.js';
import { checkInventory } from './inventory-checks.js';
import { formatIp, parseAddressWithLength, parseIp, parsePrefix, type IpAddress, type IpPrefix } from './ip.js';

/** RFC 6793: 23456 is AS_TRANS, the placeholder old speakers see; 0 is reserved (RFC 7607). */
export const asNumber = z.number({ error: 'expected an AS number (1 to 4294967295)' }).superRefine((n, ctx) => {
  if (!Number.isInteger(n) || n < 1 || n > 4294967295) {
    ctx.addIssue({ code: 'custom', message: `expected an AS number from 1 to 4294967295, got ${n}` });
  } else if (n === 23456) {
    ctx.addIssue({ code: 'custom', message: 'AS 23456 is AS_TRANS (RFC 6793), reserved: not a usable AS number' });
  }
});

const routePrefix = z.string().transform((text, ctx): IpPrefix => {
  const parsed = parsePrefix(text.trim());
  if (!parsed.ok) {
    ctx.addIssue({ code: 'custom', message: parsed.reason });
    return z.NEVER;
  }
  return parsed.prefix;
});

const ipAddress = z.string().transform((text, ctx): IpAddress => {
  const address = parseIp(text.trim());
  if (address === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected an IPv4 or IPv6 address, got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return address;
});

const interfaceAddress = z.string().transform((text, ctx): IpPrefix => {
  const address = parseAddressWithLength(text.trim());
  if (address === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected an interface address with its prefix length such as 192.0.2.11/24, got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return address;
});

/** BIRD's router id is an IPv4 address; it is always rendered (BIRD cannot pick one without a non-loopback IPv4 address). */
const routerId = z.string().transform((text, ctx): string => {
  const address = parseIp(text.trim());
  if (address === undefined || address.family !== 4 || address.value === 0n) {
    ctx.addIssue({ code: 'custom', message: `expected a non-zero IPv4 address (BIRD's router id), got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return formatIp(address);
});

/** Whole seconds: BIRD's BGP timers take seconds. */
const seconds = duration.pipe(z.number().refine((ms) => ms % 1000 === 0, 'BGP timers are whole seconds'));

/** An absolute path that can sit unquoted in a systemd unit and quoted in bird.conf. */
const absolutePath = z.string().regex(/^\/[A-Za-z0-9._/-]*$/, 'an absolute path of letters, digits, ., _, - and /');

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'expected an http:// or https:// URL')
  .transform((u) => u.replace(/\/+$/, ''));

/** Linux interface names: at most 15 bytes, no slash or whitespace (IFNAMSIZ). */
const interfaceName = z.string().regex(/^[A-Za-z0-9_.:@-]{1,15}$/, 'an interface name: 1 to 15 letters, digits, _, ., :, @ or -');

/** RFC 2385 TCP MD5 keys are at most 80 bytes; BIRD strings have no escapes, so no `"` or `\`. */
const bgpPassword = secret.pipe(
  z.string().regex(/^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,80}$/, 'a BGP password is 1 to 80 printable ASCII characters without " or \\'),
);

const neighbourSchema = z.strictObject({
  /** A label for logs and `birdc show protocols` (rendered as `anycdn_peerN_<label>`). Default none. */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,24}$/, 'letters, digits, _, . and - (1–24)').optional(),
  /** The neighbour's address: on one of the node's subnets, or link-local with `interface`. */
  address: ipAddress,
  asn: asNumber,
  /** TCP MD5 password (RFC 2385), inline or `{ env: NAME }` read when rendering. Default none. */
  password: bgpPassword.optional(),
  /** Extra copies of the PoP's ASN on the AS path to this neighbour: a less preferred path. Default 0. */
  prepend: z.number().int().min(0).max(10).default(0),
  /** MED sent to this neighbour (lower is preferred, RFC 4271 §5.1.4). Default none. */
  med: z.number().int().min(0).max(4294967295).optional(),
  /** The interface the neighbour is on (required for a link-local address). Default: the one whose subnet holds it. */
  interface: interfaceName.optional(),
  /** The local address of the session; one of the node's addresses. Default: the node's address on the neighbour's subnet. */
  sourceAddress: ipAddress.optional(),
  /** A neighbour that is not directly connected, this many hops away (then `sourceAddress` is required). Default: direct. */
  multihop: z.number().int().min(1).max(255).optional(),
  /** BFD on this session. Default: `bfd.enabled`. */
  bfd: z.boolean().optional(),
});

const nodeSchema = z.strictObject({
  /** The node's name, unique in the inventory (X-Served-By: pop/node). */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _, . and - (1–64)'),
  routerId,
  interfaces: z
    .array(
      z.strictObject({
        name: interfaceName,
        /** The interface's addresses with their prefix lengths, e.g. 192.0.2.11/26. */
        addresses: z.array(interfaceAddress).min(1),
      }),
    )
    .min(1),
  neighbours: z.array(neighbourSchema).min(1),
  /**
   * Install the routes neighbours send into the kernel. Default false: import none, BIRD only
   * announces (the host keeps its own default route).
   */
  kernelImport: z.boolean().default(false),
});

const popSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - (1–32)'),
  asn: asNumber,
  /** Where this PoP's edges pull from (a shield). Default: `origin.url`. */
  upstream: httpUrl.optional(),
  nodes: z.array(nodeSchema).min(1),
});

const inventoryFields = z.strictObject({
  anycast: z.strictObject({
    /** The prefixes every healthy node announces (IPv4 and/or IPv6). */
    prefixes: z.array(routePrefix).min(1),
  }),
  origin: z.strictObject({ url: httpUrl }),
  edge: z
    .strictObject({
      /** Where each edge listens. Default 0.0.0.0:80. */
      listen: listenAddress.default({ host: '0.0.0.0', port: 80 }),
      cacheDir: absolutePath.default('/var/cache/anycdn'),
      workers: z.number().int().min(1).max(64).default(1),
      /** The environment variable holding each edge's admin token (edge.yaml gets `{ env: NAME }`). Default none. */
      adminTokenEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
      /**
       * The environment variable holding the edge token of the origin's purge stream: edge.yaml
       * gets `edgeToken: { env: NAME }` and `purgeFrom: <origin.url>` (the stream comes from the
       * origin even where a PoP's upstream is a shield). Default none: edges follow no purges.
       */
      edgeTokenEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
    })
    .prefault({}),
  health: z
    .strictObject({
      /** Time between two probes of /_cdn/healthz. Default 1 s. */
      interval: duration.pipe(z.number().min(100, 'at least 100ms')).default(1000),
      /** A probe without an answer in this time fails. Default 1 s. */
      timeout: duration.pipe(z.number().min(10, 'at least 10ms')).default(1000),
      /** Successes in a row before announcing. Default 3. */
      rise: z.number().int().min(1).max(100).default(3),
      /** Failures in a row before withdrawing. Default 2. */
      fall: z.number().int().min(1).max(100).default(2),
      /**
       * The agent not having run for longer than this (its host or processes stopped or starved,
       * then resumed) makes the edge's health unknown: withdrawn at once until `rise` new passing
       * probes (agent.yaml `health.stallLimit`). Default: not rendered, so the agent's own default
       * applies, fall × interval (the time in which a hung edge would have been withdrawn). Longer
       * on hosts whose processes may go unscheduled for that long without anything being wrong.
       */
      stallLimit: duration.pipe(z.number().max(3_600_000)).optional(),
    })
    .prefault({}),
  damping: z
    .strictObject({
      /** More state changes than this within `window` keep the node withdrawn for `holdDown`. Default 4. */
      maxFlips: z.number().int().min(1).max(1000).default(4),
      window: duration.pipe(z.number().min(1000, 'at least 1s')).default(300_000),
      holdDown: duration.default(600_000),
    })
    .prefault({}),
  drain: z
    .strictObject({
      /** How long an edge keeps serving after its health turns 503 (edge.yaml `drain`). Default 30 s. */
      time: duration.default(30_000),
      /** How long the graceful-shutdown community (RFC 8326) is sent before the withdrawal. Default 5 s. */
      gracefulShutdown: duration.default(5_000),
      /** Time left for routers to converge after the withdrawal, before the edge stops. Default 10 s. */
      convergenceMargin: duration.default(10_000),
    })
    .prefault({}),
  bfd: z
    .strictObject({
      /** BFD on every session (both ends need it). Default true: a frozen node is noticed in under a second. */
      enabled: z.boolean().default(true),
      /** Transmit and receive interval. Default 100 ms. */
      interval: duration.pipe(z.number().int().min(10, 'at least 10ms').max(60_000)).default(100),
      /** Lost packets before the session is down. Default 3. */
      multiplier: z.number().int().min(1).max(255).default(3),
    })
    .prefault({}),
  sessions: z
    .strictObject({
      /** BGP hold time (0 or at least 3 s, RFC 4271 §4.2). Default 90 s. */
      holdTime: seconds.default(90_000),
      /** Keepalive interval. Default: a third of the hold time (BIRD's own default). */
      keepaliveTime: seconds.optional(),
      /** Delay before the first connection attempt. Default 5 s. */
      connectDelayTime: seconds.default(5_000),
      /** Delay before retrying a failed connection. Default 30 s. */
      connectRetryTime: seconds.default(30_000),
      /** Delay after a session error, growing from min to max on repeated errors. Default 10 s to 300 s. */
      errorWaitTime: z.strictObject({ min: seconds.default(10_000), max: seconds.default(300_000) }).prefault({}),
    })
    .prefault({}),
  agent: z
    .strictObject({
      /** Where each agent serves its Prometheus metrics (loopback). Default 127.0.0.1:9101. */
      metrics: listenAddress.default({ host: '127.0.0.1', port: 9101 }),
    })
    .prefault({}),
  paths: z
    .strictObject({
      /** Where edge.yaml, agent.yaml, bird.conf and the withdrawn announce.conf are installed. Default /etc/anycdn. */
      config: absolutePath.default('/etc/anycdn'),
      /** Where the agent keeps the live announce include. Default /var/lib/anycdn-bgp. */
      state: absolutePath.default('/var/lib/anycdn-bgp'),
      /** BIRD's control socket and pid file. Default /run/anycdn-bird. */
      run: absolutePath.default('/run/anycdn-bird'),
    })
    .prefault({}),
  pops: z.array(popSchema).min(1),
});

/** The inventory as its fields parse, before the checks of how they relate. */
export type InventoryFields = z.output<typeof inventoryFields>;

export const inventorySchema = inventoryFields.superRefine(checkInventory);

export type Inventory = z.output<typeof inventorySchema>;
export type Pop = Inventory['pops'][number];
export type InventoryNode = Pop['nodes'][number];
export type Neighbour = InventoryNode['neighbours'][number];
