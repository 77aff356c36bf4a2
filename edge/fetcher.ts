/**
 * The leader's side of a flight: ask upstream, decide whether the answer may be stored (RFC 9111
 * §3), and if so stream it into the store and into a GrowingBody that every waiting client reads
 * while it arrives. A revalidation that comes back 304 refreshes the stored headers instead
 * (RFC 9111 §4.3.4). Storage failures never fail the response: the body is then shared from
 * memory without being kept when it fits in memory whole, else relayed to the leader alone (a
 * shared body that outruns a slow reader would cut that reader off).
 */
import type { Readable } from 'node:stream';
import { applyMetaChanges, type BlobEntry, type BlobStore, type BlobWriter, type CommitMeta, type MetaChanges } from '../src/blob/blob-store.js';
import { GrowingBody } from '../src/blob/streaming-body.js';
import { CdnError } from '../src/errors.js';
import { effectiveCacheControl } from '../src/http/cache-control.js';
import { freshnessLifetime } from '../src/http/freshness.js';
import type { HeaderGetter } from '../src/http/headers.js';
import { mergeNotModified, notModifiedApplies } from '../src/http/revalidate.js';
import { storability, type NotStoredReason, type Storability } from '../src/http/storable.js';
import { varyFields } from '../src/http/vary.js';
import type { Logger } from '../src/log.js';
import { responseTags } from '../src/purge/response-tags.js';
import { variantKey } from './cache-keys.js';
import { mayCompress } from './compression.js';
import type { FlightOutcome } from './flights.js';
import { discard } from './stream-parts.js';
import { FieldList, headersFromPairs, OWN_LIFETIME_FIELD, storableHeaderPairs, viewOf, withoutOwnFields } from './stored-view.js';
import { upstreamError, type Upstream, type UpstreamAnswer, type UpstreamResponse } from './upstream.js';
import type { VaryIndex } from './vary-index.js';

export interface FetchDeps {
  upstream: Upstream;
  store: BlobStore;
  varyIndex: VaryIndex;
  logger: Logger;
  now: () => number;
  /** Lifetime given to 404/410 answers without freshness information; 0 disables. */
  negativeTtlMs: number;
  /** Called with bytes received from upstream. */
  onUpstreamBytes?: (n: number) => void;
  /** In a cluster worker: the fetch coalesced with the node's other processes (edge/cluster-flights.ts). */
  acrossProcesses?: AcrossProcesses;
}

/** Runs `fetch` for the flight of `key`, unless another process of the node fetched and stored it meanwhile (then a `stored-elsewhere` outcome). */
export type AcrossProcesses = (key: string, revalidating: BlobEntry | undefined, fetch: () => Promise<FetchResult>) => Promise<FetchResult>;

export interface FetchRequest {
  primary: string;
  /** The flight's key, what the node's processes coalesce on (FetchDeps.acrossProcesses). */
  key?: string;
  /** Path and query sent upstream. */
  path: string;
  /** The client request's headers (for Vary and storability). */
  clientHeaders: HeaderGetter;
  /** Headers to send upstream (already filtered). */
  upstreamHeaders: Record<string, string | string[]>;
  /** The stored copy being revalidated, if any. */
  revalidating?: BlobEntry;
  /** Informational (1xx) responses on their way, for the client whose request started the fetch. */
  onInformational?: (status: number, headers: [string, string][]) => void;
  /** True once a newer fetch for the same key began: this one's copy must not replace the newer one's. */
  superseded?: () => boolean;
}

export interface FetchResult {
  outcome: FlightOutcome;
  /** Settles when the body is fully received (and stored, when it is stored). */
  done: Promise<unknown>;
}

export function fetchForCache(deps: FetchDeps, req: FetchRequest): Promise<FetchResult> {
  const across = deps.acrossProcesses;
  return across === undefined || req.key === undefined ? fetchFromUpstream(deps, req) : across(req.key, req.revalidating, () => fetchFromUpstream(deps, req));
}

