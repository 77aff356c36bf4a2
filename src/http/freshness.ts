/**
 * Freshness of a stored response at a shared cache (RFC 9111 §4.2): its freshness lifetime
 * (CDN-Cache-Control per RFC 9213, then s-maxage, max-age, Expires, then a bounded heuristic), its
 * current age, and whether it is still fresh. All times are ms; `now` is always passed in.
 */
import { type CacheControl, effectiveCacheControl, parseDeltaSeconds } from './cache-control.js';
import { type HeaderGetter, parseHttpDate } from './headers.js';

/** What freshness needs to know about a stored response. */
export interface StoredResponseInfo {
  status: number;
  headers: HeaderGetter;
  /** When the request that produced the response was sent (ms), RFC 9111 §4.2.3 `request_time`. */
  requestTime: number;
  /** When the response was received (ms), RFC 9111 §4.2.3 `response_time`. */
  responseTime: number;
}

export interface FreshnessOptions {
  /**
   * Fraction of (Date − Last-Modified) used as a heuristic lifetime (RFC 9111 §4.2.2 suggests
   * "no more than some fraction", typically 10%). Default 0.1.
   */
  heuristicFraction: number;
  /** Upper bound of a heuristic lifetime, so an old file is not cached for months. Default 24 h. */
  heuristicMaxMs: number;
}

export const DEFAULT_FRESHNESS_OPTIONS: Readonly<FreshnessOptions> = Object.freeze({
  heuristicFraction: 0.1,
  heuristicMaxMs: 24 * 60 * 60 * 1000,
});

export type FreshnessSource = 'cdn-cache-control' | 's-maxage' | 'max-age' | 'expires' | 'heuristic' | 'none';

export interface FreshnessLifetime {
  lifetimeMs: number;
  source: FreshnessSource;
}

/** RFC 9110 §15.1: status codes that are heuristically cacheable by default. */
export const HEURISTICALLY_CACHEABLE = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]);

/**
 * The response's Date, or the time it was received when Date is absent or invalid (RFC 9110
 * §6.6.1: a recipient with a clock adds the time received).
 */
export function dateValue(res: Pick<StoredResponseInfo, 'headers' | 'responseTime'>): number {
  return parseHttpDate(res.headers.get('date')) ?? res.responseTime;
}

/**
 * Freshness lifetime (RFC 9111 §4.2.1) for a shared cache, first match wins:
 * 1. CDN-Cache-Control when valid and non-empty (RFC 9213 §2.2): its s-maxage, else its max-age;
 *    Cache-Control and Expires are then ignored entirely.
 * 2. Cache-Control s-maxage (§5.2.2.10), then max-age (§5.2.2.1).
 * 3. Expires − Date (§5.3); an invalid Expires means already expired (lifetime 0).
 * 4. A heuristic (§4.2.2): `heuristicFraction` × (Date − Last-Modified), at most `heuristicMaxMs`,
 *    only with a Last-Modified and a heuristically cacheable status (RFC 9110 §15.1) or `public`.
 * 5. Otherwise 0 with source 'none': a lifetime is never invented.
 */
export function freshnessLifetime(
  res: Pick<StoredResponseInfo, 'status' | 'headers' | 'responseTime'>,
  options: FreshnessOptions = DEFAULT_FRESHNESS_OPTIONS,
): FreshnessLifetime {
  const { cc, targeted } = effectiveCacheControl(res.headers);
  const explicit = explicitLifetime(res, cc, targeted);
  if (explicit !== undefined) return explicit;
  return heuristicLifetime(res, cc, options);
}

function explicitLifetime(
  res: Pick<StoredResponseInfo, 'headers' | 'responseTime'>,
  cc: CacheControl,
  targeted: boolean,
): FreshnessLifetime | undefined {
  if (targeted) {
    const seconds = cc.sMaxage ?? cc.maxAge;
    return seconds === undefined ? undefined : { lifetimeMs: seconds * 1000, source: 'cdn-cache-control' };
  }
  if (cc.sMaxage !== undefined) return { lifetimeMs: cc.sMaxage * 1000, source: 's-maxage' };
  if (cc.maxAge !== undefined) return { lifetimeMs: cc.maxAge * 1000, source: 'max-age' };
  const expiresRaw = res.headers.get('expires');
  if (expiresRaw !== null && expiresRaw !== undefined) {
    // RFC 9111 §5.3: an invalid date, such as "0", represents a time in the past.
    const expires = parseHttpDate(expiresRaw);
    const lifetimeMs = expires === undefined ? 0 : Math.max(0, expires - dateValue(res));
    return { lifetimeMs, source: 'expires' };
  }
  return undefined;
}

