/**
 * Cache keys at the edge. The primary key is the normalised URL (src/http/cache-key.ts) with image
 * parameters in their canonical form, so `?fmt=auto&w=400` and `?w=400&fmt=auto` share an entry.
 * A response with `Vary` is stored under `primary + VARY_SEPARATOR + secondary`, where the
 * secondary key holds the normalised request fields (for `Accept`, the negotiated class avif /
 * webp / other — never the raw header), so the vary fields of a stored object can be read back
 * from its key alone when the index is rebuilt at start-up.
 */
import { cacheKey, normalizeHost, normalizePath, type QueryNormalizer } from '../src/http/cache-key.js';
import type { HeaderGetter } from '../src/http/headers.js';
import { invalidHost } from '../src/http/host.js';
import type { EdgeRequest } from './edge-request.js';
import { varySecondaryKey } from '../src/http/vary.js';
import { IMAGE_PARAM_NAMES, parseImageParams, type ImageParamOptions } from '../src/image/params.js';
import { canonicalPath, pathWithoutQuery } from '../src/purge/purge-path.js';

/** Separates the primary from the secondary (Vary) part of a stored key; never appears in a URL. */
export const VARY_SEPARATOR = '\u0000';
/** Separates a stored key from the content coding of a derived (compressed) copy. */
export const CODING_SEPARATOR = '\u0001';

/**
 * Canonicalise image parameters inside the key: when the query has any, they are parsed (a bad
 * one is a 400 here, without bothering upstream) and replaced by their canonical form; `sig` and
 * anything else stays as given.
 */
export function imageQueryNormalizer(options: ImageParamOptions): QueryNormalizer {
  return (query) => {
    const parsed = parseImageParams(query, options);
    if (parsed === undefined) return query;
    const out = new URLSearchParams(parsed.canonical);
    for (const [k, v] of query) if (!(IMAGE_PARAM_NAMES as readonly string[]).includes(k)) out.append(k, v);
    return out;
  };
}

/**
 * The path and query sent upstream: a plain target (see plainTargetPath) as it is, else the parsed
 * URL's, whose parsing refuses a Host that is not a host and a port with a 400.
 */
export function upstreamPath(req: Pick<EdgeRequest, 'target' | 'headers' | 'url'>): string {
  const plain = plainTargetPath(req.target);
  if (plain !== undefined && invalidHost(req.headers.get('host') ?? undefined) === undefined) return plain;
  return req.url.pathname + req.url.search;
}

/**
 * A `+` in the query stays a `+`: form decoding would make `?q=a+b` and `?q=a%20b` one key, but
 * the query is the application's, and one that reads `+` literally would get the other's answer.
 */
export function primaryKey(host: string, url: URL, normalizeQuery: QueryNormalizer): string {
  // No query: what cacheKey makes of an empty one, without the URLSearchParams it would copy and sort.
  if (url.search === '') return normalizeHost(host) + normalizePath(url.pathname);
  const query = url.search.includes('+') ? new URLSearchParams(url.search.replaceAll('+', '%2B')) : url.searchParams;
  return cacheKey(host, url.pathname, query, normalizeQuery);
}

/**
 * An origin-form target that is a path alone and that URL parsing and key normalisation leave
 * exactly as it is: pchars only (RFC 3986 §3.3; no `%`, so no escape to normalise), no query, no
 * dot segment and no empty one. Such a target is the URL's pathname, its key path and the path
 * sent upstream, so a cold miss for it needs no URL parsed (`new URL` per miss). Undefined for
 * any other target.
 */
export function plainTargetPath(target: string): string | undefined {
  return PLAIN_TARGET.test(target) && !target.includes('/.') && !target.includes('//') ? target : undefined;
}

const PLAIN_TARGET = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;

/**
 * The primary key of a plain target (plainTargetPath) on `host` (the Host field, '' without one),
 * what primaryKey makes of its parsed URL; undefined when the target is not plain. A Host that is
 * not a host and a port is a 400, as when the URL is parsed (edge/app.ts requestUrl).
 */
export function plainPrimaryKey(host: string, target: string): string | undefined {
  const path = plainTargetPath(target);
  if (path === undefined) return undefined;
  const invalid = invalidHost(host);
  if (invalid !== undefined) throw invalid;
  return normalizeHost(host) + path;
}

export function variantKey(primary: string, fields: readonly string[], req: HeaderGetter): string {
  return primary + VARY_SEPARATOR + varySecondaryKey(fields, req);
}

/** The primary key and vary fields a stored key was made from. */
export function splitStoredKey(key: string): { primary: string; fields: string[] | undefined; coding: string | undefined } {
  let rest = key;
  let coding: string | undefined;
  const c = rest.indexOf(CODING_SEPARATOR);
  if (c >= 0) {
    coding = rest.slice(c + 1);
    rest = rest.slice(0, c);
  }
  const v = rest.indexOf(VARY_SEPARATOR);
  if (v < 0) return { primary: rest, fields: undefined, coding };
  const secondary = rest.slice(v + 1);
  const fields = secondary === '' ? [] : secondary.split('&').map((pair) => pair.split('=')[0]!);
  return { primary: rest.slice(0, v), fields, coding };
}

/** The path (with query) of a primary key: what purges by URL and prefix match against. */
export function pathOfKey(primary: string): string {
  const slash = primary.indexOf('/');
  return slash < 0 ? '/' : primary.slice(slash);
}

/** The host of a primary key (normalised: lower case, no default port; '' for a request without Host). */
export function hostOfKey(primary: string): string {
  const slash = primary.indexOf('/');
  return slash < 0 ? primary : primary.slice(0, slash);
}

/**
 * The path a stored key (primary, variant or compressed copy) is listed under for purges: its URL
 * path without host and query, in the canonical spelling of src/purge/purge-path.ts. The disk
 * index lists objects by it, so a purge of a path finds every query (`/a.jpg?w=400`), every host
 * and every spelling (`/a%40b.jpg` for `/a@b.jpg`) of it with one range read.
 */
export function purgePathOfKey(key: string): string {
  return canonicalPath(pathWithoutQuery(pathOfKey(splitStoredKey(key).primary)));
}

/**
 * Primary keys by host and request target, so a hit does not re-normalise its URL. Kept by host,
 * then by target: a lookup hashes the two strings as Node parsed them, never a concatenation it
 * would first have to copy. Two generations of at most `generation` entries each: a lookup that
 * finds its key only in the older one brings it along, and when the newer one is full the older
 * one is dropped whole. So the keys in use stay, memory stays bounded, and nothing is ever deleted
 * one by one (every single delete leaves a slot V8 cleans up by rebuilding the whole Map).
 */
export class KeyMemo {
  private current = new Map<string, Map<string, string>>();
  private previous = new Map<string, Map<string, string>>();
  private currentSize = 0;
  private previousSize = 0;

  constructor(private readonly generation = 50_000) {}

  get(host: string, target: string): string | undefined {
    const primary = this.current.get(host)?.get(target);
    if (primary !== undefined) return primary;
    const old = this.previous.get(host)?.get(target);
    if (old !== undefined) this.set(host, target, old);
    return old;
  }

  set(host: string, target: string, primary: string): void {
    if (this.currentSize >= this.generation) {
      this.previous = this.current;
      this.previousSize = this.currentSize;
      this.current = new Map();
      this.currentSize = 0;
    }
    let byTarget = this.current.get(host);
    if (byTarget === undefined) this.current.set(host, (byTarget = new Map()));
    if (!byTarget.has(target)) this.currentSize++;
    byTarget.set(target, primary);
  }

  get size(): number {
    return this.currentSize + this.previousSize;
  }
}
