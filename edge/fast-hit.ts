/**
 * The common hit, answered without waiting on anything: which requests may take it (fastFields),
 * and the answer for a fresh 200 held in memory, with a header record prepared once per stored
 * object and shared by its hits in the same second (FastHits). EdgePipeline.fastHit finds the
 * object; this file answers for it.
 */
import type { HotEntry, StoredMeta } from '../src/blob/blob-store.js';
import { recencyHash } from '../src/blob/disk-recency.js';
import { SeenRecently } from '../src/blob/seen-recently.js';
import { formatCacheStatus, sfInteger } from '../src/http/cache-status.js';
import { GenerationMap } from '../src/generation-map.js';
import { invalidHost } from '../src/http/host.js';
import { ifNoneMatchPasses } from '../src/http/conditional.js';
import { currentAge, type AgeInputs } from '../src/http/freshness.js';
import { notModifiedHeaders } from '../src/serve/respond.js';
import { fieldNames, type FieldNames } from '../src/serve/quick-head.js';
import { normalizeHost, type QueryNormalizer } from '../src/http/cache-key.js';
import { plainTargetPath, primaryKey } from './cache-keys.js';
import type { EdgeCompression } from './compression.js';
import type { PipelineResult } from './edge-request.js';
import { viewOf } from './stored-view.js';

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
  /** One field by lower-case name, where each name occurs once (the quick front's requests: QuickRequest.field). */
  field?(name: string): string | undefined;
  /** With `field`: whether any of `names` is there (QuickRequest.hasAny). */
  hasAny?(names: FieldNames): boolean;
}

/**
 * Request fields that change what may be reused or how it is answered: with any of them, the full
 * path decides. A body (Content-Length, Transfer-Encoding) on a GET or HEAD closes the connection
 * after the answer (closeAfterIgnoredBody), which the full path does. If-None-Match alone is the
 * fast path's (a browser revalidating what it has); with another precondition, the full path's.
 */
const NOT_FAST = new Set(['cache-control', 'pragma', 'authorization', 'range', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'content-length', 'transfer-encoding']);
const NOT_FAST_LENGTHS = new Set([...NOT_FAST].map((name) => name.length));
const NOT_FAST_NAMES = fieldNames([...NOT_FAST]);

/**
 * The Host field ('' without one) and If-None-Match of a request with none of NOT_FAST's fields,
 * or undefined when one is present, or Host or If-None-Match is there twice.
 */
