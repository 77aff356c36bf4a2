/**
 * Request headers the edge sends upstream: the client's own fields pass through untouched, except
 * hop-by-hop fields (RFC 9110 §7.6.1), `Host` (upstream's own host is used) and `Expect` (this
 * server already answered it); `Via` and `X-Forwarded-For` are added (RFC 9110 §7.6.3). For a
 * fetch that fills the cache, the client's conditional and Range fields are dropped: the edge
 * wants the whole representation, and answers the client's conditions itself.
 */
import { connectionOptions, HOP_BY_HOP_FIELDS } from '../src/http/hop-by-hop.js';
import type { RequestHeaders } from '../src/http/request-headers.js';
import type { ReplyHeaders } from '../src/serve/reply.js';
import { OWN_LIFETIME_FIELD } from './stored-view.js';

const CLIENT_CONDITIONS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range'];

export interface ForwardOptions {
  /** Drop the client's conditional and Range fields (cache fills). */
  dropConditions: boolean;
  /** The client's address, appended to X-Forwarded-For. */
  clientIp: string | undefined;
  /** This node's Via pseudonym, e.g. `anycdn-ams-1`; undefined adds no Via. */
  via: string | undefined;
  /**
   * The host the cache key was made from, sent as X-Forwarded-Host: the client's Host, or an
   * absolute-form target's authority (RFC 9112 §3.2.2). Default: the client's Host.
   */
  host?: string;
  /** Extra fields that replace the client's (revalidation validators). */
  extra?: Record<string, string>;
}

/** Never forwarded. `Expect: 100-continue` was already answered by this server (RFC 9110 §10.1.1); undici refuses it. */
const ALWAYS_DROPPED: ReadonlySet<string> = new Set([...HOP_BY_HOP_FIELDS, 'host', 'content-length', 'expect']);
const DROPPED_FROM_FILLS: ReadonlySet<string> = new Set([...ALWAYS_DROPPED, ...CLIENT_CONDITIONS]);

export function forwardRequestHeaders(client: RequestHeaders, options: ForwardOptions): Record<string, string | string[]> {
  const drop = options.dropConditions ? DROPPED_FROM_FILLS : ALWAYS_DROPPED;
  // The fields Connection names are hop-by-hop too (RFC 9110 §7.6.1); usually it names none.
  const named = connectionOptions(client.get('connection'));
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of client) {
    if (drop.has(k) || (named.length > 0 && named.includes(k))) continue;
    out[k] = v;
  }
  const forwardedFor = client.get('x-forwarded-for');
  if (options.clientIp !== undefined) out['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${options.clientIp}` : options.clientIp;
  const via = client.get('via');
  if (options.via !== undefined) out['via'] = via ? `${via}, 1.1 ${options.via}` : `1.1 ${options.via}`;
  const host = options.host ?? client.get('host');
  // The host the cache key was made from; a client's own
  // X-Forwarded-Host is not trusted (it is not in the key, so an origin that used it could be made
  // to poison the cache).
  if (host !== null && host !== '') out['x-forwarded-host'] = host;
  else delete out['x-forwarded-host'];
  if (options.extra) Object.assign(out, options.extra);
  return out;
}

/**
 * Response headers relayed from upstream for a request that bypassed the cache, as Node writes
 * them: repeated fields joined with commas, except Set-Cookie, which is kept as a list (its values
 * may contain commas). Hop-by-hop fields are dropped, and the edge's own stored field; the rest,
 * CDN-Cache-Control included (RFC 9213: not hop-by-hop), goes on to caches below.
 */
export function relayResponseHeaders(pairs: readonly [string, string][]): ReplyHeaders {
  const connection = pairs.filter(([k]) => k === 'connection').map(([, v]) => v).join(',');
  const drop = new Set([...HOP_BY_HOP_FIELDS, ...connectionOptions(connection), OWN_LIFETIME_FIELD]);
  const out: ReplyHeaders = {};
  for (const [k, v] of pairs) {
    if (drop.has(k)) continue;
    const seen = out[k];
    if (seen === undefined) out[k] = k === 'set-cookie' ? [v] : v;
    else if (Array.isArray(seen)) seen.push(v);
    else out[k] = `${seen}, ${v}`;
  }
  return out;
}
