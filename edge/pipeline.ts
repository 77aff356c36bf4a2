/**
 * The edge's request pipeline for content, as named phases:
 *
 *   lookup → hit                        fresh copy: served locally
 *          → stale                      stale-while-revalidate: served, refreshed in the background
 *          → revalidate → 304           stored copy refreshed and served
 *                       → 200           new copy stored and served while it streams in
 *                       → error         stale copy served if allowed (stale-if-error, grace), else 502/504
 *          → miss → fetch (coalesced)   one upstream request per key; every waiter reads the body as it arrives
 *                 → delivered           a fetch's answer came in before this request: a hit if it may be
 *                                       reused now (RFC 9111 §4), else a fetch of its own that replaces it
 *                 → pass                not cacheable: relayed, the key remembered (hit-for-miss)
 *   other methods → forward             with the body, uncached; success invalidates the URL (RFC 9111 §4.4)
 *
 * Each outcome is one word (hit, stale, revalidated, miss, collapsed, stale-error, pass, bypass,
 * forward, error) used alike in Cache-Status details, logs and metrics. `collapsed` means only
 * that the request waited on another request's fetch.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { pipeline, Readable, Transform } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { undiciErrors } from './undici-parts.js';
import { tokenMatcher } from '../src/auth.js';
import type { BlobEntry, BlobStore, StoredMeta } from '../src/blob/blob-store.js';
import { effectiveCacheControl } from '../src/http/cache-control.js';
import { CdnError, clientError, httpErrorOf } from '../src/errors.js';
import { requestCacheControl } from '../src/http/cache-control.js';
import { formatCacheStatus, sfInteger, type CacheStatusEntry } from '../src/http/cache-status.js';
import { currentAge, freshnessLifetime, storedAge, type AgeInputs } from '../src/http/freshness.js';
import { ifNoneMatchPasses } from '../src/http/conditional.js';
import { parseHttpDate, type HeaderGetter } from '../src/http/headers.js';
import { nodeRequestHeaders, type RequestHeaders } from '../src/http/request-headers.js';
import { conditionalHeadersFor } from '../src/http/revalidate.js';
import { DEFAULT_REUSE_OPTIONS, reuseDecision, type ReuseOptions } from '../src/http/reuse.js';
import type { NotStoredReason } from '../src/http/storable.js';
import { varyFields } from '../src/http/vary.js';
import type { Logger } from '../src/log.js';
import { tallied } from '../src/metrics.js';
import { answer, notModifiedHeaders, type Representation } from '../src/serve/respond.js';
import type { Reply, ReplyHeaders } from '../src/serve/reply.js';
import { sliceReadable } from './body-slice.js';
import { imageQueryNormalizer, KeyMemo, primaryKey, VARY_SEPARATOR, variantKey } from './cache-keys.js';
import type { EdgeConfig } from './config.js';
import { fetchForCache, type FetchDeps, type FetchRequest } from './fetcher.js';
import { FlightTable, type Flight, type FlightOutcome, type SharedOutcome } from './flights.js';
import { forwardRequestHeaders, relayResponseHeaders, WORKER_HEADER } from './forward-headers.js';
import type { EdgeMetrics } from './metrics.js';
import { addVary, codedEtag, EdgeCompression } from './compression.js';
import { clientHeaders, clientHeadersOf, headersFromPairs, policyHeaders, viewOf } from './stored-view.js';
import { upstreamError, type Upstream, type UpstreamAnswer, type UpstreamResponse } from './upstream.js';
import { VaryIndex } from './vary-index.js';

export type Outcome = 'hit' | 'stale' | 'revalidated' | 'miss' | 'collapsed' | 'stale-error' | 'pass' | 'bypass' | 'forward' | 'error';

/** Times (ms, the edge's clock) before which stored objects count as stale or as not stored; 0: none. */
export interface PurgeWatermarks {
  staleBefore: number;
  absentBefore: number;
}

export interface EdgeRequest {
  method: string;
  /**
   * The request target as received (`/path?query`), the memo key of a hit: the parsed `url` is
   * needed only when the target is seen for the first time or sent upstream.
   */
  target: string;
  /** The parsed request URL; may be computed on first use. */
  readonly url: URL;
  headers: RequestHeaders;
  /** The request body for methods that have one. */
  body: Readable | null;
  clientIp: string | undefined;
  /** performance.now() when the request arrived: Server-Timing reports the time to the answer. */
  started?: number;
  /** Draining: answer with `Connection: close` so keep-alive clients reconnect elsewhere. */
  closeConnection?: boolean;
  /**
   * Sends an informational (1xx) response to this client ahead of the final one; absent when the
   * client may not get one (HTTP/1.0, RFC 9110 §15.2).
   */
  informational?: (status: number, headers: [string, string][]) => void;
}

export interface PipelineResult {
  reply: Reply;
  outcome: Outcome;
  /** Body bytes sent from the cache (0 for relayed bodies, counted as they stream). */
  bytes?: number;
  /** When this request made the edge ask upstream: the answer's status and the time to its head (the access log). */
  upstream?: { status: number; ms: number };
  /**
   * What the node as a whole did, when it differs from `outcome`: a cluster worker's answer through
   * its shield, where the shield hit, missed or passed (the access log; metrics keep `outcome`).
   */
  nodeOutcome?: string;
}

/**
 * What the fast path reads of a request: a Node IncomingMessage fits. `rawHeaders` is read
 * first, so a hit never makes Node build `headers` (a negotiated object needs it for its Accept
 * class).
 */
export interface FastRequest {
  method?: string | undefined;
  url?: string | undefined;
  /** Field names and values in turn, as received (Node's `rawHeaders`). */
  rawHeaders: readonly string[];
  /** The same fields parsed, lower-case names (Node's `headers`). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * Request fields that change what may be reused or how it is answered: with any of them, the full
 * path decides. A body (Content-Length, Transfer-Encoding) on a GET or HEAD closes the connection
 * after the answer (closeAfterIgnoredBody), which the full path does. If-None-Match alone is the
 * fast path's (a browser revalidating what it has); with another precondition, the full path's.
 */
const NOT_FAST = new Set(['cache-control', 'pragma', 'authorization', 'range', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'content-length', 'transfer-encoding']);
const NOT_FAST_LENGTHS = new Set([...NOT_FAST].map((name) => name.length));

/**
 * The Host field ('' without one) and If-None-Match of a request with none of NOT_FAST's fields,
 * or undefined when one is present, or Host or If-None-Match is there twice.
 */
function fastFields(raw: readonly string[]): { host: string; ifNoneMatch: string | undefined } | undefined {
  let host: string | undefined;
  let ifNoneMatch: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4) {
      if (name.toLowerCase() !== 'host') continue;
      if (host !== undefined) return undefined; // two Host fields: the full path answers its 400
      host = raw[i + 1]!;
    } else if (name.length === 13 && name.toLowerCase() === 'if-none-match') {
      if (ifNoneMatch !== undefined) return undefined; // a list split over two fields: the full path combines them
      ifNoneMatch = raw[i + 1]!;
    } else if (NOT_FAST_LENGTHS.has(name.length) && NOT_FAST.has(name.toLowerCase())) {
      return undefined;
    }
  }
  return { host: host ?? '', ifNoneMatch };
}

