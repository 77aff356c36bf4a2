/**
 * HTTP/2 for request listeners written for node:http (RFC 9113). Node's compatibility API hands an
 * HTTP/2 stream to the same `(req, res)` listener as an HTTP/1.1 request; what differs is adapted
 * here, once, so that neither server's code needs to know:
 *
 * - Requests (`H2Request`): the target's host is the `:authority` pseudo-header (RFC 9113
 *   §8.3.1), given to the listener as `Host`; pseudo-headers are left out of `headers` and
 *   `rawHeaders` (they are not fields, and must never be forwarded upstream).
 * - Responses (`H2Response`): connection-specific fields are not allowed in HTTP/2 (§8.2.2) and
 *   are dropped; `Connection: close`, which the servers set while draining, becomes a GOAWAY once
 *   the response is complete: the client opens a new connection for its next request, as an
 *   HTTP/1.1 client would.
 * - Fresh hits (`answerStreams`): the edge's quick responder answers a stream from memory before
 *   the compatibility objects are made, as the quick front does for HTTP/1.1.
 * - Limits (`SESSION_LIMITS`, `guardSession`): what a browser never reaches but an attacker does:
 *   streams at once, header list size, and floods of frames that make the server work without
 *   asking for anything (RST_STREAM right after HEADERS, PING, SETTINGS) end the connection with
 *   GOAWAY ENHANCE_YOUR_CALM.
 */
import { constants, Http2ServerRequest, Http2ServerResponse, type Http2SecureServer, type Http2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type SecureServerOptions, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { QuickRequest, QuickResponder } from './quick-front.js';

/**
 * Session settings and bounds. Browsers open at most ~100 streams at once and send a few KiB of
 * headers; nginx's defaults are 128 streams and 32 KiB of header list (large_client_header_buffers).
 */
export const SESSION_LIMITS = {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: more at once are refused (RST_STREAM REFUSED_STREAM). */
  maxConcurrentStreams: 128,
  /** SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2): a larger request head is refused. */
  maxHeaderListSize: 32 * 1024,
  /** Fields in a request head (Node's own bound; 128 by default, as here). */
  maxHeaderListPairs: 128,
  /** MiB an HTTP/2 session may hold in nghttp2 and unsent data before new streams are refused. Node's default. */
  maxSessionMemory: 10,
  /** Entries in one SETTINGS frame (there are seven kinds). */
  maxSettings: 32,
  /** Malformed frames before the session is closed. Node's default is 1000. */
  maxSessionInvalidFrames: 100,
  /** Streams refused (over the limits above) before the session is closed. */
  maxSessionRejectedStreams: 100,
} as const;

/**
 * The flood guard's budget, per session: frames that cost the server work and ask for nothing (a
 * stream reset by the client, a PING, a SETTINGS frame) each take a token; tokens come back at
 * `perSecond`, up to `burst`. A browser resets at most the streams it has open when a page is left
 * (128 here) and pings now and then; an attacker does thousands a second. Out of tokens: GOAWAY.
 * Below nghttp2's own bounds (1000 resets; 1000 unsent PING/SETTINGS acknowledgements), so this
 * guard acts first on a flood spread over reads, and ends the connection even where nghttp2 only
 * stops answering (its rapid-reset GOAWAY leaves the socket open).
 */
export const FLOOD_BUDGET = { burst: 300, perSecond: 100 } as const;

/** Options for http2.createSecureServer: limits, and the request/response classes below. */
export function h2ServerOptions(): SecureServerOptions {
  return {
    allowHTTP1: true,
    settings: { maxConcurrentStreams: SESSION_LIMITS.maxConcurrentStreams, maxHeaderListSize: SESSION_LIMITS.maxHeaderListSize, enablePush: false },
    maxHeaderListPairs: SESSION_LIMITS.maxHeaderListPairs,
    maxSessionMemory: SESSION_LIMITS.maxSessionMemory,
    maxSettings: SESSION_LIMITS.maxSettings,
    maxSessionInvalidFrames: SESSION_LIMITS.maxSessionInvalidFrames,
    maxSessionRejectedStreams: SESSION_LIMITS.maxSessionRejectedStreams,
    Http2ServerRequest: H2Request,
    Http2ServerResponse: H2Response,
  } as SecureServerOptions;
}

// ---- fields ----

/**
 * A request's fields as an HTTP/1.1 request would have them: no pseudo-headers, and `host` from
 * `:authority` (which takes precedence over a Host field, RFC 9113 §8.3.1).
 */
export function http1RawHeaders(headers: IncomingHttpHeaders, rawHeaders: readonly string[] | undefined): string[] {
  const authority = headers[':authority'];
  const out: string[] = typeof authority === 'string' && authority !== '' ? ['host', authority] : [];
  const raw = rawHeaders ?? rawFromRecord(headers);
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* : */ || (out.length > 0 && name === 'host')) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

function rawFromRecord(headers: IncomingHttpHeaders): string[] {
  const raw: string[] = [];
  for (const name of Object.keys(headers)) {
    const v = headers[name];
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) raw.push(name, one);
  }
  return raw;
}

