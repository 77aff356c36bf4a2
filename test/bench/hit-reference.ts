/**
 * The reference for edge cache hits: bare `node:http` answering every request from a Buffer held
 * in memory, with roughly the headers a CDN hit carries (Content-Type, Content-Length, a strong
 * ETag, Last-Modified, Cache-Control). No routing library, no cache lookup, no metrics, no logs:
 * what Node itself costs per response, measured in the same run as the edge (STYLE.md).
 *
 *   node dist/test/bench/hit-reference.js --dir DIR [--port 0] [--host 127.0.0.1] [--workers 1]
 *
 * With `--edge-headers`, every answer also carries the other fields an anycdn hit sends (Date,
 * Accept-Ranges, Surrogate-Key, X-Content-Type-Options, X-Served-By, Cache-Status, Age,
 * Server-Timing; fixed values): the same response on the wire, so only the edge's own work differs.
 *
 * With `--fields FILE`, every answer carries exactly the fields of FILE (a JSON record of lower-case
 * names and string values, such as an edge hit's fields as received; Content-Length is each file's)
 * instead: the same head as the server it stands beside, so that only the work behind the head
 * differs. Node adds Date if absent.
 *
 * With `--workers N` (N > 1), N processes share the port through node:cluster, as an anycdn edge
 * with `workers: N` does: the reference for a multi-process edge.
 *
 * With `--tls-cert FILE --tls-key FILE`, over TLS: `--protocol https` (node:https, HTTP/1.1),
 * `--protocol h2` (node:http2's secure server answering each stream with one respond and end, its
 * core API: the least work Node can do per stream) or `--protocol h2-compat` (node:http2's secure
 * server given the same request listener as node:https: the API most Node HTTP/2 servers are
 * written against): the references for an edge over TLS (test/bench/edge-tls.ts).
 *
 * Serves every file of DIR at `/{prefix}/{name}` (`--prefix`, default `bench`), loaded once at
 * start-up; anything else is a 404. Prints one JSON line `{"url":…,"files":N}` once listening and
 * exits on SIGTERM. Run as a child process by test/bench/edge.ts (so it can be pinned to a core).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import cluster from 'node:cluster';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface Entry {
  body: Buffer;
  headers: Record<string, string>;
}

async function loadEntries(dir: string, prefix: string, edgeHeaders: boolean, fields: Record<string, string> | undefined): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  const lastModified = new Date().toUTCString();
  for (const name of (await readdir(dir)).sort()) {
    const body = await readFile(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    entries.set(`/${prefix}/${name}`, {
      body,
      headers: fields !== undefined ? { ...fields, 'content-length': String(body.length) } : {
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
        etag,
        'last-modified': lastModified,
        'cache-control': 'public, max-age=3600',
        ...(edgeHeaders
          ? {
              date: lastModified,
              'accept-ranges': 'bytes',
              'surrogate-key': `/${prefix}/${name}`,
              'x-content-type-options': 'nosniff',
              'x-served-by': 'bench/reference',
              'cache-status': 'anycdn; hit; ttl=3599',
              age: '1',
              'server-timing': 'cdn-cache;desc=hit, edge;dur=0.0',
            }
          : {}),
      },
    });
  }
  return entries;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      prefix: { type: 'string', default: 'bench' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      workers: { type: 'string', default: '1' },
      'edge-headers': { type: 'boolean', default: false },
      fields: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      protocol: { type: 'string', default: 'https' },
    },
  });
  const workers = Number(values.workers);
  if (cluster.isPrimary && workers > 1) return runPrimary(workers);
  if (values.dir === undefined) throw new Error('usage: hit-reference.js --dir DIR [--prefix bench] [--host 127.0.0.1] [--port 0]');
  const fields = values.fields === undefined ? undefined : (JSON.parse(await readFile(values.fields, 'utf8')) as Record<string, string>);
  const entries = await loadEntries(values.dir, values.prefix, values['edge-headers'], fields);
  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const entry = req.method === 'GET' || req.method === 'HEAD' ? entries.get(req.url ?? '') : undefined;
    if (entry === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '10' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, entry.headers);
    res.end(req.method === 'HEAD' ? undefined : entry.body);
  };
  const tls = values['tls-cert'] === undefined || values['tls-key'] === undefined ? undefined : { cert: await readFile(values['tls-cert']), key: await readFile(values['tls-key']) };
  let server: http.Server;
  if (tls === undefined) server = http.createServer(listener);
  else if (values.protocol === 'h2') {
    const secure = http2.createSecureServer(tls);
    secure.on('stream', (stream, headers) => {
      const entry = headers[':method'] === 'GET' ? entries.get(String(headers[':path'])) : undefined;
      if (entry === undefined) {
        stream.respond({ ':status': 404 }, { endStream: true });
        return;
      }
      stream.respond({ ':status': 200, ...entry.headers });
      stream.end(entry.body);
    });
    server = secure as unknown as http.Server;
  } else if (values.protocol === 'h2-compat') server = http2.createSecureServer(tls, listener as never) as unknown as http.Server;
  else server = https.createServer(tls, listener);
  // The same socket timeouts as anycdn's servers (src/serve/listen.ts).
  server.headersTimeout = 15_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(values.port), values.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const ready = { url: `${tls === undefined ? 'http' : 'https'}://${values.host}:${port}`, files: entries.size };
  if (cluster.isWorker) {
    process.send!(ready);
    process.on('disconnect', () => process.exit(0));
    return;
  }
  process.stdout.write(JSON.stringify(ready) + '\n');
  process.once('SIGTERM', () => {
    server.closeAllConnections?.();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  });
}

/** Forks the workers, prints the ready line once all listen, and stops them on SIGTERM. */
async function runPrimary(n: number): Promise<void> {
  const forked = Array.from({ length: n }, () => cluster.fork());
  const ready = await Promise.all(forked.map((w) => new Promise<{ url: string; files: number }>((resolve) => w.once('message', resolve))));
  process.stdout.write(JSON.stringify({ ...ready[0], workers: n }) + '\n');
  process.once('SIGTERM', () => {
    for (const w of forked) w.kill('SIGTERM');
    process.exit(0);
  });
}

await main();
