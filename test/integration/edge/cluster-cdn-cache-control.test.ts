/**
 * CDN-Cache-Control (RFC 9213) in an edge node with `workers: 2`, run through the real CLI: each
 * worker fetches and stores by the same rules as a single process, and a copy one worker stored
 * is judged by the other by the same rules too, never by Cache-Control alone.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBuilt, startCli, stopAll } from '../../support/process.js';

let upstream: Server;
let dir: string;
let url: string;
const gets = new Map<string, number>();
const routes: Record<string, Record<string, string>> = {
  '/w/no-store.txt': { 'cache-control': 'public, max-age=600', 'cdn-cache-control': 'no-store' },
  '/w/private.txt': { 'cache-control': 'public, max-age=600', 'cdn-cache-control': 'private' },
  '/w/no-cache.txt': { 'cache-control': 'public, max-age=600', 'cdn-cache-control': 'no-cache' },
  '/w/invalid.txt': { 'cache-control': 'private', 'cdn-cache-control': 'max-age=10.5' },
  '/w/longer.txt': { 'cache-control': 'max-age=1', 'cdn-cache-control': 'max-age=600' },
};

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const path = req.url ?? '';
    gets.set(path, (gets.get(path) ?? 0) + 1);
    const etag = `"${path.slice(3)}"`;
    const headers = { 'content-type': 'text/plain', etag, ...routes[path] };
    if (req.headers['if-none-match'] === etag) res.writeHead(304, headers).end();
    else res.writeHead(routes[path] === undefined ? 404 : 200, headers).end(`body of ${path}`);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  dir = await mkdtemp(join(tmpdir(), 'anycdn-cluster-cdncc-'));
});
afterAll(async () => {
  await stopAll();
  await new Promise((r) => upstream.close(r));
  await rm(dir, { recursive: true, force: true });
});

/** One request on a connection of its own, so the cluster may hand it to either worker. */
function get(path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(!cliBuilt)('CDN-Cache-Control in a node with two worker processes (needs dist/, built by npm test)', () => {
  beforeAll(async () => {
    const config = join(dir, 'edge.yaml');
    const port = (upstream.address() as AddressInfo).port;
    await writeFile(config, `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:${port}\npop: lab\nnode: w1\nworkers: 2\ncacheDir: ${join(dir, 'cache')}\ndrain: 0s\n`);
    const proc = startCli(['edge', '--config', config]);
    const listening = await proc.waitForLog('edge listening', 30_000);
    url = String(listening['url']);
  });

  it.each([
    ['no-store', '/w/no-store.txt', 'anycdn; fwd=(miss|uri-miss); fwd-status=200; detail=(no-store|hit-for-miss)'],
    ['private', '/w/private.txt', 'anycdn; fwd=(miss|uri-miss); fwd-status=200; detail=(private|hit-for-miss)'],
    ['no-cache', '/w/no-cache.txt', 'anycdn; fwd=(miss; fwd-status=200; stored|stale; fwd-status=304)'],
    ['an invalid field (Cache-Control private governs)', '/w/invalid.txt', 'anycdn; fwd=(miss|uri-miss); fwd-status=200; detail=(private|hit-for-miss)'],
  ])('%s: no worker answers from memory by Cache-Control alone', async (_name, path, status) => {
    for (let i = 0; i < 6; i++) {
      const a = await get(path);
      expect(a.status).toBe(200);
      expect(a.body).toBe(`body of ${path}`);
      expect(a.headers['cdn-cache-control']).toBe(routes[path]!['cdn-cache-control']);
      expect(`${i} ${String(a.headers['cache-status'])}`).toMatch(new RegExp(`^\\d ${status}$`));
    }
    // Every use reached upstream: each passed on, or revalidated (no-cache), by whichever worker took it.
    expect(gets.get(path)).toBe(6);
  });

  it("a CDN lifetime longer than Cache-Control's keeps the workers' copies fresh, without asking upstream", async () => {
    for (let i = 0; i < 6; i++) expect((await get('/w/longer.txt')).body).toBe('body of /w/longer.txt');
    // Past Cache-Control's max-age=1.
    await new Promise((r) => setTimeout(r, 1_500));
    for (let i = 0; i < 6; i++) {
      const a = await get('/w/longer.txt');
      expect(a.body).toBe('body of /w/longer.txt');
      expect(a.headers['cdn-cache-control']).toBe('max-age=600');
      expect(a.headers['cache-status']).toMatch(/^anycdn; hit; ttl=59\d$/);
    }
    expect(gets.get('/w/longer.txt')).toBe(1);
  });
});