/** Per stored object: what a fast hit needs, or null when the object never takes the fast path. */
interface HitTemplate {
  /** The client fields of every hit: stored ones, X-Served-By, Accept-Ranges, Content-Length. */
  headers: Record<string, string>;
  /** Cache-Status up to the ttl value: upstream caches' members, then ours. */
  cacheStatusPrefix: string;
  lifetimeMs: number;
  ageInputs: AgeInputs;
  /**
   * The last whole answer's fields, frozen. Age and ttl change once a second, so every hit in
   * that second sends this same record: Node writes a record it has seen before measurably faster
   * than a fresh copy (~5 µs of ~35 per 1 KiB hit, BENCHMARKS.md).
   */
  current?: { ageSec: number; ttlSec: number; headers: Readonly<Record<string, string>>; notModified?: Readonly<Record<string, string>> };
  /** For If-None-Match. */
  etag: string | undefined;
}

/** Server-Timing of a fast hit: answered within the request event, it has no duration worth reporting (< 0.1 ms). */
const FAST_HIT_TIMING = 'cdn-cache;desc=hit';

export interface PipelineDeps {
  config: EdgeConfig;
  store: BlobStore;
  upstream: Upstream;
  metrics: EdgeMetrics;
  logger: Logger;
  now: () => number;
  /**
   * Told of every URL this pipeline invalidated because of a successful unsafe request (primary
   * cache key), so other processes holding copies drop theirs too (edge/cluster.ts).
   */
  onInvalidate?: (primary: string) => void;
  /** Requests with `anycdn-worker: <this>` come from this node's own cluster workers (see hop()). */
  workerSecret?: string;
}

const CACHE = 'anycdn';
/**
 * Look the key up again: it changed under us (evicted, replaced), or a joined flight's response
 * varies (`varyFields`) and belongs to another variant than this request's.
 */
type Retry = 'retry' | { varyFields: readonly string[] };
/** Retries of the lookup when a joined flight turns out to belong to another Vary variant. */
const MAX_ATTEMPTS = 3;
/** Upstream statuses a stale copy may stand in for (RFC 5861 §4). */
const ERROR_STATUSES = new Set([500, 502, 503, 504]);

export class EdgePipeline {
  readonly varyIndex: VaryIndex;
  private readonly flights: FlightTable;
  private readonly compression: EdgeCompression;
  private readonly hitForMiss: LRUCache<string, true>;
  private readonly reuseOptions: ReuseOptions;
  private readonly normalizeQuery;
  private readonly servedBy: string;
  private readonly via: string;
  /** Checks the worker secret of a shield's requests (its digest made once, not per request). */
  private readonly isWorkerSecret: ((given: string) => boolean) | undefined;
  /**
   * The purge watermarks (edge/purge/): a stored object whose `storedAt` is at or before
   * `absentBefore` counts as not stored (a purge of everything); one at or before `staleBefore`
   * is revalidated before it is served (a start not yet caught up with the purge log, or a reset
   * of it), and served stale if upstream has not answered within `catchUpTimeout`.
   */
  private watermarks: PurgeWatermarks = { staleBefore: 0, absentBefore: 0 };
  /** The later of the two: a fast hit must have been stored after it. */
  private revalidateThrough = 0;

  constructor(private readonly deps: PipelineDeps) {
    const c = deps.config;
    this.varyIndex = new VaryIndex(deps.store);
    this.flights = new FlightTable(c.coalescing.maxInFlight, c.coalescing.maxWaiters);
    this.compression = new EdgeCompression(c.compression, deps.store, this.varyIndex, deps.logger, deps.now);
    this.hitForMiss = new LRUCache({ max: 10_000, ttl: Math.max(1, c.hitForMissTtl), ttlAutopurge: false });
    this.reuseOptions = { ...DEFAULT_REUSE_OPTIONS, heuristicFraction: c.heuristic.fraction, heuristicMaxMs: c.heuristic.max, graceMs: c.grace };
    this.normalizeQuery = imageQueryNormalizer({ maxOutputDimension: c.maxImageDimension });
    this.servedBy = `${c.pop}/${c.node}`;
    this.via = `anycdn-${c.node}`;
    this.isWorkerSecret = deps.workerSecret === undefined ? undefined : tokenMatcher(deps.workerSecret);
    this.memoryBytes = tallied(deps.metrics.bytesBySource, { source: 'memory' });
  }

  /** Resolves when every upstream fetch under way now has finished (stored or failed). */
  settled(): Promise<void> {
    return this.flights.settled();
  }

  /** See `watermarks`; set by the node's purge machinery (edge/purge/purge-node.ts). */
  setPurgeWatermarks(watermarks: PurgeWatermarks): void {
    this.watermarks = { staleBefore: watermarks.staleBefore, absentBefore: watermarks.absentBefore };
    this.revalidateThrough = Math.max(watermarks.staleBefore, watermarks.absentBefore);
  }

  purgeWatermarks(): PurgeWatermarks {
    return { ...this.watermarks };
  }

  async handle(req: EdgeRequest): Promise<PipelineResult> {
    try {
      if (req.method === 'GET' || req.method === 'HEAD') return await this.serveCacheable(req);
      return await this.forward(req);
    } catch (err) {
      // A request the edge refuses itself went nowhere: no `fwd` (RFC 9211 §2.2).
      return this.errorResult(err, err instanceof CdnError && err.source === 'client' ? { cache: CACHE } : { cache: CACHE, fwd: 'miss' }, req);
    }
  }

  // ---- lookup ---------------------------------------------------------------------------------

  private readonly keyMemo = new KeyMemo();

