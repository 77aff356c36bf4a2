/**
 * May a stored response answer this request, and how? (RFC 9111 §4, §4.2.4, §3.5; RFC 5861.)
 * The caller has already matched the URL and Vary (vary.ts); this decides between serving it
 * fresh, serving it stale while refreshing, or asking upstream, and how long a stale copy may
 * still be served if upstream fails.
 *
 * Stale serving. A stale copy is never served (not for stale-while-revalidate, max-stale or the
 * error path) when the response says `no-cache` (qualified or not: we do not strip the named
 * fields, RFC 9111 §5.2.2.4 allows treating it as unqualified), `must-revalidate` or
 * `proxy-revalidate` (§4.2.4, §5.2.2.2, §5.2.2.8). `s-maxage` implies proxy-revalidate
 * (§5.2.2.10), but an explicit `stale-while-revalidate` / `stale-if-error` (RFC 5861) in the same
 * response is the origin's explicit permission and wins for its own case. The configured windows
 * (an out-of-band contract, §4.2.4) apply only when nothing forbids stale and the response gives
 * no RFC 5861 directive of its own.
 */
import { type CacheControl, effectiveCacheControl, requestCacheControl } from './cache-control.js';
import {
  DEFAULT_FRESHNESS_OPTIONS,
  type FreshnessOptions,
  type FreshnessSource,
  type StoredResponseInfo,
  freshnessLifetime,
  staleness,
  storedAge,
} from './freshness.js';
import type { HeaderGetter } from './headers.js';

export interface ReuseOptions extends FreshnessOptions {
  /**
   * Honour request Cache-Control / Pragma (no-cache, max-age, min-fresh, max-stale,
   * only-if-cached) as RFC 9111 §5.2.1 describes. Default true. Set false to shield the upstream
   * from clients that force revalidation (a reload sends `no-cache`); the CDN then answers from
   * its own policy alone.
   */
  honorRequestCacheControl: boolean;
  /**
   * How long after expiry a stale copy is served while it is refreshed in the background, for
   * responses without a stale-while-revalidate directive. Default 0: only the origin grants it.
   */
  staleWhileRevalidateMs: number;
  /**
   * Grace: how long after expiry a stale copy may be served when upstream fails or times out, for
   * responses without a stale-if-error directive. Default 24 h, so an origin outage degrades to
   * slightly old content instead of errors (DESIGN.md "Edge → upstream").
   */
  graceMs: number;
}

export const DEFAULT_REUSE_OPTIONS: Readonly<ReuseOptions> = Object.freeze({
  ...DEFAULT_FRESHNESS_OPTIONS,
  honorRequestCacheControl: true,
  staleWhileRevalidateMs: 0,
  graceMs: 24 * 60 * 60 * 1000,
});

/** What every decision that looked at the stored response reports. */
interface Timing {
  /** Current age (RFC 9111 §4.2.3). */
  ageMs: number;
  /** Freshness lifetime minus age; negative once stale (Cache-Status `ttl`, RFC 9211 §2.4). */
  ttlMs: number;
  source: FreshnessSource;
  /** Last instant (ms) at which this copy may be served if upstream fails; undefined: never. */
  staleIfErrorUntil: number | undefined;
}

/** Why a revalidation is needed: Cache-Status `fwd=stale` or `fwd=request` (RFC 9211 §2.2). */
export type RevalidateReason = 'stale' | 'no-cache' | 'request';

export type ReuseDecision =
  | ({ kind: 'fresh' } & Timing)
  /** Serve the stored copy now and refresh it in the background (RFC 5861 §3, or max-stale). */
  | ({ kind: 'stale-while-revalidate' } & Timing)
  /** Ask upstream with the stored validators before using it (RFC 9111 §4.3). */
  | ({ kind: 'revalidate'; reason: RevalidateReason } & Timing)
  /** Do not use the stored copy at all; forward the request as if nothing were stored. */
  | { kind: 'bypass'; reason: 'method' | 'authorization' }
  /** The request said only-if-cached and the copy cannot be used as is: answer 504 (§5.2.1.7). */
  | ({ kind: 'only-if-cached-miss' } & Timing);

function present(value: string | null | undefined): boolean {
  return value !== null && value !== undefined;
}

interface StaleWindows {
  /** ms after expiry during which stale-while-revalidate applies; undefined: not allowed. */
  whileRevalidate: number | undefined;
  /** ms after expiry during which a stale copy may cover an upstream error. */
  ifError: number | undefined;
  /** Whether a request's max-stale may be honoured. */
  maxStaleAllowed: boolean;
}

