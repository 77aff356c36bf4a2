/**
 * Uploads and deletes that purge, against a real origin: a new or changed asset logs a purge of
 * what it made stale (seen on the purge stream), an identical upload changes nothing, a delete
 * purges; the listing that sync uploads rely on; and the purge metrics.
 */
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PUBLISH_TOKEN, PURGE_TOKEN, startTestOrigin, type TestOrigin } from '../../support/origin.js';
import { EDGE_TOKEN, postPurge, startFakeEdge, type FakeEdge } from '../../support/purge-stream.js';

let origin: TestOrigin;
let edge: FakeEdge;
beforeAll(async () => {
  origin = await startTestOrigin({ edgeToken: EDGE_TOKEN });
});
afterAll(async () => {
  await origin.stop();
});
afterEach(() => edge?.close());

const auth = { authorization: `Bearer ${PUBLISH_TOKEN}` };

async function del(path: string): Promise<{ status: number; purgeId: string | undefined }> {
  const res = await request(`${origin.url}/_cdn/assets/${path}`, { method: 'DELETE', headers: auth });
  await res.body.dump();
  return { status: res.statusCode, purgeId: res.headers['x-purge-id'] as string | undefined };
}

/** The purge event with this sequence number, as the fake edge read it. */
async function streamed(seq: unknown): Promise<Record<string, unknown>> {
  const e = await edge.stream.next((x) => x.event === 'purge' && x.json['seq'] === seq);
  const { time: _time, id: _id, seq: _seq, ...rest } = e.json;
  return rest;
}

const urls = (...paths: string[]): { path: string }[] => paths.map((path) => ({ path }));