  private primaryOf(req: EdgeRequest): string {
    const host = req.headers.get('host') ?? '';
    let primary = this.keyMemo.get(host, req.target);
    if (primary === undefined) {
      primary = primaryKey(keyHost(req), req.url, this.normalizeQuery); // throws a 400 for bad image parameters
      this.keyMemo.set(host, req.target, primary);
    }
    return primary;
  }

  /**
   * The common hit, answered without waiting on anything: a GET or HEAD with none of NOT_FAST's
   * fields (a 304 when its If-None-Match matches), for a fresh 200 held in memory that is not
   * compressed per client (Vary variants are looked up by the same key as in serveCacheable),
   * answered before Node's HTTP server reads the request (src/serve/quick-front.ts) or, on a
   * connection handed to Node, in the request handler. It answers exactly what serveCacheable would
   * (a test compares the two), except that Server-Timing carries no duration, with a header record
   * prepared once per stored object; anything else returns undefined and takes the full path. The
   * reply's header record is shared with the object's other hits in the same second and frozen:
   * write it, never change it.
   */
  fastHit(req: FastRequest, closeConnection = false): PipelineResult | undefined {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return undefined;
    const fields = fastFields(req.rawHeaders);
    if (fields === undefined) return undefined;
    const primary = this.keyMemo.get(fields.host, req.url ?? '/');
    if (primary === undefined) return undefined;
    // Negotiated objects (Vary: Accept on fmt=auto images) are keyed by the request's class, as in serveCacheable.
    const varying = this.varyIndex.fields(primary);
    const key = varying === undefined ? primary : variantKey(primary, varying, nodeRequestHeaders(req.headers as IncomingHttpHeaders));
    const hot = this.deps.store.getHot?.(key);
    if (hot === undefined || hot.meta.status !== 200 || hot.meta.storedAt <= this.revalidateThrough || hot.meta.invalidated === true) return undefined;
    const template = this.hitTemplate(hot.meta);
    if (template === null) return undefined;
    const ageMs = currentAge(template.ageInputs, this.deps.now());
    const ttlMs = template.lifetimeMs - ageMs;
    if (!(ttlMs > 0)) return undefined;
    // Whole seconds, compared as numbers: the strings are made once a second, not per hit.
    const ageSec = Math.max(0, Math.floor(ageMs / 1000));
    const ttlSec = Math.trunc(ttlMs / 1000);
    let current = template.current;
    if (current === undefined || current.ageSec !== ageSec || current.ttlSec !== ttlSec) {
      const record = Object.assign({}, template.headers);
      record['cache-status'] = template.cacheStatusPrefix + sfInteger(ttlSec);
      record['age'] = String(ageSec);
      record['server-timing'] = FAST_HIT_TIMING;
      template.current = current = { ageSec, ttlSec, headers: Object.freeze(record) };
    }
    // RFC 9110 §13.1.2: the client has this representation already.
    if (fields.ifNoneMatch !== undefined && !ifNoneMatchPasses(fields.ifNoneMatch, { etag: template.etag })) {
      current.notModified ??= Object.freeze(notModifiedHeaders(current.headers));
      const headers = closeConnection ? { ...current.notModified, connection: 'close' } : current.notModified;
      return { reply: { status: 304, headers, body: null }, outcome: 'hit', bytes: 0 };
    }
    const headers = closeConnection ? { ...current.headers, connection: 'close' } : current.headers;
    const bytes = method === 'HEAD' ? 0 : hot.meta.size;
    this.memoryBytes.add(bytes);
    return { reply: { status: 200, headers, body: bytes === 0 ? null : hot.data }, outcome: 'hit', bytes };
  }

  private readonly hitTemplates = new WeakMap<StoredMeta, HitTemplate | null>();
  private readonly memoryBytes;

  private hitTemplate(meta: StoredMeta): HitTemplate | null {
    let template = this.hitTemplates.get(meta);
    if (template === undefined) {
      const view = viewOf(meta);
      const { lifetimeMs, reusable } = this.reuseOf(meta);
      template = null;
      if (reusable && !this.compression.appliesTo(meta.status, view.headers, meta.size)) {
        // Built by assignment, never `delete`: a record that lost fields is slow to copy.
        const headers: Record<string, string> = Object.assign({}, view.clientBase);
        headers['x-served-by'] = this.servedBy;
        headers['accept-ranges'] = 'bytes';
        headers['content-length'] = String(meta.size);
        template = {
          headers,
          etag: view.headers.get('etag') ?? undefined,
          ageInputs: view.ageInputs,
          cacheStatusPrefix: `${view.upstreamCacheStatus ? `${view.upstreamCacheStatus}, ` : ''}${formatCacheStatus({ cache: CACHE, hit: true })}; ttl=`,
          lifetimeMs,
        };
      }
      this.hitTemplates.set(meta, template);
    }
    return template;
  }

