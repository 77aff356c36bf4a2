/**
 * CDN-Cache-Control (RFC 9213) through real edges: a child edge whose upstream is a shield edge,
 * in front of a hand-made upstream on loopback. The field is passed on (misses, hits, 304s, stale
 * answers), so the child obeys it as the shield does; one that is not valid is ignored; the
 * lifetime an edge gives a 404 itself (negative caching) stays its own.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpDate } from '../../../src/http/headers.js';
import { startTestEdge, testClock, type TestEdge } from '../../support/edge.js';

const clock = testClock();
let upstream: Server;
let shield: TestEdge;
let child: TestEdge;
const gets = new Map<string, number>();
/** Per path: status and fields; every answer also carries Date (the shared clock) and a strong ETag. */
const routes = new Map<string, { status?: number; headers: Record<string, string> }>();
/** Paths answered 503 from now on. */
const failing = new Set<string>();

function answer(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '';
  gets.set(path, (gets.get(path) ?? 0) + 1);
  const route = routes.get(path);
  if (route === undefined || failing.has(path)) {
    res.writeHead(route === undefined ? 500 : 503, { 'content-type': 'text/plain', date: httpDate(clock.now()) }).end('no');
    return;
  }
  const etag = `"${path.slice(1)}"`;
  const headers = { 'content-type': 'text/plain', date: httpDate(clock.now()), etag, ...route.headers };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers).end();
    return;
  }
  res.writeHead(route.status ?? 200, headers).end(`body of ${path}`);
}

beforeAll(async () => {
  upstream = createServer(answer);
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  shield = await startTestEdge(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, { node: 'shield' }, { clock });
  child = await startTestEdge(shield.url, { node: 'child' }, { clock });
});
afterAll(async () => {
  await child.destroy();
  await shield.destroy();
  await new Promise((r) => upstream.close(r));
});