/** The record of `http1RawHeaders`, joined as Node's HTTP/1.1 parser joins repeated fields. */
function http1Record(raw: readonly string[]): IncomingHttpHeaders {
  const record: IncomingHttpHeaders = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const seen = record[name];
    if (name === 'set-cookie') record[name] = [...((seen as string[] | undefined) ?? []), raw[i + 1]!];
    else record[name] = seen === undefined ? raw[i + 1] : `${seen as string}${name === 'cookie' ? '; ' : ', '}${raw[i + 1]!}`;
  }
  return record;
}

/** An HTTP/2 request as a node:http listener reads one (see the module comment). */
export class H2Request extends Http2ServerRequest {
  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: object | undefined, rawHeaders: string[]) {
    super(stream, headers, options as never, rawHeaders);
    // The connection's socket (Node's guarded view of it), kept: the stream lets go of its session
    // when it closes, and the access log reads the client's address after that.
    (this as Adapted)[SESSION_SOCKET] = stream.session?.socket;
  }
}

/**
 * `headers` and `rawHeaders` are accessors on Node's class (typed as plain properties), reading the
 * stream's fields as received; the adapted lists replace them, made on first use. Node's own
 * getters (`method`, `url`, `authority`) read the stream's fields directly and are unchanged.
 */
const received = {
  headers: Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'headers')!.get!,
  rawHeaders: Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'rawHeaders')!.get!,
};
const FIELD_LIST = Symbol('http1RawHeaders');
const FIELD_RECORD = Symbol('http1Headers');
const SESSION_SOCKET = Symbol('sessionSocket');
type Adapted = H2Request & { [FIELD_LIST]?: string[]; [FIELD_RECORD]?: IncomingHttpHeaders; [SESSION_SOCKET]?: unknown };
Object.defineProperties(H2Request.prototype, {
  rawHeaders: {
    get(this: Adapted) {
      return (this[FIELD_LIST] ??= http1RawHeaders(received.headers.call(this) as IncomingHttpHeaders, received.rawHeaders.call(this) as string[] | undefined));
    },
  },
  headers: {
    get(this: Adapted) {
      return (this[FIELD_RECORD] ??= http1Record(this.rawHeaders));
    },
  },
  socket: {
    get(this: Adapted) {
      return this[SESSION_SOCKET];
    },
  },
});

/** Fields HTTP/2 has no place for (RFC 9113 §8.2.2); `te` only as `trailers`. */
const CONNECTION_FIELDS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

function isConnectionClose(value: unknown): boolean {
  return typeof value === 'string' && /(?:^|,)\s*close\s*(?:,|$)/i.test(value);
}