  private async serveCacheable(req: EdgeRequest): Promise<PipelineResult> {
    const primary = this.primaryOf(req);
    // The Vary fields of a response still in flight: the index learns them only once it is stored.
    let learned: readonly string[] | undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const fields = this.varyIndex.fields(primary) ?? learned;
      const key = fields === undefined ? primary : variantKey(primary, fields, req.headers);
      const stored = await this.deps.store.get(key);
      // Purged with everything else and not yet swept away (edge/purge/purge-apply.ts): not stored.
      const entry = stored !== undefined && stored.meta.storedAt <= this.watermarks.absentBefore ? undefined : stored;
      let result: PipelineResult | Retry;
      try {
        result = entry === undefined ? await this.miss(req, primary, key) : await this.found(req, primary, key, entry);
      } catch (err) {
        // Evicted, replaced or found corrupt between get() and the first byte: look again.
        if (err instanceof CdnError && (err.code === 'blob_gone' || err.code === 'blob_corrupt')) continue;
        throw err;
      }
      if (result === 'retry') continue;
      if ('varyFields' in result) {
        learned = result.varyFields;
        continue;
      }
      return result;
    }
    return this.pass(req, 'busy');
  }

  /** Per stored object: its freshness lifetime and whether it may be reused without asking. */
  private readonly reuseMemo = new WeakMap<StoredMeta, { lifetimeMs: number; reusable: boolean }>();

  /**
   * The common hit, decided without the full reuse rules: a request with no Cache-Control, Pragma
   * or Authorization for a response without no-cache is served exactly when it is fresh — what
   * reuseDecision answers in that case (RFC 9111 §4.2), minus re-reading the same headers.
   * Returns the remaining freshness in ms, or undefined to take the full path.
   */
  private quickTtl(req: EdgeRequest, meta: StoredMeta): number | undefined {
    if (req.headers.has('cache-control') || req.headers.has('pragma') || req.headers.has('authorization')) return undefined;
    const memo = this.reuseOf(meta);
    if (!memo.reusable) return undefined;
    const ttl = memo.lifetimeMs - currentAge(viewOf(meta).ageInputs, this.deps.now());
    return ttl > 0 ? ttl : undefined;
  }

  private reuseOf(meta: StoredMeta): { lifetimeMs: number; reusable: boolean } {
    let memo = this.reuseMemo.get(meta);
    if (memo === undefined) {
      const view = viewOf(meta);
      const { cc } = effectiveCacheControl(view.info.headers);
      memo = { lifetimeMs: freshnessLifetime(view.info, this.reuseOptions).lifetimeMs, reusable: !cc.noCache && cc.noCacheFields.length === 0 };
      this.reuseMemo.set(meta, memo);
    }
    return memo;
  }

  private async found(req: EdgeRequest, primary: string, key: string, entry: BlobEntry): Promise<PipelineResult | Retry> {
    if (entry.meta.invalidated === true || entry.meta.storedAt <= this.watermarks.staleBefore) return this.revalidatePurged(req, primary, key, entry);
    const quick = this.quickTtl(req, entry.meta);
    if (quick !== undefined) return this.serveEntry(req, entry, { cache: CACHE, hit: true, ttlSec: quick / 1000 }, 'hit');
    const view = viewOf(entry.meta);
    const d = reuseDecision({ method: req.method, headers: req.headers }, view.info, this.deps.now(), this.reuseOptions);
    switch (d.kind) {
      case 'fresh':
        return this.serveEntry(req, entry, { cache: CACHE, hit: true, ttlSec: d.ttlMs / 1000 }, 'hit');
      case 'stale-while-revalidate':
        this.refreshInBackground(req, primary, key, entry);
        this.deps.metrics.staleServed.inc({ reason: 'stale-while-revalidate' });
        return this.serveEntry(req, entry, { cache: CACHE, hit: true, ttlSec: d.ttlMs / 1000, detail: 'stale-while-revalidate' }, 'stale');
      case 'only-if-cached-miss':
        throw onlyIfCachedMiss();
      case 'bypass':
        return this.pass(req, d.reason);
      case 'revalidate':
        // HEAD never fetches a body upstream: it is passed as a HEAD, with the stale copy kept
        // for an upstream that fails (stale-if-error, as a GET would get).
        if (req.method === 'HEAD') return this.pass(req, 'head', { entry, staleUntil: d.staleIfErrorUntil });
        return this.throughFlight(req, primary, key, { entry, staleUntil: d.staleIfErrorUntil, fwd: d.reason === 'request' ? 'request' : 'stale' });
    }
  }

  /**
   * A copy a purge marked stale (soft purge), or one stored before the purge watermark: asked
   * upstream before it is served, whatever its freshness; within its stale-if-error window
   * (RFC 5861 §4, or `grace`) it still stands in for an upstream that fails. Under the watermark
   * it also stands in for an upstream that has not answered within `purge.catchUpTimeout`.
   */
  private revalidatePurged(req: EdgeRequest, primary: string, key: string, entry: BlobEntry): Promise<PipelineResult | Retry> {
    const d = reuseDecision({ method: req.method, headers: req.headers }, viewOf(entry.meta).info, this.deps.now(), this.reuseOptions);
    if (d.kind === 'bypass') return this.pass(req, d.reason);
    if (d.kind === 'only-if-cached-miss' || (this.reuseOptions.honorRequestCacheControl && requestCacheControl(req.headers).onlyIfCached)) throw onlyIfCachedMiss();
    const stale = { entry, staleUntil: d.staleIfErrorUntil };
    if (req.method === 'HEAD') return this.pass(req, 'head', stale);
    const deadlineMs = entry.meta.storedAt <= this.watermarks.staleBefore ? this.deps.config.purge.catchUpTimeout : undefined;
    return this.throughFlight(req, primary, key, { ...stale, fwd: 'stale', deadlineMs });
  }

  private async miss(req: EdgeRequest, primary: string, key: string): Promise<PipelineResult | Retry> {
    if (this.reuseOptions.honorRequestCacheControl && requestCacheControl(req.headers).onlyIfCached) throw onlyIfCachedMiss();
    // HEAD on a miss asks upstream with HEAD: nothing to store, and no body fetched for nobody.
    if (req.method === 'HEAD' && !this.flights.has(key)) return this.pass(req, 'head');
    if (this.hitForMiss.has(primary)) return this.pass(req, 'hit-for-miss');
    return this.throughFlight(req, primary, key, undefined);
  }

  // ---- fetch, coalesced ---------------------------------------------------------------------

  private async throughFlight(
    req: EdgeRequest,
    primary: string,
    key: string,
    stale: (StaleCopy & { fwd: 'stale' | 'request'; deadlineMs?: number }) | undefined,
  ): Promise<PipelineResult | Retry> {
    // A flight whose response came in before this request arrived takes no followers: its
    // response is judged like a stored one.
    const delivered = this.flights.get(key)?.delivered;
    if (delivered !== undefined) {
      const reused = await this.reuseDelivered(req, primary, delivered);
      if (reused !== undefined) return reused;
      // HEAD never fetches a body upstream (see found()).
      if (req.method === 'HEAD') return this.pass(req, 'head', stale);
    }
    let flight = delivered === undefined ? this.flights.join(key) : undefined;
    const leader = flight === undefined;
    if (flight === undefined) {
      flight = this.flights.start(key, (f) => fetchForCache(this.fetchDeps(), this.fetchRequest(req, primary, stale?.entry, f)), true);
      if (flight === undefined) return this.pass(req, 'busy');
    } else {
      this.deps.metrics.coalesced.inc();
    }
    const fwd = stale?.fwd ?? 'miss';
    let outcome: FlightOutcome;
    try {
      const inTime = stale?.deadlineMs === undefined || !this.staleAllowed(stale.staleUntil) ? await flight.outcome : await withinDeadline(flight.outcome, stale.deadlineMs);
      if (inTime === undefined) {
        // Upstream is slow to answer: this client gets the stale copy, the fetch goes on and refreshes it.
        if (leader) releaseUnread(flight.outcome);
        return await this.serveStaleOnError(req, stale!.entry, 'upstream-timeout');
      }
      outcome = inTime;
    } catch (err) {
      return this.staleOnError(req, stale, err) ?? this.errorResult(err, { cache: CACHE, fwd, collapsed: !leader || undefined }, req);
    }
    switch (outcome.kind) {
      case 'not-modified': {
        const result = await this.serveEntry(req, outcome.entry, fromShield(outcome.shieldStatus, leader) ?? { cache: CACHE, fwd, fwdStatus: 304, collapsed: !leader || undefined }, 'revalidated');
        return leader ? asked(result, outcome.answer, true) : result;
      }
      case 'uncacheable': {
        const res = outcome.take();
        if (res === undefined) return this.pass(req, outcome.reason);
        const staleAnswer = this.staleOnStatus(req, stale, res);
        if (staleAnswer !== undefined) return staleAnswer;
        // Remember the URL as uncacheable only for reasons of the response: one client's
        // Authorization or `no-store` must not turn caching off for everyone else.
        if ((outcome.reason !== 'status' || res.status < 500) && !requestMadeUncacheable(req, outcome.reason, res.status)) this.hitForMiss.set(primary, true);
        return this.relay(req, res, { cache: CACHE, fwd, fwdStatus: res.status, detail: outcome.reason }, 'pass');
      }
      case 'shared': {
        const fields = varyFields(headersFromPairs(outcome.headers));
        const myKey = Array.isArray(fields) && fields.length > 0 ? variantKey(primary, fields, req.headers) : primary;
        // Another variant (fmt=auto for another Accept class): fetch ours under its own key.
        if (myKey !== outcome.key) return { varyFields: Array.isArray(fields) ? fields : [] };
        // A follower with Authorization reuses the shared answer only as it would reuse it stored (§3.5).
        if (!leader && this.bypassedWhenStored(req, outcome)) return this.pass(req, 'authorization');
        const status: StatusMember = fromShield(outcome.shieldStatus, leader) ?? { cache: CACHE, fwd, fwdStatus: outcome.status, stored: outcome.storing || undefined, collapsed: !leader || undefined };
        const result = await this.serveShared(req, outcome, status, leader ? 'miss' : 'collapsed');
        return leader && typeof result === 'object' && 'reply' in result ? asked(result, outcome.answer, true) : result;
      }
    }
  }

  /**
   * A response that came in before this request arrived, its body maybe still streaming in: served
   * as a hit when it may be reused for this request now (RFC 9111 §4: fresh, no `no-cache`, its
   * Vary matched by the key), passed when the request bypasses the cache (Authorization…), and
   * undefined otherwise, so the caller asks upstream anew.
   */
  private async reuseDelivered(req: EdgeRequest, primary: string, shared: SharedOutcome): Promise<PipelineResult | Retry | undefined> {
    const headers = headersFromPairs(shared.headers);
    const fields = varyFields(headers);
    const myKey = Array.isArray(fields) && fields.length > 0 ? variantKey(primary, fields, req.headers) : primary;
    if (myKey !== shared.key) return { varyFields: Array.isArray(fields) ? fields : [] };
    const info = { status: shared.status, headers, requestTime: shared.requestTime, responseTime: shared.responseTime };
    const d = reuseDecision({ method: req.method, headers: req.headers }, info, this.deps.now(), this.reuseOptions);
    if (d.kind === 'bypass') return this.pass(req, d.reason);
    if (d.kind === 'only-if-cached-miss') throw onlyIfCachedMiss();
    if (d.kind !== 'fresh') return undefined;
    const served = await this.serveShared(req, shared, { cache: CACHE, hit: true, ttlSec: d.ttlMs / 1000 }, 'hit');
    // Too late to read this body from its start (memory-only and past its window): fetch anew,
    // unless the fetch has ended meanwhile (then the lookup finds the stored copy).
    if (served === 'retry' && this.flights.get(shared.key)?.delivered === shared) return undefined;
    return served;
  }

  private bypassedWhenStored(req: EdgeRequest, shared: SharedOutcome): boolean {
    if (!req.headers.has('authorization')) return false;
    const info = { status: shared.status, headers: policyHeaders(headersFromPairs(shared.headers)), requestTime: shared.requestTime, responseTime: shared.responseTime };
    return reuseDecision({ method: req.method, headers: req.headers }, info, this.deps.now(), this.reuseOptions).kind === 'bypass';
  }

  private refreshInBackground(req: EdgeRequest, primary: string, key: string, entry: BlobEntry): void {
    // The client has its answer already: nothing informational may follow it.
    const flight = this.flights.start(key, (f) => fetchForCache(this.fetchDeps(), { ...this.fetchRequest(req, primary, entry, f), onInformational: undefined }));
    flight?.outcome.then(
      (o) => {
        // A shared body is pumped into the store without readers. An uncacheable one nobody reads
        // is drained, and one cut short must not be an unhandled 'error'.
        if (o.kind === 'uncacheable') {
          const res = o.take();
          if (res !== undefined) discard(res.body);
        }
      },
      (err: unknown) => this.deps.logger.warn({ err, key }, 'background refresh failed'),
    );
  }

  private fetchDeps(): FetchDeps {
    return {
      upstream: this.deps.upstream,
      store: this.deps.store,
      varyIndex: this.varyIndex,
      logger: this.deps.logger,
      now: this.deps.now,
      negativeTtlMs: this.deps.config.negativeTtl,
      onUpstreamBytes: (n) => this.deps.metrics.bytesBySource.inc({ source: 'upstream' }, n),
    };
  }

  private fetchRequest(req: EdgeRequest, primary: string, revalidating: BlobEntry | undefined, flight: Flight): FetchRequest {
    const extra = revalidating === undefined ? undefined : conditionalHeadersFor(viewOf(revalidating.meta).headers);
    return {
      primary,
      path: req.url.pathname + req.url.search,
      clientHeaders: req.headers as HeaderGetter,
      upstreamHeaders: forwardRequestHeaders(req.headers, { dropConditions: true, ...this.hop(req), extra }),
      revalidating,
      superseded: () => flight.superseded,
      // 1xx go to the client whose request started the fetch, as they arrive (RFC 9110 §15.2); never stored.
      onInformational: req.informational,
    };
  }

  /**
   * What this hop adds to a request sent upstream: the client's address and our Via — unless the
   * request comes from this node's own cluster worker, which added both already — and the host
   * the key was made with.
   */
  private hop(req: EdgeRequest): { clientIp: string | undefined; via: string | undefined; host: string } {
    const host = keyHost(req);
    if (this.fromOwnWorker(req)) return { clientIp: undefined, via: undefined, host };
    return { clientIp: req.clientIp, via: this.via, host };
  }

  /** Whether the request comes from one of this node's cluster workers (this pipeline is their shield's). */
  fromOwnWorker(req: Pick<EdgeRequest, 'headers'>): boolean {
    if (this.isWorkerSecret === undefined) return false;
    const given = req.headers.get(WORKER_HEADER);
    return given !== null && this.isWorkerSecret(given);
  }

  private staleAllowed(until: number | undefined): boolean {
    return until !== undefined && this.deps.now() <= until;
  }

  // ---- serve --------------------------------------------------------------------------------

  private async serveEntry(req: EdgeRequest, entry: BlobEntry, status: StatusMember, outcome: Outcome): Promise<PipelineResult> {
    const view = viewOf(entry.meta);
    const ageSec = currentAge(view.ageInputs, this.deps.now()) / 1000;
    const headers = clientHeadersOf(view, { ageSec, cacheStatus: memberText(status), servedBy: this.servedBy });
    let body = entry;
    let etag = view.etag;
    if (this.compression.applies(entry)) {
      headers['vary'] = addVary(headers['vary'], 'Accept-Encoding');
      const chosen = await this.compression.choose(req.headers.get('accept-encoding'), entry);
      if (chosen !== undefined) {
        body = chosen.entry;
        etag = codedEtag(view.etag, chosen.coding);
        headers['content-encoding'] = chosen.coding;
        if (etag === undefined) delete headers['etag'];
        else headers['etag'] = etag;
      }
    }
    this.stamp(req, outcome, headers);
    const rep: Representation = {
      status: entry.meta.status,
      headers,
      size: body.meta.size,
      etag,
      lastModified: view.lastModified,
      body: body.data ?? ((range) => firstChunkReady(body.open(range))),
    };
    const { reply, bytes } = await answer(req.method, req.headers, rep);
    // A worker revalidating its copy with this shield gets every field, not a 304's few: it updates
    // its copy with them (RFC 9111 §4.3.4), so what a revalidation here changed reaches it too.
    if (reply.status === 304 && this.fromOwnWorker(req)) {
      const { 'content-length': _length, ...all } = headers;
      reply.headers = all;
    }
    this.deps.metrics.bytesBySource.inc({ source: body.data !== undefined ? 'memory' : 'disk' }, bytes);
    return { reply, outcome, bytes };
  }

  /**
   * stale-if-error (RFC 5861 §4, and the configured grace): the stale copy, when there is one and
   * it is still allowed, for an upstream that failed; undefined otherwise.
   */
  private staleOnError(req: EdgeRequest, stale: StaleCopy | undefined, err: unknown): Promise<PipelineResult> | undefined {
    if (stale === undefined || !this.staleAllowed(stale.staleUntil)) return undefined;
    return this.serveStaleOnError(req, stale.entry, httpErrorOf(err).body.error);
  }

  /** The same for an upstream that answered 500, 502, 503 or 504 (its body is dropped). */
  private staleOnStatus(req: EdgeRequest, stale: StaleCopy | undefined, res: UpstreamResponse): Promise<PipelineResult> | undefined {
    if (stale === undefined || !ERROR_STATUSES.has(res.status) || !this.staleAllowed(stale.staleUntil)) return undefined;
    discard(res.body);
    return this.serveStaleOnError(req, stale.entry, `upstream-${res.status}`, res.status).then((result) => asked(result, res, false));
  }

  private serveStaleOnError(req: EdgeRequest, entry: BlobEntry, detail: string, fwdStatus?: number): Promise<PipelineResult> {
    this.deps.metrics.staleServed.inc({ reason: 'upstream-error' });
    return this.serveEntry(req, entry, { cache: CACHE, fwd: 'stale', fwdStatus, detail: `stale-if-error ${detail}`.replace(/[\s_]+/g, '-') }, 'stale-error');
  }

  private async serveShared(req: EdgeRequest, shared: SharedOutcome, status: StatusMember, outcome: Outcome): Promise<PipelineResult | Retry> {
    // The leader's client gets the fields a qualified `private` kept out of the store; nobody else does.
    const own = outcome === 'miss' ? shared.leaderHeaders : undefined;
    const headers = headersFromPairs(own ?? shared.headers);
    const ageSec = storedAge({ status: shared.status, headers, requestTime: shared.requestTime, responseTime: shared.responseTime }, this.deps.now()) / 1000;
    let reader: Readable;
    try {
      reader = shared.body.createReader();
    } catch {
      // Joined as the fetch ended (the body is closed, the object is stored now) or too late to
      // read a memory-only body from its start: look the key up again.
      return 'retry';
    }
    const base = clientHeaders(headers, { ageSec, cacheStatus: memberText(status), servedBy: this.servedBy });
    // Sent as is while it streams in; later hits may be compressed, so the answer varies already.
    if (this.compression.appliesTo(shared.status, headers, shared.size)) base['vary'] = addVary(base['vary'], 'Accept-Encoding');
    const out: ReplyHeaders = this.stamp(req, outcome, base);
    const cookies = own?.filter(([name]) => name === 'set-cookie').map(([, value]) => value) ?? [];
    if (cookies.length > 0) out['set-cookie'] = cookies;
    let handedOut = false;
    const rep: Representation = {
      status: shared.status,
      headers: out,
      size: shared.size,
      etag: headers.get('etag') ?? undefined,
      lastModified: parseHttpDate(headers.get('last-modified')),
      body: (range) => {
        handedOut = true;
        return range === undefined ? reader : sliceReadable(reader, range.start, range.end);
      },
    };
    try {
      const { reply } = await answer(req.method, req.headers, rep);
      return { reply, outcome };
    } finally {
      // HEAD, 304, 412, 416 and an empty body (a full answer too) never take the body: let the
      // reader go, or the shared body keeps the store writer's temp file open until GC.
      if (!handedOut) reader.destroy();
    }
  }

  // ---- pass and forward -----------------------------------------------------------------------

  /**
   * Relay the request upstream as it is (conditions included), nothing stored. With a stale copy
   * (a HEAD for it), an upstream that fails gets the stale copy served instead, as in throughFlight.
   */
  private async pass(req: EdgeRequest, reason: string, stale?: StaleCopy): Promise<PipelineResult> {
    let res: UpstreamResponse;
    try {
      res = await this.deps.upstream.request({
        method: req.method,
        path: req.url.pathname + req.url.search,
        headers: forwardRequestHeaders(req.headers, { dropConditions: false, ...this.hop(req) }),
        onInformational: req.informational,
      });
    } catch (err) {
      const staleAnswer = this.staleOnError(req, stale, err);
      if (staleAnswer === undefined) throw err;
      return staleAnswer;
    }
    const staleAnswer = this.staleOnStatus(req, stale, res);
    if (staleAnswer !== undefined) return staleAnswer;
    const fwd = stale !== undefined ? 'stale' : reason === 'method' || reason === 'authorization' ? 'bypass' : 'uri-miss';
    const result = this.relay(req, res, { cache: CACHE, fwd, fwdStatus: res.status, detail: reason }, reason === 'method' || reason === 'authorization' ? 'bypass' : 'pass');
    // A HEAD says what a GET would: for text the edge compresses, that its answer varies.
    if (req.method === 'HEAD') {
      const headers = headersFromPairs(res.headers);
      const length = headers.get('content-length');
      if (this.compression.appliesTo(res.status, headers, length === null ? undefined : Number(length))) {
        result.reply.headers['vary'] = addVary(result.reply.headers['vary'] as string | undefined, 'Accept-Encoding');
      }
    }
    return result;
  }

  /** Any other method: forwarded with its body; a success invalidates the URL (RFC 9111 §4.4). */
  private async forward(req: EdgeRequest): Promise<PipelineResult> {
    const maxBody = 100 * 1024 * 1024;
    const declared = Number(req.headers.get('content-length') ?? 0);
    if (declared > maxBody) throw clientError('payload_too_large', `request body over ${maxBody} bytes`, { status: 413 });
    const headers = forwardRequestHeaders(req.headers, { dropConditions: false, ...this.hop(req) });
    if (req.headers.has('content-length')) headers['content-length'] = req.headers.get('content-length')!;
    // pipeline(), not pipe(): a client that aborts its upload must fail the upstream request (and
    // release its connection), not leave it waiting nor raise an unhandled 'error' that kills the process.
    const body = req.body === null ? null : pipeline(req.body, limitBytes(maxBody), () => undefined);
    const res = await this.deps.upstream.request({ method: req.method, path: req.url.pathname + req.url.search, headers, body, onInformational: req.informational });
    if (res.status >= 200 && res.status < 400) await this.invalidateAfterUnsafe(req, res);
    return this.relay(req, res, { cache: CACHE, fwd: 'method', fwdStatus: res.status }, 'forward');
  }

  private async invalidateAfterUnsafe(req: EdgeRequest, res: UpstreamResponse): Promise<void> {
    if (req.method === 'OPTIONS' || req.method === 'TRACE') return;
    const host = keyHost(req);
    const urls = [req.url];
    // RFC 9111 §4.4: also Location and Content-Location, when they are on the same origin.
    for (const [k, v] of res.headers) {
      if (k !== 'location' && k !== 'content-location') continue;
      try {
        const u = new URL(v, req.url);
        if (u.host === req.url.host) urls.push(u);
      } catch {
        // not a URL: nothing to invalidate
      }
    }
    for (const u of urls) {
      let primary: string;
      try {
        primary = primaryKey(host, u, this.normalizeQuery);
      } catch {
        continue;
      }
      await this.invalidate(primary);
      this.deps.onInvalidate?.(primary);
    }
  }

  /**
   * Remove every stored variant of a URL. A fetch for it under way now began before the change
   * that invalidates it: what it stores is removed too once it is done.
   */
  async invalidate(primary: string): Promise<number> {
    for (const flight of this.flights.inFlight()) {
      if (flight.key !== primary && !flight.key.startsWith(primary + VARY_SEPARATOR)) continue;
      flight.done.then(() => this.removeStored(primary)).catch((err: unknown) => this.deps.logger.warn({ err, primary }, 'invalidation after fetch failed'));
    }
    return this.removeStored(primary);
  }

  /**
   * Retire every fetch under way whose stored key `matches` (given its response once the headers
   * are in): see FlightTable.retire. Returns when each retired one is over.
   */
  retireFlights(matches: (key: string, delivered: SharedOutcome | undefined) => boolean): { key: string; done: Promise<void> }[] {
    const retired: { key: string; done: Promise<void> }[] = [];
    for (const flight of [...this.flights.inFlight()]) {
      if (!matches(flight.key, flight.delivered)) continue;
      this.flights.retire(flight);
      retired.push({ key: flight.delivered?.key ?? flight.key, done: flight.done });
    }
    return retired;
  }

  private async removeStored(primary: string): Promise<number> {
    let removed = 0;
    for (const key of new Set([primary, ...this.varyIndex.keysFor(primary)])) {
      if (await this.deps.store.delete(key)) removed++;
      this.varyIndex.remove(key);
    }
    this.hitForMiss.delete(primary);
    return removed;
  }

  private relay(req: EdgeRequest, res: UpstreamResponse, status: CacheStatusEntry, outcome: Outcome): PipelineResult {
    const headers = relayResponseHeaders(res.headers);
    const upstreamStatus = headers['cache-status'];
    const mine = res.shieldStatus ?? formatCacheStatus(status);
    headers['cache-status'] = upstreamStatus ? `${String(upstreamStatus)}, ${mine}` : mine;
    headers['x-served-by'] = this.servedBy;
    this.stamp(req, outcome, headers);
    const bodyless = req.method === 'HEAD' || res.status === 204 || res.status === 304;
    if (bodyless) {
      discard(res.body);
      return asked({ reply: { status: res.status, headers, body: null }, outcome }, res, true);
    }
    let bytes = 0;
    res.body.on('data', (c: Buffer) => (bytes += c.length));
    res.body.once('end', () => this.deps.metrics.bytesBySource.inc({ source: 'upstream' }, bytes));
    return asked({ reply: { status: res.status, headers, body: res.body }, outcome, bytes: Number(headers['content-length'] ?? 0) }, res, true);
  }

  /** The answer to a request the edge refuses before looking at it (e.g. two Host fields). */
  refused(err: CdnError, req: EdgeRequest): PipelineResult {
    return this.errorResult(err, { cache: CACHE }, req);
  }

  /** The answer for a response whose body failed before its first byte went out (headers not sent yet). */
  failedBeforeBody(err: unknown, req: EdgeRequest): PipelineResult {
    // A relayed (uncached) body fails with undici's own errors: they are upstream's failures too.
    return this.errorResult(err instanceof undiciErrors.UndiciError ? upstreamError(err) : err, { cache: CACHE, fwd: 'miss' }, req);
  }

  private errorResult(err: unknown, status: CacheStatusEntry, req?: EdgeRequest): PipelineResult {
    const e = httpErrorOf(err);
    if (e.status >= 500 && !(err instanceof CdnError && err.source !== 'internal')) this.deps.logger.error({ err }, 'edge request failed');
    const body = Buffer.from(JSON.stringify(e.body));
    const headers: ReplyHeaders = {};
    for (const [k, v] of Object.entries(e.headers ?? {})) headers[k.toLowerCase()] = v;
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(body.length);
    headers['cache-status'] = formatCacheStatus({ ...status, detail: e.body.error });
    headers['x-served-by'] = this.servedBy;
    headers['cache-control'] = 'no-store';
    if (req !== undefined) this.stamp(req, 'error', headers);
    return { reply: { status: e.status, headers, body: req?.method === 'HEAD' ? null : body }, outcome: 'error' };
  }

  /**
   * Fields every edge answer carries besides Cache-Status: Server-Timing with the outcome (browsers
   * expose it to pages; the demo page shows it) and, while draining, `Connection: close`. Set in
   * the header record, not later on Node's response: a header set before writeHead sends Node
   * down its slower merging path (measured ~25% on small hits).
   */
  private stamp<H extends ReplyHeaders>(req: Pick<EdgeRequest, 'started' | 'closeConnection'>, outcome: Outcome, headers: H): H {
    const ms = req.started === undefined ? 0 : performance.now() - req.started;
    (headers as ReplyHeaders)['server-timing'] = `cdn-cache;desc=${outcome}, edge;dur=${ms.toFixed(1)}`;
    if (req.closeConnection === true) (headers as ReplyHeaders)['connection'] = 'close';
    return headers;
  }
}

