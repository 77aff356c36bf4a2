/**
 * The edge's configuration schema (`anycdn edge --config FILE`). Every cache and table has a byte
 * or count bound; the type is inferred from the schema; unknown keys are refused.
 */
import { z } from 'zod';
import { accessLogSchema } from '../src/config/access-log.js';
import { byteSize, duration, listenAddress, positiveByteSize } from '../src/config/common.js';
import { secret } from '../src/config/load.js';
import { edgeTlsSchema, upstreamTlsSchema } from '../src/config/tls.js';
import { MAX_WORKERS } from './cluster-protocol.js';

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'expected an http:// or https:// URL')
  .transform((u) => u.replace(/\/+$/, ''));

/**
 * A cache tier's bounds: `maxBytes`, the budget, and `maxEntrySize`, the largest object kept in
 * it. An object larger than the budget could never be kept, so an explicit `maxEntrySize` above
 * `maxBytes` is refused, naming both; left out, it is its default or the budget, whichever is
 * smaller (`disk: { maxBytes: 200MiB }` simply means entries up to 200 MiB).
 */
function tierSchema(tier: 'memory' | 'disk', defaults: { maxBytes: number; maxEntrySize: number }) {
  return z
    .strictObject({
      maxBytes: positiveByteSize.default(defaults.maxBytes),
      maxEntrySize: positiveByteSize.optional(),
    })
    .transform(({ maxBytes, maxEntrySize }, ctx) => {
      if (maxEntrySize !== undefined && maxEntrySize > maxBytes) {
        ctx.addIssue({ code: 'custom', path: ['maxEntrySize'], message: `must not exceed ${tier}.maxBytes (${maxBytes} bytes)` });
        return z.NEVER;
      }
      return { maxBytes, maxEntrySize: maxEntrySize ?? Math.min(defaults.maxEntrySize, maxBytes) };
    })
    .prefault({});
}

