/**
 * Purges when things break: an edge stopped during a burst of purges and started again serves none
 * of them; an origin restarted in the middle of a stream loses none; a stream that falls silent
 * (a half-open path) is dropped after three heartbeats and resumed; after a start the edge
 * revalidates what its disk holds until it has caught up, and serves it stale (health 200) when
 * upstream does not answer; a log compacted past the edge's cursor makes its whole cache stale.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/log.js';
import { originConfigSchema } from '../../../origin/config.js';
import { startOrigin, type OriginServer } from '../../../origin/server.js';
import { runningClock, startTestEdge, type TestClock, type TestEdge } from '../../support/edge.js';
import { PUBLISH_TOKEN, PURGE_TOKEN } from '../../support/origin.js';
import { EDGE_TOKEN, postPurge } from '../../support/purge-stream.js';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';

const HEARTBEAT_MS = 200;
/** The Host of every request: the cache key holds it, and an edge restarted gets another port. */
const HOST = { host: 'cdn.example' };

/** An origin over a data folder that outlives it, on a port it keeps across restarts. */
class Origin {
  server!: OriginServer;
  port = 0;
  constructor(
    readonly dir: string,
    private readonly purge: Record<string, unknown> = {},
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const config = validateConfig(
      originConfigSchema,
      { listen: `127.0.0.1:${this.port}`, dataDir: join(this.dir, 'data'), publishToken: PUBLISH_TOKEN, purgeToken: PURGE_TOKEN, edgeToken: EDGE_TOKEN, logLevel: 'silent', accessLog: false, purge: { heartbeat: `${HEARTBEAT_MS}ms`, ...this.purge } },
      'test settings',
      {},
    );
    this.server = await startOrigin(config, silentLogger(), { processMetrics: false });
    this.port = Number(new URL(this.server.url).port);
  }

  async stop(): Promise<void> {
    await this.server.close(500);
  }

  async put(path: string, body: string): Promise<void> {
    const res = await request(`${this.url}/_cdn/assets/${path}`, { method: 'PUT', headers: { authorization: `Bearer ${PUBLISH_TOKEN}` }, body });
    await res.body.dump();
    expect(res.statusCode).toBe(201);
  }

  get lastSeq(): number {
    return this.server.purges.log.lastSeq;
  }
}

const status = (r: { headers: Record<string, string> }): string => r.headers['cache-status'] ?? '';
/** `hit`, or what the edge went upstream for (`miss`, `stale`). */
const outcome = (r: { headers: Record<string, string> }): string => (/; hit/.test(status(r)) ? 'hit' : (/fwd=(\w[\w-]*)/.exec(status(r))?.[1] ?? status(r)));

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let dir: string;
let origin: Origin;
const started: TestEdge[] = [];
const proxies: TcpProxy[] = [];

async function edgeAt(overrides: Record<string, unknown> = {}, reuse?: { cacheDir: string; clock: TestClock }): Promise<TestEdge> {
  const edge = await startTestEdge(origin.url, { edgeToken: EDGE_TOKEN, purge: { catchUpTimeout: '300ms' }, ...overrides }, { clock: reuse?.clock ?? runningClock(), cacheDir: reuse?.cacheDir });
  started.push(edge);
  return edge;
}