async function fetchFromUpstream(deps: FetchDeps, req: FetchRequest): Promise<FetchResult> {
  const res = await deps.upstream.request({ method: 'GET', path: req.path, headers: req.upstreamHeaders, onInformational: req.onInformational });
  const upstreamPairs = withoutOwnFields(res.headers);
  const resHeaders = new FieldList(upstreamPairs);

  if (res.status === 304 && req.revalidating !== undefined) {
    const refreshed = await refreshStored(deps, req.revalidating, res, headersFromPairs(upstreamPairs));
    if (refreshed !== undefined) return { outcome: refreshed, done: Promise.resolve() };
    // The 304 is about another representation (RFC 9111 §4.3.4): ask for the whole response.
    const { 'if-none-match': _inm, 'if-modified-since': _ims, ...unconditional } = req.upstreamHeaders;
    return fetchFromUpstream(deps, { ...req, upstreamHeaders: unconditional, revalidating: undefined });
  }

  let decision = storability({ method: 'GET', headers: req.clientHeaders }, { status: res.status, headers: resHeaders, responseTime: res.responseTime }, { storeSetCookie: false });
  let headerPairs = upstreamPairs;
  const negative = negativeCaching(deps, res, upstreamPairs, resHeaders, decision);
  if (negative !== undefined) {
    decision = { store: true, omitFields: [] };
    headerPairs = negative;
  }
  if (!decision.store) return uncacheable(res, decision.reason);

  const fields = varyFields(resHeaders);
  const varying = Array.isArray(fields) && fields.length > 0;
  const key = varying ? variantKey(req.primary, fields, req.clientHeaders) : req.primary;
  const stored = storableHeaderPairs(headerPairs, decision.omitFields);
  const leaderHeaders = decision.omitFields.length > 0 ? storableHeaderPairs(headerPairs, []) : undefined;
  const lengthHeader = resHeaders.get('content-length');
  const size = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;

  let writer: BlobWriter | undefined;
  try {
    // The body's hash is read only to compress it (edge/compression.ts): the store skips it for the rest.
    writer = await deps.store.begin(key, size, { hash: mayCompress(res.status, resHeaders) });
  } catch (err) {
    deps.logger.warn({ err, key }, 'cache store refused a write');
  }
  if (writer === undefined && (size === undefined || size > SHARED_MEMORY_BYTES)) {
    // Not stored and maybe larger than the memory window: sharing it would fail every reader that
    // falls behind upstream. The leader relays it with backpressure; followers fetch on their own.
    return uncacheable(res, 'too-large');
  }
  // A body of a known size within the memory window stays whole in memory for every reader
  // (GrowingBody drops nothing until past it): the writer's read-back file would never be read.
  const readBack = size === undefined || size > SHARED_MEMORY_BYTES ? writer?.openReadBack?.bind(writer) : undefined;
  const file = readBack !== undefined ? await readBack().catch(() => undefined) : undefined;
  const body = new GrowingBody(file === undefined ? { maxMemoryBytes: SHARED_MEMORY_BYTES } : { file, maxMemoryBytes: SHARED_MEMORY_BYTES });
  const meta: PumpMeta = {
    key,
    size: size ?? 0,
    status: res.status,
    headers: stored,
    requestTime: res.requestTime,
    responseTime: res.responseTime,
    storedAt: deps.now(),
  };
  // Surrogate-Key and Cache-Groups (RFC 9875) members: what a purge by tag finds the object by.
  const tags = responseTags(resHeaders);
  if (tags !== undefined) meta.tags = tags;
  // What the Vary index learns from a stored answer: its key, and whether the URL varies. Learned
  // once the store finds the object (the shared body goes then, and later requests must look the
  // right key up), and again at the commit for a store that does not say when it finds it.
  const listStored = (): void => {
    deps.varyIndex.add(key);
    if (!varying) deps.varyIndex.clearFields(req.primary);
  };
  const hooks: StoreHooks = { superseded: req.superseded ?? (() => false), readable: listStored };
  // A body that arrived with its head (a small object, usually) is taken in one piece now, so
  // every reader gets it as bytes in memory (GrowingBody.whole) rather than as a stream.
  const whole = size !== undefined ? bufferedBody(res.body, size) : undefined;
  const storing = whole === undefined ? undefined : await take(deps, whole, body, writer, writer !== undefined, meta.key);
  // settleWhole ends the body before its first wait (the commit): readers get it whole from here.
  const done = (storing === undefined ? pump(deps, res, body, writer, meta, hooks) : settleWhole(deps, body, writer, meta, whole!.length, storing, hooks)).then((kept) => {
    if (kept) listStored();
  });
  done.catch(() => undefined);
  return {
    outcome: {
      kind: 'shared',
      key,
      status: res.status,
      headers: stored,
      fields: new FieldList(stored),
      leaderHeaders,
      body,
      size,
      requestTime: res.requestTime,
      responseTime: res.responseTime,
      storing: writer !== undefined,
      revalidated: req.revalidating !== undefined,
      answer: answerOf(res),
    },
    done,
  };
}