/**
 * `result` answered with upstream's `answer`, for the access log: upstream's status and time to its
 * head. In a cluster worker, whose upstream is its node's shield: what the shield asked upstream
 * (nothing when it answered from its cache) and, with `nodeOutcome`, what it did for the request.
 */
function asked(result: PipelineResult, answer: UpstreamAnswer, nodeOutcome: boolean): PipelineResult {
  const shield = answer.shieldLog;
  if (shield === undefined) {
    result.upstream = { status: answer.status, ms: answer.elapsedMs };
    return result;
  }
  if (shield.upstream !== undefined) result.upstream = shield.upstream;
  if (nodeOutcome) result.nodeOutcome = shield.outcome;
  return result;
}

/** RFC 9111 §5.2.1.7: only-if-cached and nothing usable stored. */
function onlyIfCachedMiss(): CdnError {
  return new CdnError('only_if_cached', 'client', 'the request said only-if-cached and no fresh copy is stored', { status: 504 });
}

/** The outcome, or undefined when it has not come within `ms`. */
function withinDeadline<T>(outcome: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)));
  return Promise.race([outcome, deadline]).finally(() => clearTimeout(timer));
}

/** A fetch whose leader stopped waiting: an answer that cannot be shared is read to its end, unused. */
function releaseUnread(outcome: Promise<FlightOutcome>): void {
  outcome.then(
    (o) => {
      if (o.kind !== 'uncacheable') return;
      const res = o.take();
      if (res !== undefined) discard(res.body);
    },
    () => undefined,
  );
}

