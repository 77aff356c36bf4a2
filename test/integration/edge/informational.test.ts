/**
 * Informational responses (RFC 9110 §15.2): a 103 Early Hints from upstream reaches the client
 * whose request started the fetch as it arrives, before the final answer — through a single
 * process and through a node's shield (`workers: 2`) — and never an HTTP/1.0 client, a follower,
 * a later hit, or the final response's fields.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEdge, type TestEdge } from '../../support/edge.js';
import { cliBuilt, startCli, stopAll } from '../../support/process.js';
import { RawClient, type RawResponse } from '../../support/raw-client.js';

const HINTS = { link: '</style.css>; rel=preload; as=style', 'x-hint': 'early' };
const counts = new Map<string, number>();
/** Final answers held back until the test releases them, by path. */
const held = new Map<string, () => void>();
let upstream: Server;
let edge: TestEdge;
let dir: string;
const clients: RawClient[] = [];

function finalAnswer(res: ServerResponse, cacheControl: string): void {
  const body = 'hinted body';
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length), 'cache-control': cacheControl });
  res.end(body);
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const path = req.url ?? '/';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    res.writeEarlyHints(HINTS);
    const cacheControl = path.startsWith('/private') ? 'private' : 'public, max-age=600';
    if (path.startsWith('/held')) held.set(path, () => finalAnswer(res, cacheControl));
    else setTimeout(() => finalAnswer(res, cacheControl), 30);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  edge = await startTestEdge(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
  dir = await mkdtemp(join(tmpdir(), 'anycdn-informational-'));
});

afterAll(async () => {
  for (const c of clients) c.socket.destroy();
  await stopAll();
  await edge.destroy();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  await rm(dir, { recursive: true, force: true });
});

function client(url: string): RawClient {
  const c = new RawClient(Number(new URL(url).port));
  clients.push(c);
  return c;
}

function get(path: string, version = '1.1'): string {
  return `GET ${path} HTTP/${version}\r\nHost: cdn.test\r\n\r\n`;
}

function expectHints(r: RawResponse): void {
  expect(r.status).toBe(103);
  expect(r.head.split('\r\n')[0]).toBe('HTTP/1.1 103 Early Hints');
  expect(r.fields['link']).toBe(HINTS.link);
  expect(r.fields['x-hint']).toBe('early');
}

function expectFinal(r: RawResponse): void {
  expect(r.status).toBe(200);
  expect(r.body.toString()).toBe('hinted body');
  // The hints' fields stay in the 103.
  expect(r.fields['link']).toBeUndefined();
  expect(r.fields['x-hint']).toBeUndefined();
}

describe('informational responses from upstream', () => {
  it('are forwarded to the client whose request fetched, before the answer, and not on a later hit', async () => {
    const c = client(edge.url);
    c.write(get('/page.css'));
    expectHints(await c.response());
    const final = await c.response();
    expectFinal(final);
    expect(final.fields['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    await edge.server.pipeline.settled();
    c.write(get('/page.css'));
    const hit = await c.response();
    expectFinal(hit);
    expect(hit.fields['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
    expect(counts.get('/page.css')).toBe(1);
  });

  it('are forwarded for an uncacheable answer relayed as it comes', async () => {
    const c = client(edge.url);
    c.write(get('/private.css'));
    expectHints(await c.response());
    const final = await c.response();
    expectFinal(final);
    expect(final.fields['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; detail=private');
    // Known as uncacheable now, it is passed straight through: the hints still come first.
    c.write(get('/private.css'));
    expectHints(await c.response());
    const passed = await c.response();
    expectFinal(passed);
    expect(passed.fields['cache-status']).toBe('anycdn; fwd=uri-miss; fwd-status=200; detail=hit-for-miss');
    expect(counts.get('/private.css')).toBe(2);
  });

  it('are never sent to an HTTP/1.0 client', async () => {
    const c = client(edge.url);
    c.write(get('/old-client.css', '1.0'));
    const first = await c.response();
    expect(first.head.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expectFinal(first);
    expect(counts.get('/old-client.css')).toBe(1);
  });

  it('go to the leader alone: a request that waited on its fetch gets the final answer only', async () => {
    const leader = client(edge.url);
    const follower = client(edge.url);
    leader.write(get('/held/shared.css'));
    expectHints(await leader.response());
    follower.write(get('/held/shared.css'));
    // The follower has joined the flight once the edge counts it as coalesced.
    const coalesced = async (): Promise<number> => (await edge.server.metrics.coalesced.get()).values.reduce((n, v) => n + v.value, 0);
    const before = await coalesced();
    for (let i = 0; i < 300 && (await coalesced()) === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await coalesced()).toBe(before + 1);
    held.get('/held/shared.css')!();
    expectFinal(await leader.response());
    const answer = await follower.response();
    expectFinal(answer);
    expect(answer.fields['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored; collapsed');
    expect(counts.get('/held/shared.css')).toBe(1);
  });

  it.skipIf(!cliBuilt)('pass through a node with two worker processes (its shield and a worker)', async () => {
    const config = join(dir, 'edge.yaml');
    await writeFile(config, `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:${(upstream.address() as AddressInfo).port}\npop: lab\nnode: n1\nworkers: 2\ncacheDir: ${join(dir, 'cache')}\ndrain: 0s\n`);
    const proc = startCli(['edge', '--config', config]);
    const line = await proc.waitForLog('edge listening', 30_000);
    const c = client(String(line['url']));
    c.write(get('/through-shield.css'));
    expectHints(await c.response());
    const final = await c.response();
    expectFinal(final);
    expect(final.fields['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
  });
});
