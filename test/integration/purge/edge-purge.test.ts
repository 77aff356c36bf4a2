/**
 * Purges end to end with one origin and three edges on loopback, each edge following the origin's
 * purge stream: every kind of purge (a URL with all its variants, a prefix, a tag from
 * Surrogate-Key and from Cache-Groups, everything, soft) takes effect on all three; `?wait`
 * answers with every acknowledgement; an upload of a new version shows at every edge by itself;
 * the edge-local purge endpoint; the edges' purge metrics.
 *
 * The edges' upstream is a relay in front of the origin that adds Cache-Groups to some answers (the
 * origin sends none), so their purge stream comes from `purgeFrom`, not from their upstream.
 */
import sharp from 'sharp';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PurgeCursorFile } from '../../../edge/purge/purge-cursor.js';
import { PERSIST_INTERVAL_MS } from '../../../edge/purge/purge-node.js';
import { metricValue, runningClock, startTestEdge, type TestEdge } from '../../support/edge.js';
import { startTestOrigin, PURGE_TOKEN, type TestOrigin } from '../../support/origin.js';
import { EDGE_TOKEN, postPurge } from '../../support/purge-stream.js';
import { scriptedUpstream, type ScriptedUpstream } from '../../support/scripted-upstream.js';
import { until } from '../../support/until.js';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
const AVIF = 'image/avif,image/webp,*/*';
const WEBP = 'image/webp,*/*';
const HOST = 'cdn.example';

