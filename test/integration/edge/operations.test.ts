/**
 * Operating an edge: stale-while-revalidate refreshes once in the background, metrics count what
 * happened, and SIGTERM drains (health 503, still serving with Connection: close, then exit).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startTestOrigin } from '../../support/origin.js';
import { metricValue, startTestEdge, testClock } from '../../support/edge.js';
import { cliBuilt, exited, startCli, stopAll } from '../../support/process.js';
import { slowUpstream } from '../../support/upstreams.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  await stopAll();
  for (const c of cleanups.reverse()) await c();
});

async function originCount(url: string, outcome: string): Promise<number> {
  const res = await request(`${url}/_cdn/metrics`);
  return metricValue(await res.body.text(), 'anycdn_origin_http_requests_total', { method: 'GET', outcome });
}

describe('edge operations', () => {
  it('serves stale while revalidating, refreshing once in the background', async () => {
    const clock = testClock();
    const origin = await startTestOrigin({}, clock.now);
    cleanups.push(() => origin.stop());
    const edge = await startTestEdge(origin.url, {}, { clock });
    cleanups.push(() => edge.destroy());
    await origin.put('w/swr.txt', 'swr body', { 'cache-control': 'public, max-age=10, stale-while-revalidate=60' });
    await edge.get('/w/swr.txt');
    clock.advance(15_000);
    const before = await originCount(origin.url, 'not-modified');
    const results = await Promise.all(Array.from({ length: 10 }, () => edge.get('/w/swr.txt')));
    // Every answer is a hit: the stale copy while the refresh is under way, the refreshed one once
    // it landed (a store commits a refresh within milliseconds, while the burst may still arrive).
    for (const r of results) {
      expect(r.body.toString()).toBe('swr body');
      expect(['anycdn; hit; ttl=-5; detail=stale-while-revalidate', 'anycdn; hit; ttl=10']).toContain(r.headers['cache-status']);
    }
    expect(results.filter((r) => r.headers['cache-status']!.endsWith('stale-while-revalidate')).length).toBeGreaterThanOrEqual(1);
    await edge.server.pipeline.settled();
    expect(await originCount(origin.url, 'not-modified')).toBe(before + 1);
    expect((await edge.get('/w/swr.txt')).headers['cache-status']).toBe('anycdn; hit; ttl=10');
  });

  it('counts a streamed answer once it has gone out: every byte, and the time until the last', async () => {
    const body = randomBytes(64 * 1024);
    const upstream = await slowUpstream(body, 16 * 1024, 100); // 4 chunks, the last after ~300 ms
    cleanups.push(() => upstream.close());
    const edge = await startTestEdge(upstream.url);
    cleanups.push(() => edge.destroy());
    const res = await edge.get('/slow.bin');
    expect(res.body.equals(body)).toBe(true);
    const text = (await edge.get('/_cdn/metrics')).body.toString();
    expect(metricValue(text, 'anycdn_edge_http_response_bytes_total', { outcome: 'miss' })).toBe(body.length);
    const seconds = metricValue(text, 'anycdn_edge_http_request_duration_seconds_sum', { method: 'GET', outcome: 'miss' });
    expect(seconds).toBeGreaterThan(0.25);
  });

  it('counts hits, misses, coalesced waiters and upstream requests in its metrics', async () => {
    const origin = await startTestOrigin();
    cleanups.push(() => origin.stop());
    const edge = await startTestEdge(origin.url);
    cleanups.push(() => edge.destroy());
    await origin.put('m/x.bin', Buffer.alloc(300_000, 7), { 'cache-control': 'public, max-age=600' });
    await Promise.all(Array.from({ length: 5 }, () => edge.get('/m/x.bin')));
    await edge.get('/m/x.bin');
    const text = (await edge.get('/_cdn/metrics')).body.toString();
    const count = (outcome: string): number => metricValue(text, 'anycdn_edge_http_requests_total', { method: 'GET', status: '200', outcome });
    expect(count('miss')).toBe(1);
    expect(count('collapsed') + count('hit')).toBe(5);
    expect(metricValue(text, 'anycdn_edge_coalesced_waiters_total', {})).toBe(count('collapsed'));
    expect(metricValue(text, 'anycdn_edge_upstream_requests_total', { outcome: 'ok', phase: 'headers' })).toBe(1);
    expect(metricValue(text, 'anycdn_edge_bytes_total', { source: 'upstream' })).toBe(300_000);
    expect(metricValue(text, 'anycdn_edge_cache_objects', {})).toBe(1);
  });
});

describe.skipIf(!cliBuilt)('draining on SIGTERM (needs dist/, built by npm test)', () => {
  it('turns health 503, keeps serving with Connection: close, then exits 0', async () => {
    const origin = await startTestOrigin();
    cleanups.push(() => origin.stop().catch(() => undefined)); // stopped by the test too
    await origin.put('d/file.txt', 'drain me', { 'cache-control': 'public, max-age=600' });
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-drain-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const config = join(dir, 'edge.yaml');
    await writeFile(config, `listen: 127.0.0.1:0\nupstream: ${origin.url}\npop: lab\nnode: d1\ncacheDir: ${join(dir, 'cache')}\ndrain: 1500ms\n`);
    const proc = startCli(['edge', '--config', config]);
    const url = String((await proc.waitForLog('edge listening'))['url']);
    const healthy = await request(`${url}/_cdn/healthz`);
    expect(healthy.statusCode).toBe(200);
    expect(await healthy.body.json()).toEqual({ status: 'ok', pop: 'lab', node: 'd1', checks: { listener: 'up', store: 'open', draining: false } });
    // Health is the edge's own: an origin that is down changes nothing (edges serve what they have).
    await request(`${url}/d/file.txt`).then((r) => r.body.dump());
    await origin.stop();
    const originDown = await request(`${url}/_cdn/healthz`);
    expect([originDown.statusCode, ((await originDown.body.json()) as { status: string }).status]).toEqual([200, 'ok']);
    proc.child.kill('SIGTERM');
    await proc.waitForLog('draining');
    const health = await request(`${url}/_cdn/healthz`);
    expect(health.statusCode).toBe(503);
    expect(health.headers['connection']).toBe('close');
    expect(await health.body.json()).toEqual({ status: 'draining', pop: 'lab', node: 'd1', checks: { listener: 'up', store: 'open', draining: true } });
    const during = await request(`${url}/d/file.txt`);
    expect(during.statusCode).toBe(200);
    expect(during.headers['connection']).toBe('close');
    expect(await during.body.text()).toBe('drain me');
    expect(await exited(proc.child)).toBe(0);
    expect(proc.output()).toContain('"msg":"edge stopped"');
  });
});

describe('bounded resources', () => {
  it('closes a client connection that stays silent past timeouts.clientIdle', async () => {
    const origin = await startTestOrigin();
    cleanups.push(() => origin.stop());
    const edge = await startTestEdge(origin.url, { timeouts: { clientIdle: '300ms' } });
    cleanups.push(() => edge.destroy());
    const { connect } = await import('node:net');
    const port = Number(new URL(edge.url).port);
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const socket = connect(port, '127.0.0.1');
      const guard = setTimeout(() => {
        socket.destroy();
        reject(new Error('the idle connection was not closed within 5 s'));
      }, 5_000);
      socket.on('close', () => {
        clearTimeout(guard);
        resolve(performance.now() - started);
      });
      socket.on('error', () => undefined);
    });
    expect(closedAfter).toBeGreaterThanOrEqual(250);
  });

  it('compresses a large text body in the background: first as is, then compressed', async () => {
    const origin = await startTestOrigin();
    cleanups.push(() => origin.stop());
    const edge = await startTestEdge(origin.url);
    cleanups.push(() => edge.destroy());
    const js = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `export const v${i} = ${i};\n`).join(''));
    expect(js.length).toBeGreaterThan(256 * 1024);
    await origin.put('big/app.js', js, { 'cache-control': 'public, max-age=600' });
    await edge.get('/big/app.js', { 'accept-encoding': 'br' });
    const first = await edge.get('/big/app.js', { 'accept-encoding': 'br' });
    expect(first.headers['content-encoding']).toBeUndefined();
    expect(first.body.equals(js)).toBe(true);
    let encoding: string | undefined;
    for (let i = 0; i < 50 && encoding === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
      encoding = (await edge.get('/big/app.js', { 'accept-encoding': 'br' })).headers['content-encoding'];
    }
    expect(encoding).toBe('br');
  });
});
