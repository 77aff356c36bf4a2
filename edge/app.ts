/**
 * The edge's HTTP application: health (503 while draining), metrics, and every other path through
 * the cache pipeline. A plain Node request listener, built from its dependencies and doing no I/O
 * of its own; edge/server.ts binds it to a port, opens the cache and handles draining.
 *
 * No router and no WHATWG Request/Response. A fresh hit in memory is answered by `quick` before
 * Node's HTTP server reads the request at all (src/serve/quick-front.ts): a head prepared once per
 * object and second and the body, written to the socket. What reaches `handle` (misses, control
 * routes, every request on a connection once the front has handed it to Node) is answered on
 * Node's response, a hit still with one `writeHead` and one `end` (see BENCHMARKS.md, "Edge").
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { accessRecord, type AccessLog, type LoggedAnswer, type LoggedRequest } from '../src/access-log/access-log.js';
import { clientError, httpErrorOf } from '../src/errors.js';
import { connectionOptions, HOP_BY_HOP_FIELDS } from '../src/http/hop-by-hop.js';
import { framingProblem, invalidHost } from '../src/http/host.js';
import { nodeRequestHeaders, type RequestHeaders } from '../src/http/request-headers.js';
import type { Logger } from '../src/log.js';
import { tallied } from '../src/metrics.js';
import { closeAfterIgnoredBody } from '../src/serve/listen.js';
import type { QuickReply, QuickResponder } from '../src/serve/quick-front.js';
import { jsonReply, writeInformational, writeReply, type Reply } from '../src/serve/reply.js';
import type { EdgeConfig } from './config.js';
import { controlPathOf } from './control-path.js';
import { httpsLocation } from './https.js';
import type { EdgeMetrics } from './metrics.js';
import type { EdgeRequest, PipelineResult } from './edge-request.js';
import type { EdgePipeline } from './pipeline.js';
import { LOCAL_PURGE_PATH } from './purge/purge-route.js';

export interface EdgeAppDeps {
  config: EdgeConfig;
  pipeline: EdgePipeline;
  metrics: EdgeMetrics;
  logger: Logger;
  /** One line per request answered (src/access-log/); none when undefined (off, or a cluster's shield). */
  accessLog?: AccessLog | undefined;
  /** True while draining: health answers 503 and responses carry `Connection: close`. */
  isDraining: () => boolean;
  /** Whether the cache store is open (health answers 503 once it is not). Default: always. */
  storeOpen?: () => boolean;
  /** What /_cdn/metrics answers. Default: this process's registry; a cluster worker asks for all processes' sum. */
  metricsText?: () => Promise<string>;
  /**
   * The cleartext listener of an edge with `tls.redirectHttp`: content requests are answered with
   * a 301 to https on this port (edge/https.ts); `/_cdn/` routes as always. Default: none.
   */
  httpsRedirect?: { port: number };
  /** `/_cdn/purge`: the edge-local purge (edge/purge/purge-route.ts); without it the path is a 404. */
  localPurge?: (req: IncomingMessage) => Promise<Reply>;
}

export interface EdgeApp {
  /** Node's request listener: every request Node's HTTP server reads. */
  handle: RequestListener;
  /** The fresh hits in memory, answered before Node's HTTP server reads a request (src/serve/quick-front.ts). */
  quick: QuickResponder;
}

