/**
 * May a shared cache store this response? (RFC 9111 §3, §3.5.) The answer carries a stable reason
 * word when it is "no"; the same words appear in Cache-Status `detail`, logs and metrics.
 *
 * Our rule, in order (the first failing check is the reason):
 * 1. `method`: only GET responses are stored (HEAD is answered from a stored GET).
 * 2. `partial` for 206 (no range stitching); `status` for codes we do not store: 1xx, 304, and any
 *    code not in the understood set below (§3: "the response status code is final" and understood).
 * 3. `no-store` in the request (§5.2.1.5, unless request directives are not honoured) or in the
 *    response (§5.2.2.5). With `must-understand` and an understood status, no-store is ignored
 *    (§5.2.2.3).
 * 4. `private` (unqualified, §5.2.2.7). A qualified `private="f"` stores the response without those
 *    fields (`omitFields`).
 * 5. `authorization`: the request had Authorization and the response has none of public,
 *    s-maxage or must-revalidate (§3.5).
 * 6. `vary-star`: `Vary: *` never matches a later request (§4.1), storing it is useless.
 * 7. `set-cookie` unless `storeSetCookie`, or unless `private="set-cookie"` omits it.
 * 8. `no-freshness`: §3 requires explicit freshness (max-age, s-maxage, Expires), `public`, or a
 *    heuristically cacheable status. Beyond §3, a response that would be stale at once (explicit
 *    lifetime 0, or no explicit lifetime) AND has no validator (ETag, Last-Modified) can never be
 *    reused without a full refetch, so it is not stored either. A `no-cache` or `max-age=0`
 *    response WITH a validator is stored: it is revalidated on every use and saves the body.
 *
 * `too-large` is decided by the caller (it knows the body size) and shares the vocabulary.
 */
import { effectiveCacheControl, requestCacheControl } from './cache-control.js';
import { HEURISTICALLY_CACHEABLE, freshnessLifetime } from './freshness.js';
import type { HeaderGetter } from './headers.js';
import { varyFields } from './vary.js';

export type NotStoredReason =
  | 'method'
  | 'status'
  | 'partial'
  | 'no-store'
  | 'private'
  | 'authorization'
  | 'vary-star'
  | 'set-cookie'
  | 'no-freshness'
  | 'too-large';

export type Storability =
  | { store: true; /** Lower-cased fields to drop before storing (qualified private). */ omitFields: string[] }
  | { store: false; reason: NotStoredReason };

export interface StorabilityOptions {
  /**
   * Store responses carrying Set-Cookie (the cookie would be replayed to every client). Default
   * false: one user's session must never be served to another.
   */
  storeSetCookie: boolean;
  /** Honour request `Cache-Control: no-store`. Default true (RFC 9111 §5.2.1.5). */
  honorRequestCacheControl?: boolean;
}

/**
 * Status codes whose semantics this cache understands and may store (RFC 9110 §15); others are
 * never stored (RFC 9111 §3, §5.2.2.3). 206 and 304 are understood but handled separately.
 */
export const STORABLE_STATUSES = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]);

/** The response as storability sees it; `responseTime` (ms) measures Expires when Date is absent. */
export interface StorableResponse {
  status: number;
  headers: HeaderGetter;
  responseTime?: number;
}

export function storability(
  req: { method: string; headers: HeaderGetter },
  res: StorableResponse,
  options: StorabilityOptions,
): Storability {
  if (req.method !== 'GET') return { store: false, reason: 'method' };
  if (res.status === 206) return { store: false, reason: 'partial' };
  const understood = STORABLE_STATUSES.has(res.status);
  const { cc } = effectiveCacheControl(res.headers);

  // §3 and §5.2.2.3 (must-understand): a status we do not understand is never stored.
  if (!understood) return { store: false, reason: 'status' };
  const honorRequest = options.honorRequestCacheControl ?? true;
  if (honorRequest && requestCacheControl(req.headers).noStore) return { store: false, reason: 'no-store' };
  if (cc.noStore && !cc.mustUnderstand) return { store: false, reason: 'no-store' };
  if (cc.private) return { store: false, reason: 'private' };

  const authorization = req.headers.get('authorization');
  if (authorization !== null && authorization !== undefined) {
    if (!cc.public && cc.sMaxage === undefined && !cc.mustRevalidate) return { store: false, reason: 'authorization' };
  }
  if (varyFields(res.headers) === '*') return { store: false, reason: 'vary-star' };

  const omitFields = cc.privateFields;
  const setCookie = res.headers.get('set-cookie');
  if (setCookie !== null && setCookie !== undefined && !options.storeSetCookie && !omitFields.includes('set-cookie')) {
    return { store: false, reason: 'set-cookie' };
  }
  if (!worthStoring(res, cc.public)) return { store: false, reason: 'no-freshness' };
  return { store: true, omitFields };
}

function worthStoring(res: StorableResponse, isPublic: boolean): boolean {
  // Without a receipt time, Expires is measured from Date (or counts as positive when valid).
  const responseTime = res.responseTime ?? Number.NEGATIVE_INFINITY;
  const { lifetimeMs, source } = freshnessLifetime(
    { status: res.status, headers: res.headers, responseTime },
    { heuristicFraction: 0, heuristicMaxMs: 0 },
  );
  const explicit = source !== 'heuristic' && source !== 'none';
  // RFC 9111 §3: explicit freshness, public, or a heuristically cacheable status.
  if (!explicit && !isPublic && !HEURISTICALLY_CACHEABLE.has(res.status)) return false;
  if (explicit && lifetimeMs > 0) return true;
  return hasValidator(res.headers);
}

function hasValidator(headers: HeaderGetter): boolean {
  const etag = headers.get('etag');
  const lastModified = headers.get('last-modified');
  return Boolean(etag) || Boolean(lastModified);
}

/**
 * Whether a storability refusal came from the request (its Authorization, `no-store`, a fault of
 * its own) rather than the response: then it says nothing of the URL, and one client's request
 * must not make the URL uncacheable for the others (the edge's hit-for-miss).
 */
export function refusedForTheRequest(requestHeaders: HeaderGetter, reason: NotStoredReason, status: number): boolean {
  return reason === 'authorization' || (reason === 'no-store' && requestCacheControl(requestHeaders).noStore) || (reason === 'status' && REQUEST_FAULT_STATUSES.has(status));
}

/** Errors about the request, not the URL (a header too large, a body where none belongs, a request too fast). */
const REQUEST_FAULT_STATUSES = new Set([400, 406, 408, 411, 412, 413, 414, 415, 416, 417, 421, 422, 428, 429, 431]);
