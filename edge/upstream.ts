/**
 * The edge's only way out: an undici pool to the configured upstream (origin or shield), with
 * keep-alive and timeouts split by phase (connect, response headers, body idle). Requests carry a
 * path; the host is fixed by configuration, so no URL or header from a client can make the edge
 * connect anywhere else. Failures become CdnErrors with source `upstream`: a refused or failed
 * connection is 502 `upstream_unreachable`, a timeout 504 `upstream_timeout`, an https://
 * upstream whose certificate does not verify (or that refuses ours) 502 `upstream_tls`: never a
 * fallback to cleartext.
 */
import { EventEmitter } from 'node:events';
import { pipeline, Transform, type Readable } from 'node:stream';
import { newPool, poolRequest, undiciErrors, type Pool } from './undici-parts.js';
import { CdnError, clientError } from '../src/errors.js';
import { controlPathOf } from './control-path.js';

export interface UpstreamTimeouts {
  connectMs: number;
  headersMs: number;
  bodyIdleMs: number;
}

export interface UpstreamRequest {
  method: string;
  /** Path and query, starting with `/`. */
  path: string;
  headers: Record<string, string | string[]>;
  body?: Readable | Buffer | null;
  signal?: AbortSignal;
  /**
   * Called with each informational (1xx) response upstream sends before the final one (103 Early
   * Hints, 102…), its fields as received; never for 101, which this client never asks for.
   */
  onInformational?: (status: number, headers: [string, string][]) => void;
}

export interface UpstreamResponse {
  status: number;
  /** Header fields as received; repeated fields stay repeated, names lower-cased. */
  headers: [string, string][];
  body: Readable;
  /** When the request was sent and when its response headers arrived (RFC 9111 §4.2.3). */
  requestTime: number;
  responseTime: number;
  /** Time from sending the request (or queueing it for a connection) to the response head, in ms. */
  elapsedMs: number;
}

/** What the access log keeps of an upstream answer. */
export type UpstreamAnswer = Pick<UpstreamResponse, 'status' | 'elapsedMs'>;

export type UpstreamPhase = 'connect' | 'headers' | 'body';

/** How an https:// upstream is verified, and the client certificate shown to it (edge/https.ts reads them from `upstreamTls`). */
export interface UpstreamTls {
  /** Trusted CA certificates, PEM: Node's bundled roots plus the configured ones. Default: the roots. */
  ca?: (string | Buffer)[];
  /** The name the certificate must carry, sent in SNI. Default: the upstream URL's host. */
  servername?: string;
  cert?: Buffer;
  key?: Buffer;
  /** Told of every request that failed on the upstream's certificate (or its refusal of ours). */
  onRefused?: (err: CdnError) => void;
}

export interface UpstreamObserver {
  /** Called with the time to response headers, or the phase that failed. */
  onResult(outcome: 'ok' | 'error' | 'timeout', phase: UpstreamPhase, seconds: number): void;
}

/** The pools to one upstream address. */
interface Connections {
  /** The base URL's path (e.g. `/cdn-origin`), prefixed to every request path; '' for `/`. */
  basePath: string;
  pool: Pool;
  /**
   * Requests with a body (pass-through POST, PUT…) have connections of their own: a client can
   * send its body as slowly as it likes, and slow uploads must not hold the connections that
   * cache misses wait for.
   */
  uploads: Pool;
}

export class Upstream {
  private readonly url: URL;
  /** Made at the first request (undici's client code loads then: undici-parts.ts). */
  private connections: Connections | undefined;

  constructor(
    baseUrl: string,
    private readonly timeouts: UpstreamTimeouts,
    private readonly now: () => number,
    private readonly observer?: UpstreamObserver,
    private readonly connectionCount = 64,
    private readonly tls?: UpstreamTls,
  ) {
    this.url = new URL(baseUrl);
    this.deadlines = new DeadlineQueue(timeouts.connectMs + timeouts.headersMs);
  }

  /** The deadlines (connect + headers) of requests without a streamed body. */
  private readonly deadlines: DeadlineQueue;

