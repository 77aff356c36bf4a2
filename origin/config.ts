/**
 * The origin's configuration schema (`anycdn origin --config FILE`). The TypeScript type is
 * inferred from the schema; unknown keys are refused; every bound has a safe default.
 */
import os from 'node:os';
import { z } from 'zod';
import { accessLogSchema } from '../src/config/access-log.js';
import { byteSize, duration, listenAddress } from '../src/config/common.js';
import { secret } from '../src/config/load.js';
import { originTlsSchema } from '../src/config/tls.js';

const token = secret.pipe(z.string().min(16, 'a token must be at least 16 characters'));

const imagesSchema = z
  .strictObject({
    /** Largest source image in pixels, counting every frame. Default 50 MP: a 50 MP RGBA decode needs ~200 MB. */
    maxInputPixels: z.number().int().positive().default(50_000_000),
    /** Largest source file that may be transformed. Default 50 MiB. */
    maxInputBytes: byteSize.default(50 * 1024 * 1024),
    /** Largest output width or height in pixels. Default 8192. */
    maxOutputDimension: z.number().int().min(16).max(16384).default(8192),
    /** A transform taking longer is abandoned with 422. Default 30 s. */
    transformTimeout: duration.default(30_000),
    /**
     * Transforms run at once. Default: `defaultTransformConcurrency(cores)`, twice the cores up to 4
     * extra (sharp uses one libvips thread per image here, and the slots past the cores keep the
     * CPU busy while a finished image is sent and the next request read). Measured on the 2-core
     * reference machine (2026-11-22, BENCHMARKS.md): with 4 requests in flight, concurrency 4
     * instead of 2 took the origin from 0.80 to 0.94 of raw sharp's rate for WebP, 0.80 to 0.85 for
     * JPEG and 0.91 to 0.93 for AVIF (no change with 2 in flight); under the sustained mixed load of
     * `bench:memory` resident memory stayed flat over 10 minutes (second-half slope -6 MiB/min) at
     * 410–500 MiB, peak 576, against 209–315 MiB with 2: each running transform may hold a full
     * decode (up to ~200 MB at `maxInputPixels`). Each also holds one of libuv's pool threads,
     * which the `anycdn` executable sizes for this default (src/cli/anycdn.cts); set
     * UV_THREADPOOL_SIZE to at least concurrency + 2 when raising it.
     */
    concurrency: z.number().int().min(1).max(64).default(() => defaultTransformConcurrency(os.availableParallelism())),
    /**
     * Memory for the sources of recent transforms, by content hash, so the several variants a page
     * asks for of one upload read it from disk once. Default 64 MiB (about 80 typical photos); a
     * source larger than this is read for each transform and never kept. 0 keeps none.
     */
    sourceCacheSize: byteSize.default(64 * 1024 * 1024),
    /** Transforms waiting beyond `concurrency`; past this the origin answers 503 with Retry-After. Default 64. */
    queueLimit: z.number().int().min(0).max(10_000).default(64),
    /** When non-empty, only these widths are accepted for `w` (limits the variants an attacker can make). */
    allowedWidths: z.array(z.number().int().positive()).default([]),
    /** HMAC keys for signed URLs; when non-empty every transform URL needs a valid `sig`. Several keys allow rotation. */
    signingKeys: z.array(secret.pipe(z.string().min(16, 'a signing key must be at least 16 characters'))).default([]),
    /** Whether `fmt=auto` may choose AVIF (the slowest encoder). Default true. */
    avif: z.boolean().default(true),
    /** AVIF encoder effort 0 (fastest) to 9. Default 2 (see BENCHMARKS.md). */
    avifEffort: z.number().int().min(0).max(9).default(2),
    /** Default qualities when `q` is absent. */
    quality: z
      .strictObject({
        jpeg: z.number().int().min(1).max(100).default(80),
        webp: z.number().int().min(1).max(100).default(80),
        avif: z.number().int().min(1).max(100).default(50),
      })
      .prefault({}),
  })
  .prefault({});

const purgeSchema = z
  .strictObject({
    /** Most urls + prefixes + tags in one `POST /_cdn/purge`. Default 1000. */
    maxEntries: z.number().int().min(1).max(10_000).default(1000),
    /**
     * Longest `?wait=` a purge may ask for. Default 30 s, or half of `timeouts.clientIdle` when
     * that is shorter: nothing is sent while it waits, so it must be shorter than the idle bound.
     */
    maxWait: duration.optional(),
    /** Purge streams open at once (one or two per edge node). Default 256; beyond it 503. */
    maxStreams: z.number().int().min(1).max(4096).default(256),
    /**
     * Interval of the purge stream's heartbeat event. Default 15 s, or a quarter of
     * `timeouts.clientIdle` when that is shorter. At most a third of it, so a quiet stream is
     * never closed as idle.
     */
    heartbeat: duration.optional(),
    /**
     * Compaction: the log keeps the newest `retainEntries` purges within `retainBytes`, rewritten
     * once it is a quarter over either. An edge that falls further behind gets a `reset` (it then
     * revalidates its whole cache). Defaults 100 000 purges, 64 MiB; both are held in memory.
     */
    retainEntries: z.number().int().min(1).max(10_000_000).default(100_000),
    retainBytes: byteSize.pipe(z.number().min(1024, 'must be at least 1KiB').max(1024 ** 3, 'must be at most 1GiB')).default(64 * 1024 * 1024),
  })
  .prefault({});