export function fastFields(raw: readonly string[]): { host: string; ifNoneMatch: string | undefined } | undefined {
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

/**
 * fastFields of `req`: asked of it by name where it can answer so (a request the quick front read,
 * whose every name occurs once), which makes no string for the fields a hit does not read; else
 * read from its `rawHeaders`.
 */
export function fastFieldsOf(req: FastRequest): { host: string; ifNoneMatch: string | undefined } | undefined {
  if (req.field === undefined || req.hasAny === undefined) return fastFields(req.rawHeaders);
  if (req.hasAny(NOT_FAST_NAMES)) return undefined;
  return { host: req.field('host') ?? '', ifNoneMatch: req.field('if-none-match') };
}

/**
 * The primary cache key of an origin-form `target` on `host`, as the full path makes it
 * (EdgePipeline.primaryOf: requestUrl, then primaryKey), for a request whose key this process has
 * not made yet; undefined when the full path must answer (a Host that is no host, a target that
 * does not parse, bad image parameters: its 400). Without it, the first request for each URL in a
 * process (every URL in a new cluster worker) went to the full path, and the quick front handed
 * its connection to Node's HTTP server for good.
 */
export function firstPrimaryKey(host: string, target: string, normalizeQuery: QueryNormalizer): string | undefined {
  if (!target.startsWith('/') || invalidHost(host) !== undefined) return undefined;
  // A plain path is its own key path (plainPrimaryKey, as the full path makes it): no URL parsed per cold miss.
  const plain = plainTargetPath(target);
  if (plain !== undefined) return normalizeHost(host) + plain;
  try {
    return primaryKey(host, new URL(`http://${host === '' ? 'localhost' : host}${target}`), normalizeQuery);
  } catch {
    return undefined;
  }
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

export interface FastHitDeps {
  /** The X-Served-By value (`pop/node`). */
  servedBy: string;
  /** The Cache-Status name of this cache. */
  cacheName: string;
  now: () => number;
  compression: EdgeCompression;
  /** Per stored object: its freshness lifetime and whether it may be reused without asking. */
  reuseOf: (meta: StoredMeta) => { lifetimeMs: number; reusable: boolean };
  /** Counts body bytes served from memory. */
  memoryBytes: { add(n: number): void };
}

/**
 * Templates kept by cache key as well, two generations of this many: a disk store hands out a new
 * metadata object for the same stored version whenever its index dropped the decoded record from
 * its own memo (disk-index.ts), and rebuilding the template (parsed fields, freshness lifetime,
 * header record) and then the response head was most of a disk hit's cost with 10,000 objects
 * read at random (~20 µs of ~100, BENCHMARKS.md). A template is ~1 KB: at most ~16 MB.
 */
const BY_KEY_GENERATION = 8192;

export class FastHits {
  private readonly templates = new WeakMap<StoredMeta, HitTemplate | null>();
  /** See BY_KEY_GENERATION. */
  private readonly byKey = new GenerationMap<string, KeyedTemplate>(BY_KEY_GENERATION);
  private readonly seen = new SeenRecently();

  constructor(private readonly deps: FastHitDeps) {}

  /**
   * The answer to a GET or HEAD that passed fastFields for `hot`, an object at hand: exactly what
   * the full path would answer (a test compares the two) except that Server-Timing carries no
   * duration; undefined when the object never takes this path (not a 200, stored at or before
   * `revalidateThrough` or marked by a purge) or is no longer fresh. The reply's header record is
   * frozen: write it, never change it. Bytes `hot` lends go with the reply (Reply.release).
   */
  answer(hot: HotEntry, method: 'GET' | 'HEAD', ifNoneMatch: string | undefined, closeConnection: boolean, revalidateThrough: number): PipelineResult | undefined {
    const fastable = hot.meta.status === 200 && hot.meta.storedAt > revalidateThrough && hot.meta.invalidated !== true;
    const result = fastable ? this.answerFor(hot, method, ifNoneMatch, closeConnection) : undefined;
    // Lent bytes go with the answer that writes them; any other answer is done with them now.
    if (result?.reply.body === hot.data) {
      result.reply.release = hot.release;
      result.reply.headroom = hot.headroom;
    } else hot.release?.();
    return result;
  }

  private answerFor(hot: HotEntry, method: 'GET' | 'HEAD', ifNoneMatch: string | undefined, closeConnection: boolean): PipelineResult | undefined {
    const template = this.template(hot.meta);
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
    if (ifNoneMatch !== undefined && !ifNoneMatchPasses(ifNoneMatch, { etag: template.etag })) {
      current.notModified ??= Object.freeze(notModifiedHeaders(current.headers));
      const headers = closeConnection ? { ...current.notModified, connection: 'close' } : current.notModified;
      return { reply: { status: 304, headers, body: null }, outcome: 'hit', bytes: 0 };
    }
    const headers = closeConnection ? { ...current.headers, connection: 'close' } : current.headers;
    const bytes = method === 'HEAD' ? 0 : hot.meta.size;
    this.deps.memoryBytes.add(bytes);
    return { reply: { status: 200, headers, body: bytes === 0 ? null : hot.data }, outcome: 'hit', bytes };
  }

  private template(meta: StoredMeta): HitTemplate | null {
    let template = this.templates.get(meta);
    if (template === undefined) {
      template = this.keyedTemplate(meta);
      this.templates.set(meta, template);
    }
    return template;
  }

  /** The template of an equal metadata object met before under the same key, else a new one. */
  private keyedTemplate(meta: StoredMeta): HitTemplate | null {
    const known = this.byKey.get(meta.key);
    if (known !== undefined && sameMeta(known.meta, meta)) return known.template;
    const template = this.newTemplate(meta);
    // Kept by key from the object's second hit lately on (src/blob/seen-recently.ts): among a
    // million objects most hits are the first for theirs, and a template kept for each of those
    // outlives young collections for nothing.
    if (known !== undefined || this.seen.seenBefore(recencyHash(meta.key))) this.byKey.set(meta.key, { meta, template });
    return template;
  }

  private newTemplate(meta: StoredMeta): HitTemplate | null {
    const view = viewOf(meta);
    const { lifetimeMs, reusable } = this.deps.reuseOf(meta);
    let template: HitTemplate | null = null;
    if (reusable && !this.deps.compression.appliesTo(meta.status, view.headers, meta.size)) {
      // Built by assignment, never `delete`: a record that lost fields is slow to copy.
      const headers: Record<string, string> = Object.assign({}, view.clientBase);
      headers['x-served-by'] = this.deps.servedBy;
      headers['accept-ranges'] = 'bytes';
      headers['content-length'] = String(meta.size);
      template = {
        headers,
        etag: view.headers.get('etag') ?? undefined,
        ageInputs: view.ageInputs,
        cacheStatusPrefix: `${view.upstreamCacheStatus ? `${view.upstreamCacheStatus}, ` : ''}${formatCacheStatus({ cache: this.deps.cacheName, hit: true })}; ttl=`,
        lifetimeMs,
      };
    }
    return template;
  }
}

interface KeyedTemplate {
  /** What the template was made from. */
  meta: StoredMeta;
  template: HitTemplate | null;
}

/** Whether two metadata objects say the same in every field (a template depends on most of them). */
export function sameMeta(a: StoredMeta, b: StoredMeta): boolean {
  if (a === b) return true;
  if (a.key !== b.key || a.size !== b.size || a.status !== b.status || a.version !== b.version || a.sha256 !== b.sha256) return false;
  if (a.storedAt !== b.storedAt || a.requestTime !== b.requestTime || a.responseTime !== b.responseTime || a.invalidated !== b.invalidated) return false;
  if (a.headers.length !== b.headers.length || (a.tags?.length ?? -1) !== (b.tags?.length ?? -1)) return false;
  for (let i = 0; i < a.headers.length; i++) {
    const x = a.headers[i]!;
    const y = b.headers[i]!;
    if (x[0] !== y[0] || x[1] !== y[1]) return false;
  }
  for (let i = 0; i < (a.tags?.length ?? 0); i++) if (a.tags![i] !== b.tags![i]) return false;
  return true;
}
