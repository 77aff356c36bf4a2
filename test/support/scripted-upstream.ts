/**
 * An upstream whose answers a test sets per path: status, fields and body. A GET whose
 * If-None-Match names the answer's ETag gets a 304 with the answer's fields (so a revalidation
 * refreshes them), and every request is recorded. Listens on loopback port 0; `close()` stops it.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

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

export async function scriptedUpstream(): Promise<ScriptedUpstream> {
  const answers = new Map<string, ScriptedAnswer>();
  const requests: ScriptedUpstream['requests'] = [];
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push({ method: req.method ?? 'GET', url, headers: req.headers });
    const answer = answers.get(url);
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