export function createEdgeApp(deps: EdgeAppDeps): EdgeApp {
  const servedBy = `${deps.config.pop}/${deps.config.node}`;
  const counters = requestCounters(deps.metrics);

  async function control(method: string, path: string): Promise<Reply> {
    if (path === '*') return { status: 204, headers: { allow: 'GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE', 'x-served-by': servedBy }, body: null };
    const readable = method === 'GET' || method === 'HEAD';
    if (readable && path === '/_cdn/healthz') {
      // The edge's own ability to serve (stale content included), never upstream's: an origin
      // outage must not withdraw every PoP. Answered at all: the listener is up.
      const draining = deps.isDraining();
      const storeOpen = deps.storeOpen?.() ?? true;
      const status = draining ? 'draining' : storeOpen ? 'ok' : 'store-closed';
      const body = { status, pop: deps.config.pop, node: deps.config.node, checks: { listener: 'up', store: storeOpen ? 'open' : 'closed', draining } };
      return jsonReply(status === 'ok' ? 200 : 503, body, { 'cache-control': 'no-store', 'x-served-by': servedBy });
    }
    if (readable && path === '/_cdn/metrics') {
      const text = Buffer.from(await (deps.metricsText?.() ?? deps.metrics.registry.metrics()));
      return { status: 200, headers: { 'content-type': deps.metrics.registry.contentType, 'content-length': String(text.length) }, body: text };
    }
    return jsonReply(404, { error: 'not_found', message: `no route for ${method} ${path}` }, { 'x-served-by': servedBy });
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    closeAfterIgnoredBody(req, res);
    const edgeRequest = new NodeEdgeRequest(req, method, target, started, deps.isDraining(), res);
    const refusal = framingProblem(req);
    const timing: { headAt?: number } = {};
    // OPTIONS * (RFC 9110 §9.3.7) asks about this server, not a resource: a control route.
    const controlled = refusal !== undefined ? undefined : method === 'OPTIONS' && target === '*' ? '*' : controlPathOf(target, edgeRequest);
    if (controlled !== undefined) {
      const reply = controlled === LOCAL_PURGE_PATH && deps.localPurge !== undefined ? await deps.localPurge(req) : await control(method, controlled);
      if (method === 'HEAD') reply.body = null;
      if (deps.isDraining()) reply.headers['connection'] = 'close';
      const bytes = await writeReply(res, reply, undefined, timing);
      logged(nodeLogged(req, method, target), started, { status: reply.status, bytes, outcome: 'control' }, timing.headAt);
      return;
    }
    const location = refusal === undefined && deps.httpsRedirect !== undefined ? httpsLocation(req.headers.host, target, deps.httpsRedirect.port) : undefined;
    if (location !== undefined) {
      // RFC 9110 §15.4.2: the same resource, permanently, at its https URL.
      const reply: Reply = { status: 301, headers: { location, 'content-length': '0', 'x-served-by': servedBy }, body: null };
      if (deps.isDraining()) reply.headers['connection'] = 'close';
      await writeReply(res, reply, undefined, timing);
      logged(nodeLogged(req, method, target), started, { status: 301, bytes: 0, outcome: 'redirect' }, timing.headAt);
      return;
    }
    let result = refusal === undefined ? await deps.pipeline.handle(edgeRequest) : deps.pipeline.refused(refusal, edgeRequest);
    const body = result.reply.body;
    // Upstream failing before the first byte of a body still gets its 502 or 504.
    const sent = writeReply(res, result.reply, (err) => (result = deps.pipeline.failedBeforeBody(err, edgeRequest)).reply, timing);
    if (body === null || Buffer.isBuffer(body)) {
      done(nodeLogged(req, method, target), started, result, timing.headAt);
      await sent;
      return;
    }
    // A streamed body (a miss relayed as it arrives, a pass, a disk read) is logged and counted
    // once it has gone out: the bytes that went, and the time until the last of them.
    const bytes = await sent;
    done(nodeLogged(req, method, target), started, { ...result, bytes }, timing.headAt);
  }

  // The fast path's label sets, looked up once: a 200 or a 304 hit.
  const fastHits = { GET: counters('GET', 200, 'hit'), HEAD: counters('HEAD', 200, 'hit') };
  const fastCounters = (method: string, status: number) => (status !== 200 ? counters(method, status, 'hit') : method === 'HEAD' ? fastHits.HEAD : fastHits.GET);

  /** Counts the request, and logs it (sampled). `headAt`: when the head went out, if before the body. */
  function done(req: LoggedRequest, started: number, result: PipelineResult, headAt: number | undefined, fast?: { observe(seconds: number, bytes: number): void }): void {
    const { reply, outcome, bytes = 0 } = result;
    const end = performance.now();
    (fast ?? counters(req.method, reply.status, outcome)).observe((end - started) / 1000, bytes);
    logged(req, started, { status: reply.status, bytes, outcome, upstream: result.upstream }, headAt, end);
  }

  function logged(req: LoggedRequest, started: number, answer: LoggedAnswer, headAt: number | undefined, end?: number): void {
    const log = deps.accessLog;
    if (log !== undefined && log.sampled()) log.log(accessRecord(req, answer, started, headAt, end));
  }

  const failed = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    // The pipeline answers its own errors; this is a bug or a reply Node refused to write.
    deps.logger.error({ err, method: req.method, url: req.url }, 'edge request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const e = httpErrorOf(err);
    writeReply(res, jsonReply(e.status, e.body, { 'x-served-by': servedBy, 'cache-control': 'no-store' })).catch(() => res.destroy());
  };

  const quick: QuickResponder = (req, socket) => {
    if (deps.httpsRedirect !== undefined) return undefined;
    const started = performance.now();
    const fast = deps.pipeline.fastHit(req, deps.isDraining());
    if (fast === undefined) return undefined;
    // Logged as answered: the front writes the head and the body at once, right after this.
    done(quickLogged(req, socket), started, fast, undefined, fastCounters(req.method, fast.reply.status));
    return fast.reply as QuickReply;
  };

  const handle: RequestListener = (req, res) => {
    // A fresh hit in memory is answered right here, synchronously: no promise, no request object.
    const started = performance.now();
    const method = req.method ?? 'GET';
    try {
      const fast = req.httpVersionMajor === 1 && deps.httpsRedirect === undefined ? deps.pipeline.fastHit(req, deps.isDraining()) : undefined;
      if (fast !== undefined) {
        res.writeHead(fast.reply.status, fast.reply.headers);
        // Lent bytes (a disk hit) go back once the response is written ('finish'); never, if it is not.
        res.end(fast.reply.body, fast.reply.release);
        done(nodeLogged(req, method, req.url ?? '/'), started, fast, undefined, fastCounters(method, fast.reply.status));
        return;
      }
    } catch (err) {
      failed(req, res, err);
      return;
    }
    serve(req, res).catch((err: unknown) => failed(req, res, err));
  };
  return { handle, quick };
}