export const originConfigSchema = z.strictObject({
  /** Address to listen on. Default 127.0.0.1:8081. */
  listen: listenAddress.default({ host: '127.0.0.1', port: 8081 }),
  /**
   * HTTPS: a listener of its own beside `listen` (HTTP/2 and HTTP/1.1, certificates by SNI,
   * reloaded when their files change), and with `clientCa` only clients showing a certificate one
   * of those CAs signed (your edges, `upstreamTls.cert`) are served there (src/config/tls.ts). Default: none.
   */
  tls: originTlsSchema.optional(),
  /** Where originals, variants and the purge log are kept. */
  dataDir: z.string().min(1),
  /** Bearer token for PUT/DELETE /_cdn/assets/. */
  publishToken: token,
  /** Bearer token for POST /_cdn/purge and GET /_cdn/purge/{id}. */
  purgeToken: token,
  /**
   * Bearer token edges present on the purge stream (`GET /_cdn/purges`) and its acknowledgements.
   * Must differ from the other two. Default: none (the purge stream is off).
   */
  edgeToken: token.optional(),
  /** The purge API, log and stream. */
  purge: purgeSchema,
  /** Largest upload. Default 100 MiB. */
  maxUploadBytes: byteSize.default(100 * 1024 * 1024),
  /** Cache-Control for assets uploaded without one. Default one hour, shared caches included. */
  defaultCacheControl: z.string().min(1).default('public, max-age=3600'),
  /** Cache-Control for fingerprinted file names (a hash of 8+ hex chars in the name). */
  immutableCacheControl: z.string().min(1).default('public, max-age=31536000, immutable'),
  images: imagesSchema,
  timeouts: z
    .strictObject({
      /**
       * A client connection with no traffic either way this long is closed: an upload that stalls
       * mid-body, a reader that stops reading, an idle keep-alive. A transform runs with nothing
       * sent on its connection, so this must outlast `images.transformTimeout`. Default 60 s
       * (nginx's client_body_timeout and send_timeout), or twice `images.transformTimeout` when
       * that is longer than 30 s.
       */
      clientIdle: duration.optional(),
    })
    .prefault({}),
  /**
   * After SIGTERM, how long to keep serving with `/_cdn/healthz` answering 503 and responses
   * saying `Connection: close`, so a load balancer moves away first. Default 0: stop accepting at once.
   */
  drain: duration.default(0),
  /** Lifecycle and error log level (the pino log; requests go to `accessLog`): trace, debug, info, warn, error, fatal, silent. Default info. */
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** One line per request, as the edge writes them (src/config/access-log.ts); `false` for none. Default: JSON lines on stdout. */
  accessLog: accessLogSchema,
}).transform(({ timeouts, ...config }, ctx) => {
  // A transform runs with nothing sent on its connection: the idle bound must outlast it. Only an
  // explicit clientIdle can be too short; the default follows the transform timeout.
  const { transformTimeout } = config.images;
  if (timeouts.clientIdle !== undefined && timeouts.clientIdle <= transformTimeout) {
    ctx.addIssue({ code: 'custom', path: ['timeouts', 'clientIdle'], message: `must be longer than images.transformTimeout (${transformTimeout} ms)` });
    return z.NEVER;
  }
  const clientIdle = timeouts.clientIdle ?? Math.max(60_000, 2 * transformTimeout);
  // So does a purge that waits for the edges, and the quiet between heartbeats (three of them).
  const { maxWait, heartbeat } = config.purge;
  if (maxWait !== undefined && maxWait >= clientIdle) {
    ctx.addIssue({ code: 'custom', path: ['purge', 'maxWait'], message: `must be shorter than timeouts.clientIdle (${clientIdle} ms)` });
  }
  if (heartbeat !== undefined && (heartbeat < 100 || heartbeat * 3 > clientIdle)) {
    ctx.addIssue({ code: 'custom', path: ['purge', 'heartbeat'], message: `must be from 100 ms to a third of timeouts.clientIdle (${clientIdle} ms)` });
  }
  // An edge token that is also the publish or purge token would let every edge publish or purge.
  if (config.edgeToken !== undefined && (config.edgeToken === config.publishToken || config.edgeToken === config.purgeToken)) {
    ctx.addIssue({ code: 'custom', path: ['edgeToken'], message: 'must differ from publishToken and purgeToken' });
  }
  // The purge defaults that follow timeouts.clientIdle, so a short idle bound needs no purge settings.
  const purge = {
    ...config.purge,
    maxWait: maxWait ?? Math.min(30_000, Math.floor(clientIdle / 2)),
    heartbeat: heartbeat ?? Math.max(1, Math.min(15_000, Math.floor(clientIdle / 4))),
  };
  return { ...config, timeouts: { ...timeouts, clientIdle }, purge };
});

export type OriginConfig = z.output<typeof originConfigSchema>;

/** The default `images.concurrency` on a machine with `cores` cores: cores + min(cores, 4). */
export function defaultTransformConcurrency(cores: number): number {
  return cores + Math.min(cores, 4);
}
