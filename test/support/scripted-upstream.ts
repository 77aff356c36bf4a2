/**
 * An upstream whose answers a test sets per path: status, fields and body. A GET whose
 * If-None-Match names the answer's ETag gets a 304 with the answer's fields (so a revalidation
 * refreshes them), and every request is recorded. Listens on loopback port 0; `close()` stops it.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

export interface ScriptedAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface ScriptedUpstream {
  url: string;
  /** Set the answer for a path (with its query, as requested); unknown paths get a 404. */
  set(pathAndQuery: string, answer: ScriptedAnswer): void;
  /** Every request received, in order. */
  requests: { method: string; url: string; headers: IncomingHttpHeaders }[];
  /** Requests received for `pathAndQuery`. */
  count(pathAndQuery: string): number;
  close(): Promise<void>;
}

/**
 * With `forwardTo`, a request for a path without an answer of its own goes there (GET and HEAD,
 * fields as received), and `addFields` may add fields to the answer it relays (a test's Cache-Groups).
 */
export async function scriptedUpstream(options: { forwardTo?: string; addFields?: (path: string) => Record<string, string> | undefined } = {}): Promise<ScriptedUpstream> {
  const answers = new Map<string, ScriptedAnswer>();
  const requests: ScriptedUpstream['requests'] = [];
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push({ method: req.method ?? 'GET', url, headers: req.headers });
    const answer = answers.get(url);
    if (answer === undefined && options.forwardTo !== undefined) {
      void relay(options.forwardTo, req.method ?? 'GET', url, req.headers, options.addFields?.(url) ?? {}).then(
        (r) => res.writeHead(r.status, r.headers).end(r.body),
        () => res.writeHead(502).end('upstream failed'),
      );
      return;
    }
    if (answer === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('not here');
      return;
    }
    const headers = { ...answer.headers };
    const etag = headers['etag'];
    if (etag !== undefined && req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers).end();
      return;
    }
    const body = Buffer.from(answer.body ?? '');
    res.writeHead(answer.status ?? 200, { 'content-length': String(body.length), ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set: (path, answer) => void answers.set(path, answer),
    requests,
    count: (path) => requests.filter((r) => r.url === path).length,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function relay(base: string, method: string, url: string, headers: IncomingHttpHeaders, extra: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
  const { host: _host, connection: _connection, ...forwarded } = headers;
  const res = await request(`${base}${url}`, { method: method as 'GET', headers: forwarded as Record<string, string> });
  const body = Buffer.from(await res.body.arrayBuffer());
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding') out[k] = v;
  Object.assign(out, extra);
  return { status: res.statusCode, headers: out, body };
}
