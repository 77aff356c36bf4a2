/**
 * Review findings on the edge: each test shows one bug that was found (and fixed) in the pipeline,
 * against a small programmable upstream so the upstream's behaviour is exact.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { TieredBlobStoreStats } from '../../../src/blob/tiered-blob-store.js';
import { startTestEdge, TOPOLOGIES, type TestEdge, type Topology } from '../../support/edge.js';
import { cliBuilt, startCli, stopAll, type CliProcess } from '../../support/process.js';
import { until } from '../../support/until.js';

interface Upstream {
  url: string;
  /** Requests received, in order. */
  seen: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

async function upstream(handler: Handler): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    handler(req, res, seen.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The topology of the node the tests in the running block start (set by its beforeAll). */
let topology: Topology = 'single';

async function setup(handler: Handler, overrides: Record<string, unknown> = {}): Promise<{ up: Upstream; edge: TestEdge }> {
  const up = await upstream(handler);
  cleanups.push(() => up.close());
  const edge = await startTestEdge(up.url, overrides, { topology });
  cleanups.push(() => edge.destroy());
  return { up, edge };
}

/** A request through node:http (undici refuses `Expect`). */
function rawRequest(url: string, options: { method: string; headers: Record<string, string>; body?: Buffer }): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method, headers: options.headers });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.headers['expect'] !== undefined && options.body !== undefined) {
      req.on('continue', () => req.end(options.body));
    } else {
      req.end(options.body);
    }
  });
}

/** One request written as given on a new connection; the whole answer, until the edge closes it. */
async function exchange(url: string, text: string): Promise<string> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((r) => socket.once('close', r));
  socket.write(text);
  await ended;
  return Buffer.concat(chunks).toString('latin1');
}

