/**
 * The origin of the disk benchmark (test/bench/disk.ts): any path `/…/<n>-<size>.bin` answers 200
 * with `<size>` bytes made from the path (objectBody), `Cache-Control: public, max-age=86400` and a
 * strong ETag, at once; `GET /_count` answers how many object GETs it served. It is small and fast
 * so that what is measured is the caches in front of it, not the origin.
 *
 *   node dist/test/bench/counting-origin.js            prints {"url":"http://127.0.0.1:PORT"} and serves until SIGTERM
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const PATH = /\/(\d+)-(\d+)\.bin$/;

/**
 * The bytes the origin serves for `path` (deterministic: a benchmark checks what came back): an
 * AES-128-CTR keystream keyed by the path's SHA-256, ~1 GB/s, so that even 50 KiB bodies cost the
 * origin a few microseconds and what is measured is the caches in front of it (a SHA-256 chain
 * per 32 bytes took 3 ms of the origin's CPU per 50 KiB object: on 2 cores, more than nginx's miss).
 */
export function objectBody(path: string): Buffer | undefined {
  const m = PATH.exec(path.split('?')[0]!);
  if (m === null) return undefined;
  const size = Number(m[2]);
  if (!(size >= 0 && size <= 64 * 1024 * 1024)) return undefined;
  const seed = createHash('sha256').update(path).digest();
  const cipher = createCipheriv('aes-128-ctr', seed.subarray(0, 16), seed.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()], size);
}

async function main(): Promise<void> {
  let served = 0;
  const server = createServer((req, res) => {
    if (req.url === '/_count') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ served }));
      return;
    }
    const body = objectBody(req.url ?? '/');
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end('not found');
      return;
    }
    served += 1;
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'public, max-age=86400',
      etag: `"${createHash('sha1').update(req.url!).digest('hex').slice(0, 16)}"`,
      'last-modified': 'Sun, 06 Dec 2026 00:00:00 GMT',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