describe('CDN-Cache-Control (RFC 9213) between edges', () => {
  it('is passed on with misses, hits and 304s, so a child edge keeps the CDN lifetime, not the browser one', async () => {
    routes.set('/long.txt', { headers: { 'cache-control': 'max-age=10', 'cdn-cache-control': 'max-age=600' } });
    const first = await child.get('/long.txt');
    expect(first.status).toBe(200);
    expect(first.headers['cdn-cache-control']).toBe('max-age=600');
    expect(first.headers['cache-control']).toBe('max-age=10');
    expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored, anycdn; fwd=miss; fwd-status=200; stored');

    clock.advance(60_000);
    // Past Cache-Control's 10 s, within CDN-Cache-Control's 600: the child answers alone.
    const hit = await child.get('/long.txt');
    expect(hit.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored, anycdn; hit; ttl=540');
    expect(hit.headers['cdn-cache-control']).toBe('max-age=600');
    expect(hit.headers['age']).toBe('60');
    const fromShield = await shield.get('/long.txt');
    expect(fromShield.headers['cache-status']).toBe('anycdn; hit; ttl=540');
    expect(fromShield.headers['cdn-cache-control']).toBe('max-age=600');
    const notModified = await shield.get('/long.txt', { 'if-none-match': '"long.txt"' });
    expect(notModified.status).toBe(304);
    expect(notModified.headers['cdn-cache-control']).toBe('max-age=600');
    expect(gets.get('/long.txt')).toBe(1);
  });

  it('is passed on with a stale answer for a failing upstream', async () => {
    routes.set('/flaky.txt', { headers: { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=10, stale-if-error=600' } });
    expect((await shield.get('/flaky.txt')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    failing.add('/flaky.txt');
    clock.advance(20_000);
    const stale = await shield.get('/flaky.txt');
    expect(stale.status).toBe(200);
    expect(stale.body.toString()).toBe('body of /flaky.txt');
    expect(stale.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=503; detail=stale-if-error-upstream-503');
    expect(stale.headers['cdn-cache-control']).toBe('max-age=10, stale-if-error=600');
    expect(stale.headers['cache-control']).toBe('no-store');
  });

  it('no-cache: each edge revalidates every use, whatever Cache-Control says', async () => {
    routes.set('/no-cache.txt', { headers: { 'cache-control': 'public, max-age=600', expires: httpDate(clock.now() + 600_000), 'cdn-cache-control': 'no-cache' } });
    expect((await child.get('/no-cache.txt')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored, anycdn; fwd=miss; fwd-status=200; stored');
    const again = await child.get('/no-cache.txt');
    expect(again.status).toBe(200);
    expect(again.body.toString()).toBe('body of /no-cache.txt');
    expect(again.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=304, anycdn; fwd=stale; fwd-status=304');
    expect(again.headers['cdn-cache-control']).toBe('no-cache');
    expect(gets.get('/no-cache.txt')).toBe(2);
  });

  it.each([
    ['private', '/private.txt'],
    ['no-store', '/no-store.txt'],
  ])('%s: stored by neither edge, whatever Cache-Control and Expires say', async (directive, path) => {
    routes.set(path, { headers: { 'cache-control': 'public, max-age=600', expires: httpDate(clock.now() + 600_000), 'cdn-cache-control': directive } });
    const first = await child.get(path);
    expect(first.headers['cache-status']).toBe(`anycdn; fwd=miss; fwd-status=200; detail=${directive}, anycdn; fwd=miss; fwd-status=200; detail=${directive}`);
    expect(first.headers['cdn-cache-control']).toBe(directive);
    const second = await child.get(path);
    expect(second.body.toString()).toBe(`body of ${path}`);
    expect(second.headers['cache-status']).toBe('anycdn; fwd=uri-miss; fwd-status=200; detail=hit-for-miss, anycdn; fwd=uri-miss; fwd-status=200; detail=hit-for-miss');
    expect(gets.get(path)).toBe(2);
  });

  it.each([
    ['a Decimal max-age', '/decimal.txt', 'max-age=600.5'],
    ['a String max-age', '/string.txt', 'max-age="600"'],
    ['a negative max-age', '/negative.txt', 'max-age=-600'],
    ['not a Dictionary', '/classic.txt', 'Max-Age=600'],
  ])('%s is ignored: Cache-Control private governs, and the field goes on as it came', async (_name, path, value) => {
    routes.set(path, { headers: { 'cache-control': 'private', 'cdn-cache-control': value } });
    const first = await shield.get(path);
    expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; detail=private');
    expect(first.headers['cdn-cache-control']).toBe(value);
    expect((await shield.get(path)).headers['cache-status']).toBe('anycdn; fwd=uri-miss; fwd-status=200; detail=hit-for-miss');
    expect(gets.get(path)).toBe(2);
  });

  it("keeps the negative-caching lifetime an edge gives a 404 its own, and upstream's field as it was", async () => {
    routes.set('/gone.txt', { status: 404, headers: { 'cdn-cache-control': 'must-revalidate' } });
    const first = await child.get('/gone.txt');
    expect(first.status).toBe(404);
    expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=404; stored, anycdn; fwd=miss; fwd-status=404; stored');
    expect(first.headers['cdn-cache-control']).toBe('must-revalidate');
    expect(first.headers['anycdn-negative-ttl']).toBeUndefined();
    clock.advance(5_000);
    // Each edge keeps it negativeTtl (10 s), from when it stored it.
    const hit = await child.get('/gone.txt');
    expect(hit.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=404; stored, anycdn; hit; ttl=5');
    expect(hit.headers['cdn-cache-control']).toBe('must-revalidate');
    expect(hit.headers['anycdn-negative-ttl']).toBeUndefined();
    const fromShield = await shield.get('/gone.txt');
    expect(fromShield.headers['cache-status']).toBe('anycdn; hit; ttl=5');
    expect(fromShield.headers['cdn-cache-control']).toBe('must-revalidate');
    expect(fromShield.headers['anycdn-negative-ttl']).toBeUndefined();
    expect(gets.get('/gone.txt')).toBe(1);

    routes.set('/absent.txt', { status: 404, headers: {} });
    const plain = await child.get('/absent.txt');
    expect(plain.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=404; stored, anycdn; fwd=miss; fwd-status=404; stored');
    expect(plain.headers['cdn-cache-control']).toBeUndefined();
    expect(plain.headers['anycdn-negative-ttl']).toBeUndefined();
    expect((await child.get('/absent.txt')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=404; stored, anycdn; hit; ttl=10');
    expect(gets.get('/absent.txt')).toBe(1);
  });

  it('drops that lifetime once a 304 says how fresh the response is', async () => {
    routes.set('/later.txt', { status: 404, headers: {} });
    expect((await shield.get('/later.txt')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=404; stored');
    clock.advance(11_000);
    routes.set('/later.txt', { status: 404, headers: { 'cache-control': 'max-age=60' } });
    const revalidated = await shield.get('/later.txt');
    expect(revalidated.status).toBe(404);
    expect(revalidated.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=304');
    expect((await shield.get('/later.txt')).headers['cache-status']).toBe('anycdn; hit; ttl=60');
    expect(gets.get('/later.txt')).toBe(2);
  });

  it("never takes the edge's own field from upstream", async () => {
    routes.set('/forged.txt', { status: 404, headers: { 'cache-control': 'no-store', 'anycdn-negative-ttl': '3600' } });
    const first = await shield.get('/forged.txt');
    expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=404; detail=no-store');
    expect(first.headers['anycdn-negative-ttl']).toBeUndefined();
    routes.set('/forged-200.txt', { headers: { etag: '"f"', 'anycdn-negative-ttl': '3600' } });
    expect((await shield.get('/forged-200.txt')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    const again = await shield.get('/forged-200.txt');
    // No lifetime of its own: revalidated (ETag "f" does not match the upstream's: a full answer).
    expect(again.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=200; stored');
    expect(again.headers['anycdn-negative-ttl']).toBeUndefined();
  });
});