// Every finding holds for both topologies of a node: one process, and a worker beside its shield (the disk's owner).
describe.each(TOPOLOGIES)('%s', (current) => {
  describe('edge review', () => {
    beforeAll(() => {
      topology = current;
    });
    it('forwards a request that carries Expect: 100-continue instead of failing with 502', async () => {
      const { up, edge } = await setup((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
          res.end(req.method === 'POST' ? `got ${Buffer.concat(parts).length}` : 'content');
        });
      });
      const post = await rawRequest(`${edge.url}/upload`, { method: 'POST', headers: { expect: '100-continue', 'content-length': '5000' }, body: Buffer.alloc(5000) });
      expect(post.status).toBe(200);
      expect(post.body.toString()).toBe('got 5000');
      const get = await rawRequest(`${edge.url}/page`, { method: 'GET', headers: { expect: '100-continue' } });
      expect(get.status).toBe(200);
      expect(up.seen.every((s) => s.headers['expect'] === undefined)).toBe(true);
    });

    it('does not let one request with Authorization or no-store turn off caching of a URL for everyone (hit-for-miss)', async () => {
      const { up, edge } = await setup((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60', etag: '"v1"' });
        res.end('shared content');
      });
      const withAuth = await edge.get('/doc.txt', { authorization: 'Bearer abc' });
      expect(withAuth.status).toBe(200);
      const anonymous = await edge.get('/doc.txt');
      expect(anonymous.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      expect((await edge.get('/doc.txt')).headers['cache-status']).toMatch(/^anycdn; hit/);

      await edge.get('/other.txt', { 'cache-control': 'no-store' });
      expect((await edge.get('/other.txt')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      expect(up.seen.length).toBe(4);
    });

    it('forgets evicted objects in its Vary index, so cache-busting queries cannot grow it without bound', async () => {
      const body = Buffer.alloc(100_000, 7);
      const { edge } = await setup(
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=600', 'content-length': body.length });
          res.end(body);
        },
        { disk: { maxBytes: '1MiB', maxEntrySize: '512KiB' }, memory: { maxBytes: '256KiB', maxEntrySize: '64KiB' } },
      );
      for (let i = 0; i < 40; i++) expect((await edge.get(`/f.bin?bust=${i}`)).status).toBe(200);
      // The disk's owner evicts (the only process, or the shield), and its Vary index forgets what
      // it evicts. (A worker's, whose disk entries its owner evicts, is a bounded cache of its
      // lookups: vary-index.ts.) With workers, the owner makes room when the worker asks: waited for.
      const owner = edge.shield ?? edge.server;
      for (let waited = 0; owner.store.stats().evictions <= 20 && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      const stats = owner.store.stats();
      expect(stats.evictions).toBeGreaterThan(20);
      expect([...owner.pipeline.varyIndex.primaries()].length).toBeLessThanOrEqual(stats.entries);
    });

    it('keeps objects above memory.maxEntrySize out of memory and answers them from disk, asking nobody', async () => {
      const body = Buffer.alloc(50 * 1024, 9);
      const { up, edge } = await setup(
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=600', 'content-length': body.length });
          res.end(body);
        },
        { memory: { maxBytes: '1MiB', maxEntrySize: '1KiB' } },
      );
      expect((await edge.get('/big.bin')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      for (let i = 0; i < 3; i++) {
        const hit = await edge.get('/big.bin');
        expect(hit.headers['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
        expect(hit.body.equals(body)).toBe(true);
      }
      expect(up.seen.length).toBe(1);
      const stats = edge.server.store.stats() as TieredBlobStoreStats;
      expect(stats.memory.entries).toBe(0); // not in the memory tier of the process that answered
      expect(edge.owner.store.stats().entries).toBe(1); // on the disk (a worker writes it itself)
    });

    it('keeps a body larger than a disk read in one piece but within memory.maxEntrySize in memory, in every process', async () => {
      const body = Buffer.alloc(200 * 1024, 5);
      const { up, edge } = await setup((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=600', 'content-length': body.length });
        res.end(body);
      });
      expect((await edge.get('/mid.bin')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      for (let i = 0; i < 4; i++) {
        const hit = await edge.get('/mid.bin');
        expect(hit.headers['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
        expect(hit.body.equals(body)).toBe(true);
      }
      expect(up.seen.length).toBe(1);
      const stats = edge.server.store.stats() as TieredBlobStoreStats;
      expect(stats.memory.entries).toBe(1);
    });

    it('does not let one request that upstream refuses (431, 400, 429) turn off caching of a URL for everyone', async () => {
      const { up, edge } = await setup((req, res) => {
        const big = String(req.headers['x-big'] ?? '');
        if (big !== '') {
          const status = big === 'bad' ? 400 : big === 'fast' ? 429 : 431;
          res.writeHead(status, { 'content-type': 'text/plain' });
          res.end(`refused with ${status}`);
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600' });
        res.end('content');
      });
      for (const [value, status] of [['x'.repeat(9000), 431], ['bad', 400], ['fast', 429]] as const) {
        expect((await edge.get('/refused.txt', { 'x-big': value })).status).toBe(status);
      }
      const next = await edge.get('/refused.txt');
      expect(next.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      expect((await edge.get('/refused.txt')).headers['cache-status']).toMatch(/^anycdn; hit/);
      expect(up.seen.length).toBe(4);
    });

    it('answers OPTIONS * itself (204 with Allow), and refuses any other target that is not a path or URL with a 400 naming it', async () => {
      const { up, edge } = await setup((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('x'));
      const options = await exchange(edge.url, 'OPTIONS * HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\n\r\n');
      expect(options).toMatch(/^HTTP\/1\.1 204 /);
      expect(options).toMatch(/\r\nallow: GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE\r\n/);
      expect(options).toMatch(/\r\nx-served-by: test\/edge-1\r\n/);
      const star = await exchange(edge.url, 'GET * HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\n\r\n');
      expect(star).toMatch(/^HTTP\/1\.1 400 /);
      expect(star).toContain('request target \\"*\\"');
      expect(up.seen).toEqual([]);
    });

    it('sends Cache-Status and X-Served-By on a 412 too', async () => {
      const { edge } = await setup((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60', etag: '"v1"' });
        res.end('content');
      });
      await edge.get('/p.txt');
      const failed = await edge.get('/p.txt', { 'if-match': '"other"' });
      expect(failed.status).toBe(412);
      expect(failed.headers['cache-status']).toMatch(/^anycdn; hit/);
      expect(failed.headers['x-served-by']).toBe('test/edge-1');
    });

    it('answers a matching If-None-Match with 304 on a miss even when upstream sends no Content-Length', async () => {
      const { edge } = await setup((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60', etag: '"v1"' });
        res.write('chunked ');
        res.end('content');
      });
      const miss = await edge.get('/chunked.txt', { 'if-none-match': '"v1"' });
      expect(miss.status).toBe(304);
      expect(miss.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      const hit = await edge.get('/chunked.txt', { 'if-none-match': '"v1"' });
      expect(hit.status).toBe(304);
    });

    it('aborts the upstream request when a client abandons an upload, instead of holding the connection', async () => {
      let upstreamClosed: (() => void) | undefined;
      const closed = new Promise<void>((r) => (upstreamClosed = r));
      const { up, edge } = await setup((req, res) => {
        req.resume();
        req.on('error', () => undefined);
        req.on('close', () => upstreamClosed!());
        req.on('end', () => res.end('ok'));
      });
      const socket = connect(Number(new URL(edge.url).port), '127.0.0.1');
      await new Promise<void>((r) => socket.once('connect', r));
      socket.write('POST /up HTTP/1.1\r\nHost: cdn.example\r\nContent-Length: 1000000\r\n\r\n' + 'x'.repeat(1000));
      while (up.seen.length === 0) await new Promise((r) => setTimeout(r, 10));
      socket.destroy();
      const started = performance.now();
      const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 3_000))]);
      expect(outcome).toBe('closed');
      expect(performance.now() - started).toBeLessThan(3_000);
    });

    it('waits for response headers from the end of a slowly sent body, not from its start (no 504 mid-upload)', async () => {
      const { edge } = await setup((req, res) => {
        let bytes = 0;
        req.on('data', (c: Buffer) => (bytes += c.length));
        req.on('end', () => {
          res.writeHead(201, { 'content-type': 'text/plain' });
          res.end(`got ${bytes}`);
        });
      }, { timeouts: { connect: '200ms', headers: '300ms' } });
      const started = performance.now();
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${edge.url}/upload`, { method: 'POST', headers: { 'content-length': '6000' } });
        req.on('response', (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        });
        req.on('error', reject);
        let sent = 0;
        const tick = setInterval(() => {
          req.write('x'.repeat(1000));
          if (++sent === 6) {
            clearInterval(tick);
            req.end();
          }
        }, 250);
      });
      // 1.5 s of sending, three times the 500 ms the upstream has to start answering.
      expect(performance.now() - started).toBeGreaterThan(1_200);
      expect(answer).toEqual({ status: 201, body: 'got 6000' });
    });

    it('keeps connections for cache misses while slow uploads hold theirs', async () => {
      const { up, edge } = await setup((req, res) => {
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600' });
          res.end('content');
          return;
        }
        req.resume(); // never answers: the uploads never finish
        req.on('error', () => undefined);
      });
      const port = Number(new URL(edge.url).port);
      const sockets = Array.from({ length: 80 }, () => {
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        socket.write('POST /slow HTTP/1.1\r\nHost: cdn.example\r\nContent-Length: 1000000\r\n\r\nxxxx');
        return socket;
      });
      try {
        await expect.poll(() => up.seen.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(16);
        const started = performance.now();
        const miss = await edge.get('/wanted.txt');
        expect(miss.status).toBe(200);
        expect(miss.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
        expect(performance.now() - started).toBeLessThan(2_000);
      } finally {
        for (const socket of sockets) socket.destroy();
      }
    });

    it('gives a slow client the whole of a response too large to store', async () => {
      const body = Buffer.alloc(40 * 1024 * 1024, 'a');
      const { edge } = await setup(
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=60', 'content-length': body.length });
          res.end(body);
        },
        { disk: { maxBytes: '4MiB', maxEntrySize: '1MiB' } },
      );
      const res = await request(`${edge.url}/huge.bin`);
      let received = 0;
      let paused = false;
      const done = new Promise<void>((resolve, reject) => {
        res.body.on('data', (c: Buffer) => {
          received += c.length;
          if (!paused) {
            paused = true;
            res.body.pause();
            setTimeout(() => res.body.resume(), 1_500);
          }
        });
        res.body.on('end', resolve);
        res.body.on('error', reject);
      });
      await done.catch(() => undefined);
      expect(received).toBe(body.length);
    });

    it('fetches afresh when a revalidation 304 names another representation, instead of a 500', async () => {
      const { up, edge } = await setup((req, res) => {
        if (req.headers['if-none-match'] !== undefined) {
          res.writeHead(304, { etag: '"v2"', 'cache-control': 'max-age=10, must-revalidate' });
          res.end();
          return;
        }
        const v = up.seen.length === 1 ? 'v1' : 'v2';
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=10, must-revalidate', etag: `"${v}"` });
        res.end(`${v} body`);
      });
      expect((await edge.get('/r.txt')).body.toString()).toBe('v1 body');
      edge.clock.advance(20_000);
      const again = await edge.get('/r.txt');
      expect(again.status).toBe(200);
      expect(again.body.toString()).toBe('v2 body');
      expect(again.headers['etag']).toBe('"v2"');
    });

    it('answers only-if-cached with 504 on a miss without asking upstream (RFC 9111 §5.2.1.7)', async () => {
      const { up, edge } = await setup((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
        res.end('content');
      });
      const miss = await edge.get('/o.txt', { 'cache-control': 'only-if-cached' });
      expect(miss.status).toBe(504);
      // Not forwarded, so no fwd member (RFC 9211 §2.2): the detail says why there is no answer.
      expect(miss.headers['cache-status']).toBe('anycdn; detail=only_if_cached');
      const head = await edge.get('/o.txt', { 'cache-control': 'only-if-cached' }, 'HEAD');
      expect(head.status).toBe(504);
      expect(up.seen.length).toBe(0);
    });

    it('keeps the path of a configured upstream base URL', async () => {
      const up = await upstream((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
        res.end('content');
      });
      cleanups.push(() => up.close());
      const edge = await startTestEdge(`${up.url}/cdn-origin`, {}, { topology });
      cleanups.push(() => edge.destroy());
      expect((await edge.get('/a/b.txt?x=1')).status).toBe(200);
      expect(up.seen[0]!.url).toBe('/cdn-origin/a/b.txt?x=1');
    });

    it('does not give a 404 that says max-age=0 a negative-caching lifetime', async () => {
      const { up, edge } = await setup((_req, res) => {
        res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'max-age=0' });
        res.end('not here');
      });
      expect((await edge.get('/gone.txt')).status).toBe(404);
      const second = await edge.get('/gone.txt');
      expect(second.status).toBe(404);
      expect(second.headers['cache-status']).not.toMatch(/^anycdn; hit/);
      expect(up.seen.length).toBe(2);
    });

    it('does not give a request with Authorization a collapsed response its hit would not get', async () => {
      const { up, edge } = await setup((req, res) => {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
          res.end(req.headers['authorization'] ? 'for alice' : 'public preview');
        }, 300);
      });
      const anonymous = edge.get('/doc');
      await until('the anonymous fetch upstream', () => up.seen.length === 1);
      const alice = await edge.get('/doc', { authorization: 'Bearer alice' });
      expect((await anonymous).body.toString()).toBe('public preview');
      expect(alice.body.toString()).toBe('for alice');
      expect(up.seen.length).toBe(2);
      // The same request once the response is stored: bypassed too.
      expect((await edge.get('/doc', { authorization: 'Bearer alice' })).body.toString()).toBe('for alice');
    });

    it('does not keep a response that was in flight when a successful POST invalidated its URL', async () => {
      let version = 1;
      const { up, edge } = await setup((req, res) => {
        if (req.method === 'POST') {
          version++;
          req.resume();
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('updated');
          return;
        }
        const body = `version ${version}`;
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600' });
          res.end(body);
        }, 300);
      });
      const before = edge.get('/doc');
      // In flight: version 1 asked of upstream before the POST makes version 2.
      await until('the fetch upstream', () => up.seen.length === 1);
      const post = await request(`${edge.url}/doc`, { method: 'POST', body: 'x' });
      expect(post.statusCode).toBe(200);
      await post.body.dump();
      expect((await before).body.toString()).toBe('version 1');
      // The removal follows the end of the fetch, later on a loaded machine: asked until it shows.
      await until('a GET answering version 2', async () => (await edge.get('/doc')).body.toString() === 'version 2', 5_000, 50);
    });

    it('refuses a Host header with a path in it, instead of fetching and storing another URL (cache poisoning)', async () => {
      const { up, edge } = await setup((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600' });
        res.end(`body of ${req.url}`);
      });
      const port = Number(new URL(edge.url).port);
      for (const host of [`127.0.0.1:${port}/site`, `127.0.0.1:${port}/_cdn`, 'a/../b', 'user@127.0.0.1']) {
        const answer = await exchange(edge.url, `GET /sub/b.css HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        expect(answer).toMatch(/^HTTP\/1\.1 400 /);
        expect(answer).toContain('invalid Host header');
      }
      expect(up.seen).toEqual([]);
      // Nothing was stored under the URL the poisoned request would have made.
      const after = await edge.get('/site/sub/b.css');
      expect(after.body.toString()).toBe('body of /site/sub/b.css');
      expect(after.headers['cache-status']).toMatch(/fwd=miss/);
    });

    it('never forwards the reserved prefix upstream, however the target spells it (the origin publisher API through an edge)', async () => {
      const { up, edge } = await setup((req, res) => {
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.end(`upstream got ${req.method} ${req.url}`);
      });
      const host = new URL(edge.url).host;
      const targets = [
        '/x/../_cdn/metrics',
        '/./_cdn/metrics',
        '/%2e%2e/_cdn/metrics',
        '/x/%2E%2E/_cdn/assets/a.txt',
        '/%5Fcdn/assets/a.txt',
        '/%5fcdn/purge',
        '//_cdn/metrics',
        '/x\\..\\_cdn\\metrics',
        '/_cdn',
        `http://${host}/_cdn/metrics`,
        'http://elsewhere.example/x/../_cdn/assets/a.txt',
      ];
      for (const target of targets) {
        for (const method of ['GET', 'PUT', 'POST', 'DELETE']) {
          const body = method === 'GET' ? '' : 'hello';
          const answer = await exchange(
            edge.url,
            `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer secret\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          );
          const status = answer.slice(9, 12);
          // The edge's own answer: its metrics, or its 404 for a control path it does not have.
          expect([`${method} ${target}`, status]).toEqual([`${method} ${target}`, method === 'GET' && target.endsWith('metrics') ? '200' : '404']);
          expect(answer).not.toContain('upstream got');
        }
      }
      expect(up.seen).toEqual([]);
      // Content still goes through, dots and escapes included.
      const content = await edge.get('/a/./b%20c.txt');
      expect(content.body.toString()).toBe('upstream got GET /a/b%20c.txt');
    });

    it('refuses a request with two Host fields (RFC 9112 §3.2), even for a URL it holds, and says it did not go forward', async () => {
      const { up, edge } = await setup((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600' });
        res.end(`body of ${req.url}`);
      });
      const host = new URL(edge.url).host;
      expect((await edge.get('/two.txt')).status).toBe(200);
      expect((await edge.get('/two.txt')).headers['cache-status']).toMatch(/hit/);
      for (const second of [host, 'other.example', `HOST: ${host}`]) {
        const field = second.startsWith('HOST:') ? second : `Host: ${second}`;
        const answer = await exchange(edge.url, `GET /two.txt HTTP/1.1\r\nHost: ${host}\r\n${field}\r\nConnection: close\r\n\r\n`);
        expect(answer).toMatch(/^HTTP\/1\.1 400 /);
        expect(answer).toContain('more than one Host header');
        expect(answer).toMatch(/\r\ncache-status: anycdn; detail=bad_request\r\n/i);
      }
      const version = await exchange(edge.url, `GET /two.txt HTTP/2.0\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(version).toMatch(/^HTTP\/1\.1 505 /);
      const port = await exchange(edge.url, `GET /two.txt HTTP/1.1\r\nHost: cdn.example:99999\r\nConnection: close\r\n\r\n`);
      expect(port).toMatch(/^HTTP\/1\.1 400 /);
      expect(up.seen.length).toBe(1);
    });

    it('closes the connection after answering a GET whose body never finishes, hit or miss', async () => {
      const { edge } = await setup((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600' });
        res.end('ok');
      });
      for (let i = 0; i < 2; i++) {
        const started = performance.now();
        const answer = await exchange(edge.url, 'GET /trickle.txt HTTP/1.1\r\nHost: cdn.example\r\nContent-Length: 1000000\r\n\r\nxxxx');
        expect(answer).toMatch(/^HTTP\/1\.1 200 /);
        expect(answer).toMatch(i === 0 ? /fwd=miss/ : /anycdn; hit/);
        expect(performance.now() - started).toBeLessThan(3_000);
      }
    });

    it('keys an absolute-form request by its own authority, not by Host (RFC 9112 §3.2.2)', async () => {
      const { up, edge } = await setup((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600' });
        res.end(`body of ${req.url}`);
      });
      const absolute = await exchange(edge.url, 'GET http://cdn.example/abs.txt HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n');
      expect(absolute).toMatch(/^HTTP\/1\.1 200 /);
      expect(absolute).toContain('fwd=miss');
      // The same URL in origin-form is the stored object; under the Host the absolute request carried, nothing.
      expect((await edge.get('/abs.txt', { host: 'cdn.example' })).headers['cache-status']).toMatch(/^anycdn; hit/);
      expect((await edge.get('/abs.txt', { host: 'other.example' })).headers['cache-status']).toMatch(/fwd=miss/);
      expect(up.seen.length).toBe(2);
    });

    it('serves the fields a revalidation 304 updated, from the copy that was revalidated and from later hits (RFC 9111 §4.3.4)', async () => {
      const { up, edge } = await setup((req, res) => {
        if (req.headers['if-none-match'] === '"a"') {
          // (a lifetime beyond the test clock's advance: the Date upstream sends is the real time)
          res.writeHead(304, { etag: '"a"', 'cache-control': 'public, max-age=100', 'test-header': 'two', 'x-frame-options': 'SAMEORIGIN', 'content-security-policy': "default-src 'self'" });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', etag: '"a"', 'cache-control': 'public, max-age=10', 'test-header': 'one', 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'" });
        res.end('body');
      });
      const fields = (r: { headers: Record<string, string> }): string[] => [r.headers['test-header']!, r.headers['x-frame-options']!, r.headers['content-security-policy']!];
      expect(fields(await edge.get('/updated.txt'))).toEqual(['one', 'DENY', "default-src 'none'"]);
      edge.clock.advance(11_000);
      const revalidated = await edge.get('/updated.txt');
      expect(revalidated.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=304');
      expect(revalidated.body.toString()).toBe('body');
      expect(fields(revalidated)).toEqual(['two', 'SAMEORIGIN', "default-src 'self'"]);
      const hit = await edge.get('/updated.txt');
      expect(hit.headers['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
      expect(hit.headers['cache-control']).toBe('public, max-age=100');
      expect(fields(hit)).toEqual(['two', 'SAMEORIGIN', "default-src 'self'"]);
      expect(up.seen.map((s) => s.headers['if-none-match'] ?? null)).toEqual([null, '"a"']);
    });

    it('says which status upstream answered when it serves a stale copy for an error (fwd-status, RFC 9211 §2.3)', async () => {
      const { up, edge } = await setup((_req, res, n) => {
        if (n === 1) {
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=0, stale-if-error=60', etag: '"v1"' });
          res.end('kept');
          return;
        }
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('down');
      });
      expect((await edge.get('/sie.txt')).body.toString()).toBe('kept');
      const stale = await edge.get('/sie.txt');
      expect(stale.status).toBe(200);
      expect(stale.body.toString()).toBe('kept');
      expect(stale.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=503; detail=stale-if-error-upstream-503');
      // HEAD is passed upstream as a HEAD, and gets the same stale answer.
      const head = await edge.get('/sie.txt', {}, 'HEAD');
      expect([head.status, head.headers['content-length'], head.headers['cache-status']]).toEqual([200, '4', 'anycdn; fwd=stale; fwd-status=503; detail=stale-if-error-upstream-503']);
      expect(up.seen.map((s) => s.method)).toEqual(['GET', 'GET', 'HEAD']);
    });

    it('stores each variant of a new negotiated image when requests with different Accept arrive together', async () => {
      const { up, edge } = await setup((req, res) => {
        const accept = req.headers['accept'] ?? '';
        const type = accept.includes('image/avif') ? 'image/avif' : accept.includes('image/webp') ? 'image/webp' : 'image/jpeg';
        setTimeout(() => {
          res.writeHead(200, { 'content-type': type, 'cache-control': 'public, max-age=600', vary: 'Accept' });
          res.end(`${type} bytes`);
        }, 200);
      });
      const accepts = { 'image/avif': 'image/avif,image/webp,*/*', 'image/webp': 'image/webp,*/*', 'image/jpeg': '*/*' };
      const first = await Promise.all(Object.values(accepts).map((accept) => edge.get('/pic.jpg?w=70&fmt=auto', { accept })));
      for (const [i, type] of Object.keys(accepts).entries()) {
        expect(first[i]!.body.toString()).toBe(`${type} bytes`);
        expect(first[i]!.headers['cache-status']).not.toContain('busy');
      }
      expect(up.seen.length).toBe(3);
      for (const [type, accept] of Object.entries(accepts)) {
        const again = await edge.get('/pic.jpg?w=70&fmt=auto', { accept });
        expect(again.body.toString()).toBe(`${type} bytes`);
        expect(again.headers['cache-status']).toMatch(/^anycdn; hit/);
      }
      expect(up.seen.length).toBe(3);
    });

    it('answers CONNECT with 501 instead of dropping the connection', async () => {
      const { up, edge } = await setup((_req, res) => res.end('never'));
      const socket = connect(Number(new URL(edge.url).port), '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      const closed = new Promise((r) => socket.once('close', r));
      socket.write('CONNECT elsewhere.example:443 HTTP/1.1\r\nHost: elsewhere.example:443\r\n\r\n');
      await closed;
      expect(text).toMatch(/^HTTP\/1\.1 501 Not Implemented\r\n/);
      expect(text).toContain('CONNECT is not supported');
      expect(up.seen).toEqual([]);
    });

    it('answers 502 when upstream cuts the body before its first byte, instead of an empty reply', async () => {
      const { up, edge } = await setup((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000', 'cache-control': 'public, max-age=600' });
        res.flushHeaders();
        setTimeout(() => res.socket?.destroy(), 50);
      });
      const first = await edge.get('/cut.txt');
      expect(first.status).toBe(502);
      expect(JSON.parse(first.body.toString())).toMatchObject({ error: 'upstream_body_failed' });
      expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; detail=upstream_body_failed');
      expect(first.headers['cache-control']).toBe('no-store');
      // Nothing was kept: the next request asks upstream again.
      expect((await edge.get('/cut.txt')).status).toBe(502);
      expect(up.seen.length).toBe(2);
    });

    it('gives a private="…" field to the client whose request fetched it, and to nobody else (RFC 9111 §5.2.2.7)', async () => {
      const { up, edge } = await setup((_req, res, n) => {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'private="set-cookie, x-user", max-age=60', 'set-cookie': `session=${n}`, 'x-user': `user-${n}` });
          res.end('shared page');
        }, 1_000); // room for the follower to arrive on a loaded machine
      });
      const first = edge.get('/page');
      await until('the leader fetching upstream', () => up.seen.length === 1);
      const follower = await edge.get('/page');
      const leader = await first;
      expect(leader.headers['set-cookie']).toBe('session=1');
      expect(leader.headers['x-user']).toBe('user-1');
      expect(follower.headers['cache-status']).toMatch(/collapsed/);
      expect(follower.headers['set-cookie']).toBeUndefined();
      expect(follower.headers['x-user']).toBeUndefined();
      const hit = await edge.get('/page');
      expect(hit.headers['cache-status']).toMatch(/^anycdn; hit/);
      expect(hit.body.toString()).toBe('shared page');
      expect(hit.headers['set-cookie']).toBeUndefined();
      expect(hit.headers['x-user']).toBeUndefined();
      expect(up.seen.length).toBe(1);
    });
  });
});

describe.skipIf(!cliBuilt)('edge process (needs dist/, built by npm test)', () => {
  afterAll(() => stopAll());

  async function cliEdge(up: Upstream): Promise<{ edge: CliProcess; url: URL }> {
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-edge-review-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const config = join(dir, 'edge.json');
    await writeFile(config, JSON.stringify({ listen: '127.0.0.1:0', upstream: up.url, pop: 'lab', node: 'r1', cacheDir: join(dir, 'cache'), logLevel: 'info', drain: 0 }));
    const edge = startCli(['edge', '--config', config]);
    const url = new URL(String((await edge.waitForLog('edge listening'))['url']));
    return { edge, url };
  }

  it('survives a client that abandons an upload halfway', async () => {
    const up = await upstream((req, res) => {
      req.resume();
      req.on('error', () => undefined);
      req.on('end', () => res.end('ok'));
    });
    cleanups.push(() => up.close());
    const { edge, url } = await cliEdge(up);

    const socket = connect(Number(url.port), url.hostname);
    await new Promise<void>((r) => socket.once('connect', r));
    socket.write('POST /up HTTP/1.1\r\nHost: cdn.example\r\nContent-Length: 1000000\r\n\r\n' + 'x'.repeat(1000));
    while (up.seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    socket.destroy();
    await new Promise((r) => setTimeout(r, 500));

    expect(edge.child.exitCode).toBeNull();
    const res = await request(`${url.origin}/after.txt`);
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it('survives an upstream that cuts a background refresh (stale-while-revalidate) short', async () => {
    const up = await upstream((_req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=60', etag: '"v1"', 'content-length': 5 });
        res.end('first');
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=60', etag: `"v${n}"`, 'content-length': 100_000 });
      res.write('x'.repeat(1000), () => setTimeout(() => res.destroy(), 50));
    });
    cleanups.push(() => up.close());
    const { edge, url } = await cliEdge(up);
    const first = await request(`${url.origin}/swr.txt`);
    expect(await first.body.text()).toBe('first');
    await new Promise((r) => setTimeout(r, 2_100));
    const stale = await request(`${url.origin}/swr.txt`);
    expect(String(stale.headers['cache-status'])).toContain('stale-while-revalidate');
    expect(await stale.body.text()).toBe('first');
    // The refresh reaches upstream in the background, late on a loaded machine; then the cut has time to land.
    await until('the background refresh upstream', () => up.seen.length >= 2);
    await new Promise((r) => setTimeout(r, 500));
    expect(up.seen.length).toBe(2);
    expect(edge.child.exitCode).toBeNull();
  });
});