async function restart(edge: TestEdge, overrides: Record<string, unknown> = {}): Promise<TestEdge> {
  await edge.stop();
  started.splice(started.indexOf(edge), 1);
  // Past the stored objects' times on the running clock, so "stored before the start" is unambiguous.
  await new Promise((r) => setTimeout(r, 5));
  return edgeAt(overrides, { cacheDir: edge.cacheDir, clock: edge.clock });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'anycdn-purge-recovery-'));
});
afterEach(async () => {
  for (const e of started.splice(0)) await e.destroy();
  for (const p of proxies.splice(0)) await p.close();
  await origin.stop().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PATHS = Array.from({ length: 24 }, (_, i) => `/burst/f${i}.txt`);

async function warmAll(edge: TestEdge, paths: string[]): Promise<void> {
  for (const p of paths) {
    await edge.get(p, HOST);
    expect(outcome(await edge.get(p, HOST)), p).toBe('hit');
  }
}

describe('purges when things break', () => {
  it('an edge stopped during a burst of purges and started again serves none of the purged objects', async () => {
    origin = new Origin(dir);
    await origin.start();
    for (const p of PATHS) await origin.put(p.slice(1), `body of ${p}`);
    let edge = await edgeAt();
    await edge.owner.purges.subscriber!.caughtUp();
    await warmAll(edge, PATHS);
    const purged = PATHS.slice(0, 16);
    const kept = PATHS.slice(16);
    // (each upload logged purges of its own)
    const base = origin.lastSeq;
    // Sixteen purges one after another, the edge stopped after the fourth was logged.
    const burst = (async () => {
      // (202 while the edge is connected and has not applied it, 200 once no edge is)
      for (const p of purged) expect([200, 202]).toContain((await postPurge(origin.url, PURGE_TOKEN, { urls: [p] })).status);
    })();
    await waitFor('four purges logged', () => origin.lastSeq >= base + 4);
    await edge.stop();
    const appliedBeforeStop = edge.owner.purges.node!.cursor.seq;
    await burst;
    expect(appliedBeforeStop).toBeLessThan(base + 16);
    edge = await restart(edge);
    await edge.owner.purges.subscriber!.caughtUp();
    expect(edge.owner.purges.node!.cursor.seq).toBe(base + 16);
    for (const p of purged) expect(edge.owner.store.keysUnderPath!(p), p).toEqual([]);
    expect((await Promise.all(purged.map((p) => edge.get(p, HOST)))).map(outcome)).toEqual(purged.map(() => 'miss'));
    expect((await Promise.all(kept.map((p) => edge.get(p, HOST)))).map(outcome)).toEqual(kept.map(() => 'hit'));
  });

  it('an origin restarted in the middle of a stream loses no purge', async () => {
    origin = new Origin(dir);
    await origin.start();
    for (const p of PATHS) await origin.put(p.slice(1), `body of ${p}`);
    const edges = [await edgeAt({ node: 'edge-1' }), await edgeAt({ node: 'edge-2' })];
    await Promise.all(edges.map((e) => e.owner.purges.subscriber!.caughtUp()));
    for (const e of edges) await warmAll(e, PATHS);
    const base = origin.lastSeq;
    const before = PATHS.slice(0, 8);
    const after = PATHS.slice(8, 16);
    await Promise.all(before.map((p) => postPurge(origin.url, PURGE_TOKEN, { urls: [p] })));
    const logged = origin.lastSeq;
    // Stopped as soon as the purges are logged: the edges may not have read them all yet.
    await origin.stop();
    await origin.start();
    expect(origin.lastSeq).toBe(logged);
    for (const p of after) await postPurge(origin.url, PURGE_TOKEN, { urls: [p] });
    const head = origin.lastSeq;
    expect(head).toBe(base + 16);
    for (const e of edges) await waitFor('the edge applied every purge', () => e.owner.purges.node!.cursor.seq === head);
    for (const e of edges) {
      expect(PATHS.slice(0, 16).flatMap((p) => e.owner.store.keysUnderPath!(p))).toEqual([]);
      expect((await Promise.all(PATHS.slice(16).map((p) => e.get(p, HOST)))).map(outcome)).toEqual(PATHS.slice(16).map(() => 'hit'));
      // One stream ended with the origin; the next one resumed from the edge's cursor.
      expect(e.owner.purges.subscriber!.status()).toMatchObject({ connected: true, caughtUp: true, appliedSeq: head, headSeq: head });
    }
  });

  it('a stream that falls silent (half-open) is dropped after three heartbeats and resumed', async () => {
    origin = new Origin(dir);
    await origin.start();
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: origin.port });
    proxies.push(proxy);
    await origin.put('half/a.txt', 'a');
    const edge = await edgeAt({ purgeFrom: proxy.url });
    await edge.owner.purges.subscriber!.caughtUp();
    await warmAll(edge, ['/half/a.txt']);
    const connections = proxy.accepted;
    const base = origin.lastSeq;
    // Nothing passes any more on the connections open now (the stream, and the acknowledgements'):
    // no FIN, no RST. A purge logged meanwhile cannot arrive on the old stream.
    proxy.freeze();
    const frozenAt = performance.now();
    expect((await postPurge(origin.url, PURGE_TOKEN, { urls: ['/half/a.txt'] })).status).toBe(202);
    await waitFor('the purge applied over a new stream', () => edge.owner.purges.node!.cursor.seq === base + 1, 5_000);
    const reconnectedAfter = proxy.acceptedAt[connections]! - frozenAt;
    // Three heartbeats of silence, then the first backoff (125 to 250 ms).
    expect(reconnectedAfter).toBeGreaterThanOrEqual(3 * HEARTBEAT_MS);
    expect(reconnectedAfter).toBeLessThan(3 * HEARTBEAT_MS + 250 + 400);
    expect(edge.owner.store.keysUnderPath!('/half/a.txt')).toEqual([]);
    // The acknowledgements' connection went silent too: they go over a new one, without waiting out
    // the old one (10 s, the subscriber's default timeout); 5 s leaves a loaded machine room.
    await waitFor('the origin has the acknowledgement', () => origin.server.purges.edges.applied(base + 1)[0]?.applied === true, 5_000);
    const metrics = await (await request(`${edge.url}/_cdn/metrics`)).body.text();
    expect(metrics).toMatch(/anycdn_edge_purge_stream_failures_total\{reason="silent"\} 1/);
    expect(metrics).toMatch(/anycdn_edge_purge_stream_reconnects_total 1/);
  });

  it('after a start, stored objects are revalidated until the edge has caught up', async () => {
    origin = new Origin(dir);
    await origin.start();
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: origin.port });
    proxies.push(proxy);
    await origin.put('start/a.txt', 'a');
    let edge = await edgeAt({ purgeFrom: proxy.url });
    await edge.owner.purges.subscriber!.caughtUp();
    await warmAll(edge, ['/start/a.txt']);
    // The purge stream cannot be had after the restart: the edge stays behind the log.
    proxy.holdNew(true);
    edge = await restart(edge, { purgeFrom: proxy.url });
    expect(edge.owner.purges.node!.isCaughtUp).toBe(false);
    const first = await edge.get('/start/a.txt', HOST);
    expect([first.status, first.body.toString(), status(first)]).toEqual([200, 'a', 'anycdn; fwd=stale; fwd-status=304']);
    // Revalidated now, so stored after the start: a hit, though still not caught up.
    expect(outcome(await edge.get('/start/a.txt', HOST))).toBe('hit');
  });

  it('after a start with upstream unreachable, stored objects are served stale and health stays 200', async () => {
    origin = new Origin(dir);
    await origin.start();
    await origin.put('down/a.txt', 'a');
    await origin.put('down/b.txt', 'b');
    let edge = await edgeAt();
    await edge.owner.purges.subscriber!.caughtUp();
    await warmAll(edge, ['/down/a.txt', '/down/b.txt']);
    await origin.stop();
    edge = await restart(edge);
    expect(edge.owner.purges.node!.isCaughtUp).toBe(false);
    const res = await edge.get('/down/a.txt', HOST);
    expect([res.status, res.body.toString()]).toEqual([200, 'a']);
    expect(status(res)).toMatch(/^anycdn; fwd=stale; detail=stale-if-error/);
    const health = await request(`${edge.url}/_cdn/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
  });

  it('after a start with upstream silent, a stored object is served stale once purge.catchUpTimeout has passed', async () => {
    origin = new Origin(dir);
    await origin.start();
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: origin.port });
    proxies.push(proxy);
    await origin.put('slow/a.txt', 'a');
    let edge = await startTestEdge(proxy.url, { edgeToken: EDGE_TOKEN, purgeFrom: origin.url, purge: { catchUpTimeout: '300ms' } }, { clock: runningClock() });
    started.push(edge);
    await edge.owner.purges.subscriber!.caughtUp();
    await warmAll(edge, ['/slow/a.txt']);
    // Upstream takes connections and never answers; the purge stream is down too.
    proxy.holdNew(true);
    await origin.stop();
    await edge.stop();
    started.splice(started.indexOf(edge), 1);
    edge = await startTestEdge(proxy.url, { edgeToken: EDGE_TOKEN, purgeFrom: origin.url, purge: { catchUpTimeout: '300ms' } }, { clock: edge.clock, cacheDir: edge.cacheDir });
    started.push(edge);
    // (asked directly: the edge's get() would wait for the fetch that goes on behind the answer)
    const t0 = performance.now();
    const res = await request(`${edge.url}/slow/a.txt`, { headers: HOST });
    const body = await res.body.text();
    const took = performance.now() - t0;
    expect([res.statusCode, body]).toEqual([200, 'a']);
    expect(String(res.headers['cache-status'])).toMatch(/^anycdn; fwd=stale; detail=stale-if-error/);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2_000);
    // The fetch behind it ends with the connection, not with the upstream timeout.
    await proxy.close();
    proxies.splice(proxies.indexOf(proxy), 1);
  });

  it('a log compacted past the cursor makes the whole disk cache stale', async () => {
    origin = new Origin(dir, { retainEntries: 4 });
    await origin.start();
    for (const p of ['keep/a.txt', 'keep/b.txt']) await origin.put(p, p);
    let edge = await edgeAt();
    await edge.owner.purges.subscriber!.caughtUp();
    await warmAll(edge, ['/keep/a.txt', '/keep/b.txt']);
    await edge.stop();
    const base = origin.lastSeq;
    // Ten purges of other things while the edge is down: the log keeps only the newest few.
    for (let i = 0; i < 10; i++) await postPurge(origin.url, PURGE_TOKEN, { urls: [`/elsewhere/${i}.txt`] });
    expect(origin.server.purges.log.firstSeq).toBeGreaterThan(1);
    started.splice(started.indexOf(edge), 1);
    edge = await edgeAt({}, { cacheDir: edge.cacheDir, clock: edge.clock });
    await edge.owner.purges.subscriber!.caughtUp();
    expect(edge.owner.purges.node!.cursor.seq).toBe(base + 10);
    // Caught up, yet what the disk held is revalidated: purges it may have missed are gone from the log.
    for (const p of ['/keep/a.txt', '/keep/b.txt']) {
      const res = await edge.get(p, HOST);
      expect([res.body.toString(), status(res)]).toEqual([p.slice(1), 'anycdn; fwd=stale; fwd-status=304']);
      expect(outcome(await edge.get(p, HOST))).toBe('hit');
    }
    expect(edge.owner.purges.node!.watermarks().staleBefore).toBeGreaterThan(0);
  });
});