  private connect(): Connections {
    const { url } = this;
    // RFC 9110 §4.3.4: an https upstream's certificate must be valid for its host; undici sends the
    // host as SNI and checks it unless told otherwise. rejectUnauthorized is written out: never off.
    const tlsConnect = url.protocol === 'https:' && this.tls !== undefined ? { ca: this.tls.ca, servername: this.tls.servername, cert: this.tls.cert, key: this.tls.key } : {};
    const options = {
      connect: { timeout: this.timeouts.connectMs, rejectUnauthorized: true, ...tlsConnect },
      headersTimeout: this.timeouts.headersMs,
      bodyTimeout: this.timeouts.bodyIdleMs,
      keepAliveTimeout: 30_000,
      pipelining: 1,
    };
    return {
      basePath: url.pathname.replace(/\/+$/, ''),
      pool: newPool(url.origin, { ...options, connections: this.connectionCount }),
      uploads: newPool(url.origin, { ...options, connections: UPLOAD_CONNECTIONS }),
    };
  }

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    if (!req.path.startsWith('/')) throw new CdnError('invalid_upstream_path', 'internal', 'upstream paths start with /');
    // The reserved prefix is the edge's own (edge/app.ts answers it); a second guard here, so no caller can reach the origin's.
    if (controlPathOf(req.path, new UpstreamTarget(req.path)) !== undefined) {
      throw clientError('not_found', `no route for ${req.method} ${req.path.slice(0, 200)}`, { status: 404 });
    }
    const requestTime = this.now();
    const started = performance.now();
    // undici's headers timeout starts when the request is written; a request queued for a free
    // connection would wait unbounded. This deadline covers queueing, connecting and the headers.
    // A streamed request body restarts it at each chunk sent: the wait for headers counts from the
    // body's last byte, however long the client took to send it.
    const deadline = new Deadline();
    let timedOut = false;
    const expire = (): void => {
      timedOut = true;
      deadline.abort(undefined);
    };
    const given = req.signal;
    const cancel = (): void => deadline.abort(given?.reason);
    if (given?.aborted === true) cancel();
    else given?.addEventListener('abort', cancel, { once: true });
    const streamed = req.body !== undefined && req.body !== null && !Buffer.isBuffer(req.body);
    // A streamed body moves its deadline (a timer of its own); every other request's is in the queue.
    let timer: NodeJS.Timeout | undefined;
    const queued = streamed ? undefined : this.deadlines.add(expire);
    const rearm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(expire, this.timeouts.connectMs + this.timeouts.headersMs);
    };
    if (streamed) rearm();
    const clearDeadline = (): void => {
      if (queued !== undefined) this.deadlines.done(queued);
      else clearTimeout(timer);
    };
    const body = streamed ? pipeline(req.body as Readable, progress(rearm), () => undefined) : (req.body ?? null);
    try {
      const { pool, uploads, basePath } = (this.connections ??= this.connect());
      const res = await poolRequest(req.body === undefined || req.body === null ? pool : uploads, {
        method: req.method as 'GET',
        path: basePath + req.path,
        headers: req.headers,
        body,
        signal: deadline,
        onInfo: req.onInformational === undefined ? undefined : informational(req.onInformational),
      });
      clearDeadline();
      const elapsedMs = performance.now() - started;
      this.observer?.onResult('ok', 'headers', elapsedMs / 1000);
      const headers = headerPairs(res.headers as Record<string, string | string[] | undefined>);
      return { status: res.statusCode, headers, body: res.body, requestTime, responseTime: this.now(), elapsedMs };
    } catch (err) {
      clearDeadline();
      given?.removeEventListener('abort', cancel);
      const mapped = timedOut ? new CdnError('upstream_timeout', 'upstream', 'upstream did not answer in time', { status: 504, cause: err }) : upstreamError(err);
      if (mapped.code === 'upstream_tls') this.tls?.onRefused?.(mapped);
      this.observer?.onResult(mapped.code === 'upstream_timeout' ? 'timeout' : 'error', phaseOf(err), (performance.now() - started) / 1000);
      throw mapped;
    }
  }

  async close(): Promise<void> {
    const { connections } = this;
    if (connections !== undefined) await Promise.all([connections.pool.close(), connections.uploads.close()]);
  }

  async destroy(): Promise<void> {
    const { connections } = this;
    if (connections !== undefined) await Promise.all([connections.pool.destroy(), connections.uploads.destroy()]);
  }
}

/**
 * What controlPathOf reads of a path sent upstream: its URL, parsed only for a path that could
 * hide the reserved prefix. A class, not an object literal with a getter, which cost ~1 µs per
 * request to make.
 */
class UpstreamTarget {
  constructor(private readonly path: string) {}

  get url(): URL {
    return new URL(`http://upstream${this.path}`);
  }
}

/**
 * The abort signal undici is given: an EventEmitter with `aborted` and `reason`, which undici
 * takes as well as an AbortSignal (it listens for 'abort' once and reads `reason`), made for
 * every upstream request without the AbortController and EventTarget one would cost.
 */
class Deadline extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

const NOTHING = (): void => undefined;

/** A request's place in a DeadlineQueue. */
interface QueuedDeadline {
  at: number;
  expire: () => void;
  done: boolean;
}

/**
 * The connect + headers deadlines of requests without a streamed body. They are all the same
 * length, so they fall due in the order they were set, and one timer (for the oldest) serves them
 * all: a timer per request cost a Timeout object, a list insertion and a clearTimeout on every
 * upstream request. A request that settles is marked done and leaves the queue when it reaches
 * the front. Times are `performance.now()`; a timer that fires before the oldest deadline (the
 * loop's clock is coarser) waits again for the rest.
 */