/** A request Node's server read, as the access log sees it. */
function nodeLogged(req: IncomingMessage, method: string, target: string): LoggedRequest {
  return { method, target, protocol: `HTTP/${req.httpVersion}`, rawHeaders: req.rawHeaders, socket: req.socket };
}

/** A request answered before Node's HTTP machinery: by the quick front (HTTP/1.1), or an HTTP/2 stream. */
function quickLogged(req: { method: string; url: string; rawHeaders: readonly string[]; protocol?: string }, socket: Socket): LoggedRequest {
  return new QuickLogged(req, socket);
}

/**
 * A quick request as the access log reads it. Its field list is read only if the request is
 * logged: the front makes it on demand. A class, not an object literal with a getter: V8 makes
 * such a literal in dictionary mode, adding its properties one by one at every evaluation.
 */
class QuickLogged implements LoggedRequest {
  readonly method: string;
  readonly target: string;
  readonly protocol: string;

  constructor(
    private readonly req: { method: string; url: string; rawHeaders: readonly string[]; protocol?: string },
    readonly socket: Socket,
  ) {
    this.method = req.method;
    this.target = req.url;
    this.protocol = req.protocol ?? 'HTTP/1.1';
  }

  get rawHeaders(): readonly string[] {
    return this.req.rawHeaders;
  }
}

/**
 * The pipeline's view of a Node request. The URL is parsed only when asked for: a hit is found by
 * the raw target, so most requests never build one.
 */
