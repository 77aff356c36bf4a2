/**
 * A cluster worker starts before its primary has opened the disk cache (edge/cluster.ts forks the
 * workers first and opens the cache as its owner once they listen): on a restart it opens the
 * cache as a co-writer at once, before its owner, and the owner's open later keeps it attached;
 * on a node's first start (or with an earlier format to discard) it asks for the owner's open and
 * opens the cache after it. Either way it fetches its misses from upstream itself and stores them
 * where the owner and the other workers read them.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { validateConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/log.js';
import { purgePathOfKey } from '../../../edge/cache-keys.js';
import { edgeConfigSchema, type EdgeConfig } from '../../../edge/config.js';
import { startEdge } from '../../../edge/server.js';
import { until } from '../../support/until.js';

let origin: Server;
let originUrl: string;
let dir: string;
const originGets: { url: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  origin = createServer((req, res) => {
    originGets.push({ url: req.url ?? '', headers: req.headers });
    // Under /large/, bodies too large to pack: a co-writer writes them through its folder in tmp/.
    const body = req.url?.startsWith('/large/') === true ? `body of ${req.url}`.padEnd(100 * 1024, '.') : `body of ${req.url}`;
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

function edgeConfig(cacheDir: string): EdgeConfig {
  return validateConfig(edgeConfigSchema, { listen: '127.0.0.1:0', upstream: originUrl, pop: 'test', node: 'edge-1', cacheDir, logLevel: 'silent', drain: 0, accessLog: false }, 'test settings', {});
}

/** Always for the same site (cache keys start with the Host, and every edge here listens on a port of its own). */
async function get(base: string, path: string): Promise<{ status: number; cacheStatus: string; body: string }> {
  const res = await request(`${base}${path}`, { headers: { host: 'cdn.test' } });
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() };
}

