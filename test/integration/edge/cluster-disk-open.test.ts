/**
 * An edge node with `workers: 2`, run through the real CLI: every open of the disk cache's index
 * runs while the node's other processes hold their commits (edge/cluster.ts exclusiveOpen). On a
 * restart over an existing cache, each process opens in turn, the last one holding the two others,
 * and the node serves what the cache holds. A worker killed with SIGKILL while the other serves
 * is replaced; its replacement opens while the others hold, and no object the node stored, before
 * or during that open, is missing from the index after. A worker that does not answer a hold
 * (stopped with SIGSTOP) is warned about, waited for rather than killed, and the open goes on once
 * it answers.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { purgePathOfKey } from '../../../edge/cache-keys.js';
import { cliBuilt, exited, startCli, stopAll, type CliProcess } from '../../support/process.js';

let upstream: Server;
let dir: string;
/** The paths upstream was asked for, in order. */
const asked: string[] = [];
const OPENED = 'disk cache index opened while the other processes held their commits';

beforeAll(async () => {
  upstream = createServer((req, res) => {
    asked.push(req.url ?? '');
    const body = `body of ${req.url}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600', 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  dir = await mkdtemp(join(tmpdir(), 'anycdn-cluster-disk-open-'));
});
afterAll(async () => {
  await stopAll();
  await new Promise((r) => upstream.close(r));
  await rm(dir, { recursive: true, force: true });
});

/** One request on a connection of its own (the cluster may hand it to either worker), for the site cdn.test. */
function get(url: string): Promise<{ status: number; cacheStatus: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, headers: { host: 'cdn.test' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, cacheStatus: String(res.headers['cache-status']), body }));
    });
    req.on('error', reject);
    // Bounded: a request the cluster handed to a worker as it died is given up.
    req.setTimeout(5_000, () => req.destroy(new Error('no answer in 5 s')));
    req.end();
  });
}

/** The JSON log lines of `proc` with message `msg`. */
function logs(proc: CliProcess, msg: string): Record<string, unknown>[] {
  return proc
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((rec) => rec['msg'] === msg);
}

async function startNode(config: string): Promise<{ proc: CliProcess; url: string; workers: number[] }> {
  const proc = startCli(['edge', '--config', config]);
  // The node is up once its shield listens, after both workers (the first "edge listening" is a worker's).
  await proc.waitForLog('shield listening', 30_000);
  const url = String((await proc.waitForLog('edge listening'))['url']);
  const workers = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  expect(workers).toHaveLength(2);
  return { proc, url, workers };
}

async function stopNode(proc: CliProcess): Promise<void> {
  proc.child.kill('SIGTERM');
  expect(await exited(proc.child, 30_000)).toBe(0);
}

/** The keys among `paths` (of site cdn.test) the cache's index does not hold, read by an owner's open once the node is stopped. */
async function missingFromIndex(cacheDir: string, paths: string[]): Promise<string[]> {
  const store = await DiskBlobStore.open({ dir: cacheDir, maxBytes: 256 * 2 ** 20, pathOf: purgePathOfKey });
  try {
    const missing: string[] = [];
    for (const path of paths) if ((await store.get(`cdn.test${path}`)) === undefined) missing.push(path);
    return missing;
  } finally {
    await store.close();
  }
}

/** A `workers: 2` node's config file over the counting upstream, with its cache in `name`. */
async function nodeConfig(name: string, node: string): Promise<{ cacheDir: string; config: string }> {
  const cacheDir = join(dir, name);
  const config = join(dir, `${name}.yaml`);
  const port = (upstream.address() as AddressInfo).port;
  await writeFile(config, `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:${port}\npop: lab\nnode: ${node}\nworkers: 2\ncacheDir: ${cacheDir}\ndrain: 0s\nlogLevel: debug\ndisk:\n  maxBytes: 256MiB\n`);
  return { cacheDir, config };
}

describe.skipIf(!cliBuilt)('opens of the disk cache in an edge node with two workers (needs dist/, built by npm test)', () => {
  it('restarts on its cache with each open holding the others, and replaces a killed worker without losing what the node stored meanwhile', async () => {
    const { cacheDir, config } = await nodeConfig('cache', 'd1');

    const first = await startNode(config);
    const before = Array.from({ length: 30 }, (_, i) => `/before/${i}.txt`);
    for (const path of before) expect(await get(`${first.url}${path}`)).toMatchObject({ status: 200, cacheStatus: 'anycdn; fwd=miss; fwd-status=200; stored' });
    await stopNode(first.proc);

    // A restart: an open of the index per process (a worker that may not open before its owner
    // opens again after it), one at a time; the last holds the two processes open before it.
    const node = await startNode(config);
    const opens = logs(node.proc, OPENED);
    expect(opens.length).toBeGreaterThanOrEqual(3);
    expect(opens.map((o) => o['held'])).toContain(2);
    const upstreamBefore = asked.length;
    for (const path of before) expect(await get(`${node.url}${path}`)).toEqual({ status: 200, cacheStatus: expect.stringMatching(/^anycdn; hit; ttl=\d+$/), body: `body of ${path}` });
    expect(asked.length).toBe(upstreamBefore);

    // A worker killed: the other serves and stores misses while the replacement opens the cache.
    process.kill(node.workers[0]!, 'SIGKILL');
    const during: string[] = [];
    let i = 0;
    const deadline = Date.now() + 30_000;
    while (logs(node.proc, 'edge worker replaced').length === 0 || i < 60) {
      if (Date.now() > deadline) throw new Error(`no replacement after ${i} requests; output:\n${node.proc.output()}`);
      const path = `/during/${i++}.txt`;
      const answer = await get(`${node.url}${path}`).catch(() => undefined);
      if (answer?.status === 200 && answer.cacheStatus.endsWith('stored')) during.push(path);
    }
    // The replacement's open held the primary and the worker that kept serving.
    expect(logs(node.proc, OPENED).slice(opens.length).map((o) => o['held'])).toEqual([2]);
    expect(during.length).toBeGreaterThan(50);
    const after = Array.from({ length: 20 }, (_, j) => `/after/${j}.txt`);
    for (const path of after) expect(await get(`${node.url}${path}`)).toMatchObject({ status: 200, body: `body of ${path}` });
    await stopNode(node.proc);
    expect(await missingFromIndex(cacheDir, [...before, ...during, ...after])).toEqual([]);
  }, 120_000);

  it('warns about a worker that does not hold its commits in time, waits for it rather than kill it, and opens once it holds', async () => {
    const { config } = await nodeConfig('stopped', 'd2');
    const node = await startNode(config);
    const [stopped, killed] = node.workers as [number, number];
    const opensBefore = logs(node.proc, OPENED).length;
    process.kill(stopped, 'SIGSTOP');
    try {
      process.kill(killed, 'SIGKILL');
      const late = await node.proc.waitForLog('edge worker has not held its disk commits for an open yet; waiting for it', 20_000);
      expect(late).toMatchObject({ pid: stopped, waitedMs: 5_000 });
      // Held up by the stopped worker: the replacement has not opened yet.
      expect(logs(node.proc, OPENED)).toHaveLength(opensBefore);
    } finally {
      process.kill(stopped, 'SIGCONT');
    }
    await node.proc.waitForLog('edge worker replaced', 20_000);
    expect(logs(node.proc, OPENED).slice(opensBefore).map((o) => o['held'])).toEqual([2]);
    // Not killed: the worker that was late still runs, and the node serves.
    expect(() => process.kill(stopped, 0)).not.toThrow();
    expect(logs(node.proc, 'edge worker did not hold its disk commits for an open; stopping it (it is replaced)')).toEqual([]);
    expect(await get(`${node.url}/late.txt`)).toMatchObject({ status: 200, body: 'body of /late.txt' });
    await stopNode(node.proc);
  }, 90_000);
});
