/**
 * The edge when things go wrong: the origin dies (stale content is served, uncached content is a
 * quick 502), the origin hangs (504 at the timeout), the edge restarts (its disk cache survives),
 * the disk budget is reached (eviction keeps it under), the edge is killed mid-download.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startTestOrigin } from '../../support/origin.js';
import { startTestEdge, testClock } from '../../support/edge.js';
import { cliBuilt, exited, startCli, stopAll } from '../../support/process.js';
import { hangingUpstream, slowUpstream } from '../../support/upstreams.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  await stopAll();
  for (const c of cleanups.reverse()) await c();
});

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('edge failure handling', () => {
  it('serves stale content when the origin is down, and a quick 502 for what it never had', async () => {
    const clock = testClock();
    const origin = await startTestOrigin({}, clock.now);
    const edge = await startTestEdge(origin.url, {}, { clock });
    cleanups.push(() => edge.destroy());
    await origin.put('s/kept.txt', 'still here', { 'cache-control': 'public, max-age=10' });
    expect((await edge.get('/s/kept.txt')).status).toBe(200);
    await origin.stop();
    clock.advance(60_000);

    const stale = await edge.get('/s/kept.txt');
    expect(stale.status).toBe(200);
    expect(stale.body.toString()).toBe('still here');
    expect(stale.headers['cache-status']).toBe('anycdn; fwd=stale; detail=stale-if-error-upstream-unreachable');
    expect(stale.headers['age']).toBe('60');
    // HEAD gets the same answer as GET, without the body (it was a 502 when HEAD was passed upstream).
    const staleHead = await edge.get('/s/kept.txt', {}, 'HEAD');
    expect(staleHead.status).toBe(200);
    expect(staleHead.body.length).toBe(0);
    expect(staleHead.headers['content-length']).toBe('10');
    expect(staleHead.headers['cache-status']).toBe('anycdn; fwd=stale; detail=stale-if-error-upstream-unreachable');

    const started = performance.now();
    const never = await edge.get('/s/never.txt');
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(never.status).toBe(502);
    expect(JSON.parse(never.body.toString())).toMatchObject({ error: 'upstream_unreachable' });
    expect(never.headers['cache-status']).toBe('anycdn; fwd=miss; detail=upstream_unreachable');
    expect((await edge.get('/s/never.txt', {}, 'HEAD')).status).toBe(502);

    // Past the grace period (1 h by default) a stale copy is no longer good enough.
    clock.advance(2 * 3_600_000);
    expect((await edge.get('/s/kept.txt')).status).toBe(502);
  });

  it('answers 504 when the upstream hangs, at the configured timeout', async () => {
    const upstream = await hangingUpstream();
    cleanups.push(() => upstream.close());
    const edge = await startTestEdge(upstream.url, { timeouts: { headers: '500ms' } });
    cleanups.push(() => edge.destroy());
    const started = performance.now();
    const res = await edge.get('/anything.txt');
    const elapsed = performance.now() - started;
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body.toString())).toMatchObject({ error: 'upstream_timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('keeps its cache across a restart: the same objects are hits', async () => {
    const clock = testClock();
    const origin = await startTestOrigin({}, clock.now);
    cleanups.push(() => origin.stop());
    const data = randomBytes(300_000);
    await origin.put('r/big.bin', data, { 'cache-control': 'public, max-age=600' });
    await origin.put('r/small.txt', 'small', { 'cache-control': 'public, max-age=600' });
    const first = await startTestEdge(origin.url, {}, { clock });
    cleanups.push(() => first.destroy());
    // The cache key holds the Host, as browsers send it for the CDN's name (the port changes here).
    const host = { host: 'cdn.example' };
    await first.get('/r/big.bin', host);
    await first.get('/r/small.txt', host);
    await first.stop();

    const second = await startTestEdge(origin.url, {}, { clock, cacheDir: first.cacheDir });
    const big = await second.get('/r/big.bin', host);
    expect(big.headers['cache-status']).toMatch(/^anycdn; hit; ttl=/);
    expect(big.body.equals(data)).toBe(true);
    expect((await second.get('/r/small.txt', host)).headers['cache-status']).toMatch(/^anycdn; hit; ttl=/);
    await second.stop();
  });

  it('finishes storing a fetch under way when it stops, instead of failing the commit against a closed cache', async () => {
    const body = randomBytes(200_000);
    const upstream = await slowUpstream(body, 20_000, 50);
    cleanups.push(() => upstream.close());
    const first = await startTestEdge(upstream.url);
    cleanups.push(() => first.destroy());
    const host = { host: 'cdn.example' };
    // The client leaves after the first bytes; the fetch goes on to fill the cache.
    const res = await request(`${first.url}/slow.bin`, { headers: host });
    expect(res.statusCode).toBe(200);
    for await (const _chunk of res.body) break;
    await first.stop();
    const second = await startTestEdge(upstream.url, {}, { cacheDir: first.cacheDir });
    cleanups.push(() => second.destroy());
    const again = await second.get('/slow.bin', host);
    expect(again.headers['cache-status']).toMatch(/^anycdn; hit/);
    expect(again.body.equals(body)).toBe(true);
    expect(upstream.requests()).toBe(1);
  });

  it('keeps the disk cache under its budget by evicting the least recently used', async () => {
    const origin = await startTestOrigin();
    cleanups.push(() => origin.stop());
    const edge = await startTestEdge(origin.url, { disk: { maxBytes: '1MiB', maxEntrySize: '512KiB' }, memory: { maxBytes: '256KiB', maxEntrySize: '64KiB' } });
    cleanups.push(() => edge.destroy());
    for (let i = 0; i < 12; i++) await origin.put(`e/${i}.bin`, randomBytes(200_000), { 'cache-control': 'public, max-age=600' });
    for (let i = 0; i < 12; i++) expect((await edge.get(`/e/${i}.bin`)).status).toBe(200);
    const stats = edge.server.store.stats();
    expect(stats.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(stats.evictions).toBeGreaterThanOrEqual(7);
    expect(stats.entries).toBeLessThanOrEqual(5);
    // The newest objects are still there; the oldest were evicted.
    expect((await edge.get('/e/11.bin')).headers['cache-status']).toMatch(/^anycdn; hit/);
    expect((await edge.get('/e/0.bin')).headers['cache-status']).toMatch(/fwd=miss/);
  });
});

describe.skipIf(!cliBuilt)('edge killed mid-download (needs dist/, built by npm test)', () => {
  it('serves correct bytes after kill -9 and restart', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const upstream = await slowUpstream(body, 256 * 1024, 20);
    cleanups.push(() => upstream.close());
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-edge-kill-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const config = join(dir, 'edge.json');
    await writeFile(config, JSON.stringify({ listen: '127.0.0.1:0', upstream: upstream.url, pop: 'lab', node: 'k1', cacheDir: join(dir, 'cache'), logLevel: 'info', drain: 0 }));

    const first = startCli(['edge', '--config', config]);
    const url = String((await first.waitForLog('edge listening'))['url']);
    const res = await request(`${url}/big.bin`);
    let received = 0;
    await new Promise<void>((resolve, reject) => {
      res.body.on('data', (c: Buffer) => {
        received += c.length;
        if (received >= 1024 * 1024) resolve();
      });
      res.body.on('error', reject);
    });
    first.child.kill('SIGKILL');
    await exited(first.child);
    res.body.destroy();
    expect(received).toBeLessThan(body.length);

    const second = startCli(['edge', '--config', config]);
    const url2 = String((await second.waitForLog('edge listening'))['url']);
    const again = await request(`${url2}/big.bin`);
    const got = Buffer.from(await again.body.arrayBuffer());
    expect(again.statusCode).toBe(200);
    expect(got.length).toBe(body.length);
    expect(sha(got)).toBe(sha(body));
    expect(String(again.headers['cache-status'])).toMatch(/fwd=miss/);
    // Now stored whole (the commit may trail the last byte by an fsync): soon a hit, same bytes.
    let status = '';
    for (let i = 0; i < 40 && !status.startsWith('anycdn; hit'); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      const hit = await request(`${url2}/big.bin`);
      expect(sha(Buffer.from(await hit.body.arrayBuffer()))).toBe(sha(body));
      status = String(hit.headers['cache-status']);
    }
    expect(status).toMatch(/^anycdn; hit/);
    expect(upstream.requests()).toBe(2);
    second.child.kill('SIGTERM');
    expect(await exited(second.child)).toBe(0);
  });
});
