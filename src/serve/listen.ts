/**
 * Binding a Node request listener to a TCP port with server timeouts set and a graceful close: stop
 * accepting, let in-flight responses finish, close idle keep-alive sockets, and destroy what is
 * left after a deadline.
 */
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { ListenAddress } from '../config/common.js';
import { installQuickFront, type QuickFront, type QuickResponder } from './quick-front.js';

export interface ListenOptions {
  address: ListenAddress;
  /** What answers. */
  handler: RequestListener;
  /** Time allowed for a client to send request headers. Default 15 s (slowloris bound). */
  headersTimeoutMs?: number;
  /** Time allowed for a whole request including its body. Default 10 min (large uploads). */
  requestTimeoutMs?: number;
  /** Idle keep-alive time. Default 65 s, longer than common load balancers' 60 s. */
  keepAliveTimeoutMs?: number;
  /**
   * A socket with no traffic either way for this long is closed (a client that stopped reading
   * would otherwise hold its socket and file handles forever). Default 0: off, for servers with
   * long-lived quiet streams.
   */
  socketIdleTimeoutMs?: number;
  /**
   * For a request with `Expect: 100-continue`: whether to tell the client to send its body. When
   * false the handler answers without it, on a connection then closed (RFC 9110 §10.1.1: the
   * body the request announced never comes). Default: Node's, always 100 Continue.
   */
  expectContinue?: (req: IncomingMessage) => boolean;
  /**
   * Answers what it can of each connection's requests before Node's HTTP server sees them
   * (src/serve/quick-front.ts); the rest go to `handler` as usual. Default: none.
   */
  quick?: QuickResponder;
}

export interface RunningServer {
  server: Server;
  /** Base URL such as `http://127.0.0.1:8081`. */
  url: string;
  port: number;
  /** Graceful close; sockets still open after `graceMs` are destroyed. */
  close(graceMs?: number): Promise<void>;
}

const CONNECT_BODY = JSON.stringify({ error: 'not_implemented', message: 'CONNECT is not supported' });
const CONNECT_REFUSED = `HTTP/1.1 501 Not Implemented\r\ncontent-type: application/json\r\ncontent-length: ${CONNECT_BODY.length}\r\nconnection: close\r\n\r\n${CONNECT_BODY}`;

/**
 * A GET or HEAD with a body (which neither server reads) is answered on a connection then closed:
 * otherwise Node keeps it open after the answer to drain the body, and a client trickling one
 * byte at a time holds the connection for the whole request timeout. Called by each server's
 * handler, not here for every request: reading `req.headers` builds Node's header object, which
 * the edge's fast hit never does (it has its own check, in fastHost).
 */
export function closeAfterIgnoredBody(req: IncomingMessage, res: ServerResponse): void {
  // HTTP/2 frames each stream: a body left unread holds no connection (and req.socket is the whole session's).
  if ((req.method !== 'GET' && req.method !== 'HEAD') || (req as { stream?: unknown }).stream !== undefined) return;
  if (req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0') return;
  res.setHeader('connection', 'close');
  res.once('finish', () => req.socket.destroySoon());
}

export function listen(options: ListenOptions): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = createServer(options.handler);
    server.headersTimeout = options.headersTimeoutMs ?? 15_000;
    server.requestTimeout = options.requestTimeoutMs ?? 600_000;
    server.timeout = options.socketIdleTimeoutMs ?? 0;
    // The Keep-Alive field tells clients how long an idle connection stays open: the idle timeout
    // closes it sooner when shorter, so the field says that.
    server.keepAliveTimeout = idleBound(server, options.keepAliveTimeoutMs ?? 65_000);
    // CONNECT (a proxy tunnel) is no request either server serves; without this Node drops the
    // socket without a word.
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => socket.end(CONNECT_REFUSED));
    const { expectContinue, handler } = options;
    if (expectContinue !== undefined) {
      server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
        if (expectContinue(req)) res.writeContinue();
        else res.setHeader('connection', 'close');
        handler(req, res);
      });
    }
    // A quick answer is written whole at once: a connection the front holds is idle between requests.
    const timeouts = { firstRequestTimeoutMs: idleBound(server, server.headersTimeout), keepAliveTimeoutMs: server.keepAliveTimeout };
    const front = options.quick === undefined ? undefined : installQuickFront(server, options.quick, timeouts);
    server.once('error', reject);
    server.listen(options.address.port, options.address.host);
    server.once('listening', () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      const host = options.address.host.includes(':') ? `[${options.address.host}]` : options.address.host;
      resolve({ server, port, url: `http://${host}:${port}`, close: (graceMs = 10_000) => closeServer(server, graceMs, front) });
    });
  });
}

/** `ms`, or the server's socket idle timeout when that is shorter. */
function idleBound(server: Server, ms: number): number {
  return server.timeout > 0 ? Math.min(server.timeout, ms) : ms;
}

function closeServer(server: Server, graceMs: number, front: QuickFront | undefined): Promise<void> {
  // Node closes only the connections idle when close() is called; one busy then would stay open
  // after its answer, kept alive, until the grace deadline. So: every request Node reads from now
  // on is its connection's last (Connection: close), and connections that fall idle are closed as
  // they do, swept a few times a second.
  const lastOnConnection = (_req: IncomingMessage, res: ServerResponse): void => {
    res.shouldKeepAlive = false;
  };
  server.prependListener('request', lastOnConnection);
  // Only where answered by a listener: without one, Node itself sends 100 Continue and emits 'request'.
  if (server.listenerCount('checkContinue') > 0) server.prependListener('checkContinue', lastOnConnection);
  return new Promise((resolve) => {
    const sweep = setInterval(() => server.closeIdleConnections(), CLOSE_SWEEP_MS);
    sweep.unref();
    const timer = setTimeout(() => {
      server.closeAllConnections();
      front?.destroyAll();
    }, graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
    front?.closeIdle();
  });
}

/** How often a closing server closes the connections whose last answer has gone out. */
const CLOSE_SWEEP_MS = 100;