describe('a cluster worker started before its primary owns the disk cache', () => {
  it('opens the cache once its owner has created it, fetches a miss from upstream itself and stores it for the owner', async () => {
    const cacheDir = join(dir, 'first-start');
    const config = edgeConfig(cacheDir);
    let owned = (): void => undefined;
    const diskOwned = new Promise<void>((resolve) => (owned = resolve));
    let workerUp = false;
    let asked = 0;
    const beforeOwner = { ownerPid: process.pid, owned: diskOwned, ask: () => void (asked += 1) };
    const starting = startEdge(config, silentLogger(), { processMetrics: false, worker: { writer: 1, beforeOwner } }).then((w) => ((workerUp = true), w));
    // Waits for the ask rather than a fixed time: a loaded machine may take longer to get there.
    await until("the co-writer's ask", () => asked > 0);
    // Not before its owner: the co-writer neither creates the cache nor opens it, and asks for the owner's open.
    expect(workerUp).toBe(false);
    expect(asked).toBe(1);
    expect(existsSync(cacheDir)).toBe(false);
    const owner = await DiskBlobStore.open({ dir: cacheDir, maxBytes: config.disk.maxBytes, maxEntrySize: config.disk.maxEntrySize, pathOf: purgePathOfKey });
    owned();
    const worker = await starting;
    try {
      const before = originGets.length;
      expect(await get(worker.url, '/first.txt')).toEqual({ status: 200, cacheStatus: 'anycdn; fwd=miss; fwd-status=200; stored', body: 'body of /first.txt' });
      // Straight to upstream, as a single process goes: its own Via and the client's address.
      expect(originGets.slice(before).map((g) => [g.url, g.headers['via'], g.headers['x-forwarded-for'], g.headers['anycdn-worker']])).toEqual([['/first.txt', '1.1 anycdn-edge-1', '127.0.0.1', undefined]]);
      await worker.pipeline.settled();
      // On the node's disk, written by the worker: the owner reads it.
      const stored = await owner.get('cdn.test/first.txt');
      expect(stored?.data?.toString()).toBe('body of /first.txt');
      // The worker's own memory keeps a copy from the first hit on (TieredBlobStoreOptions.admitAtCommit).
      expect(worker.store.stats().entries).toBe(0);
      expect((await get(worker.url, '/first.txt')).cacheStatus).toMatch(/^anycdn; hit; ttl=\d+$/);
      expect(worker.store.stats().entries).toBe(1);
      expect(originGets.length).toBe(before + 1);
    } finally {
      await worker.close(1_000);
      await owner.close();
    }
  });

  it('answers from a cache that exists once it is open, and a later worker takes its writer id once it has stopped', async () => {
    const cacheDir = join(dir, 'restart');
    const config = edgeConfig(cacheDir);
    const owner = await DiskBlobStore.open({ dir: cacheDir, maxBytes: config.disk.maxBytes, maxEntrySize: config.disk.maxEntrySize, pathOf: purgePathOfKey });
    try {
      const first = await startEdge(config, silentLogger(), { processMetrics: false, worker: { writer: 3 } });
      expect((await get(first.url, '/kept.txt')).cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      await first.pipeline.settled();
      // The same id twice at once is refused: each co-writer has its own lock.
      await expect(startEdge(config, silentLogger(), { processMetrics: false, worker: { writer: 3 } })).rejects.toThrow(/in use|already open/);
      await first.close(1_000);
      const again = await startEdge(config, silentLogger(), { processMetrics: false, worker: { writer: 3 } });
      try {
        const before = originGets.length;
        expect(await get(again.url, '/kept.txt')).toEqual({ status: 200, cacheStatus: expect.stringMatching(/^anycdn; hit; ttl=\d+$/), body: 'body of /kept.txt' });
        expect(originGets.length).toBe(before);
      } finally {
        await again.close(1_000);
      }
    } finally {
      await owner.close();
    }
  });

  it('on a restart, opens the cache before its owner: serves what it holds and stores misses, and the owner opening later keeps it attached', async () => {
    const cacheDir = join(dir, 'before-owner');
    const config = edgeConfig(cacheDir);
    const open = () => DiskBlobStore.open({ dir: cacheDir, maxBytes: config.disk.maxBytes, maxEntrySize: config.disk.maxEntrySize, pathOf: purgePathOfKey });
    // The node's last run: an object stored, a clean stop.
    const last = await startEdge(config, silentLogger(), { processMetrics: false });
    expect((await get(last.url, '/kept.txt')).cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    await last.close(1_000);
    let asked = 0;
    const beforeOwner = { ownerPid: process.pid, owned: new Promise<void>(() => undefined), ask: () => void (asked += 1) };
    // No owner, and none coming: the worker starts all the same.
    const worker = await startEdge(config, silentLogger(), { processMetrics: false, worker: { writer: 2, beforeOwner } });
    let owner: DiskBlobStore | undefined;
    try {
      expect(asked).toBe(0);
      const before = originGets.length;
      expect(await get(worker.url, '/kept.txt')).toEqual({ status: 200, cacheStatus: expect.stringMatching(/^anycdn; hit; ttl=\d+$/), body: 'body of /kept.txt' });
      expect(originGets.length).toBe(before);
      expect((await get(worker.url, '/large/early.bin')).cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      await worker.pipeline.settled();
      expect(await readdir(join(cacheDir, 'tmp'))).toEqual(['w2']);
      // The owner's open leaves the attached co-writer its folder in tmp/ (and clears the rest).
      await mkdir(join(cacheDir, 'tmp', 'w7'));
      owner = await open();
      expect(await readdir(join(cacheDir, 'tmp'))).toEqual(['w2']);
      expect((await get(worker.url, '/large/after.bin')).cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      await worker.pipeline.settled();
      for (const path of ['/large/early.bin', '/large/after.bin']) {
        const stored = await owner.get(`cdn.test${path}`);
        expect(stored?.meta.size).toBe(100 * 1024);
      }
      expect(originGets.length).toBe(before + 2);
    } finally {
      await worker.close(1_000);
      await owner?.close();
    }
  });

  it('does not open before its owner a cache with an earlier format to discard', async () => {
    const cacheDir = join(dir, 'upgrade');
    const config = edgeConfig(cacheDir);
    const last = await startEdge(config, silentLogger(), { processMetrics: false });
    await last.close(1_000);
    await mkdir(join(cacheDir, 'v2'));
    let owned = (): void => undefined;
    let asked = 0;
    const beforeOwner = { ownerPid: process.pid, owned: new Promise<void>((resolve) => (owned = resolve)), ask: () => void (asked += 1) };
    let workerUp = false;
    const starting = startEdge(config, silentLogger(), { processMetrics: false, worker: { writer: 1, beforeOwner } }).then((w) => ((workerUp = true), w));
    await until("the co-writer's ask", () => asked > 0);
    expect([workerUp, asked, existsSync(join(cacheDir, 'LOCK-w1'))]).toEqual([false, 1, false]);
    const owner = await DiskBlobStore.open({ dir: cacheDir, maxBytes: config.disk.maxBytes, maxEntrySize: config.disk.maxEntrySize, pathOf: purgePathOfKey });
    expect(owner.openReport.discarded).toEqual([join(cacheDir, 'v2')]);
    owned();
    const worker = await starting;
    await worker.close(1_000);
    await owner.close();
  });
});