export class NodeEdgeRequest implements EdgeRequest {
  readonly headers: RequestHeaders;
  readonly body: IncomingMessage | null;
  readonly clientIp: string | undefined;
  private parsed: URL | undefined;

  readonly informational: EdgeRequest['informational'];

  constructor(
    private readonly incoming: Pick<IncomingMessage, 'headers' | 'socket'> & Partial<Pick<IncomingMessage, 'httpVersionMajor' | 'httpVersionMinor'>>,
    readonly method: string,
    readonly target: string,
    readonly started: number,
    readonly closeConnection: boolean,
    res?: ServerResponse,
  ) {
    this.headers = nodeRequestHeaders(incoming.headers);
    this.body = method === 'GET' || method === 'HEAD' ? null : (incoming as IncomingMessage);
    this.clientIp = incoming.socket.remoteAddress;
    // Never to an HTTP/1.0 client (RFC 9110 §15.2).
    const oneOne = (incoming.httpVersionMajor ?? 1) > 1 || (incoming.httpVersionMajor === 1 && (incoming.httpVersionMinor ?? 0) >= 1);
    if (res !== undefined && oneOne) this.informational = (status, fields) => void writeInformational(res, status, informationalFields(fields));
  }

  get url(): URL {
    if (this.parsed === undefined) this.parsed = requestUrl(this.target, this.incoming.headers.host);
    return this.parsed;
  }
}

/** An upstream 1xx's fields as the client gets them: without hop-by-hop fields (RFC 9110 §7.6.1). */
function informationalFields(pairs: [string, string][]): [string, string][] {
  const connection = pairs.filter(([k]) => k === 'connection').map(([, v]) => v).join(',');
  const drop = new Set([...HOP_BY_HOP_FIELDS, ...connectionOptions(connection), 'content-length']);
  return pairs.filter(([k]) => !drop.has(k));
}

/**
 * The request URL from an origin-form target (`/path?query`) and the Host field, or from an
 * absolute-form target. A target such as `//other/x` stays a path on this host: it is never
 * read as a network-path reference. A Host that is not a host and port is a 400 (RFC 9112 §3.2).
 */
export function requestUrl(target: string, host: string | undefined): URL {
  const invalid = invalidHost(host);
  if (invalid !== undefined) throw invalid;
  try {
    if (target.startsWith('/')) return new URL(`http://${host === undefined || host === '' ? 'localhost' : host}${target}`);
    if (/^https?:\/\//i.test(target)) return new URL(target);
  } catch {
    // fall through to the 400 below
  }
  throw clientError('bad_request', `cannot parse the request target ${JSON.stringify(target.slice(0, 200))} with Host ${JSON.stringify(host ?? '')}`, { status: 400 });
}

/** Per label set, kept: counters are tallied (see `tallied`), the duration goes to its histogram. */
function requestCounters(metrics: EdgeMetrics): (method: string, status: number, outcome: string) => { observe(seconds: number, bytes: number): void } {
  const children = new Map<string, { observe(seconds: number, bytes: number): void }>();
  return (method, status, outcome) => {
    const id = `${method} ${status} ${outcome}`;
    let child = children.get(id);
    if (child !== undefined) return child;
    // Methods come from clients: the table is bounded, and label sets past it are counted directly.
    if (children.size >= 1000) {
      return {
        observe(seconds, bytes) {
          metrics.requests.inc({ method, status: String(status), outcome });
          metrics.duration.observe({ method, outcome }, seconds);
          if (bytes > 0) metrics.bytesSent.inc({ outcome }, bytes);
        },
      };
    }
    const requests = tallied(metrics.requests, { method, status: String(status), outcome });
    const duration = metrics.duration.labels(method, outcome);
    const bytesSent = tallied(metrics.bytesSent, { outcome });
    child = {
      observe(seconds, bytes) {
        requests.add();
        duration.observe(seconds);
        if (bytes > 0) bytesSent.add(bytes);
      },
    };
    children.set(id, child);
    return child;
  };
}