/** An HTTP/2 response as a node:http listener writes one (see the module comment). */
export class H2Response extends Http2ServerResponse {
  private goawayAfter = false;

  override setHeader(name: string, value: number | string | readonly string[]): this {
    const lower = name.toLowerCase();
    if (CONNECTION_FIELDS.has(lower) || (lower === 'te' && value !== 'trailers')) {
      if (lower === 'connection' && isConnectionClose(value)) this.closeSessionAfter();
      return this;
    }
    super.setHeader(name, value);
    return this;
  }

  override writeHead(status: number, messageOrHeaders?: unknown, maybeHeaders?: unknown): this {
    const headers = (typeof messageOrHeaders === 'object' ? messageOrHeaders : maybeHeaders) as Record<string, unknown> | undefined;
    let fit = headers;
    if (headers !== undefined && headers !== null && !Array.isArray(headers)) {
      for (const name in headers) {
        if (!CONNECTION_FIELDS.has(name) && name !== 'te') continue;
        if (fit === headers) fit = Object.assign({}, headers);
        if (name === 'connection' && isConnectionClose(headers[name])) this.closeSessionAfter();
        if (name !== 'te' || headers[name] !== 'trailers') delete fit![name];
      }
    }
    return (super.writeHead as (s: number, h?: unknown) => this)(status, fit);
  }

  /** GOAWAY once this response is complete: streams under way finish, no new one is taken. */
  private closeSessionAfter(): void {
    if (this.goawayAfter) return;
    this.goawayAfter = true;
    const session = this.stream.session;
    this.stream.once('close', () => closeSession(session));
  }
}

/** Graceful close: GOAWAY with the last stream taken; the session ends when its streams have. */
export function closeSession(session: Http2Session | undefined): void {
  if (session !== undefined && !session.closed && !session.destroyed) session.close();
}

// ---- fresh hits on streams ----

class StreamRequest implements QuickRequest {
  private record: Record<string, string> | undefined;
  readonly protocol = 'HTTP/2.0';

  constructor(
    readonly method: 'GET' | 'HEAD',
    readonly url: string,
    readonly rawHeaders: string[],
  ) {}

  get headers(): Record<string, string> {
    this.record ??= http1Record(this.rawHeaders) as Record<string, string>;
    return this.record;
  }
}

/**
 * The HTTP/2 head of a quick reply (`:status` and the fields HTTP/2 allows), and whether the reply
 * asked for the connection to close. Made once per fields record and status: a fast hit's record
 * is the same object for every hit of an object within a second (edge/pipeline.ts), so a stream
 * answered from memory builds no head of its own, and Node is handed the same frozen record
 * (which it copies, never changes) again and again.
 */
interface StreamHead {
  status: number;
  head: Readonly<OutgoingHttpHeaders>;
  close: boolean;
}
type StreamHeads = WeakMap<object, StreamHead>;

function streamHead(heads: StreamHeads, status: number, headers: Readonly<Record<string, string | string[]>>): StreamHead {
  const made = heads.get(headers);
  if (made !== undefined && made.status === status) return made;
  const head: OutgoingHttpHeaders = { ':status': status };
  let close = false;
  for (const name in headers) {
    if (CONNECTION_FIELDS.has(name)) {
      if (name === 'connection' && isConnectionClose(headers[name])) close = true;
      continue;
    }
    head[name] = headers[name];
  }
  const fresh = { status, head: Object.freeze(head), close };
  heads.set(headers, fresh);
  return fresh;
}

/**
 * Takes every new stream of `server`, in one 'stream' listener: `watch` (the flood guard) sees it
 * first, then `quick` (if given) answers what it can (a fresh hit in memory) with one `respond`
 * and one `end`, before Node's compatibility layer makes request and response objects; every
 * other stream goes to that layer (and the server's 'request' listener) as usual. One listener
 * rather than several: Node copies an event's listener list on every emit that has more than one.
 * Call after the 'request' listener is added: the compatibility layer's own 'stream' listener is
 * taken off and called here.
 */
