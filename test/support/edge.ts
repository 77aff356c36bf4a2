/**
 * Starting a real edge on a loopback port in front of a given upstream, over a fresh cache folder,
 * with an adjustable clock so freshness can be tested without waiting. Either topology of a node:
 * one process, or a worker beside the node's shield (the disk's owner) as `workers: N` runs them
 * (edge/cluster.ts): the worker fetches and writes the disk itself, as a co-writer; here in this
 * process so both share the test clock.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { DiskBlobStore } from '../../src/blob/disk-blob-store.js';
import { WorkerBlobStore } from '../../src/blob/worker-blob-store.js';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { edgeConfigSchema, type EdgeConfig } from '../../edge/config.js';
import { startEdge, type EdgeServer } from '../../edge/server.js';

export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function testClock(start = Math.floor(Date.now() / 1000) * 1000): TestClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** A clock that runs (the system's, plus what the test advanced it by): purge watermarks compare times of events in a row. */
export function runningClock(): TestClock {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms) => void (offset += ms) };
}

/** `single`: one process; `workers`: a worker (memory tier, co-writer of the disk) beside the node's shield (the disk's owner). */
export type Topology = 'single' | 'workers';
export const TOPOLOGIES: readonly Topology[] = ['single', 'workers'];

export interface TestEdge {
  url: string;
  cacheDir: string;
  /** The process clients talk to: the only one, or the worker. */
  server: EdgeServer;
  /** With `workers`: the shield beside the worker, which owns the disk. */
  shield?: EdgeServer;
  clock: TestClock;
  get(path: string, headers?: Record<string, string>, method?: 'GET' | 'HEAD'): Promise<TestResponse>;
  /** Resolves when every fetch under way in the node (worker and shield) is over and stored. */
  settled(): Promise<void>;
  /** The process that owns the disk: the only one, or the shield (its purger and subscriber). */
  owner: EdgeServer;
  /** Stop the server but keep the cache folder (to restart on it). */
  stop(): Promise<void>;
  /** Stop and remove the cache folder. */
  destroy(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export async function startTestEdge(upstream: string, overrides: Record<string, unknown> = {}, reuse?: { cacheDir?: string; clock?: TestClock; topology?: Topology }): Promise<TestEdge> {
  const dir = reuse?.cacheDir === undefined ? await mkdtemp(join(tmpdir(), 'anycdn-edge-test-')) : undefined;
  const cacheDir = reuse?.cacheDir ?? join(dir!, 'cache');
  const clock = reuse?.clock ?? testClock();
  const config = validateConfig(
    edgeConfigSchema,
    { listen: '127.0.0.1:0', upstream, pop: 'test', node: 'edge-1', cacheDir, logLevel: 'silent', drain: 0, accessLog: false, ...overrides },
    'test settings',
    {},
  );
  const { server, shield } = reuse?.topology === 'workers' ? await startNodeWithWorker(config, clock) : { server: await startEdge(config, silentLogger(), { processMetrics: false, now: clock.now }), shield: undefined };
  const settled = async (): Promise<void> => {
    await server.pipeline.settled();
    await shield?.pipeline.settled();
  };
  const close = async (): Promise<void> => {
    await server.close(1_000);
    await shield?.close(1_000);
  };
  return {
    url: server.url,
    cacheDir,
    server,
    shield,
    owner: shield ?? server,
    clock,
    async get(path, headers = {}, method = 'GET') {
      const res = await request(`${server.url}${path}`, { method, headers });
      const body = Buffer.from(await res.body.arrayBuffer());
      // The client has every byte once Content-Length is reached; the store commit may still be
      // under way. Wait for it, so the next request deterministically sees the stored copy.
      await settled();
      return { status: res.statusCode, headers: res.headers as Record<string, string>, body };
    },
    settled,
    stop: close,
    async destroy() {
      await close();
      await rm(cacheDir.replace(/\/cache$/, ''), { recursive: true, force: true });
    },
  };
}

/** A shield and one worker wired as edge/cluster.ts wires them, invalidations and purges relayed. */
async function startNodeWithWorker(config: EdgeConfig, clock: TestClock): Promise<{ server: EdgeServer; shield: EdgeServer }> {
  let worker: EdgeServer | undefined;
  const shield = await startEdge(config, silentLogger(), {
    processMetrics: false,
    now: clock.now,
    shield: true,
    onInvalidate: (primary) => void worker?.pipeline.invalidation.invalidate(primary),
  });
  worker = await startEdge(config, silentLogger(), {
    processMetrics: false,
    now: clock.now,
    worker: { writer: 1 },
    onInvalidate: (primary) => void shield.pipeline.invalidation.invalidate(primary),
    forwardLocalPurge: (purge) => shield.purges.node!.apply([purge], 'local'),
  });
  // Its disk writes ask the shield, the disk's owner, for room, as the primary relays them (edge/cluster.ts).
  const ownerDisk = shield.store;
  if (!(ownerDisk instanceof DiskBlobStore) || !(worker.store instanceof WorkerBlobStore)) throw new Error('a shield over the disk and a worker store expected');
  worker.store.disk.onRoomWanted(() => void ownerDisk.makeRoomForWriters());
  // Purges reach the worker's memory through the shield, as the primary relays them (edge/cluster.ts).
  const applier = worker.purges.applier;
  const pipeline = worker.pipeline;
  shield.purges.node!.setPeers({
    apply: async (purges) => void (await Promise.all(purges.map((p) => applier.apply(p)))),
    watermarks: (w) => pipeline.setPurgeWatermarks(w),
  });
  return { server: worker, shield };
}

/** The value of one counter sample in Prometheus text, 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
