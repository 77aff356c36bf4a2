/**
 * An edge node with `workers: 2`, run through the real CLI: worker processes share the port, a
 * cold object still costs one upstream request, an invalidation reaches every worker, metrics
 * are summed over all processes, a dead worker is replaced, and SIGTERM drains them all.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../../support/edge.js';
import { cliBuilt, exited, startCli, stopAll, type CliProcess } from '../../support/process.js';

let upstream: Server;
const bodies = new Map<string, string>();
const gets = new Map<string, number>();
const seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
let dir: string;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const url = req.url ?? '';
    seen.push({ method: req.method ?? '', url, headers: req.headers });
    if (req.method === 'POST') {
      req.resume();
      res.writeHead(204).end();
      return;
    }
    gets.set(url, (gets.get(url) ?? 0) + 1);
    const body = bodies.get(url) ?? 'none';
    // Slow enough that concurrent requests in both workers overlap.
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600', 'content-length': String(Buffer.byteLength(body)) }).end(body), 300);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  dir = await mkdtemp(join(tmpdir(), 'anycdn-cluster-'));
});
afterAll(async () => {
  await stopAll();
  await new Promise((r) => upstream.close(r));
  await rm(dir, { recursive: true, force: true });
});

/** One request on a connection of its own, so the cluster may hand it to any worker. */
function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function workerPids(primary: number): number[] {
  try {
    return readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Processes whose environment holds `variable` (a worker inherits its primary's). */
function processesWith(variable: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(variable);
      } catch {
        return false; // gone meanwhile, or not ours to read
      }
    })
    .map(Number);
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startNode(name: string): Promise<{ proc: CliProcess; url: string; config: string }> {
  const config = join(dir, `${name}.yaml`);
  const port = (upstream.address() as AddressInfo).port;
  await writeFile(config, `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:${port}\npop: lab\nnode: ${name}\nworkers: 2\ncacheDir: ${join(dir, name)}\ndrain: 1s\n`);
  const proc = startCli(['edge', '--config', config]);
  // The primary says "edge listening" with the worker count once every worker listens.
  // (With the node's output in the error, should it not come: a start that fails or hangs says where.)
  await proc.waitForOutput('"workers":2', 30_000);
  const line = proc.output().split('\n').find((l) => l.includes('"workers":2'))!;
  return { proc, url: String((JSON.parse(line) as { url: string }).url), config };
}

describe.skipIf(!cliBuilt)('an edge node with two worker processes (needs dist/, built by npm test)', () => {
  it('serves from both workers, fetches a cold object once and sums metrics over all processes', async () => {
    const { proc, url } = await startNode('c1');
    expect(workerPids(proc.pid)).toHaveLength(2);
    bodies.set('/cold.txt', 'cold body');
    const answers = await Promise.all(Array.from({ length: 40 }, () => get(`${url}/cold.txt`)));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body).toBe('cold body');
      expect(a.headers['x-served-by']).toBe('lab/c1');
      // The node is one cache to clients: one Cache-Status member.
      expect(a.headers['cache-status']).toMatch(/^anycdn; (hit|fwd=miss)[^,]*$/);
    }
    expect(gets.get('/cold.txt')).toBe(1);
    // Upstream sees one hop, the worker that fetched: the client's address and one Via.
    const fetched = seen.find((s) => s.url === '/cold.txt')!;
    expect(fetched.headers['via']).toBe('1.1 anycdn-c1');
    expect(fetched.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(fetched.headers['anycdn-worker']).toBeUndefined();
    expect((await get(`${url}/cold.txt`)).headers['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);

    // Fetched by one worker, it is on the node's disk: the other worker's first answer is a hit too, not a miss it stored.
    bodies.set('/warm.txt', 'warm body');
    expect((await get(`${url}/warm.txt`)).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    for (let i = 0; i < 6; i++) {
      const again = await get(`${url}/warm.txt`);
      expect(again.body).toBe('warm body');
      // (or, while the first fetch is still committing to disk, answered from the disk once it is: collapsed)
      expect(`${i} ${again.headers['cache-status']}`).toMatch(/^\d anycdn; (hit; ttl=\d+|fwd=miss; fwd-status=200; stored; collapsed)$/);
    }
    expect(gets.get('/warm.txt')).toBe(1);

    const text = (await get(`${url}/_cdn/metrics`)).body;
    const workerCount = (outcome: string): number => metricValue(text, 'anycdn_edge_http_requests_total', { method: 'GET', status: '200', outcome, tier: 'worker' });
    expect(workerCount('hit') + workerCount('miss') + workerCount('collapsed')).toBe(48);
    // The workers fetch themselves; the shield (the disk's owner) serves none of their requests.
    expect(metricValue(text, 'anycdn_edge_upstream_requests_total', { outcome: 'ok', phase: 'headers', tier: 'worker' })).toBe(2);
    expect(metricValue(text, 'anycdn_edge_upstream_requests_total', { outcome: 'ok', phase: 'headers', tier: 'shield' })).toBe(0);
    // The bodies are on the node's disk and in the workers' memory; the shield keeps no memory copy.
    expect(metricValue(text, 'anycdn_edge_cache_objects', { tier: 'shield' })).toBe(2);
    expect(metricValue(text, 'anycdn_edge_cache_bytes', { tier: 'shield' })).toBeGreaterThanOrEqual('cold body'.length + 'warm body'.length);
    expect(metricValue(text, 'anycdn_edge_memory_cache_bytes', { tier: 'shield' })).toBe(0);
  });

  it('drops a URL in every worker after a successful POST through any one of them', async () => {
    const { url } = await startNode('c2');
    bodies.set('/inv.txt', 'version 1');
    for (const a of await Promise.all(Array.from({ length: 8 }, () => get(`${url}/inv.txt`)))) expect(a.body).toBe('version 1');
    for (const a of await Promise.all(Array.from({ length: 8 }, () => get(`${url}/inv.txt`)))) expect(a.headers['cache-status']).toMatch(/hit/);
    bodies.set('/inv.txt', 'version 2');
    expect((await get(`${url}/inv.txt`, {}, 'POST')).status).toBe(204);
    await until('every worker to have dropped the old copy', async () => {
      const answers = await Promise.all(Array.from({ length: 8 }, () => get(`${url}/inv.txt`)));
      return answers.every((a) => a.body === 'version 2');
    });
  });

  it('refuses an invalid config with the field named and exit code 1, leaving no worker running', async () => {
    // The workers are forked before the config is validated (edge/cluster.ts): they go with the primary.
    const config = join(dir, 'invalid.yaml');
    await writeFile(config, `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\npop: lab\nnode: bad\nworkers: 2\ncacheDir: ${join(dir, 'bad')}\ncolour: blue\n`);
    const mark = `ANYCDN_TEST_MARK=${randomBytes(8).toString('hex')}`;
    const proc = startCli(['edge', '--config', config], { ANYCDN_TEST_MARK: mark.split('=')[1] });
    expect(await exited(proc.child, 15_000)).toBe(1);
    expect(proc.output()).toBe(`anycdn: ${config}: colour: unknown key\n`);
    expect(processesWith(mark)).toEqual([]);
  });

  it('starts the shield after the workers listen, on a first start (the primary creates the cache) and on a cache that exists', async () => {
    /** The tiers in the order they said they listen. */
    const order = (output: string): string[] =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; tier?: string })
        .filter((l) => l.tier !== undefined && ['edge listening', 'shield listening'].includes(l.msg))
        .map((l) => l.tier!);
    // First start: the primary creates the cache before the workers open it, and starts the shield once they listen.
    const first = await startNode('c5');
    expect(order(first.proc.output())).toEqual(['worker', 'worker', 'shield']);
    first.proc.child.kill('SIGTERM');
    expect(await exited(first.proc.child, 20_000)).toBe(0);
    // Restart: the workers have the cores to themselves until they listen, then the shield starts.
    const again = await startNode('c5');
    expect(order(again.proc.output())).toEqual(['worker', 'worker', 'shield']);
    bodies.set('/restarted.txt', 'fetched by a worker');
    expect((await get(`${again.url}/restarted.txt`)).body).toBe('fetched by a worker');
  });

  it('replaces a worker that dies, and drains every worker on SIGTERM', async () => {
    const { proc, url, config } = await startNode('c3');
    // The replacement runs the node's config, from the primary: not the file, edited since.
    await writeFile(config, 'workers: [not, a, number\n');
    const [victim, survivor] = workerPids(proc.pid);
    process.kill(victim!, 'SIGKILL');
    await until('a replacement worker', () => proc.output().includes('"msg":"edge worker replaced"'));
    const now = workerPids(proc.pid);
    expect(now).toHaveLength(2);
    expect(now).toContain(survivor);
    expect(now).not.toContain(victim);
    bodies.set('/after.txt', 'still serving');
    expect((await get(`${url}/after.txt`)).body).toBe('still serving');

    const workers = workerPids(proc.pid);
    proc.child.kill('SIGTERM');
    await until('draining', () => proc.output().includes('"msg":"draining"'));
    const health = await get(`${url}/_cdn/healthz`);
    expect(health.status).toBe(503);
    const during = await get(`${url}/after.txt`);
    expect(during.body).toBe('still serving');
    expect(during.headers['connection']).toBe('close');
    expect(await exited(proc.child, 20_000)).toBe(0);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
  });
});