function answerOf(res: UpstreamResponse): UpstreamAnswer {
  return { status: res.status, elapsedMs: res.elapsedMs };
}

/** Bytes of a shared body held in memory; a body not stored is shared only if it fits whole. */
const SHARED_MEMORY_BYTES = 8 * 1024 * 1024;

function uncacheable(res: UpstreamResponse, reason: NotStoredReason): FetchResult {
  let taken = false;
  return {
    outcome: { kind: 'uncacheable', reason, take: () => (taken ? undefined : ((taken = true), res)) },
    done: Promise.resolve(),
  };
}

/** What the pump commits (the store adds version and checksum; size is what arrived). */
type PumpMeta = CommitMeta;

/**
 * The body when every byte of a declared, non-empty length is already buffered in the stream,
 * taken out of it in one piece (the rest of the stream, its end, is drained); else undefined and
 * the stream is left as it was.
 */
function bufferedBody(stream: Readable, size: number): Buffer | undefined {
  if (size === 0 || stream.readableLength !== size || stream.readableObjectMode || stream.readableEncoding !== null) return undefined;
  const buf = stream.read(size) as Buffer | null;
  discard(stream);
  return buf !== null && buf.length === size ? buf : undefined;
}

/** Copy one chunk into the store writer and the shared body; returns whether the writer still stores. */
async function take(deps: FetchDeps, chunk: Buffer, body: GrowingBody, writer: BlobWriter | undefined, storing: boolean, key: string): Promise<boolean> {
  deps.onUpstreamBytes?.(chunk.length);
  if (storing) {
    try {
      await writer!.write(chunk);
    } catch (err) {
      // Too large or disk trouble: keep serving from memory, stop storing.
      storing = false;
      body.detachFile();
      deps.logger.warn({ err, key }, 'cache write failed; serving without storing');
    }
  }
  body.append(chunk);
  return storing;
}

/**
 * Copy the upstream body into the store writer and the shared body, chunk by chunk. Resolves true
 * when the object was committed to the store.
 */
async function pump(deps: FetchDeps, res: UpstreamResponse, body: GrowingBody, writer: BlobWriter | undefined, meta: PumpMeta, hooks: StoreHooks): Promise<boolean> {
  let received = 0;
  let storing = writer !== undefined;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      received += chunk.length;
      storing = await take(deps, chunk, body, writer, storing, meta.key);
    }
    if (meta.size !== 0 && received !== meta.size) {
      throw new Error(`upstream sent ${received} bytes of a declared ${meta.size}`);
    }
    return await settle(deps, body, writer, meta, received, storing, hooks);
  } catch (err) {
    throw await failed(deps, err, body, writer, meta, received);
  } finally {
    void body.close();
  }
}

/** The end of pump() for a body taken whole from the stream (bufferedBody) and already handed to take(). */
async function settleWhole(deps: FetchDeps, body: GrowingBody, writer: BlobWriter | undefined, meta: PumpMeta, received: number, storing: boolean, hooks: StoreHooks): Promise<boolean> {
  try {
    return await settle(deps, body, writer, meta, received, storing, hooks);
  } catch (err) {
    throw await failed(deps, err, body, writer, meta, received);
  } finally {
    void body.close();
  }
}

/** What storing a fetched answer asks of its fetch. */
interface StoreHooks {
  /** A newer fetch for the key is under way: this answer is not stored. */
  superseded: () => boolean;
  /** The store finds the object now (before its commit resolves, for the disk store). */
  readable: () => void;
}

/** Every byte is in: end the shared body and commit the object (unless superseded). Resolves true when committed. */
async function settle(deps: FetchDeps, body: GrowingBody, writer: BlobWriter | undefined, meta: PumpMeta, received: number, storing: boolean, hooks: StoreHooks): Promise<boolean> {
  if (storing && hooks.superseded()) {
    // A newer fetch for this key is under way: its answer, not this older one, is the copy to keep.
    storing = false;
    await writer!.abort();
  }
  if (storing) {
    // Every byte is here and in the writer: the readers finish now. The commit (the disk index
    // makes a store visible to other processes in a batch every ~10 ms) need not hold their
    // answers; this flight stays until it is done, so later requests read this body meanwhile.
    body.end();
    try {
      await writer!.commit(
        { ...meta, size: received },
        {
          onReadable: () => {
            hooks.readable();
            setImmediate(releaseBody, body);
          },
        },
      );
    } catch (err) {
      storing = false;
      deps.logger.warn({ err, key: meta.key }, 'cache commit failed');
    }
  }
  body.end();
  return storing;
}

