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
 * The outcome words are edge/edge-request.ts's; the common hit's answer is edge/fast-hit.ts's.
 * Invalidation (unsafe methods, peers, purges) is edge/invalidation.ts's.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { undiciErrors } from './undici-parts.js';
import type { BlobEntry, BlobStore, StoredMeta } from '../src/blob/blob-store.js';
import { effectiveCacheControl } from '../src/http/cache-control.js';
import type { CacheStatusEntry } from '../src/http/cache-status.js';
import { CdnError, clientError, httpErrorOf } from '../src/errors.js';
import { requestCacheControl } from '../src/http/cache-control.js';
import { currentAge, freshnessLifetime } from '../src/http/freshness.js';
import type { HeaderGetter } from '../src/http/headers.js';
import { nodeRequestHeaders } from '../src/http/request-headers.js';
import { conditionalHeadersFor } from '../src/http/revalidate.js';
import { DEFAULT_REUSE_OPTIONS, reuseDecision, type ReuseOptions } from '../src/http/reuse.js';
import { refusedForTheRequest } from '../src/http/storable.js';
import { varyFields } from '../src/http/vary.js';
import type { Logger } from '../src/log.js';
import { tallied } from '../src/metrics.js';
import { imageQueryNormalizer, KeyMemo, plainPrimaryKey, primaryKey, upstreamPath, variantKey } from './cache-keys.js';
import type { EdgeConfig } from './config.js';
import { fetchForCache, type FetchDeps, type FetchRequest } from './fetcher.js';
import { FlightTable, type Flight, type FlightOutcome, type SharedOutcome } from './flights.js';
import { forwardRequestHeaders } from './forward-headers.js';
import type { EdgeMetrics } from './metrics.js';
import { addVary, EdgeCompression } from './compression.js';
import { headersFromPairs, policyHeaders, viewOf } from './stored-view.js';
import { upstreamError, type Upstream, type UpstreamResponse } from './upstream.js';
import { VaryIndex } from './vary-index.js';
import { Invalidation, keyHost } from './invalidation.js';
import { asked, EdgeReplies } from './edge-replies.js';
import type { EdgeRequest, PipelineResult, PurgeWatermarks } from './edge-request.js';
import { fastFieldsOf, FastHits, firstPrimaryKey, type FastRequest } from './fast-hit.js';
import { discard, limitBytes, releaseUnread, withinDeadline } from './stream-parts.js';

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
  /** A cluster worker's fetches, coalesced with the node's other processes (edge/cluster-flights.ts). */
  acrossProcesses?: FetchDeps['acrossProcesses'];
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
  /** Drops what is stored for a URL (unsafe requests, peers, purges). */
  readonly invalidation: Invalidation;
  private readonly flights: FlightTable;
  private readonly compression: EdgeCompression;
  private readonly fastHits: FastHits;
  private readonly replies: EdgeReplies;
  private readonly hitForMiss: LRUCache<string, true>;
  private readonly reuseOptions: ReuseOptions;
  private readonly normalizeQuery;
  private readonly servedBy: string;
  private readonly via: string;
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
    this.invalidation = new Invalidation({
      store: deps.store,
      flights: this.flights,
      varyIndex: this.varyIndex,
      hitForMiss: this.hitForMiss,
      normalizeQuery: this.normalizeQuery,
      logger: deps.logger,
      onInvalidate: deps.onInvalidate,
    });
    this.servedBy = `${c.pop}/${c.node}`;
    this.via = `anycdn-${c.node}`;
    this.replies = new EdgeReplies({
      servedBy: this.servedBy,
      compression: this.compression,
      metrics: deps.metrics,
      logger: deps.logger,
      now: deps.now,
    });
    this.fastHits = new FastHits({
      servedBy: this.servedBy,
      cacheName: CACHE,
      now: deps.now,
      compression: this.compression,
      reuseOf: (meta) => this.reuseOf(meta),
      memoryBytes: tallied(deps.metrics.bytesBySource, { source: 'memory' }),
    });
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
      return this.replies.error(err, err instanceof CdnError && err.source === 'client' ? { cache: CACHE } : { cache: CACHE, fwd: 'miss' }, req);
    }
  }

  // ---- lookup ---------------------------------------------------------------------------------

  private readonly keyMemo = new KeyMemo();

  private primaryOf(req: EdgeRequest): string {
    const host = req.headers.get('host') ?? '';
    let primary = this.keyMemo.get(host, req.target);
    if (primary === undefined) {
      // A plain path needs no URL parsed; anything else is (a 400 for bad image parameters).
      primary = plainPrimaryKey(host, req.target) ?? primaryKey(keyHost(req), req.url, this.normalizeQuery);
      this.keyMemo.set(host, req.target, primary);
    }
    return primary;
  }

  /**
   * The common hit, answered without waiting on anything: a GET or HEAD with none of fastFields'
   * excluded fields (a 304 when its If-None-Match matches), for a fresh 200 held in memory that is
   * not compressed per client (Vary variants are looked up by the same key as in serveCacheable),
   * answered before Node's HTTP server reads the request (src/serve/quick-front.ts) or, on a
   * connection handed to Node, in the request handler. See FastHits.answer (edge/fast-hit.ts);
   * anything else returns undefined and takes the full path.
   */
  fastHit(req: FastRequest, closeConnection = false): PipelineResult | undefined {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return undefined;
    const fields = fastFieldsOf(req);
    if (fields === undefined) return undefined;
    const target = req.url ?? '/';
    let primary = this.keyMemo.get(fields.host, target);
    if (primary === undefined) {
      primary = firstPrimaryKey(fields.host, target, this.normalizeQuery);
      if (primary === undefined) return undefined;
      this.keyMemo.set(fields.host, target, primary);
    }
    // Negotiated objects (Vary: Accept on fmt=auto images) are keyed by the request's class, as in serveCacheable.
    const varying = this.varyIndex.fields(primary);
    const key = varying === undefined ? primary : variantKey(primary, varying, nodeRequestHeaders(req.headers as IncomingHttpHeaders));
    const hot = this.deps.store.getHot?.(key);
    return hot === undefined ? undefined : this.fastHits.answer(hot, method, fields.ifNoneMatch, closeConnection, this.revalidateThrough);
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
    if (quick !== undefined) return this.replies.entry(req, entry, { cache: CACHE, hit: true, ttlSec: quick / 1000 }, 'hit');
    const view = viewOf(entry.meta);
    const d = reuseDecision({ method: req.method, headers: req.headers }, view.info, this.deps.now(), this.reuseOptions);
    switch (d.kind) {
      case 'fresh':
        return this.replies.entry(req, entry, { cache: CACHE, hit: true, ttlSec: d.ttlMs / 1000 }, 'hit');
      case 'stale-while-revalidate':
        this.refreshInBackground(req, primary, key, entry);
        this.deps.metrics.staleServed.inc({ reason: 'stale-while-revalidate' });
        return this.replies.entry(req, entry, { cache: CACHE, hit: true, ttlSec: d.ttlMs / 1000, detail: 'stale-while-revalidate' }, 'stale');
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
      return this.staleOnError(req, stale, err) ?? this.replies.error(err, { cache: CACHE, fwd, collapsed: !leader || undefined }, req);
    }
    switch (outcome.kind) {
      case 'not-modified': {
        const result = await this.replies.entry(req, outcome.entry, { cache: CACHE, fwd, fwdStatus: 304, collapsed: !leader || undefined }, 'revalidated');
        return leader ? asked(result, outcome.answer) : result;
      }
      case 'uncacheable': {
        const res = outcome.take();
        if (res === undefined) return this.pass(req, outcome.reason);
        const staleAnswer = this.staleOnStatus(req, stale, res);
        if (staleAnswer !== undefined) return staleAnswer;
        // Remember the URL as uncacheable only for reasons of the response: one client's
        // Authorization or `no-store` must not turn caching off for everyone else.
        if ((outcome.reason !== 'status' || res.status < 500) && !refusedForTheRequest(req.headers, outcome.reason, res.status)) this.hitForMiss.set(primary, true);
        return this.replies.relay(req, res, { cache: CACHE, fwd, fwdStatus: res.status, detail: outcome.reason }, 'pass');
      }
      case 'shared': {
        const fields = varyFields(outcome.fields);
        const myKey = Array.isArray(fields) && fields.length > 0 ? variantKey(primary, fields, req.headers) : primary;
        // Another variant (fmt=auto for another Accept class): fetch ours under its own key.
        if (myKey !== outcome.key) return { varyFields: Array.isArray(fields) ? fields : [] };
        // A follower with Authorization reuses the shared answer only as it would reuse it stored (§3.5).
        if (!leader && this.bypassedWhenStored(req, outcome)) return this.pass(req, 'authorization');
        const status: CacheStatusEntry = { cache: CACHE, fwd, fwdStatus: outcome.status, stored: outcome.storing || undefined, collapsed: !leader || undefined };
        const result = await this.replies.shared(req, outcome, status, leader ? 'miss' : 'collapsed');
        return leader && typeof result === 'object' && 'reply' in result ? asked(result, outcome.answer) : result;
      }
      case 'stored-elsewhere':
        return 'retry';
    }
  }

  /**
   * A response that came in before this request arrived, its body maybe still streaming in: served
   * as a hit when it may be reused for this request now (RFC 9111 §4: fresh, no `no-cache`, its
   * Vary matched by the key), passed when the request bypasses the cache (Authorization…), and
   * undefined otherwise, so the caller asks upstream anew.
   */
  private async reuseDelivered(req: EdgeRequest, primary: string, shared: SharedOutcome): Promise<PipelineResult | Retry | undefined> {
    const headers = shared.fields;
    const fields = varyFields(headers);
    const myKey = Array.isArray(fields) && fields.length > 0 ? variantKey(primary, fields, req.headers) : primary;
    if (myKey !== shared.key) return { varyFields: Array.isArray(fields) ? fields : [] };
    const info = { status: shared.status, headers, requestTime: shared.requestTime, responseTime: shared.responseTime };
    const d = reuseDecision({ method: req.method, headers: req.headers }, info, this.deps.now(), this.reuseOptions);
    if (d.kind === 'bypass') return this.pass(req, d.reason);
    if (d.kind === 'only-if-cached-miss') throw onlyIfCachedMiss();
    if (d.kind !== 'fresh') return undefined;
    const served = await this.replies.shared(req, shared, { cache: CACHE, hit: true, ttlSec: d.ttlMs / 1000 }, 'hit');
    // Too late to read this body from its start (memory-only and past its window): fetch anew,
    // unless the fetch has ended meanwhile or the store has the body (then the lookup finds it).
    if (served === 'retry' && !shared.body.released && this.flights.get(shared.key)?.delivered === shared) return undefined;
    return served;
  }

  private bypassedWhenStored(req: EdgeRequest, shared: SharedOutcome): boolean {
    if (!req.headers.has('authorization')) return false;
    const info = { status: shared.status, headers: policyHeaders(shared.fields), requestTime: shared.requestTime, responseTime: shared.responseTime };
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

  /** What every fetch is given, made once; bytes from upstream are tallied (one addition per chunk). */
  private fetchDepsMemo: FetchDeps | undefined;

  private fetchDeps(): FetchDeps {
    const upstreamBytes = this.fetchDepsMemo === undefined ? tallied(this.deps.metrics.bytesBySource, { source: 'upstream' }) : undefined;
    return (this.fetchDepsMemo ??= {
      upstream: this.deps.upstream,
      store: this.deps.store,
      varyIndex: this.varyIndex,
      logger: this.deps.logger,
      now: this.deps.now,
      negativeTtlMs: this.deps.config.negativeTtl,
      onUpstreamBytes: (n) => upstreamBytes!.add(n),
      acrossProcesses: this.deps.acrossProcesses,
    });
  }

  private fetchRequest(req: EdgeRequest, primary: string, revalidating: BlobEntry | undefined, flight: Flight): FetchRequest {
    const extra = revalidating === undefined ? undefined : conditionalHeadersFor(viewOf(revalidating.meta).headers);
    return {
      primary,
      key: flight.key,
      path: upstreamPath(req),
      clientHeaders: req.headers as HeaderGetter,
      upstreamHeaders: forwardRequestHeaders(req.headers, { dropConditions: true, ...this.hop(req), extra }),
      revalidating,
      superseded: () => flight.superseded,
      // 1xx go to the client whose request started the fetch, as they arrive (RFC 9110 §15.2); never stored.
      onInformational: req.informational,
    };
  }

  /** What this hop adds to a request sent upstream: the client's address, our Via and the host the key was made with. */
  private hop(req: EdgeRequest): { clientIp: string | undefined; via: string; host: string } {
    return { clientIp: req.clientIp, via: this.via, host: keyHost(req) };
  }

  private staleAllowed(until: number | undefined): boolean {
    return until !== undefined && this.deps.now() <= until;
  }

  // ---- serve --------------------------------------------------------------------------------

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
    return this.serveStaleOnError(req, stale.entry, `upstream-${res.status}`, res.status).then((result) => asked(result, res));
  }

  private serveStaleOnError(req: EdgeRequest, entry: BlobEntry, detail: string, fwdStatus?: number): Promise<PipelineResult> {
    this.deps.metrics.staleServed.inc({ reason: 'upstream-error' });
    return this.replies.entry(req, entry, { cache: CACHE, fwd: 'stale', fwdStatus, detail: `stale-if-error ${detail}`.replace(/[\s_]+/g, '-') }, 'stale-error');
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
        path: upstreamPath(req),
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
    const result = this.replies.relay(req, res, { cache: CACHE, fwd, fwdStatus: res.status, detail: reason }, reason === 'method' || reason === 'authorization' ? 'bypass' : 'pass');
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
    const res = await this.deps.upstream.request({ method: req.method, path: upstreamPath(req), headers, body, onInformational: req.informational });
    if (res.status >= 200 && res.status < 400) await this.invalidation.afterUnsafe(req, res);
    return this.replies.relay(req, res, { cache: CACHE, fwd: 'method', fwdStatus: res.status }, 'forward');
  }

  /** The answer to a request the edge refuses before looking at it (e.g. two Host fields). */
  refused(err: CdnError, req: EdgeRequest): PipelineResult {
    return this.replies.error(err, { cache: CACHE }, req);
  }

  /** The answer for a response whose body failed before its first byte went out (headers not sent yet). */
  failedBeforeBody(err: unknown, req: EdgeRequest): PipelineResult {
    // A relayed (uncached) body fails with undici's own errors: they are upstream's failures too.
    return this.replies.error(err instanceof undiciErrors.UndiciError ? upstreamError(err) : err, { cache: CACHE, fwd: 'miss' }, req);
  }

}

/** RFC 9111 §5.2.1.7: only-if-cached and nothing usable stored. */
function onlyIfCachedMiss(): CdnError {
  return new CdnError('only_if_cached', 'client', 'the request said only-if-cached and no fresh copy is stored', { status: 504 });
}

/** A stored copy past its freshness, and until when it may still stand in for a failing upstream. */
interface StaleCopy {
  entry: BlobEntry;
  staleUntil: number | undefined;
}
