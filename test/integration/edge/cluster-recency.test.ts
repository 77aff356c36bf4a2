/**
 * An edge node with `workers: 2` and a small disk: the workers answer hits themselves (their
 * memory, or the disk read directly), yet what they read counts for the disk's eviction, which the
 * shield runs, as a single process's reads do. Run through the real CLI.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBuilt, exited, startCli, stopAll, type CliProcess } from '../../support/process.js';

const KiB = 1024;
/** Each body: packed in a segment (≤ 64 KiB), and 20 of them fill a 1 MiB generation. */
const BODY = 48 * KiB;
let upstream: Server;
const gets = new Map<string, number>();
let dir: string;

/** A body of BODY bytes that differs per path. */
function bodyOf(path: string): Buffer {
  return Buffer.alloc(BODY, path);
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const url = req.url ?? '';
    gets.set(url, (gets.get(url) ?? 0) + 1);
    const body = bodyOf(url);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=600', 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  dir = await mkdtemp(join(tmpdir(), 'anycdn-cluster-recency-'));
});
afterAll(async () => {
  await stopAll();
  await new Promise((r) => upstream.close(r));
  await rm(dir, { recursive: true, force: true });
});

/**
 * One request on a connection of its own, so the cluster may hand it to either worker. The Host is
 * part of the cache key: the same one for both runs of the node, whose port changes.
 */
function get(url: string): Promise<{ status: number; cacheStatus: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, headers: { host: 'cdn.test' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, cacheStatus: String(res.headers['cache-status']), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The node on `cacheDir` (16 MiB of disk: generations of 1 MiB), with two workers. */
async function startNode(config: string): Promise<{ proc: CliProcess; url: string }> {
  const proc = startCli(['edge', '--config', config]);
  // (With the node's output in the error, should it not come: a start that fails or hangs says where.)
  await proc.waitForOutput('"workers":2', 30_000);
  const line = proc.output().split('\n').find((l) => l.includes('"workers":2'))!;
  return { proc, url: String((JSON.parse(line) as { url: string }).url) };
}

describe.skipIf(!cliBuilt)('disk eviction in an edge node with two worker processes (needs dist/, built by npm test)', () => {
  it('keeps an object read only through the workers, and evicts an unread one stored at the same time', async () => {
    const config = join(dir, 'node.yaml');
    const port = (upstream.address() as AddressInfo).port;
    await writeFile(config, `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:${port}\npop: lab\nnode: r1\nworkers: 2\ncacheDir: ${join(dir, 'cache')}\ndrain: 1s\nlogLevel: debug\ndisk:\n  maxBytes: 16MiB\n`);
    const first = await startNode(config);
    // Stored together, in the oldest generation.
    for (const path of ['/read.bin', '/unread.bin']) {
      const miss = await get(`${first.url}${path}`);
      expect(miss.cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    }
    // Read through the workers only: hits in their memory and on the disk, none reaching the shield.
    for (let i = 0; i < 10; i++) {
      const hit = await get(`${first.url}/read.bin`);
      expect(hit.cacheStatus).toMatch(/^anycdn; hit; ttl=\d+$/);
      expect(hit.body.equals(bodyOf('/read.bin'))).toBe(true);
    }
    expect(gets.get('/read.bin')).toBe(1);
    // The workers report their reads within a second: given 3 s, as a loaded machine runs their timers late.
    await new Promise((r) => setTimeout(r, 3_000));
    // 20 MiB more through a 16 MiB disk: the oldest generations are evicted, not the one the read
    // object moves to when its own comes up for eviction.
    const fill = Array.from({ length: 420 }, (_, i) => `/fill-${i}.bin`);
    for (let i = 0; i < fill.length; i += 8) {
      const answers = await Promise.all(fill.slice(i, i + 8).map((p) => get(`${first.url}${p}`)));
      for (const a of answers) expect(a.status).toBe(200);
    }
    expect(gets.get('/fill-0.bin')).toBe(1);
    first.proc.child.kill('SIGTERM');
    expect(await exited(first.proc.child, 20_000)).toBe(0);

    // A new node: its workers' memory is empty, so a hit comes from the disk.
    const again = await startNode(config);
    const kept = await get(`${again.url}/read.bin`);
    expect(kept.cacheStatus).toMatch(/^anycdn; hit; ttl=\d+$/);
    expect(kept.body.equals(bodyOf('/read.bin'))).toBe(true);
    expect(gets.get('/read.bin')).toBe(1);
    // What the workers stored last is all there: the shield made room for them as they wrote.
    for (const path of fill.slice(-100)) expect((await get(`${again.url}${path}`)).cacheStatus, path).toMatch(/^anycdn; hit; ttl=\d+$/);
    const evicted = await get(`${again.url}/unread.bin`);
    expect(evicted.cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    expect(gets.get('/unread.bin')).toBe(2);
    // The oldest of the filling objects went too: eviction did run.
    expect((await get(`${again.url}/fill-0.bin`)).cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    again.proc.child.kill('SIGTERM');
    expect(await exited(again.proc.child, 20_000)).toBe(0);
  });
});
