/**
 * A cluster worker starts before its shield listens (edge/cluster.ts forks the workers first, so
 * their loading overlaps the primary's): it answers disk hits from the cache it reads itself, its
 * misses wait for the shield's address and go through once it comes, or fail as a timeout when it
 * does not come within their deadline.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/log.js';
import { edgeConfigSchema, type EdgeConfig } from '../../../edge/config.js';
import { startEdge } from '../../../edge/server.js';

let origin: Server;
let originUrl: string;
let dir: string;
const originGets: string[] = [];

beforeAll(async () => {
  origin = createServer((req, res) => {
    originGets.push(req.url ?? '');
    const body = `body of ${req.url}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600', 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  dir = await mkdtemp(join(tmpdir(), 'anycdn-worker-early-'));
});
afterAll(async () => {
  await new Promise((r) => origin.close(r));
  await rm(dir, { recursive: true, force: true });
});

function edgeConfig(cacheDir: string, timeouts: Record<string, string> = {}): EdgeConfig {
  return validateConfig(edgeConfigSchema, { listen: '127.0.0.1:0', upstream: originUrl, pop: 'test', node: 'edge-1', cacheDir, logLevel: 'silent', drain: 0, accessLog: false, timeouts }, 'test settings', {});
}

/** Always for the same site (cache keys start with the Host, and every edge here listens on a port of its own). */
async function get(base: string, path: string): Promise<{ status: number; cacheStatus: string; body: string }> {
  const res = await request(`${base}${path}`, { headers: { host: 'cdn.test' } });
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() };
}

/** A node's cache folder holding `/stored.txt`, written by a single-process edge that has stopped. */
async function cacheWithOneObject(name: string): Promise<string> {
  const cacheDir = join(dir, name);
  const filler = await startEdge(edgeConfig(cacheDir), silentLogger(), { processMetrics: false });
  expect((await get(filler.url, '/stored.txt')).status).toBe(200);
  await filler.pipeline.settled();
  await filler.close(1_000);
  return cacheDir;
}

describe('a cluster worker started before its shield listens', () => {
  it('answers a disk hit at once, and a miss once the shield listens', async () => {
    const cacheDir = await cacheWithOneObject('hit-then-miss');
    const config = edgeConfig(cacheDir);
    const secret = randomBytes(24).toString('base64url');
    let shieldListening = (_url: string): void => undefined;
    const shieldUrl = new Promise<string>((resolve) => (shieldListening = resolve));
    // The shield opens the cache first: LMDB refuses a writer after a reader of the same file in
    // one process (in a node they are processes apart). The worker is not told where it listens.
    const shield = await startEdge(config, silentLogger(), { processMetrics: false, workerSecret: secret });
    let wanted = 0;
    const worker = await startEdge(config, silentLogger(), { processMetrics: false, worker: { secret, shield: shieldUrl, wantShield: () => wanted++ } });
    try {
      // It opened the cache without its shield (a primary starts the shield once its workers listen).
      expect(wanted).toBe(0);
      const before = originGets.length;
      const hit = await get(worker.url, '/stored.txt');
      expect([hit.status, hit.body]).toEqual([200, 'body of /stored.txt']);
      expect(hit.cacheStatus).toMatch(/^anycdn; hit; ttl=\d+$/);
      // A miss has nowhere to go yet: it waits.
      let missDone = false;
      const miss = get(worker.url, '/cold.txt').finally(() => (missDone = true));
      await new Promise((r) => setTimeout(r, 300));
      expect(missDone).toBe(false);
      expect(originGets.length).toBe(before);
      shieldListening(shield.url);
      expect(await miss).toEqual({ status: 200, cacheStatus: 'anycdn; fwd=miss; fwd-status=200; stored', body: 'body of /cold.txt' });
      expect(originGets.slice(before)).toEqual(['/cold.txt']);
    } finally {
      await worker.close(1_000);
      await shield.close(1_000);
    }
  });

  it('fails a miss as a timeout (504) when the shield does not listen within the upstream deadline', async () => {
    const cacheDir = await cacheWithOneObject('no-shield');
    const worker = await startEdge(edgeConfig(cacheDir, { connect: '100ms', headers: '200ms' }), silentLogger(), { processMetrics: false, worker: { secret: 's', shield: new Promise<string>(() => undefined) } });
    try {
      const t0 = performance.now();
      const miss = await get(worker.url, '/never.txt');
      const waited = performance.now() - t0;
      expect(miss.status).toBe(504);
      expect(miss.body).toContain('upstream_timeout');
      expect(waited).toBeGreaterThanOrEqual(290);
      expect(waited).toBeLessThan(5_000);
      expect((await get(worker.url, '/stored.txt')).status).toBe(200);
    } finally {
      await worker.close(1_000);
    }
  });

  it('on a node whose cache does not exist yet, opens it once the shield has created it', async () => {
    const cacheDir = join(dir, 'first-start');
    const config = edgeConfig(cacheDir);
    const secret = randomBytes(24).toString('base64url');
    let shieldListening = (_url: string): void => undefined;
    const shieldUrl = new Promise<string>((resolve) => (shieldListening = resolve));
    let workerUp = false;
    let wanted = 0;
    const starting = startEdge(config, silentLogger(), { processMetrics: false, worker: { secret, shield: shieldUrl, wantShield: () => wanted++ } }).then((w) => ((workerUp = true), w));
    await new Promise((r) => setTimeout(r, 200));
    expect(workerUp).toBe(false);
    // It says so: its primary, which starts the shield once the workers listen, starts it now.
    expect(wanted).toBe(1);
    const shield = await startEdge(config, silentLogger(), { processMetrics: false, workerSecret: secret });
    shieldListening(shield.url);
    const worker = await starting;
    try {
      expect((await get(worker.url, '/first.txt')).cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      await shield.pipeline.settled();
      await worker.pipeline.settled();
      expect((await get(worker.url, '/first.txt')).cacheStatus).toMatch(/^anycdn; hit; ttl=\d+$/);
    } finally {
      await worker.close(1_000);
      await shield.close(1_000);
    }
  });
});