/** Read a body nobody wants to its end (so its connection is reused), ignoring its errors. */
function discard(body: Readable): void {
  body.on('error', () => undefined).resume();
}

/** The host a request's key is made with: an absolute-form target's own authority wins over Host (RFC 9112 §3.2.2). */
function keyHost(req: EdgeRequest): string {
  return req.target.startsWith('/') ? (req.headers.get('host') ?? '') : req.url.host;
}

/** A stored copy past its freshness, and until when it may still stand in for a failing upstream. */
interface StaleCopy {
  entry: BlobEntry;
  staleUntil: number | undefined;
}

/** A Cache-Status member: ours, to format, or the shield's, as it sent it. */
type StatusMember = CacheStatusEntry | string;

function memberText(status: StatusMember): string {
  return typeof status === 'string' ? status : formatCacheStatus(status);
}

/**
 * In a cluster worker, what the shield said of a fetch is the node's answer (a shield hit is a
 * hit to the client); a worker's follower of a fetch that went upstream adds that it waited on
 * another request's (a hit stays a hit: the node had it, as a single process would say).
 */
function fromShield(shieldStatus: string | undefined, leader: boolean): string | undefined {
  if (shieldStatus === undefined || leader || !/;\s*fwd=/.test(shieldStatus) || /;\s*collapsed\b/.test(shieldStatus)) return shieldStatus;
  return `${shieldStatus}; collapsed`;
}