describe('uploads and deletes purge what they change', () => {
  it('a new asset purges its URL (a cached 404 of it), and the purge is named in the answer', async () => {
    edge = await startFakeEdge(origin.url, 'ams/e1', { after: origin.server.purges.log.lastSeq });
    const put = await origin.put('photos/new cat.jpg', 'meow');
    expect(put.status).toBe(201);
    const purge = put.json['purge'] as { id: string; seq: number };
    expect(put.json['unchanged']).toBe(false);
    expect(purge).toEqual({ id: `${origin.server.purges.log.id}-${purge.seq}`, seq: origin.server.purges.log.lastSeq });
    expect(await streamed(purge.seq)).toEqual({ source: 'upload', soft: false, all: false, urls: urls('/photos/new%20cat.jpg'), prefixes: [], tags: [] });
  });

  it('an identical upload is 200 "unchanged": no new version, no purge', async () => {
    const first = await origin.put('same/a.css', 'body{}', { 'cache-control': 'public, max-age=60', 'surrogate-key': 'css site' });
    await new Promise((r) => setTimeout(r, 1100)); // a new version would have a later Last-Modified
    const last = origin.server.purges.log.lastSeq;
    const again = await origin.put('same/a.css', 'body{}', { 'cache-control': 'public, max-age=60', 'surrogate-key': 'css site' });
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ ...first.json, unchanged: true, purge: null });
    expect(origin.server.purges.log.lastSeq).toBe(last);
  });

  it.each([
    ['new bytes', 'body{color:red}', { 'cache-control': 'public, max-age=60', 'surrogate-key': 'css site' }],
    ['another Cache-Control', 'body{}', { 'cache-control': 'public, max-age=61', 'surrogate-key': 'css site' }],
    ['other tags', 'body{}', { 'cache-control': 'public, max-age=60', 'surrogate-key': 'css' }],
  ])('a replaced asset (%s) purges its URL', async (_name, body, headers) => {
    await origin.put('changed/a.css', 'body{}', { 'cache-control': 'public, max-age=60', 'surrogate-key': 'css site' });
    edge = await startFakeEdge(origin.url, 'ams/e1', { after: origin.server.purges.log.lastSeq });
    const put = await origin.put('changed/a.css', body, headers);
    expect([put.status, put.json['unchanged']]).toEqual([200, false]);
    expect(await streamed((put.json['purge'] as { seq: number }).seq)).toEqual({ source: 'upload', soft: false, all: false, urls: urls('/changed/a.css'), prefixes: [], tags: [] });
  });

  it("a folder's index purges the folder's URLs too", async () => {
    edge = await startFakeEdge(origin.url, 'ams/e1', { after: origin.server.purges.log.lastSeq });
    const docs = await origin.put('docs/index.html', '<p>docs');
    expect((await streamed((docs.json['purge'] as { seq: number }).seq))['urls']).toEqual(urls('/docs/index.html', '/docs/', '/docs'));
    const root = await origin.put('index.html', '<p>home');
    expect((await streamed((root.json['purge'] as { seq: number }).seq))['urls']).toEqual(urls('/index.html', '/'));
  });

  it('the 404 page purges every cached 404 by their tag, when uploaded and when deleted', async () => {
    edge = await startFakeEdge(origin.url, 'ams/e1', { after: origin.server.purges.log.lastSeq });
    const missing = await request(`${origin.url}/not/here.png?w=100`);
    expect(missing.headers['surrogate-key']).toBe('anycdn:404');
    await missing.body.dump();
    const page = await origin.put('404.html', '<p>lost');
    expect(await streamed((page.json['purge'] as { seq: number }).seq)).toEqual({ source: 'upload', soft: false, all: false, urls: urls('/404.html'), prefixes: [], tags: ['anycdn:404'] });
    const deleted = await del('404.html');
    expect(deleted.status).toBe(204);
    const seq = Number(deleted.purgeId!.split('-')[1]);
    expect(await streamed(seq)).toEqual({ source: 'delete', soft: false, all: false, urls: urls('/404.html'), prefixes: [], tags: ['anycdn:404'] });
  });

  it('a delete purges the URL and names the purge in X-Purge-Id; deleting nothing purges nothing', async () => {
    await origin.put('gone/a.jpg', 'x');
    edge = await startFakeEdge(origin.url, 'ams/e1', { after: origin.server.purges.log.lastSeq });
    const deleted = await del('gone/a.jpg');
    expect(deleted.status).toBe(204);
    expect(deleted.purgeId).toBe(`${origin.server.purges.log.id}-${origin.server.purges.log.lastSeq}`);
    expect(await streamed(origin.server.purges.log.lastSeq)).toEqual({ source: 'delete', soft: false, all: false, urls: urls('/gone/a.jpg'), prefixes: [], tags: [] });
    const last = origin.server.purges.log.lastSeq;
    expect(await del('gone/a.jpg')).toEqual({ status: 404, purgeId: undefined });
    expect(origin.server.purges.log.lastSeq).toBe(last);
  });

  it('a refused upload purges nothing', async () => {
    await origin.put('kept/a.txt', 'v1');
    const last = origin.server.purges.log.lastSeq;
    expect((await origin.put('kept/a.txt', 'v2', { 'if-match': '"nope"' })).status).toBe(412);
    expect((await origin.put('kept/a.txt', 'v2', { 'cache-control': 'max-age=soon' })).status).toBe(400);
    expect(origin.server.purges.log.lastSeq).toBe(last);
  });
});

/**
 * The purge log's disk failing (full, EIO) after the store switched: the log's append is made to
 * fail the way its write does (a CdnError for an ENOSPC), since a real full disk cannot be had
 * inside a test; everything else is the real origin.
 */