function heuristicLifetime(
  res: Pick<StoredResponseInfo, 'status' | 'headers' | 'responseTime'>,
  cc: CacheControl,
  options: FreshnessOptions,
): FreshnessLifetime {
  // RFC 9111 §4.2.2: only for heuristically cacheable statuses or responses marked cacheable.
  if (!HEURISTICALLY_CACHEABLE.has(res.status) && !cc.public) return { lifetimeMs: 0, source: 'none' };
  const lastModified = parseHttpDate(res.headers.get('last-modified'));
  if (lastModified === undefined) return { lifetimeMs: 0, source: 'none' };
  const sinceModified = Math.max(0, dateValue(res) - lastModified);
  const lifetimeMs = Math.min(Math.floor(sinceModified * options.heuristicFraction), options.heuristicMaxMs);
  return { lifetimeMs: Math.max(0, lifetimeMs), source: 'heuristic' };
}

/**
 * Parses Age (RFC 9111 §5.1): delta-seconds, saturating at 2^31 (so an age that large is stale
 * under any lifetime). Age is a singleton, but a message may carry it as a list (`Age: 7200, 0`)
 * or on several lines, which arrive joined with ", " in received order: §5.1 says to use the first
 * member and discard the rest (empty list elements do not count, RFC 9110 §5.6.1). Parameters on
 * it (`7200;foo=bar`) are not part of the number and are dropped. A first member that is not
 * delta-seconds (`abc`, `-1`, `1.5`) makes the field ignored (`undefined`), as §5.1 says.
 */
export function parseAge(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const first = value.split(',').find((member) => member.trim() !== '');
  if (first === undefined) return undefined;
  const semicolon = first.indexOf(';');
  return parseDeltaSeconds((semicolon < 0 ? first : first.slice(0, semicolon)).trim());
}

export interface AgeInputs {
  requestTime: number;
  responseTime: number;
  /** The Date header of the stored response (ms), when it had a valid one. */
  dateMs?: number;
  /** The Age header of the stored response (seconds), when it had a valid one. */
  ageHeaderSec?: number;
}

/**
 * Current age in ms (RFC 9111 §4.2.3):
 *   apparent_age = max(0, response_time − date_value)
 *   corrected_age_value = age_value + (response_time − request_time)
 *   corrected_initial_age = max(apparent_age, corrected_age_value)
 *   current_age = corrected_initial_age + (now − response_time)
 * A missing Date means date_value = response_time; a missing Age means 0. A clock that went
 * backwards never makes the resident time negative.
 */
export function currentAge(info: AgeInputs, now: number): number {
  const dateMs = info.dateMs ?? info.responseTime;
  const apparentAge = Math.max(0, info.responseTime - dateMs);
  const responseDelay = Math.max(0, info.responseTime - info.requestTime);
  const correctedAgeValue = (info.ageHeaderSec ?? 0) * 1000 + responseDelay;
  const correctedInitialAge = Math.max(apparentAge, correctedAgeValue);
  const residentTime = Math.max(0, now - info.responseTime);
  return correctedInitialAge + residentTime;
}

/** `currentAge` read from a stored response's own Date and Age headers. */
export function storedAge(res: StoredResponseInfo, now: number): number {
  return currentAge(ageInputsOf(res), now);
}

/** The inputs of `currentAge` of a stored response: fixed once it is stored, so they can be kept. */
export function ageInputsOf(res: StoredResponseInfo): AgeInputs {
  const inputs: AgeInputs = { requestTime: res.requestTime, responseTime: res.responseTime };
  const dateMs = parseHttpDate(res.headers.get('date'));
  if (dateMs !== undefined) inputs.dateMs = dateMs;
  const ageHeaderSec = parseAge(res.headers.get('age'));
  if (ageHeaderSec !== undefined) inputs.ageHeaderSec = ageHeaderSec;
  return inputs;
}

/** RFC 9111 §4.2: fresh when the freshness lifetime exceeds the current age. */
export function isFresh(lifetimeMs: number, ageMs: number): boolean {
  return lifetimeMs > ageMs;
}

/** How long ago the response became stale (ms); 0 while it is fresh. */
export function staleness(lifetimeMs: number, ageMs: number): number {
  return Math.max(0, ageMs - lifetimeMs);
}
