/**
 * Purges at an edge node with `workers: 2`, run through the real CLI: the shield follows the
 * origin's purge stream, and a purge has left every worker's memory and the shield's disk by the
 * time the origin has the node's acknowledgement. The edge-local purge through any worker is
 * applied node-wide too.
 *
 * The edge's upstream is a plain server whose answers the test changes without telling anyone;
 * the purge stream comes from a real origin (`purgeFrom`). So a stale copy left anywhere in the
 * node shows as the old body.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../../support/edge.js';
import { startTestOrigin, PURGE_TOKEN, type TestOrigin } from '../../support/origin.js';
import { cliBuilt, startCli, stopAll } from '../../support/process.js';
import { EDGE_TOKEN, postPurge } from '../../support/purge-stream.js';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';

let origin: TestOrigin;
let upstream: Server;
const bodies = new Map<string, string>();
const gets = new Map<string, number>();
let dir: string;
let url: string;

/** One request on a connection of its own, so the cluster may hand it to either worker. */
function get(target: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(target, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Requests on 16 connections (the workers take turns): every body seen. */
async function bodiesSeen(path: string): Promise<string[]> {
  const answers = await Promise.all(Array.from({ length: 16 }, () => get(`${url}${path}`)));
  return [...new Set(answers.map((a) => a.body))];
}

/** Both workers hold `path` in memory: the upstream saw one request and every answer is a hit. */
async function warm(path: string): Promise<void> {
  for (let i = 0; i < 3; i++) await bodiesSeen(path);
  const answers = await Promise.all(Array.from({ length: 16 }, () => get(`${url}${path}`)));
  for (const a of answers) expect(a.headers['cache-status']).toMatch(/^anycdn; hit/);
  expect(gets.get(path)).toBe(1);
}

describe.skipIf(!cliBuilt)('purges at an edge node with two worker processes (needs dist/)', () => {
  beforeAll(async () => {
    origin = await startTestOrigin({ edgeToken: EDGE_TOKEN, purge: { heartbeat: '1s' } });
    upstream = createServer((req, res) => {
      const path = req.url ?? '';
      gets.set(path, (gets.get(path) ?? 0) + 1);
      const body = bodies.get(path) ?? 'none';
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600', 'surrogate-key': 'shared', 'content-length': String(Buffer.byteLength(body)) }).end(body);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    dir = await mkdtemp(join(tmpdir(), 'anycdn-purge-cluster-'));
    const config = join(dir, 'edge.yaml');
    await writeFile(
      config,
      [
        'listen: 127.0.0.1:0',
        `upstream: http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
        `purgeFrom: ${origin.url}`,
        `edgeToken: ${EDGE_TOKEN}`,
        `adminToken: ${ADMIN_TOKEN}`,
        'pop: lab',
        'node: w1',
        'workers: 2',
        `cacheDir: ${join(dir, 'cache')}`,
        'drain: 1s',
        'accessLog: false',
        '',
      ].join('\n'),
    );
    const proc = startCli(['edge', '--config', config]);
    const line = await proc.waitForLog('edge listening', 30_000);
    url = String(line['url']);
    // The shield has caught up with the (empty) log: the origin counts the node among its edges.
    await until('the purge stream', async () => metricValue((await get(`${url}/_cdn/metrics`)).body, 'anycdn_edge_purge_caught_up', {}) === 1);
  }, 60_000);
  afterAll(async () => {
    await stopAll();
    await new Promise((r) => upstream.close(r));
    await origin.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a purge has left every worker and the shield when the origin has the acknowledgement', async () => {
    bodies.set('/p/a.txt', 'version 1');
    await warm('/p/a.txt');
    bodies.set('/p/a.txt', 'version 2');
    const answer = await postPurge(origin.url, PURGE_TOKEN, { urls: ['/p/a.txt'] }, '?wait=10');
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ complete: true, pending: [], edges: [{ node: 'lab/w1', applied: true }] });
    // No waiting: acknowledged means gone from both workers' memory and from the shield's disk.
    expect(await bodiesSeen('/p/a.txt')).toEqual(['version 2']);
    expect(gets.get('/p/a.txt')).toBe(2);
  });

  it('a tag purge and a soft purge reach every worker', async () => {
    bodies.set('/p/t.txt', 'tagged 1');
    await warm('/p/t.txt');
    bodies.set('/p/t.txt', 'tagged 2');
    expect((await postPurge(origin.url, PURGE_TOKEN, { tags: ['shared'], soft: true }, '?wait=10')).json).toMatchObject({ complete: true });
    // Marked stale everywhere: the next request in each worker revalidates (the upstream has a new body).
    expect(await bodiesSeen('/p/t.txt')).toEqual(['tagged 2']);
  });

  it('an edge-local purge through one worker is applied in the whole node before it answers', async () => {
    bodies.set('/p/local.txt', 'local 1');
    await warm('/p/local.txt');
    bodies.set('/p/local.txt', 'local 2');
    const res = await get(`${url}/_cdn/purge`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ urls: ['/p/local.txt'] }) });
    // Taken from the shield's disk and one copy in each worker's memory.
    expect([res.status, JSON.parse(res.body)]).toEqual([200, { node: 'lab/w1', removed: 1, markedStale: 0 }]);
    expect(await bodiesSeen('/p/local.txt')).toEqual(['local 2']);
  });
});