/** Whether a storability refusal came from the request (its Authorization, `no-store`, a fault of its own) rather than the response. */
function requestMadeUncacheable(req: EdgeRequest, reason: NotStoredReason, status: number): boolean {
  return reason === 'authorization' || (reason === 'no-store' && requestCacheControl(req.headers).noStore) || (reason === 'status' && REQUEST_FAULT_STATUSES.has(status));
}

/**
 * Errors about the request, not the URL (a header too large, a body where none belongs, a
 * request too fast): one client sending one must not make the URL uncacheable for the others.
 */
const REQUEST_FAULT_STATUSES = new Set([400, 406, 408, 411, 412, 413, 414, 415, 416, 417, 421, 422, 428, 429, 431]);

/** Fails the stream once more than `max` bytes went through. */
function limitBytes(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      cb(seen > max ? clientError('payload_too_large', `request body over ${max} bytes`, { status: 413 }) : null, chunk);
    },
  });
}

/**
 * Resolves with the stream once its first bytes (or its end) are ready, so a body that vanished
 * between lookup and open (`blob_gone`) fails before any header is sent and the lookup is retried.
 */
function firstChunkReady(stream: Readable): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.off('readable', onReady);
      stream.off('end', onReady);
      stream.off('error', done);
      if (err === undefined) resolve(stream);
      else reject(err);
    };
    const onReady = (): void => done();
    stream.once('readable', onReady);
    stream.once('end', onReady);
    stream.once('error', done);
  });
}
