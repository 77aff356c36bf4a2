import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { request } from 'undici';
import { signPath } from '../../../src/image/sign.js';
import { startTestOrigin, type TestOrigin } from '../../support/origin.js';
import { pngHeaderDeclaring } from '../../support/images.js';

const CHROME_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';

let origin: TestOrigin;
let photo: Buffer;
beforeAll(async () => {
  origin = await startTestOrigin();
  photo = await sharp({ create: { width: 800, height: 600, channels: 3, background: { r: 200, g: 60, b: 30 } } }).jpeg().toBuffer();
  await origin.put('p/photo.jpg', photo, { 'surrogate-key': 'gallery' });
});
afterAll(async () => origin.stop());

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await request(`${origin.url}${path}`, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers as Record<string, string>, body };
}

describe('image variants over HTTP', () => {
  it('resizes, keeps the source headers and sets a strong ETag of the variant', async () => {
    const res = await get('/p/photo.jpg?w=200');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
    expect(res.headers['vary']).toBeUndefined();
    expect(res.headers['surrogate-key']).toBe('/p/photo.jpg gallery');
    expect(res.headers['cache-control']).toBe('public, max-age=3600');
    expect(res.headers['etag']).toMatch(/^"[0-9a-f]{32}"$/);
    expect(Number(res.headers['content-length'])).toBe(res.body.length);
    const meta = await sharp(res.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 200, 150]);

    const notModified = await get('/p/photo.jpg?w=200', { 'if-none-match': res.headers['etag']! });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    const range = await get('/p/photo.jpg?w=200', { range: 'bytes=0-9' });
    expect(range.status).toBe(206);
    expect(range.body.equals(res.body.subarray(0, 10))).toBe(true);
  });

  it('negotiates fmt=auto from Accept and always says Vary: Accept', async () => {
    const avif = await get('/p/photo.jpg?fmt=auto&w=100', { accept: CHROME_ACCEPT });
    expect(avif.headers['content-type']).toBe('image/avif');
    expect(avif.headers['vary']).toBe('Accept');
    const webp = await get('/p/photo.jpg?w=100&fmt=auto', { accept: 'image/webp,*/*' });
    expect(webp.headers['content-type']).toBe('image/webp');
    expect(webp.headers['vary']).toBe('Accept');
    const jpeg = await get('/p/photo.jpg?w=100&fmt=auto', { accept: '*/*' });
    expect(jpeg.headers['content-type']).toBe('image/jpeg');
    expect(jpeg.headers['vary']).toBe('Accept');
    expect((await sharp(webp.body).metadata()).format).toBe('webp');
  });

  it('generates a variant once and serves the stored one afterwards, whatever the parameter order', async () => {
    const a = await get('/p/photo.jpg?w=123&fmt=webp&q=70');
    const b = await get('/p/photo.jpg?q=70&fmt=webp&w=123');
    expect(a.headers['etag']).toBe(b.headers['etag']);
    expect(a.body.equals(b.body)).toBe(true);
    // The variant is written to disk just after the first answer; soon it is served from there.
    const storedCount = async (): Promise<number> => {
      const metrics = (await get('/_cdn/metrics')).body.toString();
      return Number(/anycdn_origin_http_requests_total\{method="GET",status="200",outcome="variant-stored"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    };
    const before = await storedCount();
    let etag: string | undefined;
    for (let i = 0; i < 50 && (await storedCount()) === before; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20));
      etag = (await get('/p/photo.jpg?fmt=webp&w=123&q=70')).headers['etag'];
    }
    expect(await storedCount()).toBe(before + 1);
    expect(etag).toBe(a.headers['etag']);
  });

  it('a new upload replaces the variants made from the old version', async () => {
    await origin.put('p/swap.png', await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ff0000' } }).png().toBuffer());
    const red = await get('/p/swap.png?w=8&fmt=png');
    await origin.put('p/swap.png', await sharp({ create: { width: 64, height: 64, channels: 3, background: '#0000ff' } }).png().toBuffer());
    const blue = await get('/p/swap.png?w=8&fmt=png');
    expect(blue.headers['etag']).not.toBe(red.headers['etag']);
    const { data } = await sharp(blue.body).raw().toBuffer({ resolveWithObject: true });
    expect([data[0], data[1], data[2]]).toEqual([0, 0, 255]);
  });

  it.each([
    ['/p/photo.jpg?w=abc', 'w', 400, 'invalid_param'],
    ['/p/photo.jpg?w=100&colour=red', 'colour', 400, 'invalid_param'],
    ['/p/photo.jpg?w=9000', 'w', 400, 'invalid_param'],
    ['/p/photo.jpg?fit=squash&w=10&h=10', 'fit', 400, 'invalid_param'],
    ['/p/photo.jpg?q=0&w=10', 'q', 400, 'invalid_param'],
    ['/p/photo.jpg?dpr=5&w=10', 'dpr', 400, 'invalid_param'],
    ['/p/photo.jpg?fmt=gif&w=10', 'fmt', 400, 'invalid_param'],
  ])('%s is a %i naming %s', async (path, field, status, code) => {
    const res = await get(path);
    expect(res.status).toBe(status);
    const body = JSON.parse(res.body.toString()) as { error: string; field: string; message: string };
    expect(body.error).toBe(code);
    expect(body.field).toBe(field);
    expect(body.message).toContain(field);
  });

  it('refuses image parameters on a stylesheet with 415', async () => {
    await origin.put('p/site.css', 'body{}');
    const res = await get('/p/site.css?w=100');
    expect(res.status).toBe(415);
    expect(JSON.parse(res.body.toString()).error).toBe('not_an_image');
  });

  it('answers corrupt, fake and oversized images with a 4xx and stores nothing', async () => {
    await origin.put('bad/truncated.jpg', photo.subarray(0, Math.floor(photo.length / 3)));
    const truncated = await get('/bad/truncated.jpg?w=100');
    expect(truncated.status).toBe(422);
    expect(JSON.parse(truncated.body.toString()).error).toBe('corrupt_image');
    expect((await get('/bad/truncated.jpg?w=100')).status).toBe(422);

    await origin.put('bad/text.jpg', 'this is not an image at all');
    const text = await get('/bad/text.jpg?w=100');
    expect(text.status).toBe(415);

    await origin.put('bad/bomb.png', pngHeaderDeclaring(65536, 65536));
    const bomb = await get('/bad/bomb.png?w=100');
    expect(bomb.status).toBe(422);
    const body = JSON.parse(bomb.body.toString()) as { error: string; message: string };
    expect(body.error).toBe('image_too_large');
    expect(body.message).toContain('65536');
  });

  it('refuses to rasterise an SVG that embeds an image (a decompression bomb in disguise)', async () => {
    const inner = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><image href="data:image/png;base64,${inner.toString('base64')}" width="100" height="100"/></svg>`;
    await origin.put('bad/bomb.svg', svg);
    const res = await get('/bad/bomb.svg?w=50');
    expect(res.status).toBe(415);
    expect(JSON.parse(res.body.toString())).toMatchObject({ error: 'unsupported_image' });
    // The original is still served, inert.
    const original = await get('/bad/bomb.svg');
    expect(original.status).toBe(200);
    expect(original.headers['content-security-policy']).toContain("default-src 'none'");
  });

  it('rotates by EXIF orientation', async () => {
    const sideways = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#336699' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    await origin.put('p/rotated.jpg', sideways);
    const res = await get('/p/rotated.jpg?w=10');
    const meta = await sharp(res.body).metadata();
    expect([meta.width, meta.height]).toEqual([10, 20]);
    expect(meta.orientation).toBeUndefined();
    expect(meta.exif).toBeUndefined();
  });
});

describe('signed URLs', () => {
  const KEY_OLD = 'old-signing-key-0123456789';
  const KEY_NEW = 'new-signing-key-0123456789';
  let signed: TestOrigin;
  beforeAll(async () => {
    signed = await startTestOrigin({ images: { signingKeys: [KEY_NEW, KEY_OLD], allowedWidths: [100, 200] } });
    await signed.put('s/photo.jpg', photo);
  });
  afterAll(async () => signed.stop());

  async function status(path: string): Promise<{ status: number; error?: string }> {
    const res = await request(`${signed.url}${path}`);
    const text = await res.body.text();
    return { status: res.statusCode, error: res.statusCode === 200 ? undefined : (JSON.parse(text) as { error: string }).error };
  }

  it('requires a valid signature from any configured key', async () => {
    const q = new URLSearchParams('w=100&fmt=webp');
    expect(await status('/s/photo.jpg?w=100&fmt=webp')).toEqual({ status: 403, error: 'missing_signature' });
    expect(await status(`/s/photo.jpg?w=100&fmt=webp&sig=${signPath('s/photo.jpg', q, 'not-a-configured-key-000')}`)).toEqual({ status: 403, error: 'bad_signature' });
    expect((await status(`/s/photo.jpg?w=100&fmt=webp&sig=${signPath('s/photo.jpg', q, KEY_NEW)}`)).status).toBe(200);
    expect((await status(`/s/photo.jpg?fmt=webp&sig=${signPath('s/photo.jpg', q, KEY_OLD)}&w=100`)).status).toBe(200);
    // The signature covers the parameters: changing one invalidates it.
    expect(await status(`/s/photo.jpg?w=200&fmt=webp&sig=${signPath('s/photo.jpg', q, KEY_NEW)}`)).toEqual({ status: 403, error: 'bad_signature' });
    // The original needs no signature.
    expect((await status('/s/photo.jpg')).status).toBe(200);
  });

  it('accepts only the allowed widths', async () => {
    const q = new URLSearchParams('w=150');
    expect(await status(`/s/photo.jpg?w=150&sig=${signPath('s/photo.jpg', q, KEY_NEW)}`)).toEqual({ status: 400, error: 'invalid_param' });
  });
});