describe('a change whose purge cannot be logged', () => {
  function failAppends(): () => void {
    const log = origin.server.purges.log;
    const append = log.append.bind(log);
    log.append = () => Promise.reject(Object.assign(new Error('purge log: append failed (ENOSPC)'), { code: 'ENOSPC' }));
    return () => void (log.append = append);
  }
  async function owedMetric(): Promise<number> {
    const res = await request(`${origin.url}/_cdn/metrics`);
    const text = await res.body.text();
    return Number(/^anycdn_origin_purges_owed (\d+)$/m.exec(text)![1]);
  }

  it('a new version is stored and answered 503 naming the missing purge; repeating the upload logs it', async () => {
    await origin.put('owed/a.css', 'v1');
    const heal = failAppends();
    const put = await origin.put('owed/a.css', 'v2');
    heal();
    expect(put.status).toBe(503);
    expect(put.json['error']).toBe('purge_not_logged');
    expect(put.json['message']).toContain('owed/a.css is stored');
    const served = await request(`${origin.url}/owed/a.css`);
    expect(await served.body.text()).toBe('v2');
    expect(await owedMetric()).toBe(1);

    edge = await startFakeEdge(origin.url, 'ams/e1', { after: origin.server.purges.log.lastSeq });
    const again = await origin.put('owed/a.css', 'v2');
    expect([again.status, again.json['unchanged']]).toEqual([200, true]);
    const purge = again.json['purge'] as { id: string; seq: number };
    expect(purge.seq).toBe(origin.server.purges.log.lastSeq);
    expect(await streamed(purge.seq)).toEqual({ source: 'upload', soft: false, all: false, urls: urls('/owed/a.css'), prefixes: [], tags: [] });
    expect(await owedMetric()).toBe(0);
    // Paid: the next identical upload is a no-op again.
    const third = await origin.put('owed/a.css', 'v2');
    expect([third.status, third.json['purge']]).toEqual([200, null]);
  });

  it('the 503 carries Retry-After', async () => {
    const heal = failAppends();
    const res = await request(`${origin.url}/_cdn/assets/owed/b.css`, { method: 'PUT', headers: auth, body: 'b' });
    heal();
    await res.body.dump();
    expect([res.statusCode, res.headers['retry-after']]).toEqual([503, '5']);
    expect((await origin.put('owed/b.css', 'b')).json['purge']).not.toBeNull();
  });

  it('a delete is done and answered 503; repeating it logs the purge (204), once', async () => {
    await origin.put('owed/gone.jpg', 'x');
    const heal = failAppends();
    const first = await del('owed/gone.jpg');
    heal();
    expect(first).toEqual({ status: 503, purgeId: undefined });
    expect((await request(`${origin.url}/owed/gone.jpg`)).statusCode).toBe(404);
    edge = await startFakeEdge(origin.url, 'ams/e1', { after: origin.server.purges.log.lastSeq });
    const again = await del('owed/gone.jpg');
    expect(again.status).toBe(204);
    expect(await streamed(Number(again.purgeId!.split('-')[1]))).toEqual({ source: 'delete', soft: false, all: false, urls: urls('/owed/gone.jpg'), prefixes: [], tags: [] });
    expect((await del('owed/gone.jpg')).status).toBe(404);
  });
});

