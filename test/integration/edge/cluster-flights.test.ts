/**
 * Two cluster workers writing one disk cache beside its owner, as `workers: 2` runs them
 * (edge/cluster.ts), here in one process with their messages to the primary delivered at once:
 * a herd on one URL spread over both workers is one upstream request, and a purge that races the
 * fetch leaves nothing fetched before it on the disk, whichever worker led.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/log.js';
import { parsePurge } from '../../../src/purge/purge-request.js';
import { FlightLeases, IpcFlights } from '../../../edge/cluster-flights.js';
import type { ClusterMessage } from '../../../edge/cluster-protocol.js';
import { edgeConfigSchema } from '../../../edge/config.js';
import { startEdge, type EdgeServer } from '../../../edge/server.js';
import { until } from '../../support/until.js';

let origin: Server;
let originUrl: string;
let dir: string;
let version = 1;
const gets = new Map<string, number>();
/** Responses held back until the test lets them go (path → the responses waiting, with the version they were asked for). */
const held = new Map<string, [ServerResponse, number][]>();
let holding = false;

beforeAll(async () => {
  origin = createServer((req, res) => {
    const url = req.url ?? '';
    gets.set(url, (gets.get(url) ?? 0) + 1);
    if (holding) {
      held.set(url, [...(held.get(url) ?? []), [res, version]]);
      return;
    }
    answer(res, url, version);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  dir = await mkdtemp(join(tmpdir(), 'anycdn-cluster-flights-'));
});
afterAll(async () => {
  await new Promise((r) => origin.close(r));
  await rm(dir, { recursive: true, force: true });
});

function answer(res: ServerResponse, url: string, asked: number): void {
  const body = `v${asked} of ${url}`;
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600', 'content-length': String(body.length) }).end(body);
}

function release(url: string): void {
  for (const [res, asked] of held.get(url) ?? []) answer(res, url, asked);
  held.delete(url);
}

const running: EdgeServer[] = [];
afterEach(async () => {
  holding = false;
  for (const url of [...held.keys()]) release(url);
  for (const s of running.splice(0).reverse()) await s.close(1_000);
});

/**
 * An owner (the shield) and two workers, wired as the primary wires them. `follows` counts the
 * primary's answers telling a worker to follow another's fetch.
 */
async function startNode(name: string): Promise<{ owner: EdgeServer; workers: EdgeServer[]; follows: () => number }> {
  const config = validateConfig(edgeConfigSchema, { listen: '127.0.0.1:0', upstream: originUrl, pop: 'test', node: 'edge-1', cacheDir: join(dir, name), logLevel: 'silent', drain: 0, accessLog: false }, 'test settings', {});
  const owner = await startEdge(config, silentLogger(), { processMetrics: false, shield: true });
  running.push(owner);
  const leases = new FlightLeases<number>();
  const ipc: IpcFlights[] = [];
  let follows = 0;
  const toPrimary = (from: number, m: ClusterMessage): void => {
    if (m.type !== 'anycdn:flights') return;
    for (const [to, answered] of leases.receive(from, m)) {
      follows += (answered.answers ?? []).filter(([, lead]) => lead === false).length;
      ipc[to]!.onMessage({ type: 'anycdn:flights-answer', ...answered });
    }
  };
  const workers: EdgeServer[] = [];
  for (const i of [0, 1]) {
    ipc.push(new IpcFlights((m) => toPrimary(i, m), 10_000));
    const w = await startEdge(config, silentLogger(), { processMetrics: false, worker: { writer: i + 1, flights: ipc[i]! } });
    running.push(w);
    workers.push(w);
  }
  owner.purges.node!.setPeers({
    apply: async (purges) => void (await Promise.all(workers.flatMap((w) => purges.map((p) => w.purges.applier.apply(p))))),
    watermarks: (wm) => workers.forEach((w) => w.pipeline.setPurgeWatermarks(wm)),
  });
  return { owner, workers, follows: () => follows };
}

/** Requests that joined another's fetch in their worker, over both workers. */
async function coalesced(workers: EdgeServer[]): Promise<number> {
  let n = 0;
  for (const w of workers) n += (await w.metrics.coalesced.get()).values.reduce((sum, v) => sum + v.value, 0);
  return n;
}

async function get(base: string, path: string): Promise<{ status: number; cacheStatus: string; body: string }> {
  const res = await request(`${base}${path}`, { headers: { host: 'cdn.test' } });
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() };
}

describe('cluster workers fetching for one node', () => {
  it('turn a herd on one URL over both workers into one upstream request, the other worker answering from the disk', async () => {
    const { owner, workers, follows } = await startNode('herd');
    holding = true;
    const answers = Promise.all(Array.from({ length: 20 }, (_, i) => get(workers[i % 2]!.url, '/herd.txt')));
    await until('the fetch upstream', () => held.has('/herd.txt'));
    // Every request in before the answer (late on a loaded machine): 9 behind each worker's first,
    // and the other worker's first following the leader.
    await until('the herd behind the leader', async () => (await coalesced(workers)) === 18 && follows() === 1);
    holding = false;
    release('/herd.txt');
    const all = await answers;
    expect(gets.get('/herd.txt')).toBe(1);
    for (const a of all) expect([a.status, a.body]).toEqual([200, 'v1 of /herd.txt']);
    const statuses = all.map((a) => a.cacheStatus.replace(/ttl=\d+/, 'ttl=N'));
    // The leader; its followers in its worker (collapsed on its flight); the other worker's, hits on the disk once stored.
    const leaderWorker = statuses.indexOf('anycdn; fwd=miss; fwd-status=200; stored') % 2;
    expect(statuses.filter((s, i) => i % 2 === leaderWorker && s !== 'anycdn; fwd=miss; fwd-status=200; stored; collapsed')).toEqual(['anycdn; fwd=miss; fwd-status=200; stored']);
    expect(statuses.filter((_s, i) => i % 2 !== leaderWorker)).toEqual(Array(10).fill('anycdn; hit; ttl=N'));
    // Stored once, by the worker that fetched it, and read by the owner.
    await Promise.all(workers.map((w) => w.pipeline.settled()));
    expect((await owner.store.get('cdn.test/herd.txt'))?.data?.toString()).toBe('v1 of /herd.txt');
    expect(owner.store.stats().entries).toBe(1);
  });

  it('keeps off the disk what a worker fetched before a purge that came while the body was on its way', async () => {
    const { owner, workers, follows } = await startNode('purge-race');
    version = 1;
    holding = true;
    const leader = get(workers[0]!.url, '/raced.txt');
    await until('the fetch upstream', () => held.has('/raced.txt'));
    // The other worker follows the fetch under way in the first.
    const follower = get(workers[1]!.url, '/raced.txt');
    await until('the other worker following', () => follows() === 1);
    expect(gets.get('/raced.txt')).toBe(1);
    // A new version, and its purge, applied by the owner and then by every worker.
    version = 2;
    await owner.purges.node!.apply([parsePurge({ urls: ['/raced.txt'] }, { maxEntries: 10 })], 'local');
    holding = false;
    release('/raced.txt');
    // The leader's client gets what was fetched before the purge; nothing of it is stored. The
    // follower finds nothing stored once the leader is done, and fetches itself.
    expect((await leader).body).toBe('v1 of /raced.txt');
    expect((await follower).body).toBe('v2 of /raced.txt');
    expect(gets.get('/raced.txt')).toBe(2);
    await Promise.all(workers.map((w) => w.pipeline.settled()));
    for (const w of workers) await w.purges.applier.swept();
    expect(await owner.store.get('cdn.test/raced.txt')).toBeUndefined();
    // The next request fetches anew, and that copy is kept.
    const after = await get(workers[0]!.url, '/raced.txt');
    expect([after.body, after.cacheStatus]).toEqual(['v2 of /raced.txt', 'anycdn; fwd=miss; fwd-status=200; stored']);
    await workers[0]!.pipeline.settled();
    expect((await owner.store.get('cdn.test/raced.txt'))?.data?.toString()).toBe('v2 of /raced.txt');
    expect(gets.get('/raced.txt')).toBe(3);
  });
});
