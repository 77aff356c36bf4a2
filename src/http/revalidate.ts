/**
 * Validating a stored response with the next hop (RFC 9111 §4.3): the conditional request headers
 * built from its validators, deciding whether a 304 applies to it, and folding the 304's header
 * fields into the stored ones.
 */
import { strongMatch, weakMatch } from './conditional.js';
import { type HeaderGetter, parseHttpDate } from './headers.js';
import { connectionOptions, isHopByHop } from './hop-by-hop.js';

/**
 * Conditional headers for revalidating a stored response (RFC 9111 §4.3.1): If-None-Match with its
 * ETag (weak tags included: If-None-Match uses weak comparison) and If-Modified-Since with its
 * Last-Modified, copied exactly as RFC 9110 §13.1.3 recommends. A Last-Modified that is not a valid
 * HTTP-date is not sent. Empty when the response has no validator.
 */
export function conditionalHeadersFor(stored: HeaderGetter): Record<string, string> {
  const out: Record<string, string> = {};
  const etag = stored.get('etag')?.trim();
  if (etag) out['if-none-match'] = etag;
  const lastModified = stored.get('last-modified')?.trim();
  if (lastModified && parseHttpDate(lastModified) !== undefined) out['if-modified-since'] = lastModified;
  return out;
}

/**
 * Whether a 304 identifies this stored response for update (RFC 9111 §4.3.4):
 * - a strong ETag in the 304 must match the stored ETag by strong comparison;
 * - a weak ETag must match by weak comparison;
 * - with no ETag, a Last-Modified in the 304 must equal the stored one when both have it;
 * - a 304 without validators applies (the request was conditional on this response alone).
 */
export function notModifiedApplies(stored: HeaderGetter, notModified: HeaderGetter): boolean {
  const newEtag = notModified.get('etag')?.trim();
  if (newEtag) {
    const oldEtag = stored.get('etag')?.trim();
    if (!oldEtag) return false;
    return newEtag.startsWith('W/') ? weakMatch(newEtag, oldEtag) : strongMatch(newEtag, oldEtag);
  }
  const newLm = parseHttpDate(notModified.get('last-modified'));
  const oldLm = parseHttpDate(stored.get('last-modified'));
  if (newLm !== undefined && oldLm !== undefined) return newLm === oldLm;
  return true;
}

/**
 * Fields a 304 never updates: Content-Length (RFC 9111 §3.2: it describes the 304, not the stored
 * body) and hop-by-hop fields (RFC 9111 §3.1), including those the 304's Connection names.
 */
function excluded(name: string, connection: string | null): boolean {
  return name === 'content-length' || isHopByHop(name, connection);
}

/**
 * The stored header fields updated with a 304 (RFC 9111 §4.3.4, §3.2): every field present in the
 * 304 replaces all stored instances of that field; the others are kept. Returns a new Headers.
 */
export function mergeNotModified(storedHeaders: Headers, notModifiedHeaders: Headers): Headers {
  const connection = notModifiedHeaders.get('connection');
  const replaced = new Set<string>();
  for (const [name] of notModifiedHeaders) {
    if (!excluded(name, connection)) replaced.add(name);
  }
  const storedConnection = new Set(connectionOptions(storedHeaders.get('connection')));
  const out = new Headers();
  for (const [name, value] of storedHeaders) {
    if (replaced.has(name) || storedConnection.has(name) || isHopByHop(name)) continue;
    out.append(name, value);
  }
  for (const [name, value] of notModifiedHeaders) {
    if (replaced.has(name)) out.append(name, value);
  }
  return out;
}
