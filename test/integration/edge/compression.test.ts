import { createHash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestOrigin, type TestOrigin } from '../../support/origin.js';
import { startTestEdge, testClock, type TestEdge } from '../../support/edge.js';
import type { CommitMeta } from '../../../src/blob/blob-store.js';
import { CODING_SEPARATOR } from '../../../edge/cache-keys.js';
import { SOURCE_HASH_HEADER } from '../../../edge/compression.js';

let origin: TestOrigin;
let edge: TestEdge;
const css = Buffer.from('.button { color: #336699; padding: 4px 8px; }\n'.repeat(200));

beforeAll(async () => {
  const clock = testClock();
  origin = await startTestOrigin({}, clock.now);
  edge = await startTestEdge(origin.url, {}, { clock });
  await origin.put('c/site.css', css, { 'cache-control': 'public, max-age=600' });
});
afterAll(async () => {
  await edge.destroy();
  await origin.stop();
});

describe('text compression at the edge', () => {
  it('sends the first response as is, then brotli or gzip per client, once per object', async () => {
    const miss = await edge.get('/c/site.css', { 'accept-encoding': 'gzip, deflate, br' });
    expect(miss.headers['content-encoding']).toBeUndefined();
    expect(miss.headers['vary']).toBe('Accept-Encoding');
    expect(miss.body.equals(css)).toBe(true);
    const etag = miss.headers['etag']!;

    const br = await edge.get('/c/site.css', { 'accept-encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['vary']).toBe('Accept-Encoding');
    expect(br.headers['etag']).toBe(etag.replace(/"$/, '-br"'));
    expect(Number(br.headers['content-length'])).toBe(br.body.length);
    expect(br.body.length).toBeLessThan(css.length / 10);
    expect(brotliDecompressSync(br.body).equals(css)).toBe(true);

    const gz = await edge.get('/c/site.css', { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).equals(css)).toBe(true);

    const plain = await edge.get('/c/site.css', {});
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.equals(css)).toBe(true);
    expect(plain.headers['etag']).toBe(etag);

    // Conditional requests compare against the coding's own ETag.
    expect((await edge.get('/c/site.css', { 'accept-encoding': 'br', 'if-none-match': br.headers['etag']! })).status).toBe(304);
    expect((await edge.get('/c/site.css', { 'accept-encoding': 'br', 'if-none-match': etag })).status).toBe(200);
    // The compressed copies are stored beside the object.
    expect([...edge.server.store.keys()].filter((k) => k.includes('/c/site.css')).length).toBe(3);
  });

  it('says the answer varies on a HEAD for text it has not stored yet, as the GET will', async () => {
    await origin.put('c/other.css', css, { 'cache-control': 'public, max-age=600' });
    const head = await edge.get('/c/other.css', { 'accept-encoding': 'br' }, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['cache-status']).toMatch(/detail=head/);
    expect(head.headers['vary']).toBe('Accept-Encoding');
    expect((await edge.get('/c/other.css', { 'accept-encoding': 'br' })).headers['vary']).toBe('Accept-Encoding');
    await origin.put('c/tiny-head.css', 'a{}', { 'cache-control': 'public, max-age=600' });
    expect((await edge.get('/c/tiny-head.css', {}, 'HEAD')).headers['vary']).toBeUndefined();
  });

  it('leaves images and tiny files alone', async () => {
    await origin.put('c/tiny.css', 'a{}', { 'cache-control': 'public, max-age=600' });
    await edge.get('/c/tiny.css', { 'accept-encoding': 'br' });
    const tiny = await edge.get('/c/tiny.css', { 'accept-encoding': 'br' });
    expect(tiny.headers['content-encoding']).toBeUndefined();
    expect(tiny.headers['vary']).toBeUndefined();
  });
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The key the edge stored `path` under (its primary key: no Vary of upstream's). */
function storedKey(path: string): string {
  const keys = [...edge.server.store.keys()].filter((k) => k.endsWith(path));
  expect(keys).toHaveLength(1);
  return keys[0]!;
}

/** Replace the stored body of `key` with `body`, unhashed, under the very same metadata (times included). */
async function replaceUnhashed(key: string, body: Buffer): Promise<void> {
  const { version: _v, sha256: _s, ...old } = (await edge.server.store.get(key))!.meta;
  const writer = (await edge.server.store.begin(key, body.length, { hash: false }))!;
  await writer.write(body);
  const meta: CommitMeta = { ...old, size: body.length };
  expect((await writer.commit(meta)).sha256).toBeUndefined();
}

describe('the hash of a stored body, the identity of its compressed copies', () => {
  it('is taken for text the edge may compress, not for an image; the origin hashes every upload', async () => {
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(20_000, 7)]);
    const uploaded = await origin.put('h/photo.jpg', jpeg, { 'cache-control': 'public, max-age=600' });
    expect(uploaded.json['sha256']).toBe(sha256(jpeg));
    await origin.put('h/page.css', css, { 'cache-control': 'public, max-age=600' });
    const photo = await edge.get('/h/photo.jpg', { 'accept-encoding': 'br' });
    expect([photo.status, photo.headers['content-type'], photo.body.equals(jpeg)]).toEqual([200, 'image/jpeg', true]);
    expect(photo.headers['cache-status']).toMatch(/stored/);
    const page = await edge.get('/h/page.css', { 'accept-encoding': 'br' });
    expect(page.body.equals(css)).toBe(true);
    const photoMeta = (await edge.server.store.get(storedKey('/h/photo.jpg')))!.meta;
    expect([photoMeta.size, photoMeta.sha256]).toEqual([jpeg.length, undefined]);
    expect((await edge.server.store.get(storedKey('/h/page.css')))!.meta.sha256).toBe(sha256(css));
    // A hit on the unhashed image is served as it is, byte-exact.
    const again = await edge.get('/h/photo.jpg', { 'accept-encoding': 'br' });
    expect([again.headers['content-encoding'], again.body.equals(jpeg)]).toEqual([undefined, true]);
  });

  it('is computed when text stored without one is compressed, so a copy of another body is never sent', async () => {
    await origin.put('h/later.css', css, { 'cache-control': 'public, max-age=600' });
    await edge.get('/h/later.css', { 'accept-encoding': 'br' });
    const key = storedKey('/h/later.css');
    const first = await edge.get('/h/later.css', { 'accept-encoding': 'br' });
    expect(brotliDecompressSync(first.body).equals(css)).toBe(true);
    // Another body of the same size under the same metadata, stored without a hash (as a 304
    // that turned an uncompressible type into CSS would leave it): the copy of the old one is stale.
    const other = Buffer.from(css.toString().replace(/#336699/g, '#993366'));
    expect(other.length).toBe(css.length);
    await replaceUnhashed(key, other);
    for (const accept of ['br', 'br', 'gzip']) {
      const res = await edge.get('/h/later.css', { 'accept-encoding': accept });
      expect(res.headers['content-encoding']).toBe(accept);
      expect((accept === 'br' ? brotliDecompressSync(res.body) : gunzipSync(res.body)).equals(other)).toBe(true);
    }
    // The copy names the body it was made from by that body's SHA-256; its own is not taken.
    const copy = (await edge.server.store.get(key + CODING_SEPARATOR + 'br'))!;
    expect(copy.meta.headers).toContainEqual([SOURCE_HASH_HEADER, sha256(other)]);
    expect(copy.meta.sha256).toBeUndefined();
    // And back to the first body, unhashed too.
    await replaceUnhashed(key, css);
    expect(brotliDecompressSync((await edge.get('/h/later.css', { 'accept-encoding': 'br' })).body).equals(css)).toBe(true);
    expect((await edge.get('/h/later.css', {})).body.equals(css)).toBe(true);
  });
});
