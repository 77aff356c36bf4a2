/**
 * Extra checks against the shared real-world test images (../shared/fixtures/images, outside the
 * repository). A fresh clone has no such folder: the suite is then skipped with a message; every
 * behaviour here is also covered by the other suites with images made in the test.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { ImageParams, OutputFormat } from '../../../src/image/params.js';
import { DEFAULT_IMAGE_LIMITS } from '../../../origin/variants/limits.js';
import { DEFAULT_QUALITY, transformImage } from '../../../origin/variants/pipeline.js';
import { probeImage } from '../../../origin/variants/probe.js';

const DIR = fileURLToPath(new URL('../../../../shared/fixtures/images/', import.meta.url));
const present = existsSync(DIR);
if (!present) console.warn(`real-fixtures: ${DIR} not found, skipping the real-image checks`);

const fixture = (name: string) => readFile(DIR + name);

async function render(name: string, params: ImageParams, output: OutputFormat) {
  const data = await fixture(name);
  const probed = await probeImage(data, DEFAULT_IMAGE_LIMITS);
  const out = await transformImage(data, probed, params, output, { quality: DEFAULT_QUALITY, avifEffort: 2, limits: DEFAULT_IMAGE_LIMITS });
  return { probed, out, meta: await sharp(out.data, { animated: true }).metadata() };
}

async function refusal(name: string) {
  const data = await fixture(name);
  return probeImage(data, DEFAULT_IMAGE_LIMITS)
    .then((probed) => transformImage(data, probed, { w: 100 }, 'jpeg', { quality: DEFAULT_QUALITY, avifEffort: 2, limits: DEFAULT_IMAGE_LIMITS }))
    .then(
      () => undefined,
      (err: unknown) => err,
    );
}

describe.skipIf(!present)('real fixture images', () => {
  it('auto-orients Landscape_6.jpg (450x600 stored, orientation 6) to 600x450', async () => {
    const { probed, out, meta } = await render('Landscape_6.jpg', { w: 300 }, 'jpeg');
    expect([probed.width, probed.height, probed.orientation]).toEqual([600, 450, 6]);
    expect([out.width, out.height, meta.orientation]).toEqual([300, 225, undefined]);
  });

  it('converts the CMYK JPEG to sRGB', async () => {
    const { meta } = await render('Channel_digital_image_CMYK_color.jpg', { w: 100 }, 'jpeg');
    expect([meta.space, meta.channels, meta.hasProfile]).toEqual(['srgb', 3, false]);
  });

  it('strips IPTC, XMP, EXIF and ICC from Landscape_9.jpg', async () => {
    const source = await sharp(await fixture('Landscape_9.jpg')).metadata();
    expect([source.iptc, source.xmp, source.icc].every((b) => b !== undefined)).toBe(true);
    for (const output of ['jpeg', 'webp', 'png'] as const) {
      const { meta } = await render('Landscape_9.jpg', { w: 100 }, output);
      expect([meta.exif, meta.xmp, meta.iptc, meta.icc], output).toEqual([undefined, undefined, undefined, undefined]);
    }
  });

  it('converts p3.png to sRGB without a profile', async () => {
    const { meta } = await render('p3.png', {}, 'png');
    expect([meta.space, meta.hasProfile]).toEqual(['srgb', false]);
  });

  it('keeps blackbug.png transparent in WebP and flattens it in JPEG', async () => {
    expect((await render('blackbug.png', { w: 200 }, 'webp')).meta.hasAlpha).toBe(true);
    expect((await render('blackbug.png', { w: 200 }, 'jpeg')).meta.hasAlpha).toBe(false);
  });

  it.each(['animated-loop-3.gif', 'animated-loop-3.webp'])('keeps %s animated as WebP (10 frames), first frame as PNG', async (name) => {
    expect((await render(name, { w: 100 }, 'webp')).meta.pages).toBe(10);
    expect((await render(name, { w: 100 }, 'png')).meta.pages ?? 1).toBe(1);
  });

  it('rasterises evil.svg and check.svg', async () => {
    expect((await render('evil.svg', {}, 'png')).out).toMatchObject({ width: 120, height: 120 });
    expect((await render('check.svg', { w: 400 }, 'webp')).out).toMatchObject({ width: 400, height: 400 });
  });

  it('reads the 16-bit grey+alpha PNG, the WebP and the AVIF', async () => {
    expect((await render('16-bit-grey-alpha.png', {}, 'png')).meta).toMatchObject({ depth: 'uchar', hasAlpha: true });
    expect((await render('4.webp', { w: 100 }, 'jpeg')).out).toMatchObject({ width: 100 });
    expect((await render('pitm.avif', { w: 100 }, 'webp')).out).toMatchObject({ width: 100 });
  });

  it.each([
    ['giant-image.jpg', 'image_too_large', 422],
    ['65536-uint32-limit.png', 'image_too_large', 422],
    ['truncated.jpg', 'corrupt_image', 422],
    ['corrupt-header.jpg', 'corrupt_image', 422],
    ['not-an-image.jpg', 'unsupported_image', 415],
  ])('refuses %s with %s %i', async (name, code, status) => {
    expect(await refusal(name)).toMatchObject({ code, status, source: 'client' });
  });
});
