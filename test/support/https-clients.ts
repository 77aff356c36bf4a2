/**
 * Real HTTPS clients for tests: Node's http2 client (one session, many requests), Node's https
 * client over HTTP/1.1, a bare TLS handshake that reports what was negotiated, and curl.
 */
import { execFile } from 'node:child_process';
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders } from 'node:http2';
import { request as httpsRequest, type Agent } from 'node:https';
import { connect as tlsConnect, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { promisify } from 'node:util';

export interface ClientResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Informational responses (103…) seen before the final one. */
  informational: number[];
  /** Their fields, in order (HTTP/2 only: the http2 client hands them over). */
  informationalHeaders?: Record<string, string | string[] | undefined>[];
}

export function h2session(url: string, options: { ca?: Buffer | string; servername?: string; cert?: Buffer; key?: Buffer } = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2connect(url, { ca: options.ca, servername: options.servername, cert: options.cert, key: options.key });
    session.once('connect', () => {
      session.off('error', reject);
      resolve(session);
    });
    session.once('error', reject);
  });
}

export function h2request(session: ClientHttp2Session, path: string, headers: OutgoingHttpHeaders = {}, body?: Buffer): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ...headers }, { endStream: body === undefined });
    const informational: number[] = [];
    const informationalHeaders: Record<string, string | string[] | undefined>[] = [];
    let head: IncomingHttpHeaders & IncomingHttpStatusHeader = {};
    const chunks: Buffer[] = [];
    req.on('headers', (h) => {
      const { ':status': status, ...fields } = h;
      informational.push(Number(status));
      informationalHeaders.push(fields as Record<string, string | string[] | undefined>);
    });
    req.on('response', (h) => (head = h));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const { ':status': status, ...rest } = head;
      resolve({ status: Number(status), headers: rest as ClientResponse['headers'], body: Buffer.concat(chunks), informational, informationalHeaders });
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

/** One HTTP/1.1 request over TLS (Node's https client, which offers no ALPN: HTTP/1.1). */
export function h1request(url: string, options: { ca?: Buffer | string; agent?: Agent; method?: string; headers?: Record<string, string>; servername?: string; cert?: Buffer; key?: Buffer } = {}): Promise<ClientResponse & { protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: options.ca, agent: options.agent, method: options.method ?? 'GET', headers: options.headers, servername: options.servername, cert: options.cert, key: options.key }, (res) => {
      const chunks: Buffer[] = [];
      const protocol = (res.socket as { getProtocol?: () => string | null }).getProtocol?.() ?? null;
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), informational: [], protocol }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface Handshake {
  protocol: string | null;
  alpn: string | false | null;
  cipher: string;
  peer: PeerCertificate;
  reused: boolean;
  session: Buffer | undefined;
}

/** A TLS handshake alone: what was negotiated, and the session to resume with (TLS 1.3 sends it after the handshake). */
export function handshake(port: number, options: ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...options });
    let session: Buffer | undefined;
    socket.on('session', (s: Buffer) => (session = s));
    socket.once('secureConnect', () => {
      const result = { protocol: socket.getProtocol(), alpn: socket.alpnProtocol ?? null, cipher: socket.getCipher().name, peer: socket.getPeerCertificate(), reused: socket.isSessionReused() };
      // A new TLS 1.3 session's tickets come after the handshake: wait for the first (on a loaded
      // machine it can take longer than any fixed pause), up to a bound for a server that sends
      // none. A resumed one, or TLS 1.2, has what it gets after a short read.
      const finish = (): void => {
        clearTimeout(bound);
        socket.destroy();
        resolve({ ...result, session });
      };
      const awaitTicket = session === undefined && result.protocol === 'TLSv1.3' && !result.reused;
      const bound = setTimeout(finish, awaitTicket ? 5_000 : 50);
      if (awaitTicket) socket.once('session', finish);
    });
    socket.once('error', reject);
  });
}

const run = promisify(execFile);

/** curl, with `-w` output after a line `\n--w--\n`: returns the head, body and the -w values. */
export async function curl(args: string[]): Promise<{ head: string; body: string; written: string }> {
  const { stdout } = await run('curl', ['-sS', '-D', '-', ...args, '-w', '\n--w--\n%{http_version} %{ssl_verify_result}'], { maxBuffer: 16 * 1024 * 1024 });
  const at = stdout.lastIndexOf('\n--w--\n');
  const all = stdout.slice(0, at);
  const split = all.indexOf('\r\n\r\n');
  return { head: all.slice(0, split), body: all.slice(split + 4), written: stdout.slice(at + 7) };
}
