/**
 * Binding a request listener to an HTTPS port: one TLS listener serving HTTP/2 and HTTP/1.1 as the
 * client chooses by ALPN (RFC 7301), certificates by SNI from a CertificateStore (src/serve/tls.ts),
 * HTTP/2 adapted and bounded by src/serve/h2.ts, and the same timeouts and graceful close as the
 * cleartext listener (src/serve/listen.ts): stop accepting, HTTP/1.1 connections closed as they
 * fall idle, HTTP/2 sessions sent GOAWAY (their streams under way finish), whatever is left
 * destroyed after the grace period.
 */
import { createSecureServer, type Http2SecureServer, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ListenAddress } from '../config/common.js';
import { answerStreams, closeSession, guardSession, h2ServerOptions } from './h2.js';
import { installQuickFront, type QuickFront, type QuickResponder } from './quick-front.js';
import type { CertificateStore } from './tls.js';

export interface SecureListenOptions {
  address: ListenAddress;
  handler: RequestListener;
  certificates: CertificateStore;
  /** Time for a client to complete the TLS handshake, then to send an HTTP/1.1 request head. Default 15 s. */
  headersTimeoutMs?: number;
  /** Time allowed for a whole HTTP/1.1 request including its body. Default 10 min. */
  requestTimeoutMs?: number;
  /** Idle keep-alive time (HTTP/1.1), and an HTTP/2 session's when `socketIdleTimeoutMs` is 0. Default 65 s. */
  keepAliveTimeoutMs?: number;
  /** A connection with no traffic either way for this long is closed. Default 0: only the keep-alive bound. */
  socketIdleTimeoutMs?: number;
  /** See ListenOptions.expectContinue. */
  expectContinue?: (req: IncomingMessage) => boolean;
  /** Fresh answers before Node's HTTP machinery: on HTTP/1.1 connections (the quick front) and on HTTP/2 streams. */
  quick?: QuickResponder;
  /** Whether `quick` reads HTTP/1.1 connections too (the quick front). Default true. */
  quickFront?: boolean;
  /** Ask every client for a certificate, and refuse the handshake without one signed by the `ca` of the certificate store's contexts. */
  requireClientCertificate?: boolean;
  /** Told when an HTTP/2 session is ended for a flood of frames (src/serve/h2.ts guardSession). */
  onFlood?: (kind: string, client: string | undefined) => void;
  /** Told of each handshake that fails (no client certificate, one no CA here signed, no common cipher…). */
  onHandshakeError?: (err: NodeJS.ErrnoException, client: string | undefined) => void;
}

export interface SecureRunningServer {
  server: Http2SecureServer;
  /** Base URL such as `https://127.0.0.1:8443`. */
  url: string;
  port: number;
  /** Graceful close; connections still open after `graceMs` are destroyed. */
  close(graceMs?: number): Promise<void>;
}

const CONNECT_BODY = JSON.stringify({ error: 'not_implemented', message: 'CONNECT is not supported' });
const CONNECT_REFUSED = `HTTP/1.1 501 Not Implemented\r\ncontent-type: application/json\r\ncontent-length: ${CONNECT_BODY.length}\r\nconnection: close\r\n\r\n${CONNECT_BODY}`;

export function listenSecure(options: SecureListenOptions): Promise<SecureRunningServer> {
  const store = options.certificates;
  const headersTimeout = options.headersTimeoutMs ?? 15_000;
  const server = createSecureServer({
    ...h2ServerOptions(),
    ...store.defaultOptions(),
    SNICallback: store.sniCallback,
    // A client that connects and never finishes its handshake holds a socket: bounded like a request head.
    handshakeTimeout: headersTimeout,
    requestCert: options.requireClientCertificate === true,
    rejectUnauthorized: true,
  });
  store.attach(server as never);
  // HTTP/1.1 connections are node:http's, reading these from the server.
  const h1 = server as unknown as { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; timeout: number };
  h1.headersTimeout = headersTimeout;
  h1.requestTimeout = options.requestTimeoutMs ?? 600_000;
  h1.timeout = options.socketIdleTimeoutMs ?? 0;
  const keepAlive = options.keepAliveTimeoutMs ?? 65_000;
  h1.keepAliveTimeout = h1.timeout > 0 ? Math.min(h1.timeout, keepAlive) : keepAlive;

  const { handler, expectContinue } = options;
  server.on('request', handler as never);
  if (expectContinue !== undefined) {
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (expectContinue(req)) res.writeContinue();
      else res.setHeader('connection', 'close');
      handler(req, res);
    });
  }
  // CONNECT: HTTP/1.1 hands over the socket, HTTP/2 a request and a response.
  server.on('connect', (_req: unknown, target: Socket | ServerResponse) => {
    if ('writeHead' in target) target.writeHead(501, { 'content-type': 'application/json', 'content-length': String(CONNECT_BODY.length) }).end(CONNECT_BODY);
    else target.end(CONNECT_REFUSED);
  });

  if (options.onHandshakeError !== undefined) {
    const told = options.onHandshakeError;
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => told(err, socket.remoteAddress));
  }
  const sessions = new Set<Http2Session>();
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let closing = false;
  // Each session's flood guard, which watches every stream of it (answerStreams).
  const guards = new WeakMap<Http2Session, (stream: ServerHttp2Stream) => void>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    if (closing) closeSession(session);
    guards.set(session, guardSession(session, (kind) => options.onFlood?.(kind, session.socket?.remoteAddress)));
    if (h1.timeout === 0) session.setTimeout(h1.keepAliveTimeout, () => session.destroy());
  });
  answerStreams(server, options.quick, (stream) => guards.get(stream.session!)?.(stream));
  const front =
    options.quick === undefined || options.quickFront === false
      ? undefined
      : installQuickFront(server as never, options.quick, {
          event: 'secureConnection',
          accepts: (socket) => (socket as TLSSocket).alpnProtocol !== 'h2',
          firstRequestTimeoutMs: h1.timeout > 0 ? Math.min(h1.timeout, headersTimeout) : headersTimeout,
          keepAliveTimeoutMs: h1.keepAliveTimeout,
        });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.address.port, options.address.host);
    server.once('listening', () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      const host = options.address.host.includes(':') ? `[${options.address.host}]` : options.address.host;
      const close = (graceMs = 10_000): Promise<void> => {
        closing = true;
        return closeSecureServer(server, graceMs, { sessions, sockets, front });
      };
      resolve({ server, port, url: `https://${host}:${port}`, close });
    });
  });
}

/** How often a closing server closes the HTTP/1.1 connections whose last answer has gone out. */
const CLOSE_SWEEP_MS = 100;

function closeSecureServer(server: Http2SecureServer, graceMs: number, held: { sessions: Set<Http2Session>; sockets: Set<Socket>; front: QuickFront | undefined }): Promise<void> {
  // Every HTTP/1.1 request read from now on is its connection's last; every HTTP/2 session gets
  // GOAWAY now and ends once its streams have.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMajor === 1) res.shouldKeepAlive = false;
  });
  const idle = (): void => (server as unknown as { closeIdleConnections(): void }).closeIdleConnections();
  return new Promise((resolve) => {
    const sweep = setInterval(idle, CLOSE_SWEEP_MS);
    sweep.unref();
    const timer = setTimeout(() => {
      for (const session of held.sessions) session.destroy();
      held.front?.destroyAll();
      for (const socket of held.sockets) socket.destroy();
    }, graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      clearInterval(sweep);
      resolve();
    });
    for (const session of held.sessions) closeSession(session);
    held.front?.closeIdle();
    idle();
  });
}
