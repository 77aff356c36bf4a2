/**
 * The pipeline over HTTP/2, with Node's http2 client and curl --http2, on one process and on a
 * node's worker in front of its shield: concurrent streams for a cold object become one upstream
 * request, stale copies are revalidated (304) and served when upstream is down (stale-if-error),
 * Range and conditional requests are answered on misses and hits, and a 103 Early Hints reaches
 * the stream with its fields. (https.test.ts has the plain hits, misses, HEAD, POST and the
 * access log over HTTP/2.)
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { startTestEdge, TOPOLOGIES, type TestEdge } from '../../support/edge.js';
import { curl, h2request, h2session } from '../../support/https-clients.js';

/** 64 KiB, more than one HTTP/2 DATA frame and the initial flow-control window. */
const BODY = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));
const LAST_MODIFIED = 'Tue, 01 Dec 2026 10:00:00 GMT';
const HINTS = { link: '</style.css>; rel=preload; as=style', 'x-hint': 'early' };

/** An upstream that counts its GETs by path, holds `/held/` answers until released, and answers revalidations with 304. */
async function startUpstream(): Promise<{ server: Server; url: string; gets: Map<string, number>; conditional: string[]; holds(path: string): boolean; release(path: string): void; close(): Promise<void> }> {
  const gets = new Map<string, number>();
  const held = new Map<string, () => void>();
  const conditional: string[] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    gets.set(path, (gets.get(path) ?? 0) + 1);
    if (path.startsWith('/hints/')) res.writeEarlyHints(HINTS);
    const maxAge = path.startsWith('/short/') ? 10 : 600;
    const headers = { 'content-type': 'application/octet-stream', 'cache-control': `public, max-age=${maxAge}`, etag: '"b1"', 'last-modified': LAST_MODIFIED };
    if (req.headers['if-none-match'] === '"b1"') {
      conditional.push(path);
      res.writeHead(304, headers).end();
      return;
    }
    const answer = (): void => void res.writeHead(200, { ...headers, 'content-length': String(BODY.length) }).end(BODY);
    if (path.startsWith('/held/')) held.set(path, answer);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    gets,
    conditional,
    holds: (path) => held.has(path),
    release: (path) => held.get(path)?.(),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let ca: TestCa;
let caPem: Buffer;
let cert: IssuedCert;

beforeAll(async () => {
  ca = await testCa();
  caPem = await readFile(ca.caFile);
  cert = await ca.issue('local', ['localhost', 'IP:127.0.0.1']);
});
afterAll(() => ca.remove());

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.each(TOPOLOGIES)('HTTP/2 (%s)', (topology) => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let edge: TestEdge;
  let url: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    edge = await startTestEdge(upstream.url, { compression: { enabled: false }, tls: { listen: '127.0.0.1:0', certificates: [cert] } }, { topology });
    url = edge.server.https!.url;
  });
  afterAll(async () => {
    await edge.destroy();
    await upstream.close();
  });

  it('gives 8 concurrent streams for a cold object one upstream request, every stream the whole body', async () => {
    const session = await h2session(url, { ca: caPem });
    try {
      const coalesced = async (): Promise<number> => (await edge.server.metrics.coalesced.get()).values.reduce((n, v) => n + v.value, 0);
      const before = await coalesced();
      const answers = Array.from({ length: 8 }, () => h2request(session, '/held/herd.bin'));
      // Every follower has joined the leader's flight, whose request upstream holds.
      for (let i = 0; i < 500 && ((await coalesced()) < before + 7 || !upstream.holds('/held/herd.bin')); i++) await new Promise((r) => setTimeout(r, 10));
      expect(await coalesced()).toBe(before + 7);
      upstream.release('/held/herd.bin');
      const results = await Promise.all(answers);
      expect(upstream.gets.get('/held/herd.bin')).toBe(1);
      expect(results.map((r) => [r.status, sha(r.body)])).toEqual(Array.from({ length: 8 }, () => [200, sha(BODY)]));
      expect(results.map((r) => r.headers['cache-status']).sort()).toEqual([
        'anycdn; fwd=miss; fwd-status=200; stored',
        ...Array.from({ length: 7 }, () => 'anycdn; fwd=miss; fwd-status=200; stored; collapsed'),
      ]);
    } finally {
      session.close();
    }
  });

  it('revalidates a stale copy (304 upstream) and serves it on the stream', async () => {
    const session = await h2session(url, { ca: caPem });
    try {
      expect((await h2request(session, '/short/reval.bin')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      await edge.settled();
      edge.clock.advance(30_000);
      const revalidated = await h2request(session, '/short/reval.bin');
      expect(revalidated.status).toBe(200);
      expect(sha(revalidated.body)).toBe(sha(BODY));
      // (A worker says what it did: its shield's 304 answered its revalidation.)
      expect(revalidated.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=304');
      expect(upstream.conditional).toEqual(['/short/reval.bin']);
    } finally {
      session.close();
    }
  });

  it('answers Range on a miss and on a hit with 206, and a conditional request with 304', async () => {
    const session = await h2session(url, { ca: caPem });
    try {
      const cold = await h2request(session, '/range.bin', { range: 'bytes=65000-' });
      expect(cold.status).toBe(206);
      expect(cold.headers['content-range']).toBe(`bytes 65000-65535/${BODY.length}`);
      expect(cold.body).toEqual(BODY.subarray(65000));
      await edge.settled();
      const warm = await h2request(session, '/range.bin', { range: 'bytes=1000-1999' });
      expect(warm.status).toBe(206);
      expect(warm.headers['content-length']).toBe('1000');
      expect(warm.body).toEqual(BODY.subarray(1000, 2000));
      expect(warm.headers['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
      const unsatisfiable = await h2request(session, '/range.bin', { range: 'bytes=70000-' });
      expect(unsatisfiable.status).toBe(416);
      expect(unsatisfiable.headers['content-range']).toBe(`bytes */${BODY.length}`);
      const since = await h2request(session, '/range.bin', { 'if-modified-since': LAST_MODIFIED });
      expect(since.status).toBe(304);
      expect(since.body.length).toBe(0);
      expect(since.headers['etag']).toBe('"b1"');
      // A changed validator gets the whole object.
      const other = await h2request(session, '/range.bin', { 'if-none-match': '"b0"' });
      expect(other.status).toBe(200);
      expect(sha(other.body)).toBe(sha(BODY));
      expect(upstream.gets.get('/range.bin')).toBe(1);
    } finally {
      session.close();
    }
  });

  it('forwards a 103 Early Hints with its fields to the stream that started the fetch, before the answer', async () => {
    const session = await h2session(url, { ca: caPem });
    try {
      const hinted = await h2request(session, '/hints/page.html');
      expect(hinted.informational).toEqual([103]);
      expect(hinted.informationalHeaders).toEqual([expect.objectContaining(HINTS)]);
      expect(Object.keys(hinted.informationalHeaders![0]!).sort()).toEqual(['link', 'x-hint']);
      expect(hinted.status).toBe(200);
      expect(hinted.headers['link']).toBeUndefined();
      expect(hinted.body.length).toBe(BODY.length);
      await edge.settled();
      // A hit has nothing to hint.
      const hit = await h2request(session, '/hints/page.html');
      expect(hit.informational).toEqual([]);
      expect(hit.headers['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
    } finally {
      session.close();
    }
  });
});

describe('HTTP/2 with upstream down', () => {
  it('serves the stale copy (stale-if-error) to the Node client and to curl, and 502 for what it never had', async () => {
    const upstream = await startUpstream();
    const edge = await startTestEdge(upstream.url, { compression: { enabled: false }, tls: { listen: '127.0.0.1:0', certificates: [cert] } });
    const url = edge.server.https!.url;
    const session = await h2session(url, { ca: caPem });
    try {
      expect((await h2request(session, '/short/kept.bin')).status).toBe(200);
      await edge.settled();
      await upstream.close();
      edge.clock.advance(60_000);
      const stale = await h2request(session, '/short/kept.bin');
      expect(stale.status).toBe(200);
      expect(sha(stale.body)).toBe(sha(BODY));
      expect(stale.headers['cache-status']).toBe('anycdn; fwd=stale; detail=stale-if-error-upstream-unreachable');
      expect(stale.headers['age']).toBe('60');
      const viaCurl = await curl(['--http2', '--cacert', ca.caFile, `${url}/short/kept.bin`]);
      expect(viaCurl.head).toMatch(/^HTTP\/2 200 ?\r\n/);
      expect(viaCurl.head).toMatch(/\r\ncache-status: anycdn; fwd=stale; detail=stale-if-error-upstream-unreachable\r\n/);
      expect(viaCurl.written).toBe('2 0');
      const never = await h2request(session, '/short/never.bin');
      expect(never.status).toBe(502);
      expect(JSON.parse(never.body.toString())).toMatchObject({ error: 'upstream_unreachable' });
      // The session is still good.
      expect((await h2request(session, '/_cdn/healthz')).status).toBe(200);
    } finally {
      session.close();
      await edge.destroy();
    }
  });
});