describe('purges at three edges', () => {
  let origin: TestOrigin;
  let relay: ScriptedUpstream;
  const edges: TestEdge[] = [];
  let jpeg: Buffer;

  beforeAll(async () => {
    origin = await startTestOrigin({ edgeToken: EDGE_TOKEN, purge: { heartbeat: '1s' } });
    relay = await scriptedUpstream({ forwardTo: origin.url, addFields: (path) => (path.startsWith('/groups/') ? { 'cache-groups': '"team-a", "shared"' } : undefined) });
    for (let i = 1; i <= 3; i++) {
      edges.push(await startTestEdge(relay.url, { pop: `p${i}`, node: `edge-${i}`, edgeToken: EDGE_TOKEN, purgeFrom: origin.url, adminToken: ADMIN_TOKEN }, { clock: runningClock() }));
    }
    await Promise.all(edges.map((e) => e.owner.purges.subscriber!.caughtUp()));
    jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 30, b: 60 } } }).jpeg().toBuffer();
  });
  afterAll(async () => {
    for (const e of edges) await e.destroy();
    await relay.close();
    await origin.stop();
  });

  const status = (r: { headers: Record<string, string> }) => r.headers['cache-status'];
  const get = (edge: TestEdge, path: string, headers: Record<string, string> = {}) => edge.get(path, { host: HOST, ...headers });

  /** Fetch every target at every edge, and check each is a hit now. */
  async function warm(targets: [string, Record<string, string>?][]): Promise<void> {
    for (const edge of edges) {
      for (const [path, headers] of targets) {
        const first = await get(edge, path, headers);
        expect(first.status, `${path} at ${edge.url}`).toBeLessThan(500);
        expect(status(await get(edge, path, headers)), `${path} at ${edge.url}`).toMatch(/^anycdn; hit/);
      }
    }
  }

  /** Each target at each edge, as Cache-Status says: `hit` or what it went upstream for. */
  async function outcomes(targets: [string, Record<string, string>?][]): Promise<string[]> {
    const out: string[] = [];
    for (const edge of edges) {
      for (const [path, headers] of targets) {
        const s = status(await get(edge, path, headers)) ?? "";
        out.push(/; hit/.test(s) ? 'hit' : /fwd=(\w[\w-]*)/.exec(s)![1]!);
      }
    }
    return out;
  }

  async function purgeAll(body: unknown): Promise<Record<string, unknown>> {
    const answer = await postPurge(origin.url, PURGE_TOKEN, body, '?wait=10');
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ complete: true, pending: [] });
    expect((answer.json['edges'] as { node: string; applied: boolean }[]).map((e) => [e.node, e.applied])).toEqual([
      ['p1/edge-1', true],
      ['p2/edge-2', true],
      ['p3/edge-3', true],
    ]);
    return answer.json;
  }

  it('a URL purge takes every variant at every edge: each Accept class, each coding, each query', async () => {
    await origin.put('photos/cat.jpg', jpeg);
    await origin.put('photos/catalogue.jpg', jpeg);
    await origin.put('site/app.css', `body { color: red; }\n${'/* padding */\n'.repeat(200)}`);
    const variants: [string, Record<string, string>?][] = [
      ['/photos/cat.jpg'],
      ['/photos/cat.jpg?v=3'],
      ['/photos/cat.jpg?w=32'],
      ['/photos/cat.jpg?w=32&fmt=auto', { accept: AVIF }],
      ['/photos/cat.jpg?w=32&fmt=auto', { accept: WEBP }],
      ['/site/app.css', { 'accept-encoding': 'br' }],
      ['/site/app.css', { 'accept-encoding': 'gzip' }],
    ];
    await warm([...variants, ['/photos/catalogue.jpg']]);
    const owner = edges[0]!.owner.store;
    expect(owner.keysUnderPath!('/photos/cat.jpg').length).toBe(5);
    expect(owner.keysUnderPath!('/site/app.css').length).toBe(3); // identity, br and gzip copies
    await purgeAll({ urls: ['/photos/cat.jpg', `https://${HOST}/site/app.css`] });
    for (const edge of edges) {
      expect(edge.owner.store.keysUnderPath!('/photos/cat.jpg')).toEqual([]);
      expect(edge.owner.store.keysUnderPath!('/site/app.css')).toEqual([]);
    }
    // The stylesheet's second coding is served from the copy its first request fetched again.
    const perEdge = ['miss', 'miss', 'miss', 'miss', 'miss', 'miss', 'hit'];
    expect(await outcomes(variants)).toEqual([...perEdge, ...perEdge, ...perEdge]);
    expect(await outcomes([['/photos/catalogue.jpg']])).toEqual(['hit', 'hit', 'hit']);
  });

  it('a URL purge of an absolute URL leaves other hosts', async () => {
    await origin.put('hosts/x.txt', 'x');
    await warm([['/hosts/x.txt'], ['/hosts/x.txt', { host: 'other.example' }]]);
    await purgeAll({ urls: [`http://other.example/hosts/x.txt`] });
    expect(await outcomes([['/hosts/x.txt'], ['/hosts/x.txt', { host: 'other.example' }]])).toEqual(['hit', 'miss', 'hit', 'miss', 'hit', 'miss']);
  });

  it('a prefix purge takes everything under the path, by whole segments', async () => {
    for (const p of ['docs/a.txt', 'docs/deep/b.txt', 'docsx.txt']) await origin.put(p, p);
    const targets: [string][] = [['/docs/a.txt'], ['/docs/deep/b.txt?v=1'], ['/docsx.txt']];
    await warm(targets);
    await purgeAll({ prefixes: ['/docs/'] });
    expect(await outcomes(targets)).toEqual(['miss', 'miss', 'hit', 'miss', 'miss', 'hit', 'miss', 'miss', 'hit']);
  });

  it('a tag purge takes what carried the tag in Surrogate-Key', async () => {
    await origin.put('tags/blue-1.txt', 'b1', { 'surrogate-key': 'blue sky' });
    await origin.put('tags/blue-2.txt', 'b2', { 'surrogate-key': 'blue' });
    await origin.put('tags/red.txt', 'r', { 'surrogate-key': 'red' });
    const targets: [string][] = [['/tags/blue-1.txt'], ['/tags/blue-2.txt?v=2'], ['/tags/red.txt']];
    await warm(targets);
    await purgeAll({ tags: ['blue'] });
    expect(await outcomes(targets)).toEqual(['miss', 'miss', 'hit', 'miss', 'miss', 'hit', 'miss', 'miss', 'hit']);
  });

  it('a tag purge takes what carried the tag in Cache-Groups (RFC 9875)', async () => {
    await origin.put('groups/one.txt', '1');
    await origin.put('plain/two.txt', '2');
    const targets: [string][] = [['/groups/one.txt'], ['/plain/two.txt']];
    await warm(targets);
    await purgeAll({ tags: ['team-a'] });
    expect(await outcomes(targets)).toEqual(['miss', 'hit', 'miss', 'hit', 'miss', 'hit']);
  });

  it('a purge of docs/index.html takes /docs/ and /docs too', async () => {
    await origin.put('guide/index.html', '<h1>guide</h1>');
    const targets: [string][] = [['/guide/'], ['/guide'], ['/guide/index.html']];
    await warm(targets);
    await purgeAll({ urls: ['/guide/index.html'] });
    expect(await outcomes(targets)).toEqual(Array(9).fill('miss'));
  });

  it('a soft purge marks stale: the next request revalidates (304) and the copy is fresh again', async () => {
    await origin.put('soft/s.txt', 'soft body', { 'surrogate-key': 'softly' });
    await warm([['/soft/s.txt']]);
    const before = await Promise.all(edges.map((e) => e.owner.store.get(`${HOST}/soft/s.txt`)));
    expect(before.map((e) => e?.meta.invalidated)).toEqual([undefined, undefined, undefined]);
    await purgeAll({ tags: ['softly'], soft: true });
    const marked = await Promise.all(edges.map((e) => e.owner.store.get(`${HOST}/soft/s.txt`)));
    expect(marked.map((e) => e?.meta.invalidated)).toEqual([true, true, true]);
    for (const edge of edges) {
      const again = await get(edge, '/soft/s.txt');
      expect([again.status, again.body.toString(), status(again)]).toEqual([200, 'soft body', 'anycdn; fwd=stale; fwd-status=304']);
      expect(status(await get(edge, '/soft/s.txt'))).toMatch(/^anycdn; hit/);
    }
  });

  it('all empties every cache', async () => {
    await origin.put('everything/e.txt', 'e');
    await warm([['/everything/e.txt'], ['/docsx.txt']]);
    const answer = await purgeAll({ all: true });
    expect(answer['seq']).toBe(origin.server.purges.log.lastSeq);
    expect(await outcomes([['/everything/e.txt'], ['/docsx.txt']])).toEqual(Array(6).fill('miss'));
    for (const edge of edges) {
      await edge.owner.purges.applier.swept();
      // What was fetched again since is all the cache holds.
      expect(edge.owner.store.keysUnderPath!('').sort()).toEqual([`${HOST}/docsx.txt`, `${HOST}/everything/e.txt`]);
    }
  });

  it('an upload of a new version shows at every edge without an explicit purge', async () => {
    await origin.put('news/today.txt', 'version 1');
    await warm([['/news/today.txt']]);
    const put = await origin.put('news/today.txt', 'version 2');
    expect(put.json['purge']).toMatchObject({ seq: origin.server.purges.log.lastSeq });
    const seq = origin.server.purges.log.lastSeq;
    // The upload answered once the purge was logged; each edge applies it within milliseconds.
    for (const edge of edges) await waitFor(() => edge.owner.purges.node!.cursor.seq >= seq);
    for (const edge of edges) expect((await get(edge, '/news/today.txt')).body.toString()).toBe('version 2');
    // The cursor file follows within PERSIST_INTERVAL_MS (not written once per purge); polled, as a
    // loaded machine runs the persist timer late.
    for (const edge of edges) {
      const file = new PurgeCursorFile(edge.cacheDir);
      await until('the cursor file', async () => {
        const cursor = await file.read();
        return cursor !== undefined && 'seq' in cursor && cursor.seq >= seq;
      }, PERSIST_INTERVAL_MS + 10_000);
      expect(await file.read()).toMatchObject({ seq });
    }
  });

  describe('the edge-local purge', () => {
    async function local(edge: TestEdge, body: string | object, token: string | null = ADMIN_TOKEN, method = 'POST'): Promise<{ status: number; json: Record<string, unknown>; headers: Record<string, unknown> }> {
      const res = await request(`${edge.url}/_cdn/purge`, {
        method: method as 'POST',
        headers: token === null ? {} : { authorization: `Bearer ${token}` },
        body: method === 'POST' ? (typeof body === 'string' ? body : JSON.stringify(body)) : undefined,
      });
      return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown>, headers: res.headers };
    }

    it('applies a purge on that edge alone and answers what it took', async () => {
      await origin.put('local/l.txt', 'l');
      await warm([['/local/l.txt'], ['/local/l.txt?v=1']]);
      const answer = await local(edges[1]!, { urls: ['/local/l.txt'] });
      expect([answer.status, answer.json]).toEqual([200, { node: 'p2/edge-2', removed: 2, markedStale: 0 }]);
      expect(await outcomes([['/local/l.txt']])).toEqual(['hit', 'miss', 'hit']);
      const soft = await local(edges[0]!, { prefixes: ['/local'], soft: true });
      expect(soft.json).toEqual({ node: 'p1/edge-1', removed: 0, markedStale: 2 });
    });

    it.each([
      ['no token', null, '{"all":true}', 'POST', 401, 'unauthorized'],
      ['a wrong token', 'wrong-token-0123456789abcdef', '{"all":true}', 'POST', 403, 'forbidden'],
      ['malformed JSON', ADMIN_TOKEN, '{"urls":', 'POST', 400, 'invalid_json'],
      ['nothing to purge', ADMIN_TOKEN, '{}', 'POST', 400, 'empty_purge'],
      ['a URL that is no URL', ADMIN_TOKEN, '{"urls":["cat.jpg"]}', 'POST', 400, 'invalid_purge'],
      ['an unknown field', ADMIN_TOKEN, '{"url":["/a"]}', 'POST', 400, 'invalid_purge'],
      ['a body over 1 MiB', ADMIN_TOKEN, JSON.stringify({ tags: ['x'.repeat(1024 * 1024)] }), 'POST', 413, 'payload_too_large'],
      ['another method', ADMIN_TOKEN, '', 'GET', 405, 'method_not_allowed'],
    ])('refuses %s', async (_name, token, body, method, code, error) => {
      const answer = await local(edges[2]!, body, token, method);
      expect([answer.status, answer.json['error']]).toEqual([code, error]);
      expect(answer.headers['x-served-by']).toBe('p3/edge-3');
    });

    it('names the field of a bad entry', async () => {
      const answer = await local(edges[2]!, { urls: ['/ok', 'nope'] });
      expect(answer.json).toMatchObject({ error: 'invalid_purge', field: 'urls[1]' });
    });
  });

  it('counts purges received and applied, the lag and the stream on /_cdn/metrics', async () => {
    const res = await request(`${edges[0]!.url}/_cdn/metrics`);
    const text = await res.body.text();
    const head = origin.server.purges.log.lastSeq;
    expect(metricValue(text, 'anycdn_edge_purge_applied_seq', {})).toBe(head);
    expect(metricValue(text, 'anycdn_edge_purge_lag', {})).toBe(0);
    expect(metricValue(text, 'anycdn_edge_purge_lag_seconds', {})).toBe(0);
    expect(metricValue(text, 'anycdn_edge_purge_stream_up', {})).toBe(1);
    expect(metricValue(text, 'anycdn_edge_purge_caught_up', {})).toBe(1);
    expect(metricValue(text, 'anycdn_edge_purge_stream_connections_total', {})).toBe(1);
    expect(metricValue(text, 'anycdn_edge_purges_received_total', {})).toBe(head);
    expect(metricValue(text, 'anycdn_edge_purges_applied_total', { source: 'stream' })).toBe(head);
    expect(metricValue(text, 'anycdn_edge_purges_applied_total', { source: 'local' })).toBe(1);
    expect(metricValue(text, 'anycdn_edge_purge_objects_total', { action: 'removed' })).toBeGreaterThan(10);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
