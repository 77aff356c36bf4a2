import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestOrigin, type TestOrigin } from '../../support/origin.js';
import { startTestEdge, testClock, type TestEdge } from '../../support/edge.js';

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
