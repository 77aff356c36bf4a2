import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { PUBLISH_TOKEN, startTestOrigin, type TestOrigin } from '../../support/origin.js';
import { startTestEdge, testClock, type TestEdge, type TestResponse } from '../../support/edge.js';

let origin: TestOrigin;
let edge: TestEdge;

beforeAll(async () => {
  // One clock for both, as if their system clocks agreed.
  const clock = testClock();
  origin = await startTestOrigin({}, clock.now);
  edge = await startTestEdge(origin.url, {}, { clock });
});
afterAll(async () => {
  await edge.destroy();
  await origin.stop();
});

async function get(path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<TestResponse> {
  const res = await request(`${origin.url}${path}`, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers as Record<string, string>, body };
}

async function remove(path: string): Promise<void> {
  const res = await request(`${origin.url}/_cdn/assets/${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${PUBLISH_TOKEN}` } });
  expect(res.statusCode).toBe(204);
  await res.body.dump();
}

const ROOT_PAGE = '<!doctype html><title>home</title><p>root';
const DOCS_PAGE = '<!doctype html><title>docs</title><p>the docs index';
const NOT_FOUND_PAGE = '<!doctype html><title>not here</title><p>Nothing at this address.';

describe('index documents at the origin', () => {
  it('serves / and /docs/ with their index.html: the same headers and bytes as the file at its own URL', async () => {
    expect((await origin.put('index.html', ROOT_PAGE)).status).toBe(201);
    expect((await origin.put('docs/index.html', DOCS_PAGE, { 'cache-control': 'public, max-age=600', 'surrogate-key': 'docs-v1' })).status).toBe(201);

    const root = await get('/');
    expect(root.status).toBe(200);
    expect(root.body.toString()).toBe(ROOT_PAGE);
    const rootFile = await get('/index.html');
    expect(root.headers).toEqual(rootFile.headers);
    expect(root.headers).toMatchObject({
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(ROOT_PAGE.length),
      'cache-control': 'public, max-age=3600',
      'surrogate-key': '/index.html',
      'accept-ranges': 'bytes',
      'x-content-type-options': 'nosniff',
    });
    expect(root.headers['etag']).toMatch(/^"[0-9a-f]{32}"$/);

    const docs = await get('/docs/');
    expect(docs.status).toBe(200);
    expect(docs.body.toString()).toBe(DOCS_PAGE);
    const docsFile = await get('/docs/index.html');
    expect(docsFile.body.toString()).toBe(DOCS_PAGE);
    expect(docs.headers).toEqual(docsFile.headers);
    // The index file's path tag and its own tags: a purge of either covers /docs/.
    expect(docs.headers['surrogate-key']).toBe('/docs/index.html docs-v1');
    expect(docs.headers['cache-control']).toBe('public, max-age=600');

    // A cache buster is not an image parameter: still the index.
    const busted = await get('/docs/?v=3');
    expect([busted.status, busted.body.toString()]).toEqual([200, DOCS_PAGE]);

    const head = await get('/docs/', {}, 'HEAD');
    expect([head.status, head.body.length, head.headers['content-length'], head.headers['etag']]).toEqual([200, 0, String(DOCS_PAGE.length), docs.headers['etag']]);
    expect(head.headers).toEqual((await get('/docs/index.html', {}, 'HEAD')).headers);
  });

  it('answers conditional and range requests on an index like on the file (304, 412, 206, 416)', async () => {
    const { headers } = await get('/docs/');
    const etag = headers['etag']!;
    const lastModified = headers['last-modified']!;

    const notModified = await get('/docs/', { 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    expect(notModified.headers).toMatchObject({ etag, 'last-modified': lastModified, 'cache-control': 'public, max-age=600', 'surrogate-key': '/docs/index.html docs-v1' });
    expect(notModified.headers['content-type']).toBeUndefined();
    expect((await get('/', { 'if-modified-since': lastModified })).status).toBe(304);
    expect((await get('/docs/', { 'if-none-match': '"other"' })).status).toBe(200);

    const failed = await get('/docs/', { 'if-match': '"other"' });
    expect([failed.status, failed.headers['content-length'], failed.body.length]).toEqual([412, '0', 0]);

    const partial = await get('/docs/', { range: 'bytes=0-8' });
    expect(partial.status).toBe(206);
    expect(partial.body.toString()).toBe('<!doctype');
    expect(partial.headers['content-range']).toBe(`bytes 0-8/${DOCS_PAGE.length}`);
    const unsatisfiable = await get('/docs/', { range: 'bytes=5000-' });
    expect([unsatisfiable.status, unsatisfiable.headers['content-range']]).toEqual([416, `bytes */${DOCS_PAGE.length}`]);
  });

  it('redirects /docs to /docs/ when only the index exists: 301, query kept, cacheable and tagged like the index', async () => {
    const moved = await get('/docs');
    expect(moved.status).toBe(301);
    expect(moved.headers['location']).toBe('/docs/');
    expect(moved.headers['cache-control']).toBe('public, max-age=600');
    expect(moved.headers['surrogate-key']).toBe('/docs/index.html docs-v1');
    expect(moved.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(moved.body.toString()).toBe('<a href="/docs/">/docs/</a>\n');
    expect(moved.headers['content-length']).toBe(String(moved.body.length));
    expect(moved.headers['etag']).toBeUndefined();

    const withQuery = await get('/docs?x=1&y=a%26b');
    expect(withQuery.status).toBe(301);
    expect(withQuery.headers['location']).toBe('/docs/?x=1&y=a%26b');
    expect(withQuery.body.toString()).toBe('<a href="/docs/?x=1&amp;y=a%26b">/docs/?x=1&amp;y=a%26b</a>\n');

    const head = await get('/docs', {}, 'HEAD');
    expect([head.status, head.headers['location'], head.headers['content-length'], head.body.length]).toEqual([301, '/docs/', String(moved.body.length), 0]);
    // A redirect has no validators: a conditional request gets the redirect.
    expect((await get('/docs', { 'if-none-match': '*' })).status).toBe(301);

    // Without an index, a folder name is a missing asset.
    const nothing = await get('/nothing');
    expect(nothing.status).toBe(404);
    expect(JSON.parse(nothing.body.toString())).toEqual({ error: 'not_found', message: 'no asset at nothing' });
    const noIndex = await get('/nothing/');
    expect(noIndex.status).toBe(404);
    expect(noIndex.headers['cache-control']).toBe('public, max-age=60');
    expect(JSON.parse(noIndex.body.toString())).toEqual({ error: 'not_found', message: 'no asset at /nothing/ (no nothing/index.html)' });
  });

  it('serves the exact path when both a file and a folder index exist under one name', async () => {
    await origin.put('both', 'the file called both', { 'cache-control': 'public, max-age=30' });
    await origin.put('both/index.html', '<p>the index of both');
    const file = await get('/both');
    expect([file.status, file.body.toString(), file.headers['surrogate-key']]).toEqual([200, 'the file called both', '/both']);
    const index = await get('/both/');
    expect([index.status, index.body.toString(), index.headers['surrogate-key']]).toEqual([200, '<p>the index of both', '/both/index.html']);
    // The store keeps `both` as meta/both.json: looking for `both.json/index.html` finds a file where a
    // folder would be, which is a missing index, not a failure.
    expect((await get('/both.json')).status).toBe(404);
    expect((await get('/both.json/')).status).toBe(404);
    // Once the file is gone, the name redirects to its folder.
    await remove('both');
    const moved = await get('/both');
    expect([moved.status, moved.headers['location']]).toEqual([301, '/both/']);
  });

  it('serves a replaced index at once, and stops redirecting when it is removed', async () => {
    await origin.put('site/index.html', 'version 1');
    const first = await get('/site/');
    await origin.put('site/index.html', 'version 2');
    const second = await get('/site/');
    expect(second.body.toString()).toBe('version 2');
    expect(second.headers['etag']).not.toBe(first.headers['etag']);
    expect((await get('/site')).status).toBe(301);
    await remove('site/index.html');
    expect((await get('/site/')).status).toBe(404);
    expect((await get('/site')).status).toBe(404);
  });

  it('refuses image parameters on a folder URL (400 naming the path), keeps them on files', async () => {
    for (const target of ['/docs/?w=100', '/?w=100&fmt=webp']) {
      const res = await get(target);
      expect(res.status, target).toBe(400);
      const path = target.slice(0, target.indexOf('?'));
      expect(JSON.parse(res.body.toString()), target).toEqual({ error: 'not_an_image', field: 'path', message: `${path} is a folder, not an image: image parameters apply to an image file's URL` });
    }
    // A bad parameter is named first, as on any URL.
    expect(JSON.parse((await get('/docs/?w=abc')).body.toString())).toMatchObject({ error: 'invalid_param', field: 'w' });
    // An image URL never redirects: `/docs?w=100` asks for an image named docs, which is missing.
    expect((await get('/docs?w=100')).status).toBe(404);
    // The index at its own URL is an HTML file, not an image.
    expect((await get('/docs/index.html?w=100')).status).toBe(415);
    // Empty segments stay a bad path.
    expect(JSON.parse((await get('/docs//')).body.toString())).toMatchObject({ error: 'invalid_path', field: 'path' });
  });
});

describe('404.html at the origin', () => {
  it('is the body of content 404s when uploaded, with the 404 lifetime; API 404s stay JSON', async () => {
    const before = await get('/gone.txt');
    expect([before.status, before.headers['content-type'], before.headers['surrogate-key']]).toEqual([404, 'application/json', 'anycdn:404']);

    // Its own Cache-Control is for the page at /404.html; the 404 answers keep their minute.
    await origin.put('404.html', NOT_FOUND_PAGE, { 'cache-control': 'public, max-age=3600', 'surrogate-key': 'site errors' });
    for (const target of ['/gone.txt', '/a/b/c.css?v=1', '/gone/', '/gone', '/photos/missing.jpg?w=100&fmt=webp']) {
      const res = await get(target);
      expect([target, res.status, res.body.toString()]).toEqual([target, 404, NOT_FOUND_PAGE]);
      expect(res.headers, target).toMatchObject({
        'content-type': 'text/html; charset=utf-8',
        'content-length': String(NOT_FOUND_PAGE.length),
        'cache-control': 'public, max-age=60',
        // The page's own tags, and the tag of every content 404 (purged when the page changes).
        'surrogate-key': '/404.html site errors anycdn:404',
        'x-content-type-options': 'nosniff',
      });
      expect(res.headers['etag'], target).toBeUndefined();
      expect(res.headers['last-modified'], target).toBeUndefined();
    }
    const head = await get('/gone.txt', {}, 'HEAD');
    expect([head.status, head.headers['content-length'], head.headers['content-type'], head.body.length]).toEqual([404, String(NOT_FOUND_PAGE.length), 'text/html; charset=utf-8', 0]);
    // Sent whole: neither a range nor a precondition applies to a 404.
    const ranged = await get('/gone.txt', { range: 'bytes=0-3', 'if-match': '"x"' });
    expect([ranged.status, ranged.body.toString(), ranged.headers['content-range']]).toEqual([404, NOT_FOUND_PAGE, undefined]);

    // The page itself is an ordinary file at its own URL.
    const page = await get('/404.html');
    expect([page.status, page.headers['cache-control'], page.body.toString()]).toEqual([200, 'public, max-age=3600', NOT_FOUND_PAGE]);

    // Bad parameters and bad paths are still JSON 4xx naming the problem; so are the API's 404s.
    const badParam = await get('/photos/missing.jpg?w=abc');
    expect([badParam.status, JSON.parse(badParam.body.toString()).field]).toEqual([400, 'w']);
    expect((await get('/a%2Fb')).headers['content-type']).toBe('application/json');
    const api = await get('/_cdn/nothing');
    expect([api.status, api.headers['content-type']]).toEqual([404, 'application/json']);
    const asset = await request(`${origin.url}/_cdn/assets/gone.txt`, { method: 'DELETE', headers: { authorization: `Bearer ${PUBLISH_TOKEN}` } });
    expect([asset.statusCode, asset.headers['content-type']]).toEqual([404, 'application/json']);
    await asset.body.dump();

    await remove('404.html');
    const after = await get('/gone.txt');
    expect([after.status, after.headers['content-type']]).toEqual([404, 'application/json']);
    expect(JSON.parse(after.body.toString())).toEqual({ error: 'not_found', message: 'no asset at gone.txt' });
  });
});

describe('a static site through the edge', () => {
  it('caches /, /docs/, the /docs redirect and the 404 page like any answer, and revalidates an index with a 304', async () => {
    await origin.put('index.html', ROOT_PAGE);
    await origin.put('docs/index.html', DOCS_PAGE, { 'cache-control': 'public, max-age=600', 'surrogate-key': 'docs-v1' });
    await origin.put('404.html', NOT_FOUND_PAGE);

    for (const [target, status, body] of [
      ['/', 200, ROOT_PAGE],
      ['/docs/', 200, DOCS_PAGE],
      ['/docs', 301, '<a href="/docs/">/docs/</a>\n'],
      ['/docs?from=nav', 301, '<a href="/docs/?from=nav">/docs/?from=nav</a>\n'],
      ['/missing.html', 404, NOT_FOUND_PAGE],
    ] as const) {
      const miss = await edge.get(target);
      expect([target, miss.status, miss.body.toString(), miss.headers['cache-status']]).toEqual([target, status, body, `anycdn; fwd=miss; fwd-status=${status}; stored`]);
      const hit = await edge.get(target);
      expect([target, hit.status, hit.body.toString()]).toEqual([target, status, body]);
      expect(hit.headers['cache-status'], target).toMatch(/^anycdn; hit; ttl=\d+$/);
      expect(hit.headers['surrogate-key'], target).toBe(miss.headers['surrogate-key']);
    }
    const moved = await edge.get('/docs?from=nav');
    expect([moved.headers['location'], moved.headers['cache-control'], moved.headers['surrogate-key']]).toEqual(['/docs/?from=nav', 'public, max-age=600', '/docs/index.html docs-v1']);
    const missing = await edge.get('/missing.html');
    expect([missing.headers['content-type'], missing.headers['cache-control']]).toEqual(['text/html; charset=utf-8', 'public, max-age=60']);

    // A client's conditional on a cached index is answered at the edge.
    const docs = await edge.get('/docs/');
    const etag = docs.headers['etag']!;
    const clientCheck = await edge.get('/docs/', { 'if-none-match': etag });
    expect([clientCheck.status, clientCheck.body.length, clientCheck.headers['etag']]).toEqual([304, 0, etag]);
    expect(clientCheck.headers['cache-status']).toMatch(/^anycdn; hit/);

    // Stale: the edge revalidates the index with the origin, which answers 304 for /docs/ as for the file.
    edge.clock.advance(601_000);
    const revalidated = await edge.get('/docs/');
    expect([revalidated.status, revalidated.body.toString(), revalidated.headers['cache-status']]).toEqual([200, DOCS_PAGE, 'anycdn; fwd=stale; fwd-status=304']);
    // The root keeps its own validator: another page's tag does not match it, its own does.
    const otherTag = await edge.get('/', { 'if-none-match': etag });
    expect([otherTag.status, otherTag.body.toString()]).toEqual([200, ROOT_PAGE]);
    const ownTag = await edge.get('/', { 'if-none-match': otherTag.headers['etag']! });
    expect(ownTag.status).toBe(304);
  });
});
