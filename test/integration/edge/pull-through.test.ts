import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startTestOrigin, type TestOrigin } from '../../support/origin.js';
import { metricValue, startTestEdge, testClock, TOPOLOGIES, type TestEdge } from '../../support/edge.js';
import { RawClient } from '../../support/raw-client.js';
import { slowUpstream } from '../../support/upstreams.js';

/** Files under `dir` this process holds open (Linux: the targets of /proc/self/fd). */
/** Files under `dir` this process has open, but the disk store's own, open while it is (its index and segments). */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir) && !/\/index\.lmdb(-lock)?$|\.seg$/.test(target)) open.push(target);
    } catch {
      // closed between the listing and the read (the listing's own descriptor, for one)
    }
  }
  return open;
}

// The same tests for both topologies of a node: one process, and `workers: N` (a worker in front
// of its shield): the node is one cache either way.
describe.each(TOPOLOGIES)('%s', (topology) => {
  let origin: TestOrigin;
  let edge: TestEdge;

  async function originGets(outcome: string, method = 'GET'): Promise<number> {
    const res = await request(`${origin.url}/_cdn/metrics`);
    return metricValue(await res.body.text(), 'anycdn_origin_http_requests_total', { method, outcome });
  }


  beforeAll(async () => {
    // One clock for both, as if their system clocks agreed.
    const clock = testClock();
    origin = await startTestOrigin({}, clock.now);
    edge = await startTestEdge(origin.url, {}, { clock, topology });
  });
  afterAll(async () => {
    await edge.destroy();
    await origin.stop();
  });

  describe('pull-through', () => {
    it('misses once, then hits with Age, Cache-Status and X-Served-By', async () => {
      const data = randomBytes(5000);
      await origin.put('a/one.bin', data, { 'cache-control': 'public, max-age=60' });
      const first = await edge.get('/a/one.bin');
      expect(first.status).toBe(200);
      expect(first.body.equals(data)).toBe(true);
      expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      expect(first.headers['x-served-by']).toBe('test/edge-1');
      expect(first.headers['content-length']).toBe('5000');
      expect(first.headers['age']).toBe('0');
      expect(first.headers['server-timing']).toMatch(/^cdn-cache;desc=miss, edge;dur=\d+\.\d$/);

      edge.clock.advance(5_000);
      const second = await edge.get('/a/one.bin');
      expect(second.status).toBe(200);
      expect(second.body.equals(data)).toBe(true);
      expect(second.headers['cache-status']).toBe('anycdn; hit; ttl=55');
      expect(second.headers['age']).toBe('5');
      // A hit from memory is answered within the request event: Server-Timing has no duration to report.
      expect(second.headers['server-timing']).toBe('cdn-cache;desc=hit');
      expect(second.headers['etag']).toBe(first.headers['etag']);
      expect(second.headers['cache-control']).toBe('public, max-age=60');
      expect(await originGets('original')).toBe(1);
    });

    it('revalidates a stale copy with If-None-Match and refreshes it on 304', async () => {
      await origin.put('a/reval.txt', 'revalidate me', { 'cache-control': 'public, max-age=10' });
      expect((await edge.get('/a/reval.txt')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      edge.clock.advance(11_000);
      const before = await originGets('not-modified');
      const stale = await edge.get('/a/reval.txt');
      expect(stale.status).toBe(200);
      expect(stale.body.toString()).toBe('revalidate me');
      expect(stale.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=304');
      expect(await originGets('not-modified')).toBe(before + 1);
      const hit = await edge.get('/a/reval.txt');
      expect(hit.headers['cache-status']).toBe('anycdn; hit; ttl=10');
    });

    it('answers HEAD on a stale copy with a HEAD upstream, never a body fetch', async () => {
      await origin.put('a/reval-head.txt', 'first', { 'cache-control': 'public, max-age=10' });
      await edge.get('/a/reval-head.txt');
      edge.clock.advance(11_000);
      const gets = await originGets('original');
      const heads = await originGets('original', 'HEAD');
      const head = await edge.get('/a/reval-head.txt', {}, 'HEAD');
      expect([head.status, head.body.length, head.headers['content-length']]).toEqual([200, 0, '5']);
      expect(head.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=200; detail=head');
      expect(await originGets('original', 'HEAD')).toBe(heads + 1);
      expect(await originGets('original')).toBe(gets);
    });

    it('answers client conditionals and ranges at the edge, on a miss and on a hit', async () => {
      const data = Buffer.from('0123456789'.repeat(100));
      await origin.put('a/range.txt', data);
      const missRange = await edge.get('/a/range.txt', { range: 'bytes=10-19' });
      expect(missRange.status).toBe(206);
      expect(missRange.body.toString()).toBe('0123456789');
      expect(missRange.headers['content-range']).toBe('bytes 10-19/1000');
      const hitRange = await edge.get('/a/range.txt', { range: 'bytes=-5' });
      expect(hitRange.status).toBe(206);
      expect(hitRange.body.toString()).toBe('56789');
      expect(hitRange.headers['cache-status']).toMatch(/^anycdn; hit/);
      const unsatisfiable = await edge.get('/a/range.txt', { range: 'bytes=1000-' });
      expect(unsatisfiable.status).toBe(416);
      const etag = hitRange.headers['etag']!;
      const notModified = await edge.get('/a/range.txt', { 'if-none-match': etag });
      expect(notModified.status).toBe(304);
      expect(notModified.body.length).toBe(0);
      // Who answered and how, as on every answer (it was missing on the 304 and 412 of the full
      // path). A lone If-None-Match is the fast path's, which reports no duration; with another
      // precondition the full path answers.
      expect(notModified.headers['server-timing']).toBe('cdn-cache;desc=hit');
      const alsoModifiedSince = await edge.get('/a/range.txt', { 'if-none-match': etag, 'if-modified-since': notModified.headers['date']! });
      expect(alsoModifiedSince.status).toBe(304);
      expect(alsoModifiedSince.headers['server-timing']).toMatch(/^cdn-cache;desc=hit, edge;dur=/);
      const failed = await edge.get('/a/range.txt', { 'if-match': '"other"' });
      expect(failed.status).toBe(412);
      expect(failed.headers['server-timing']).toMatch(/^cdn-cache;desc=hit, edge;dur=/);
    });

    // A reply with no body to send (here Content-Length: 0) never reads the shared body: its reader
    // must be let go, or the store writer's temp file stays open until garbage collection.
    it.skipIf(!existsSync('/proc/self/fd'))('closes the stored body file after a miss with an empty body', async () => {
      await origin.put('a/empty.txt', '', { 'cache-control': 'public, max-age=60' });
      const before = openFilesUnder(edge.cacheDir);
      const miss = await edge.get('/a/empty.txt');
      expect(miss.status).toBe(200);
      expect(miss.headers['content-length']).toBe('0');
      expect(miss.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      await expect.poll(() => openFilesUnder(edge.cacheDir).filter((f) => !before.includes(f))).toEqual([]);
    });

    it('answers HEAD without fetching a body upstream', async () => {
      await origin.put('a/head.bin', randomBytes(10_000));
      const before = await originGets('original', 'HEAD');
      const miss = await edge.get('/a/head.bin', {}, 'HEAD');
      expect(miss.status).toBe(200);
      expect(miss.headers['content-length']).toBe('10000');
      expect(miss.body.length).toBe(0);
      expect(await originGets('original', 'HEAD')).toBe(before + 1);
      await edge.get('/a/head.bin');
      const hit = await edge.get('/a/head.bin', {}, 'HEAD');
      expect(hit.headers['cache-status']).toMatch(/^anycdn; hit/);
      expect(hit.headers['content-length']).toBe('10000');
      expect(await originGets('original', 'HEAD')).toBe(before + 1);
    });

    it('gives 200 concurrent requests for a cold key one upstream request, all with the full body', async () => {
      const data = randomBytes(2 * 1024 * 1024);
      await origin.put('a/herd.bin', data);
      const before = await originGets('original');
      const results = await Promise.all(Array.from({ length: 200 }, () => edge.get('/a/herd.bin')));
      expect(await originGets('original')).toBe(before + 1);
      for (const r of results) {
        expect(r.status).toBe(200);
        expect(r.body.equals(data)).toBe(true);
      }
      const collapsed = results.filter((r) => r.headers['cache-status']!.includes('collapsed')).length;
      const hits = results.filter((r) => r.headers['cache-status']!.startsWith('anycdn; hit')).length;
      expect(collapsed + hits).toBe(199);
    });

    it('caches variants per negotiated format class, never mixing formats', async () => {
      const sharp = (await import('sharp')).default;
      await origin.put('img/p.jpg', await sharp({ create: { width: 300, height: 200, channels: 3, background: '#884422' } }).jpeg().toBuffer());
      const chrome = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
      const a = await edge.get('/img/p.jpg?w=100&fmt=auto', { accept: chrome });
      const b = await edge.get('/img/p.jpg?fmt=auto&w=100', { accept: 'image/webp,*/*' });
      const c = await edge.get('/img/p.jpg?w=100&fmt=auto', { accept: '*/*' });
      expect([a.headers['content-type'], b.headers['content-type'], c.headers['content-type']]).toEqual(['image/avif', 'image/webp', 'image/jpeg']);
      expect(a.headers['vary']).toBe('Accept');
      const a2 = await edge.get('/img/p.jpg?fmt=auto&w=100', { accept: 'image/avif,image/webp,*/*' });
      expect(a2.headers['content-type']).toBe('image/avif');
      expect(a2.headers['cache-status']).toMatch(/^anycdn; hit/);
      expect(a2.body.equals(a.body)).toBe(true);
      const c2 = await edge.get('/img/p.jpg?w=100&fmt=auto', { accept: 'text/html,*/*;q=0.8' });
      expect(c2.headers['content-type']).toBe('image/jpeg');
      expect(c2.headers['cache-status']).toMatch(/^anycdn; hit/);
    });

    it('rejects a bad image parameter at the edge with 400 naming it', async () => {
      const res = await edge.get('/img/p.jpg?w=abc');
      expect(res.status).toBe(400);
      const body = JSON.parse(res.body.toString()) as { error: string; field: string };
      expect(body).toMatchObject({ error: 'invalid_param', field: 'w' });
    });

    it('passes uncacheable responses through and does not store them', async () => {
      await origin.put('a/private.txt', 'for one user', { 'cache-control': 'private, max-age=60' });
      const first = await edge.get('/a/private.txt');
      expect(first.status).toBe(200);
      expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; detail=private');
      const second = await edge.get('/a/private.txt');
      expect(second.body.toString()).toBe('for one user');
      expect(second.headers['cache-status']).toBe('anycdn; fwd=uri-miss; fwd-status=200; detail=hit-for-miss');
    });

    it('caches a 404 briefly (negative caching)', async () => {
      const first = await edge.get('/a/missing.txt');
      expect(first.status).toBe(404);
      expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=404; stored');
      const second = await edge.get('/a/missing.txt');
      expect(second.status).toBe(404);
      expect(second.headers['cache-status']).toMatch(/^anycdn; hit/);
      expect(second.headers['cdn-cache-control']).toBeUndefined();
    });

    it('forwards other methods with their body and invalidates the URL on success', async () => {
      await origin.put('a/inv.txt', 'version 1', { 'cache-control': 'public, max-age=600' });
      await edge.get('/a/inv.txt');
      expect((await edge.get('/a/inv.txt')).headers['cache-status']).toMatch(/^anycdn; hit/);
      // The origin answers 405 to a POST on content: not a success, nothing invalidated.
      const post = await request(`${edge.url}/a/inv.txt`, { method: 'POST', body: 'hello' });
      expect(post.statusCode).toBe(405);
      expect(post.headers['allow']).toBe('GET, HEAD');
      expect(post.headers['cache-status']).toBe('anycdn; fwd=method; fwd-status=405');
      await post.body.dump();
      expect((await edge.get('/a/inv.txt')).headers['cache-status']).toMatch(/^anycdn; hit/);
    });
  });
});

// Ranged answers of a body still arriving from upstream are cut from a reader of the shared body.
// A client that goes away, before its range began to arrive or midway, must let that reader go:
// a reader held keeps the store writer's file open after the object is stored.
describe.skipIf(!existsSync('/proc/self/fd'))('ranges of a body still arriving, clients gone', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it.each([
    ['before the first byte of its range arrived', 'bytes=900000-', false],
    ['midway through its range', 'bytes=0-', true],
  ])('releases the reader of a client gone %s', async (_when, range, midway) => {
    const data = randomBytes(1_000_000);
    const upstream = await slowUpstream(data, 50_000, 40);
    cleanups.push(() => upstream.close());
    const slowEdge = await startTestEdge(upstream.url);
    cleanups.push(() => slowEdge.destroy());
    // The leader's fetch is under way (bytes are arriving) before the ranged request joins it.
    const leaderRes = await request(`${slowEdge.url}/slow.bin`);
    const parts: Buffer[] = [];
    const leaderDone = new Promise<void>((done, failed) => {
      leaderRes.body.on('data', (chunk: Buffer) => parts.push(chunk));
      leaderRes.body.on('end', done);
      leaderRes.body.on('error', failed);
    });
    const { host, port } = new URL(slowEdge.url);
    const client = new RawClient(Number(port));
    let received = 0;
    client.socket.on('data', (chunk: Buffer) => (received += chunk.length));
    client.write(`GET /slow.bin HTTP/1.1\r\nHost: ${host}\r\nRange: ${range}\r\n\r\n`);
    if (midway) {
      for (let i = 0; i < 200 && received < 100_000; i++) await new Promise((r) => setTimeout(r, 10));
      expect(received).toBeGreaterThanOrEqual(100_000);
    } else {
      // Byte 900000 comes about 0.7 s after the first: leave well before it.
      await new Promise((r) => setTimeout(r, 100));
      expect(received).toBe(0);
    }
    client.socket.destroy();

    await leaderDone;
    const full = { status: leaderRes.statusCode, body: Buffer.concat(parts) };
    expect(full.status).toBe(200);
    expect(full.body.equals(data)).toBe(true);
    await slowEdge.server.pipeline.settled();
    expect(upstream.requests()).toBe(1);
    await expect.poll(() => openFilesUnder(slowEdge.cacheDir)).toEqual([]);
    const hit = await slowEdge.get('/slow.bin', { range: 'bytes=999990-' });
    expect([hit.status, hit.headers['cache-status'], hit.body.equals(data.subarray(999_990))]).toEqual([206, 'anycdn; hit; ttl=3600', true]);
  });
});