function staleWindows(cc: CacheControl, options: ReuseOptions): StaleWindows {
  // RFC 9111 §4.2.4: explicit directives that forbid serving stale.
  if (cc.noCache || cc.noCacheFields.length > 0 || cc.mustRevalidate || cc.proxyRevalidate) {
    return { whileRevalidate: undefined, ifError: undefined, maxStaleAllowed: false };
  }
  // RFC 9111 §5.2.2.10: s-maxage implies proxy-revalidate unless RFC 5861 says otherwise.
  const implied = cc.sMaxage !== undefined;
  const window = (directive: number | undefined, configured: number): number | undefined => {
    if (directive !== undefined) return directive * 1000;
    return implied ? undefined : configured;
  };
  return {
    whileRevalidate: window(cc.staleWhileRevalidate, options.staleWhileRevalidateMs),
    ifError: window(cc.staleIfError, options.graceMs),
    maxStaleAllowed: !implied,
  };
}

/**
 * Decides how a stored response may answer `req` at time `now`, in this order:
 * 1. Only GET and HEAD reuse (RFC 9111 §4); a request with Authorization only when the response
 *    has public, s-maxage or must-revalidate (§3.5). Otherwise 'bypass'.
 * 2. Response no-cache: always 'revalidate' (§5.2.2.4).
 * 3. Request no-cache or Pragma: no-cache (§5.2.1.4, §5.4), an age above the request's max-age
 *    (§5.2.1.1), or less remaining freshness than min-fresh (§5.2.1.3): 'revalidate'.
 * 4. Fresh: 'fresh'.
 * 5. Stale: 'stale-while-revalidate' within the request's max-stale (§5.2.1.2) or the response's
 *    stale-while-revalidate window, else 'revalidate'.
 * With a request only-if-cached (§5.2.1.7), anything but 'fresh' and 'stale-while-revalidate'
 * becomes 'only-if-cached-miss'. Request directives count only if `honorRequestCacheControl`.
 */
export function reuseDecision(
  req: { method: string; headers: HeaderGetter },
  stored: StoredResponseInfo,
  now: number,
  options: ReuseOptions = DEFAULT_REUSE_OPTIONS,
): ReuseDecision {
  if (req.method !== 'GET' && req.method !== 'HEAD') return { kind: 'bypass', reason: 'method' };
  const { cc } = effectiveCacheControl(stored.headers);
  if (present(req.headers.get('authorization')) && !cc.public && cc.sMaxage === undefined && !cc.mustRevalidate) {
    return { kind: 'bypass', reason: 'authorization' };
  }

  const { lifetimeMs, source } = freshnessLifetime(stored, options);
  const ageMs = storedAge(stored, now);
  const ttlMs = lifetimeMs - ageMs;
  const windows = staleWindows(cc, options);
  const staleIfErrorUntil = windows.ifError === undefined ? undefined : now + ttlMs + windows.ifError;
  const timing: Timing = { ageMs, ttlMs, source, staleIfErrorUntil };
  const rcc = options.honorRequestCacheControl ? requestCacheControl(req.headers) : undefined;

  const decision = decide(cc, rcc, timing, lifetimeMs, windows);
  if (rcc?.onlyIfCached && decision.kind === 'revalidate') {
    return { kind: 'only-if-cached-miss', ...timing };
  }
  return decision;
}

function decide(
  cc: CacheControl,
  rcc: CacheControl | undefined,
  timing: Timing,
  lifetimeMs: number,
  windows: StaleWindows,
): ReuseDecision {
  const fresh = timing.ttlMs > 0;
  if (cc.noCache || cc.noCacheFields.length > 0) return { kind: 'revalidate', reason: 'no-cache', ...timing };
  if (rcc?.noCache) return { kind: 'revalidate', reason: 'request', ...timing };
  if (rcc?.maxAge !== undefined && timing.ageMs > rcc.maxAge * 1000) {
    return { kind: 'revalidate', reason: fresh ? 'request' : 'stale', ...timing };
  }
  if (rcc?.minFresh !== undefined && timing.ttlMs < rcc.minFresh * 1000) {
    return { kind: 'revalidate', reason: fresh ? 'request' : 'stale', ...timing };
  }
  if (fresh) return { kind: 'fresh', ...timing };

  const stale = staleness(lifetimeMs, timing.ageMs);
  if (rcc?.maxStale !== undefined && windows.maxStaleAllowed && stale <= rcc.maxStale * 1000) {
    return { kind: 'stale-while-revalidate', ...timing };
  }
  if (windows.whileRevalidate !== undefined && windows.whileRevalidate > 0 && stale <= windows.whileRevalidate) {
    return { kind: 'stale-while-revalidate', ...timing };
  }
  return { kind: 'revalidate', reason: 'stale', ...timing };
}

/**
 * The error path (RFC 5861 §4, RFC 9111 §4.2.4): may the stored copy be served at `now` because
 * upstream failed? True while `now` is within the decision's stale-if-error window.
 */
export function staleIfErrorAllowed(decision: ReuseDecision, now: number): boolean {
  if (decision.kind === 'bypass') return false;
  return decision.staleIfErrorUntil !== undefined && now <= decision.staleIfErrorUntil;
}
