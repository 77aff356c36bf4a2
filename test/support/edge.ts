/**
 * Starting a real edge on a loopback port in front of a given upstream, over a fresh cache folder,
 * with an adjustable clock so freshness can be tested without waiting.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { edgeConfigSchema } from '../../edge/config.js';
import { startEdge, type EdgeServer } from '../../edge/server.js';

export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function testClock(start = Math.floor(Date.now() / 1000) * 1000): TestClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

export interface TestEdge {
  url: string;
  cacheDir: string;
  server: EdgeServer;
  clock: TestClock;
  get(path: string, headers?: Record<string, string>, method?: 'GET' | 'HEAD'): Promise<TestResponse>;
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

export async function startTestEdge(upstream: string, overrides: Record<string, unknown> = {}, reuse?: { cacheDir?: string; clock?: TestClock }): Promise<TestEdge> {
  const dir = reuse?.cacheDir === undefined ? await mkdtemp(join(tmpdir(), 'anycdn-edge-test-')) : undefined;
  const cacheDir = reuse?.cacheDir ?? join(dir!, 'cache');
  const clock = reuse?.clock ?? testClock();
  const config = validateConfig(
    edgeConfigSchema,
    { listen: '127.0.0.1:0', upstream, pop: 'test', node: 'edge-1', cacheDir, logLevel: 'silent', drain: 0, ...overrides },
    'test settings',
    {},
  );
  const server = await startEdge(config, silentLogger(), { processMetrics: false, now: clock.now });
  return {
    url: server.url,
    cacheDir,
    server,
    clock,
    async get(path, headers = {}, method = 'GET') {
      const res = await request(`${server.url}${path}`, { method, headers });
      const body = Buffer.from(await res.body.arrayBuffer());
      // The client has every byte once Content-Length is reached; the store commit may still be
      // under way. Wait for it, so the next request deterministically sees the stored copy.
      await server.pipeline.settled();
      return { status: res.statusCode, headers: res.headers as Record<string, string>, body };
    },
    async stop() {
      await server.close(1_000);
    },
    async destroy() {
      await server.close(1_000);
      await rm(cacheDir.replace(/\/cache$/, ''), { recursive: true, force: true });
    },
  };
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
