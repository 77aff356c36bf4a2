/**
 * The primary cache key (RFC 9111 §2: "the target URI"), normalised so that requests for the same
 * content share one entry: scheme-less (an edge serves one scheme's content for both), host
 * lower-cased without its default port, the path with percent-encoding normalised, and the query
 * sorted. Image-parameter
 * canonicalisation plugs in through `normalizeQuery`. The secondary key (Vary) is in vary.ts.
 */

/**
 * Rewrites the query before it enters the key, e.g. canonicalising image parameters (dropping
 * defaults, aliasing). May throw a client CdnError for an invalid parameter. Default: identity.
 */
export type QueryNormalizer = (query: URLSearchParams) => URLSearchParams;

const identity: QueryNormalizer = (query) => query;

/**
 * Host lower-cased (RFC 3986 §3.2.2: case-insensitive), a trailing dot and the default ports
 * :80 and :443 removed (RFC 3986 §6.2.3; scheme-less, so both count as default).
 */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(h);
  if (m) {
    const name = m[1]!.replace(/\.$/, '');
    const port = m[2];
    h = port === undefined || port === '' || port === '80' || port === '443' ? name : `${name}:${port}`;
  }
  return h;
}

/**
 * Path normalisation of RFC 3986 §6.2.2: percent-encodings upper-cased (§6.2.2.1) and those of
 * unreserved characters decoded (§6.2.2.2), so `/a%7eb`, `/a%7Eb` and `/a~b` are one key. Dot
 * segments are already resolved by the URL parser; a missing leading slash is added.
 */
export function normalizePath(path: string): string {
  const p = path.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
  return p.startsWith('/') ? p : `/${p}`;
}

/** Percent-encodes for the key; unlike URLSearchParams it writes a space as %20, not `+`. */
function encode(s: string): string {
  return encodeURIComponent(s);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The primary cache key: `host/path?k=v&…`. Query pairs are sorted by name (code-unit order, so
 * the key is stable across locales; the values of a repeated name keep their order, which an
 * application may give meaning) and percent-encoded consistently, so `?b=1&a=2` and `?a=2&b=1`,
 * or `?a=%41` and `?a=A`, give one key. No query means no `?`.
 *
 * @param path The path as the URL parser gives it (percent-encoded, dot segments resolved).
 * @param normalizeQuery Applied before sorting; the lead wires image-parameter canonicalisation here.
 */
export function cacheKey(
  host: string,
  path: string,
  query: URLSearchParams,
  normalizeQuery: QueryNormalizer = identity,
): string {
  // A stable sort by name: values of a repeated name keep their order (`?a=1&a=2` is not `?a=2&a=1`).
  const pairs = [...normalizeQuery(new URLSearchParams(query))].sort(([ka], [kb]) => compare(ka, kb));
  const q = pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
  return `${normalizeHost(host)}${normalizePath(path)}${q === '' ? '' : `?${q}`}`;
}
