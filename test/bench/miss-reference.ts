/**
 * The reference for edge cache misses: bare `node:http` that forwards every GET to the origin
 * through an undici `Pool` (64 keep-alive connections, as the edge's upstream), answers the
 * client with the origin's status, body and entity fields, and writes each body to a file of its
 * own (the name from the URL's SHA-1, under one of 256 folders, as nginx `proxy_cache levels=…`
 * spreads its files). No cache lookup, no coalescing, no index, no metrics, no logs: what a Node
 * process costs to pull an object through and keep it, measured in the same run as the edge and
 * nginx (test/bench/disk-cold.ts), so that anycdn / reference is what the cache's own code costs
 * and reference / nginx what Node costs.
 *
 *   node dist/test/bench/miss-reference.js --dir DIR --origin URL [--workers 1] [--host 127.0.0.1] [--port 0]
 *
 * With `--workers N` (N > 1), N processes share the port through node:cluster, as an anycdn edge
 * with `workers: N` does; every process writes under the same DIR. Prints one JSON line `{"url":…}`
 * once listening; exits on SIGTERM.
 */
import { createHash } from 'node:crypto';
import cluster from 'node:cluster';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

/** The origin's fields a CDN passes on with a cacheable answer. */
const PASSED = ['content-type', 'content-length', 'cache-control', 'etag', 'last-modified'];

async function serve(dir: string, origin: string, host: string, port: number): Promise<string> {
  const pool = new Pool(origin, { connections: 64 });
  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = req.url ?? '/';
    pool.request({ method: 'GET', path }).then(
      async (up) => {
        const chunks: Buffer[] = [];
        for await (const chunk of up.body) chunks.push(chunk as Buffer);
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const headers: Record<string, string> = {};
        for (const name of PASSED) {
          const value = up.headers[name];
          if (typeof value === 'string') headers[name] = value;
        }
        res.writeHead(up.statusCode, headers);
        res.end(body);
        if (up.statusCode === 200) {
          const hash = createHash('sha1').update(path).digest('hex');
          // A failed write loses a copy, as a cache may; the answer has gone already.
          writeFile(join(dir, hash.slice(0, 2), hash), body).catch((err: unknown) => process.stderr.write(`write ${path}: ${String(err)}\n`));
        }
      },
      (err: unknown) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`${String(err)}\n`);
      },
    );
  };
  const server = http.createServer(listener);
  // The same socket timeouts as anycdn's servers (src/serve/listen.ts).
  server.headersTimeout = 15_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  });
  return `http://${host}:${(server.address() as AddressInfo).port}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      origin: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      workers: { type: 'string', default: '1' },
    },
  });
  if (values.dir === undefined || values.origin === undefined) throw new Error('usage: miss-reference.js --dir DIR --origin URL [--workers 1]');
  const workers = Number(values.workers);
  if (cluster.isPrimary) {
    for (let i = 0; i < 256; i++) await mkdir(join(values.dir, i.toString(16).padStart(2, '0')), { recursive: true });
    if (workers > 1) return runPrimary(workers);
  }
  const url = await serve(values.dir, values.origin, values.host, Number(values.port));
  if (cluster.isWorker) {
    process.send!({ url });
    process.on('disconnect', () => process.exit(0));
    return;
  }
  process.stdout.write(`${JSON.stringify({ url })}\n`);
}

/** Forks the workers, prints the ready line once all listen, and stops them on SIGTERM. */
async function runPrimary(n: number): Promise<void> {
  const forked = Array.from({ length: n }, () => cluster.fork());
  const ready = await Promise.all(forked.map((w) => new Promise<{ url: string }>((resolve) => w.once('message', resolve))));
  process.stdout.write(`${JSON.stringify({ ...ready[0], workers: n })}\n`);
  process.once('SIGTERM', () => {
    for (const w of forked) w.kill('SIGTERM');
    process.exit(0);
  });
}

await main();