describe('GET /_cdn/assets (listing)', () => {
  async function list(query: string, token = PUBLISH_TOKEN): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await request(`${origin.url}/_cdn/assets${query}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  }
  const paths = (json: Record<string, unknown>): string[] => (json['assets'] as { path: string }[]).map((a) => a.path);

  it('lists what is stored under a prefix, in path order, a page at a time', async () => {
    for (const p of ['site/b.css', 'site/a/x.js', 'site/a.html', 'site/c/d/e.txt', 'sitemap.xml']) await origin.put(p, `content of ${p}`, { 'surrogate-key': 'v1' });
    const one = await list('?prefix=site/&limit=2');
    expect(one.status).toBe(200);
    expect([paths(one.json), one.json['next']]).toEqual([['site/a/x.js', 'site/a.html'], 'site/a.html']);
    const two = await list('?prefix=site/&limit=2&after=site/a.html');
    // The last page says so, even when it is full.
    expect([paths(two.json), two.json['next']]).toEqual([['site/b.css', 'site/c/d/e.txt'], null]);
    const three = await list('?prefix=/site/&limit=2&after=site/b.css');
    expect([paths(three.json), three.json['next']]).toEqual([['site/c/d/e.txt'], null]);
    expect(paths((await list('?prefix=site')).json)).toEqual(['site/a/x.js', 'site/a.html', 'site/b.css', 'site/c/d/e.txt', 'sitemap.xml']);
    const asset = (one.json['assets'] as Record<string, unknown>[])[0]!;
    const head = await request(`${origin.url}/site/a/x.js`);
    await head.body.dump();
    expect(asset).toEqual({
      path: 'site/a/x.js',
      size: 'content of site/a/x.js'.length,
      contentType: 'text/javascript; charset=utf-8',
      etag: head.headers['etag'],
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      lastModified: new Date(String(head.headers['last-modified'])).toISOString(),
      cacheControl: null,
      tags: ['v1'],
    });
  });

  it.each([
    ['?limit=0', { error: 'invalid_param', message: 'limit must be an integer from 1 to 10000, got "0"', field: 'limit' }],
    ['?limit=10001', { error: 'invalid_param', message: 'limit must be an integer from 1 to 10000, got "10001"', field: 'limit' }],
    ['?limit=ten', { error: 'invalid_param', message: 'limit must be an integer from 1 to 10000, got "ten"', field: 'limit' }],
    ['?prefix=../x', { error: 'invalid_param', message: "prefix: invalid asset path: '..' segments are not allowed", field: 'prefix' }],
    ['?after=a//b', { error: 'invalid_param', message: 'after: invalid asset path: empty segments are not allowed', field: 'after' }],
  ])('refuses %s with a 400 naming it', async (query, body) => {
    expect(await list(query)).toEqual({ status: 400, json: body });
  });

  it('needs the publish token', async () => {
    expect((await list('', PURGE_TOKEN)).status).toBe(403);
    const none = await request(`${origin.url}/_cdn/assets`);
    expect(none.statusCode).toBe(401);
    await none.body.dump();
  });
});

describe('purge metrics', () => {
  it('count purges by source, and say per edge how far it applied the log and how far behind it is', async () => {
    const log = origin.server.purges.log;
    await postPurge(origin.url, PURGE_TOKEN, { tags: ['m'] });
    edge = await startFakeEdge(origin.url, 'ams/metrics', { after: log.lastSeq - 1, acking: false });
    await origin.put('metrics/a.txt', `m ${Date.now()}`);
    const res = await request(`${origin.url}/_cdn/metrics`);
    const text = await res.body.text();
    const value = (line: string): number => Number(new RegExp(`^${line.replace(/[{}"/]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('anycdn_origin_purge_log_last_seq')).toBe(log.lastSeq);
    expect(value('anycdn_origin_purge_log_first_seq')).toBe(1);
    expect(value('anycdn_origin_purges_appended_total{source="api"}')).toBeGreaterThanOrEqual(1);
    expect(value('anycdn_origin_purges_appended_total{source="upload"}')).toBeGreaterThanOrEqual(8);
    expect(value('anycdn_origin_purges_appended_total{source="delete"}')).toBeGreaterThanOrEqual(2);
    expect(value('anycdn_origin_purge_edges_live')).toBe(1);
    expect(value('anycdn_origin_purge_streams_open')).toBe(1);
    expect(value('anycdn_origin_purge_edge_live{node="ams/metrics"}')).toBe(1);
    expect(value('anycdn_origin_purge_edge_acked_seq{node="ams/metrics"}')).toBe(log.lastSeq - 2);
    expect(value('anycdn_origin_purge_edge_lag{node="ams/metrics"}')).toBe(2);
    expect(value('anycdn_origin_purge_edge_lag_seconds{node="ams/metrics"}')).toBeGreaterThan(0);
    expect(value('anycdn_origin_purge_edge_connections_total{node="ams/metrics"}')).toBeGreaterThanOrEqual(1);
    expect(value('anycdn_origin_purge_stream_connections_total')).toBeGreaterThanOrEqual(8);
  });
});