export const edgeConfigSchema = z.strictObject({
  /**
   * Address of the cleartext listener. Default 127.0.0.1:8080. `false`: none, HTTPS alone (needs
   * `tls`; the BGP agent then probes the https address).
   */
  listen: z.union([z.literal(false), listenAddress]).default({ host: '127.0.0.1', port: 8080 }),
  /**
   * Worker processes answering clients. Default 1: one process does everything. With N > 1 the
   * node runs N workers (each with its own memory tier of `memory.maxBytes`) over one shared disk
   * cache; they fetch from upstream themselves, coalesced across the node, so a cold object is
   * still fetched once (edge/cluster.ts). Use up to the number of cores.
   */
  workers: z.number().int().min(1).max(MAX_WORKERS).default(1),
  /** Base URL of the origin or of this PoP's shield. The edge fetches from nowhere else. */
  upstream: httpUrl,
  /**
   * HTTPS: a listener of its own beside `listen`, HTTP/2 and HTTP/1.1, certificates chosen by SNI
   * and reloaded when their files change (src/config/tls.ts). Default: none.
   */
  tls: edgeTlsSchema.optional(),
  /**
   * An https:// upstream's certificate is verified against Node's bundled roots plus `ca`, for the
   * upstream's host name (or `servername`); `cert` and `key` are a client certificate for an
   * origin that asks for one. Never a fallback to cleartext. Default: the roots alone.
   */
  upstreamTls: upstreamTlsSchema.optional(),
  /** Name of this point of presence (in X-Served-By and metrics). */
  pop: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - (1–32)'),
  /** Name of this node within the PoP. */
  node: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _, . and - (1–64)'),
  /** Folder of the disk cache. */
  cacheDir: z.string().min(1),
  /** The memory tier: per process (each of `workers` has its own). */
  memory: tierSchema('memory', {
    /** Memory tier budget. Default 256 MiB. */
    maxBytes: 256 * 1024 * 1024,
    /** Larger objects stream from disk and never sit whole in memory. Default 1 MiB. */
    maxEntrySize: 1024 * 1024,
  }),
  disk: tierSchema('disk', {
    /** Disk tier budget; least recently used objects are evicted beyond it. Default 10 GiB. */
    maxBytes: 10 * 1024 ** 3,
    /** Larger responses are passed through without being stored. Default 1 GiB. */
    maxEntrySize: 1024 ** 3,
  }),
  timeouts: z
    .strictObject({
      /** TCP connect to upstream. Default 3 s. */
      connect: duration.default(3_000),
      /** From request sent to response headers. Default 15 s (variants may take seconds to generate). */
      headers: duration.default(15_000),
      /** Longest silence while the body streams. Default 15 s. */
      bodyIdle: duration.default(15_000),
      /** A client connection with no traffic either way this long is closed (a stalled reader). Default 60 s. */
      clientIdle: duration.default(60_000),
    })
    .prefault({}),
  /** How long past expiry a stale copy may be served when upstream fails (unless the response forbids it). Default 1 h. */
  grace: duration.default(3_600_000),
  /** Lifetime of 404/410 answers that carry no freshness information. Default 10 s; 0 disables. */
  negativeTtl: duration.default(10_000),
  /** How long a key whose response was not cacheable skips coalescing (hit-for-miss). Default 30 s. */
  hitForMissTtl: duration.default(30_000),
  /** Heuristic freshness for responses with Last-Modified but no explicit lifetime (RFC 9111 §4.2.2). */
  heuristic: z
    .strictObject({
      fraction: z.number().min(0).max(1).default(0.1),
      max: duration.default(86_400_000),
    })
    .prefault({}),
  coalescing: z
    .strictObject({
      /** Clients waiting on one upstream fetch; more fetch on their own. Default 10000. */
      maxWaiters: z.number().int().min(1).max(1_000_000).default(10_000),
      /** Distinct keys being fetched at once; beyond it requests pass through uncoalesced. Default 10000. */
      maxInFlight: z.number().int().min(1).max(1_000_000).default(10_000),
    })
    .prefault({}),
  compression: z
    .strictObject({
      /** Compress text types with brotli/gzip when upstream did not. Default true. */
      enabled: z.boolean().default(true),
      /** Smaller bodies are not worth compressing. Default 1 KiB. */
      minBytes: byteSize.default(1024),
      /** Larger bodies are sent as they are. Default 8 MiB. */
      maxBytes: byteSize.default(8 * 1024 * 1024),
    })
    .prefault({}),
  /**
   * Largest `w`/`h` the edge lets through to upstream; must match the origin's
   * `images.maxOutputDimension`. Image parameters are checked at the edge so bad ones never cost
   * an upstream request. Default 8192.
   */
  maxImageDimension: z.number().int().min(16).max(16384).default(8192),
  /** On SIGTERM: health answers 503 and the edge keeps serving this long before closing. Default 10 s. */
  drain: duration.default(10_000),
  /** Bearer token for POST /_cdn/purge on this edge alone. Default none (endpoint off). */
  adminToken: secret.pipe(z.string().min(16, 'a token must be at least 16 characters')).optional(),
  /**
   * The token this edge presents on the origin's purge stream (the origin's `edgeToken`). Default
   * none: the edge follows no purge stream (only uploads' own new URLs and its local purges
   * invalidate; nothing it stored is ever purged from the origin).
   */
  edgeToken: secret.pipe(z.string().min(16, 'a token must be at least 16 characters')).optional(),
  /**
   * The origin's base URL, where the purge stream comes from. Default `upstream`, which is right
   * when the upstream is the origin and wrong when it is a shield edge (which has no purge stream):
   * set it then.
   */
  purgeFrom: httpUrl.optional(),
  purge: z
    .strictObject({
      /**
       * Until the edge has caught up with the purge log after a start, disk objects are
       * revalidated before they are served; an upstream that has not answered in this time gets
       * the stale copy served (stale-if-error), so an origin outage during a restart costs
       * seconds, not errors. Default 3 s.
       */
      catchUpTimeout: duration.pipe(z.number().min(100, 'at least 100ms').max(60_000, 'at most 60s')).default(3_000),
      /** Most urls + prefixes + tags in one edge-local `POST /_cdn/purge`. Default 1000 (the origin's default). */
      maxEntries: z.number().int().min(1).max(10_000).default(1000),
    })
    .prefault({}),
  /** Lifecycle and error log level (the pino log; requests go to `accessLog`). Default info. */
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /**
   * One line per request: `{ path: stdout | FILE, format: json | combined, sample, maxBufferBytes,
   * flushInterval }`, or `false` for none. Default: JSON lines on stdout. With `workers: N` every
   * worker appends to the file itself (src/config/access-log.ts, README "Access log").
   */
  accessLog: accessLogSchema,
}).superRefine((config, ctx) => {
  if (config.listen === false && config.tls === undefined) ctx.addIssue({ code: 'custom', path: ['listen'], message: 'false (no cleartext listener) needs a tls section to listen at all' });
  if (config.listen === false && config.tls?.redirectHttp === true) ctx.addIssue({ code: 'custom', path: ['tls', 'redirectHttp'], message: 'needs the cleartext listener (listen is false)' });
});

export type EdgeConfig = z.output<typeof edgeConfigSchema>;
