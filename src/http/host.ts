/**
 * The Host field (RFC 9112 §3.2, RFC 9110 §7.2): one per request, holding a host and a port. Both
 * servers refuse anything else with a 400: Node keeps the first of two Host fields and accepts
 * any characters in one, and a proxy in front may have routed by what Node ignored.
 */
import type { IncomingMessage } from 'node:http';
import { clientError, type CdnError } from '../errors.js';

/** A 400 for a request with more than one Host field; undefined when there is one or none. */
export function duplicateHost(rawHeaders: readonly string[]): CdnError | undefined {
  let seen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue;
    if (seen) return clientError('bad_request', 'more than one Host header: a request names one host (RFC 9112 §3.2)', { status: 400 });
    seen = true;
  }
  return undefined;
}

/**
 * What a Host field may hold (RFC 9110 §7.2, RFC 3986 §3.2.2): a host name or a bracketed IP
 * literal, and a port. Nothing that a URL parser would read as a path, query, fragment or user
 * (`h/p`, `h?x`, `u@h`, `h\p`): the Host is part of the cache key and of the URL the upstream path
 * is taken from, so `Host: h/p` must not turn `GET /q` into a fetch of `/p/q` stored as `/p/p/q`.
 */
const VALID_HOST = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$/;

/** A 400 for a Host that is not a host name or [IP literal] and a port (0–65535); undefined when it is, or absent. */
export function invalidHost(host: string | undefined): CdnError | undefined {
  if (host === undefined || host === '') return undefined;
  const port = host.lastIndexOf(':') > host.lastIndexOf(']') ? host.slice(host.lastIndexOf(':') + 1) : '';
  if (VALID_HOST.test(host) && (port === '' || Number(port) <= 65535)) return undefined;
  return clientError('bad_request', `invalid Host header ${JSON.stringify(host.slice(0, 200))}: expected a host name or [IP address] and an optional port`, { status: 400 });
}

/**
 * A request Node accepted but HTTP/1.1 refuses: another major version (505; HTTP/2 comes adapted by
 * src/serve/h2.ts, its :authority as Host), two Host fields or one that is not a host (400).
 */
export function framingProblem(req: Pick<IncomingMessage, 'httpVersionMajor' | 'rawHeaders' | 'headers'>): CdnError | undefined {
  // A request line saying HTTP/2.0 on an HTTP/1 connection is no HTTP/2 request: only a stream is.
  const http2Stream = req.httpVersionMajor === 2 && (req as { stream?: unknown }).stream !== undefined;
  if (req.httpVersionMajor !== 1 && !http2Stream) {
    return clientError('http_version_not_supported', `HTTP/${req.httpVersionMajor}.x is not supported here: send HTTP/1.1`, { status: 505 });
  }
  return duplicateHost(req.rawHeaders) ?? invalidHost(req.headers.host);
}

/**
 * RFC 9112 §3.2: a request target either server reads is a path (origin-form) or a whole http(s)
 * URL (absolute-form); `*` is only for OPTIONS (§3.2.4), which each server answers itself.
 */
export function unreadableTarget(target: string): CdnError | undefined {
  if (target.startsWith('/') || /^https?:\/\//i.test(target)) return undefined;
  return clientError('bad_request', `cannot read the request target ${JSON.stringify(target.slice(0, 200))}: send a path such as /photos/cat.jpg`, { status: 400 });
}