/**
 * The store finds the body now: later requests read it there, and its memory goes once the readers
 * under way finish (GrowingBody.release), instead of when the index commit resolves. Called a turn
 * after the store said so: the clients that waited for the flight's answer take the body in the
 * turn it comes (the commit may reach the index within it), and they get it from memory as ever.
 */
function releaseBody(body: GrowingBody): void {
  void body.release();
}

/** The body failed (upstream, or short of its declared length): nothing stored, every reader fails. Returns what to throw. */
async function failed(deps: FetchDeps, err: unknown, body: GrowingBody, writer: BlobWriter | undefined, meta: PumpMeta, received: number): Promise<CdnError> {
  await writer?.abort();
  // Readers that have not sent a byte yet answer with its status (502, or 504 for a stall).
  const mapped = upstreamError(err);
  const failure =
    mapped.code === 'upstream_unreachable'
      ? new CdnError('upstream_body_failed', 'upstream', `upstream body failed after ${received} bytes: ${err instanceof Error ? err.message : String(err)}`, { status: 502, cause: err })
      : mapped;
  deps.logger.warn({ err: failure, key: meta.key, received, declared: meta.size || undefined }, 'upstream body failed; not stored');
  body.fail(failure);
  return failure;
}

/**
 * A 304 to a revalidation: merge its fields into the stored ones (RFC 9111 §4.3.4). Undefined when
 * the 304 is about another representation: ours is dropped then.
 */
async function refreshStored(deps: FetchDeps, entry: BlobEntry, res: UpstreamResponse, resHeaders: Headers): Promise<FlightOutcome | undefined> {
  res.body.on('error', () => undefined).resume();
  const view = viewOf(entry.meta);
  if (!notModifiedApplies(view.headers, resHeaders)) {
    await deps.store.delete(entry.meta.key);
    return undefined;
  }
  const merged = mergeNotModified(view.headers, resHeaders);
  // The stored Age described the old response; a 304 without one says the copy is new again.
  if (!resHeaders.has('age')) merged.delete('age');
  // A lifetime the edge gave the object itself stands only while upstream says nothing of freshness.
  if (FRESHNESS_FIELDS.some((f) => resHeaders.has(f))) merged.delete(OWN_LIFETIME_FIELD);
  const pairs: [string, string][] = [];
  merged.forEach((v, k) => pairs.push([k, v]));
  // A 304 may carry new tags (RFC 9111 §4.3.4 updates every field it sends); the stored ones follow.
  // Upstream has confirmed the copy: a soft purge's mark is cleared.
  const changes: MetaChanges = { headers: pairs, requestTime: res.requestTime, responseTime: res.responseTime, storedAt: deps.now(), tags: responseTags(merged) ?? [], invalidated: false };
  await deps.store.updateMeta(entry.meta.key, changes);
  const refreshed = (await deps.store.get(entry.meta.key)) ?? { ...entry, meta: applyMetaChanges(entry.meta, changes) };
  return { kind: 'not-modified', entry: refreshed, answer: answerOf(res) };
}

/** Fields a 304 may carry that say how fresh the response is (RFC 9111 §4.2.1, RFC 9213 §2.2). */
const FRESHNESS_FIELDS = ['cache-control', 'cdn-cache-control', 'expires'];

/**
 * Negative caching: a 404 or 410 with no freshness information of its own is kept for
 * `negativeTtlMs` (so a storm of requests for a missing file does not reach upstream), by storing
 * OWN_LIFETIME_FIELD, which this cache alone reads (as its CDN-Cache-Control, stored-view.ts) and
 * never sends on: a cache below applies its own rule. Returns the header pairs to store, or
 * undefined when this does not apply.
 */
function negativeCaching(deps: FetchDeps, res: UpstreamResponse, pairs: [string, string][], headers: FieldList, decision: Storability): [string, string][] | undefined {
  if (deps.negativeTtlMs <= 0 || (res.status !== 404 && res.status !== 410)) return undefined;
  if (!decision.store && decision.reason !== 'no-freshness') return undefined;
  // An explicit lifetime (even 0, as `max-age=0` or a past Expires) is upstream's word: kept.
  const { source } = freshnessLifetime({ status: res.status, headers, responseTime: res.responseTime });
  if (source !== 'none' && source !== 'heuristic') return undefined;
  const { cc } = effectiveCacheControl(headers);
  if (cc.noStore || cc.private || cc.noCache) return undefined;
  return [...pairs, [OWN_LIFETIME_FIELD, String(Math.ceil(deps.negativeTtlMs / 1000))]];
}