class DeadlineQueue {
  private entries: QueuedDeadline[] = [];
  private head = 0;
  /** Entries not done. */
  private live = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number) {}

  add(expire: () => void): QueuedDeadline {
    const entry = { at: performance.now() + this.ms, expire, done: false };
    this.entries.push(entry);
    this.live += 1;
    if (this.timer === undefined) this.arm(this.ms);
    return entry;
  }

  done(entry: QueuedDeadline): void {
    if (!entry.done) this.settle(entry);
    this.dropSettled();
    if (this.head === this.entries.length) {
      // Nothing waits any more: no timer left behind.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.entries = [];
      this.head = 0;
    }
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.check, ms);
    // The requests themselves (sockets, the address being awaited) keep the process alive.
    this.timer.unref();
  }

  /** Mark an entry done; it lets go of its request (a request that hangs at the front holds the entries behind it). */
  private settle(entry: QueuedDeadline): void {
    entry.done = true;
    entry.expire = NOTHING;
    this.live -= 1;
  }

  /**
   * Skip settled entries at the front; compact the array once most of it is settled (behind the
   * front, or behind a request that hangs there), keeping the order.
   */
  private dropSettled(): void {
    const { entries } = this;
    while (this.head < entries.length && entries[this.head]!.done) this.head++;
    const kept = entries.length - this.head;
    if (kept + this.head > 1024 && this.live * 2 < kept + this.head) {
      this.entries = entries.filter((entry, i) => i >= this.head && !entry.done);
      this.head = 0;
    }
  }

  private readonly check = (): void => {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head]!;
      if (!entry.done && entry.at > now) break;
      this.head++;
      if (!entry.done) {
        const { expire } = entry;
        this.settle(entry);
        expire();
      }
    }
    this.dropSettled();
    // (A request added by an expiry's listener has armed the timer already.)
    if (this.timer !== undefined) return;
    if (this.head < this.entries.length) this.arm(Math.max(1, Math.ceil(this.entries[this.head]!.at - now)));
    else {
      this.entries = [];
      this.head = 0;
    }
  };
}

/** undici's informational callback, as header pairs; a throwing listener must not break the request. */
function informational(listener: NonNullable<UpstreamRequest['onInformational']>): (info: { statusCode: number; headers: Record<string, string | string[] | undefined> }) => void {
  return ({ statusCode, headers }) => {
    if (statusCode < 100 || statusCode > 199 || statusCode === 101) return;
    try {
      listener(statusCode, headerPairs(headers));
    } catch {
      // The client went away or refused the fields: the final response still matters.
    }
  };
}

/** Connections for requests with a body, besides the pool's own. */
const UPLOAD_CONNECTIONS = 16;

/** Passes a body through, calling `onChunk` as each chunk (and the end) goes by. */
function progress(onChunk: () => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onChunk();
      cb(null, chunk);
    },
    flush(cb) {
      onChunk();
      cb();
    },
  });
}

/** undici's header record as pairs, names lower-cased; a repeated field (an array) stays repeated. */
function headerPairs(headers: Record<string, string | string[] | undefined>): [string, string][] {
  const out: [string, string][] = [];
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    const name = k.toLowerCase();
    if (typeof v === 'string') out.push([name, v]);
    else for (const one of v) out.push([name, one]);
  }
  return out;
}

function phaseOf(err: unknown): UpstreamPhase {
  if (err instanceof undiciErrors.HeadersTimeoutError) return 'headers';
  if (err instanceof undiciErrors.BodyTimeoutError) return 'body';
  return 'connect';
}

/** Map undici and socket errors to the edge's upstream errors. */
export function upstreamError(err: unknown): CdnError {
  if (err instanceof CdnError) return err;
  if (err instanceof undiciErrors.ConnectTimeoutError) {
    return new CdnError('upstream_timeout', 'upstream', 'upstream did not accept the connection in time', { status: 504, cause: err });
  }
  if (err instanceof undiciErrors.HeadersTimeoutError) {
    return new CdnError('upstream_timeout', 'upstream', 'upstream did not answer in time', { status: 504, cause: err });
  }
  if (err instanceof undiciErrors.BodyTimeoutError) {
    return new CdnError('upstream_timeout', 'upstream', 'upstream stopped sending the body', { status: 504, cause: err });
  }
  if (err instanceof Error && err.name === 'AbortError') {
    return new CdnError('upstream_aborted', 'upstream', 'request to upstream was aborted', { status: 502, cause: err });
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && isCertificateFailure(code)) {
    return new CdnError('upstream_tls', 'upstream', `upstream TLS failed: ${code}: ${(err as Error).message}`, { status: 502, cause: err });
  }
  return new CdnError('upstream_unreachable', 'upstream', `upstream failed: ${code ?? (err as Error)?.message ?? 'unknown error'}`, { status: 502, cause: err });
}

/**
 * Node's codes for a certificate that does not verify (OpenSSL's X509_V_ERR_* names, and
 * ERR_TLS_CERT_ALTNAME_INVALID for a name it does not carry), and OpenSSL's own (ERR_SSL_…: the
 * peer's alerts, when it refused our certificate or the handshake, or no TLS at all on the port).
 */
function isCertificateFailure(code: string): boolean {
  return CERTIFICATE_CODES.has(code) || code.startsWith('ERR_TLS_CERT') || code.startsWith('ERR_SSL_');
}

const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
]);