export function answerStreams(server: Http2SecureServer, quick: QuickResponder | undefined, watch: (stream: ServerHttp2Stream) => void): void {
  const compat = server.listeners('stream') as ((...args: unknown[]) => void)[];
  server.removeAllListeners('stream');
  const heads: StreamHeads = new WeakMap();
  const passOn = compat.length === 1 ? compat[0]! : (...args: unknown[]) => compat.forEach((listener) => listener.apply(server, args));
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    watch(stream);
    // END_STREAM with the HEADERS frame: a request without a body, the only kind answered here.
    if (quick !== undefined && (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0) {
      const method = headers[':method'];
      const path = headers[':path'];
      if ((method === 'GET' || method === 'HEAD') && typeof path === 'string' && path.startsWith('/')) {
        let reply;
        try {
          reply = quick(new StreamRequest(method, path, http1RawHeaders(headers, rawHeaders)), stream.session?.socket as Socket);
        } catch {
          reply = undefined; // a responder's bug: the compatibility layer answers and reports it
        }
        if (reply !== undefined) {
          const { head, close } = streamHead(heads, reply.status, reply.headers);
          const body = method === 'HEAD' ? null : reply.body;
          if (close) {
            const session = stream.session; // the stream lets go of it when it closes
            stream.once('close', () => closeSession(session));
          }
          stream.respond(head, body === null ? END_STREAM : undefined);
          // Lent bytes (a disk hit) go back once the stream has written them ('finish'); never, if it fails.
          if (body !== null) stream.end(body, reply.release);
          else reply.release?.();
          return;
        }
      }
    }
    passOn.call(server, stream, headers, flags, rawHeaders);
  });
}

const END_STREAM = Object.freeze({ endStream: true });

// ---- floods ----

/**
 * Counts, per session, the frames that make the server work without a request to show for it:
 * streams the client resets (rapid reset, CVE-2023-44487), PINGs and SETTINGS frames; past the
 * FLOOD_BUDGET the session ends with GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §5.4.1) and is destroyed.
 * nghttp2 has its own bounds for some of these (a queue of unsent ACKs, its stream reset rate
 * from 1.57), which act only when the client does not read, or at its own rates; this one acts the
 * same on every Node version. `onAbuse` hears which. Returns what watches each of the session's
 * streams (answerStreams calls it): one close listener, shared by the session's streams.
 */
export function guardSession(session: Http2Session, onAbuse: (kind: 'reset' | 'ping' | 'settings') => void, now: () => number = () => performance.now()): (stream: ServerHttp2Stream) => void {
  let tokens: number = FLOOD_BUDGET.burst;
  let last = now();
  let ended = false;
  const spend = (kind: 'reset' | 'ping' | 'settings'): void => {
    if (ended) return;
    const t = now();
    tokens = Math.min(FLOOD_BUDGET.burst, tokens + ((t - last) / 1000) * FLOOD_BUDGET.perSecond);
    last = t;
    tokens -= 1;
    if (tokens >= 0) return;
    ended = true;
    onAbuse(kind);
    // GOAWAY with this code, written out before the socket ends (Node's Http2Session.destroy).
    if (!session.destroyed) session.destroy(new Error(`HTTP/2 ${kind} flood`), constants.NGHTTP2_ENHANCE_YOUR_CALM);
  };
  session.on('ping', () => spend('ping'));
  // The first SETTINGS is the client's preface: it counts like any other, one token.
  session.on('remoteSettings', () => spend('settings'));
  function closed(this: ServerHttp2Stream): void {
    // Reset by the client: RST_STREAM received (any code but NO_ERROR) before the stream ended both ways.
    if (this.rstCode !== undefined && this.rstCode !== constants.NGHTTP2_NO_ERROR) spend('reset');
  }
  return (stream) => void stream.on('close', closed);
}
