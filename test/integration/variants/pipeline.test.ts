/**
 * The sharp pipeline against real images made here with sharp: orientation, colour spaces, alpha,
 * animation, metadata stripping, sizes, corrupt input. SVG has its own suite (svg.test.ts).
 */
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import type { ImageParams, OutputFormat } from '../../../src/image/params.js';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from '../../../origin/variants/limits.js';
import { DEFAULT_QUALITY, transformImage } from '../../../origin/variants/pipeline.js';
import { planTransform } from '../../../origin/variants/plan.js';
import { probeImage } from '../../../origin/variants/probe.js';

const RED = { r: 220, g: 20, b: 20 };
const BLUE = { r: 20, g: 20, b: 220 };

async function render(data: Buffer, params: ImageParams, output: OutputFormat, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) {
  const probed = await probeImage(data, limits);
  return transformImage(data, probed, params, output, { quality: DEFAULT_QUALITY, avifEffort: 2, limits });
}

/** RGBA of the pixel at (x, y). */
async function pixel(image: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(image).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const offset = (y * info.width + x) * 4;
  return [...data.subarray(offset, offset + 4)];
}

function expectClose(actual: number[], expected: number[], tolerance: number): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, i) => expect(Math.abs(value - expected[i]!), `channel ${i}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance));
}

/** A w×h image, left half `left`, right half `right`. */
function halves(w: number, h: number, left: typeof RED, right: typeof RED): Sharp {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const c = x < w / 2 ? left : right;
      raw.set([c.r, c.g, c.b], (y * w + x) * 3);
    }
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } });
}

/** 20×20 PNG: left half fully transparent, right half opaque green. */
async function alphaPng(): Promise<Buffer> {
  const raw = Buffer.alloc(20 * 20 * 4);
  for (let i = 0; i < 400; i++) if (i % 20 >= 10) raw.set([0, 200, 0, 255], i * 4);
  return sharp(raw, { raw: { width: 20, height: 20, channels: 4 } }).png().toBuffer();
}

/** A 4-frame 20×10 animated GIF, each frame a different colour. */
async function animatedGif(): Promise<Buffer> {
  const frames = 4;
  const raw = Buffer.alloc(20 * 10 * frames * 4);
  for (let f = 0; f < frames; f++) {
    for (let i = 0; i < 200; i++) raw.set([f * 60, 255 - f * 60, 0, 255], (f * 200 + i) * 4);
  }
  return sharp(raw, { raw: { width: 20, height: 10 * frames, channels: 4, pageHeight: 10 } })
    .gif({ delay: [100, 100, 100, 100], loop: 0 })
    .toBuffer();
}

describe('transformImage', () => {
  it('applies EXIF orientation 6 before resizing: 40x20 stored comes out 20x40, rotated clockwise', async () => {
    const source = await halves(40, 20, RED, BLUE).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(source).metadata()).orientation).toBe(6);
    const out = await render(source, {}, 'png');
    expect([out.width, out.height]).toEqual([20, 40]);
    const meta = await sharp(out.data).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([20, 40, undefined]);
    // Rotating 90° clockwise puts the left (red) half on top.
    expectClose(await pixel(out.data, 10, 5), [RED.r, RED.g, RED.b, 255], 30);
    expectClose(await pixel(out.data, 10, 35), [BLUE.r, BLUE.g, BLUE.b, 255], 30);
    // And the resize sees the oriented size: w=10 → 10x20.
    const small = await render(source, { w: 10 }, 'jpeg');
    expect([small.width, small.height]).toEqual([10, 20]);
  });

  it('converts a CMYK JPEG to 3-channel sRGB with the source colour', async () => {
    const source = await sharp({ create: { width: 16, height: 16, channels: 3, background: RED } }).toColourspace('cmyk').jpeg().toBuffer();
    expect((await sharp(source).metadata()).space).toBe('cmyk');
    for (const output of ['jpeg', 'webp', 'png'] as const) {
      const out = await render(source, {}, output);
      const meta = await sharp(out.data).metadata();
      expect([meta.space, meta.channels], output).toEqual(['srgb', 3]);
      expectClose((await pixel(out.data, 8, 8)).slice(0, 3), [RED.r, RED.g, RED.b], 40);
    }
  });

  it('converts a Display P3 image to sRGB and embeds no profile', async () => {
    // Pure P3 red is outside sRGB: converted, it clips to sRGB red; read without conversion it would be (234, 51, 35).
    const p3red = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 255, g: 0, b: 0 } } })
      .withIccProfile('p3')
      .png()
      .toBuffer();
    expect((await sharp(p3red).metadata()).hasProfile).toBe(true);
    const out = await render(p3red, {}, 'png');
    const meta = await sharp(out.data).metadata();
    expect(meta.hasProfile).toBe(false);
    expect(meta.icc).toBeUndefined();
    expectClose((await pixel(out.data, 4, 4)).slice(0, 3), [255, 0, 0], 3);
  });

  it('strips EXIF, XMP and ICC metadata from every output format', async () => {
    const source = await halves(16, 16, RED, BLUE)
      .jpeg()
      .withExif({ IFD0: { Copyright: 'secret owner', Artist: 'secret artist' } })
      .withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
      .withIccProfile('p3')
      .toBuffer();
    const before = await sharp(source).metadata();
    expect(before.exif).toBeDefined();
    expect(before.xmp).toBeDefined();
    expect(before.icc).toBeDefined();
    for (const output of ['jpeg', 'webp', 'avif', 'png'] as const) {
      const out = await render(source, { w: 8 }, output);
      const meta = await sharp(out.data).metadata();
      expect({ exif: meta.exif, xmp: meta.xmp, iptc: meta.iptc, icc: meta.icc }, output).toEqual({
        exif: undefined,
        xmp: undefined,
        iptc: undefined,
        icc: undefined,
      });
      expect(out.data.includes('secret')).toBe(false);
    }
  });

  it('keeps alpha for WebP, AVIF and PNG: a transparent pixel stays transparent', async () => {
    const source = await alphaPng();
    for (const output of ['webp', 'avif', 'png'] as const) {
      const out = await render(source, {}, output);
      expect((await sharp(out.data).metadata()).hasAlpha, output).toBe(true);
      // AVIF compresses alpha lossily too: transparent within 2/255.
      expect((await pixel(out.data, 2, 10))[3], output).toBeLessThanOrEqual(output === 'avif' ? 2 : 0);
      expectClose(await pixel(out.data, 17, 10), [0, 200, 0, 255], 12);
    }
  });

  it('flattens alpha onto white for JPEG', async () => {
    const out = await render(await alphaPng(), {}, 'jpeg');
    const meta = await sharp(out.data).metadata();
    expect([meta.format, meta.hasAlpha, meta.channels]).toEqual(['jpeg', false, 3]);
    expectClose(await pixel(out.data, 2, 10), [255, 255, 255, 255], 3);
    expectClose(await pixel(out.data, 17, 10), [0, 200, 0, 255], 12);
    expect(out.contentType).toBe('image/jpeg');
  });

  it('letterboxes fit=contain with transparency, or white for JPEG', async () => {
    const source = await halves(40, 20, RED, BLUE).png().toBuffer();
    const png = await render(source, { w: 40, h: 40, fit: 'contain' }, 'png');
    expect([png.width, png.height]).toEqual([40, 40]);
    expect((await pixel(png.data, 20, 2))[3]).toBe(0);
    const jpeg = await render(source, { w: 40, h: 40, fit: 'contain' }, 'jpeg');
    expectClose(await pixel(jpeg.data, 20, 2), [255, 255, 255, 255], 12); // chroma subsampling bleeds a little
  });

  it('keeps an animated GIF animated as WebP, and takes the first frame for other outputs', async () => {
    const gif = await animatedGif();
    const probed = await probeImage(gif, DEFAULT_IMAGE_LIMITS);
    expect(probed).toMatchObject({ format: 'gif', animated: true, pages: 4, width: 20, height: 10 });

    const webp = await render(gif, { w: 10 }, 'webp');
    const meta = await sharp(webp.data, { animated: true }).metadata();
    expect([meta.format, meta.pages, meta.pageHeight, meta.width]).toEqual(['webp', 4, 5, 10]);
    expect([webp.width, webp.height]).toEqual([10, 5]);

    for (const output of ['png', 'jpeg', 'avif'] as const) {
      const out = await render(gif, { w: 10 }, output);
      const still = await sharp(out.data).metadata();
      expect([still.pages ?? 1, out.width, out.height], output).toEqual([1, 10, 5]);
      // Frame 0 is (0, 255, 0).
      expectClose((await pixel(out.data, 5, 2)).slice(0, 3), [0, 255, 0], 20);
    }
  });

  it('never enlarges a raster source', async () => {
    const source = await halves(40, 20, RED, BLUE).png().toBuffer();
    const out = await render(source, { w: 400 }, 'png');
    expect([out.width, out.height]).toEqual([40, 20]);
  });

  it('matches the planned output size for every fit (plan.ts agrees with sharp)', async () => {
    const sources: [number, number][] = [[200, 100], [100, 200], [37, 91], [1000, 10]];
    const requests: [number | undefined, number | undefined][] = [[100, undefined], [undefined, 100], [100, 100], [300, 50], [60, 1000]];
    for (const [sw, sh] of sources) {
      const source = await sharp({ create: { width: sw, height: sh, channels: 3, background: RED } }).png().toBuffer();
      for (const [w, h] of requests) {
        for (const fit of ['cover', 'contain', 'fill', 'inside', 'outside'] as const) {
          const out = await render(source, { w, h, fit }, 'png');
          const planned = planTransform({ format: 'png', width: sw, height: sh }, { w, h, fit }, DEFAULT_IMAGE_LIMITS);
          const label = `${sw}x${sh} w=${w} h=${h} ${fit}`;
          expect({ width: out.width, height: out.height }, label).toEqual({ width: planned.width, height: planned.height });
          expect(out.width <= Math.max(sw, fit === 'contain' ? w ?? 0 : 0) && out.height <= Math.max(sh, fit === 'contain' ? h ?? 0 : 0), label).toBe(true);
          // cover and fill keep the box's shape, even when the box is larger than the source.
          if (w !== undefined && h !== undefined && (fit === 'cover' || fit === 'fill')) {
            const offBy = Math.min(Math.abs(out.width - (out.height * w) / h), Math.abs(out.height - (out.width * h) / w));
            expect(offBy, label).toBeLessThanOrEqual(1); // one pixel of rounding
          }
        }
      }
    }
  });

  it('refuses a truncated JPEG with 422 corrupt_image instead of serving a grey half', async () => {
    const noise = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
      .jpeg()
      .toBuffer();
    const truncated = noise.subarray(0, Math.floor(noise.length / 2));
    // The header is intact, so probing succeeds; decoding the pixels fails.
    const probed = await probeImage(truncated, DEFAULT_IMAGE_LIMITS);
    const err = await transformImage(truncated, probed, { w: 100 }, 'jpeg', {
      quality: DEFAULT_QUALITY,
      avifEffort: 2,
      limits: DEFAULT_IMAGE_LIMITS,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'corrupt_image', status: 422, source: 'client' });
    expect((err as Error).message).toMatch(/premature end of JPEG/);
  });

  it('enforces the pixel limit again at decode time', async () => {
    const source = await sharp({ create: { width: 100, height: 100, channels: 3, background: RED } }).png().toBuffer();
    const probed = await probeImage(source, DEFAULT_IMAGE_LIMITS);
    const limits = { ...DEFAULT_IMAGE_LIMITS, maxInputPixels: 5000 };
    // The 50x50 output is within the limit; the 100x100 input is not, and sharp refuses to decode it.
    await expect(transformImage(source, probed, { w: 50 }, 'png', { quality: DEFAULT_QUALITY, avifEffort: 2, limits })).rejects.toMatchObject({
      code: 'image_too_large',
      status: 422,
    });
  });

  it('refuses an output over maxOutputDimension with 400 before decoding', async () => {
    const source = await sharp({ create: { width: 300, height: 20, channels: 3, background: RED } }).png().toBuffer();
    const limits = { ...DEFAULT_IMAGE_LIMITS, maxOutputDimension: 200 };
    await expect(render(source, {}, 'png', limits)).rejects.toMatchObject({ code: 'output_too_large', status: 400, field: 'w' });
    await expect(render(source, { w: 200 }, 'png', limits)).resolves.toMatchObject({ width: 200, height: 13 });
  });

  it('encodes each output format with its content type and the requested quality', async () => {
    const source = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 50 } } })
      .png()
      .toBuffer();
    for (const [output, type] of [['jpeg', 'image/jpeg'], ['webp', 'image/webp'], ['avif', 'image/avif'], ['png', 'image/png']] as const) {
      const out = await render(source, {}, output);
      expect(out.contentType).toBe(type);
      const format = (await sharp(out.data).metadata()).format;
      expect(format).toBe(output === 'avif' ? 'heif' : output);
    }
    const low = await render(source, { q: 10 }, 'jpeg');
    const high = await render(source, { q: 95 }, 'jpeg');
    expect(low.data.length).toBeLessThan(high.data.length / 2);
    expect((await sharp(high.data).metadata()).isProgressive).toBe(true);
  });

  it("encodes AVIF with libaom's SSIM tuning, on which the default quality was chosen", async () => {
    const source = await sharp({ create: { width: 160, height: 120, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
      .png()
      .toBuffer();
    const probed = await probeImage(source, DEFAULT_IMAGE_LIMITS);
    const encode = (avifTune?: 'ssim' | 'iq') => transformImage(source, probed, {}, 'avif', { quality: DEFAULT_QUALITY, avifEffort: 2, avifTune, limits: DEFAULT_IMAGE_LIMITS });
    const [byDefault, ssim, iq] = await Promise.all([encode(), encode('ssim'), encode('iq')]);
    expect(byDefault.data.equals(ssim.data)).toBe(true);
    expect(byDefault.data.equals(iq.data)).toBe(false);
  });
});
