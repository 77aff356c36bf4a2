/** probeImage against images made here: formats, limits, bombs, non-images, corrupt headers. */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DEFAULT_IMAGE_LIMITS } from '../../../origin/variants/limits.js';
import { probeImage } from '../../../origin/variants/probe.js';
import { pngHeaderDeclaring as pngHeader } from '../../support/images.js';

describe('probeImage', () => {
  it('refuses a PNG header declaring 65536x65536 with 422 image_too_large, from the header alone', async () => {
    const bomb = pngHeader(65536, 65536);
    expect(bomb.length).toBeLessThan(100);
    const err = await probeImage(bomb, DEFAULT_IMAGE_LIMITS).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'image_too_large', status: 422, source: 'client' });
    expect((err as Error).message).toBe(
      'the source image is 65536x65536 (4294967296 pixels), more than the limit of 50000000 pixels',
    );
  });

  it('accepts a header within the limit (the check is not simply "any PNG without data")', async () => {
    await expect(probeImage(pngHeader(5000, 5000), DEFAULT_IMAGE_LIMITS)).resolves.toMatchObject({ format: 'png', width: 5000, height: 5000 });
    await expect(probeImage(pngHeader(5000, 5000), { ...DEFAULT_IMAGE_LIMITS, maxInputPixels: 24_999_999 })).rejects.toMatchObject({
      code: 'image_too_large',
    });
  });

  it('counts every frame of an animation against the pixel limit', async () => {
    // Four different frames (the GIF writer merges identical ones).
    const raw = Buffer.concat([0, 80, 160, 240].map((grey) => Buffer.alloc(10 * 10 * 3, grey)));
    const gif = await sharp(raw, { raw: { width: 10, height: 40, channels: 3, pageHeight: 10 } }).gif().toBuffer();
    await expect(probeImage(gif, DEFAULT_IMAGE_LIMITS)).resolves.toEqual({
      format: 'gif',
      width: 10,
      height: 10,
      pages: 4,
      hasAlpha: true, // libvips loads every GIF with an alpha band
      animated: true,
    });
    const err = await probeImage(gif, { ...DEFAULT_IMAGE_LIMITS, maxInputPixels: 399 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'image_too_large', status: 422 });
    expect((err as Error).message).toBe('the source image is 10x10 x 4 frames (400 pixels), more than the limit of 399 pixels');
  });

  it('refuses a file over maxInputBytes with 413 source_too_large before parsing it', async () => {
    const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).png().toBuffer();
    await expect(probeImage(png, { ...DEFAULT_IMAGE_LIMITS, maxInputBytes: png.length - 1 })).rejects.toMatchObject({
      code: 'source_too_large',
      status: 413,
    });
    await expect(probeImage(png, { ...DEFAULT_IMAGE_LIMITS, maxInputBytes: png.length })).resolves.toMatchObject({ format: 'png' });
  });

  it.each([
    ['text', Buffer.from('this is plain text pretending to be a JPEG\n')],
    ['empty', Buffer.alloc(0)],
    ['binary noise', Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) % 256))],
    ['an ASCII PPM (libvips reads it; anycdn does not accept it)', Buffer.from('P3\n1 1\n255\n255 0 0\n')],
  ])('refuses %s with 415 unsupported_image', async (_, bytes) => {
    await expect(probeImage(bytes, DEFAULT_IMAGE_LIMITS)).rejects.toMatchObject({ code: 'unsupported_image', status: 415, source: 'client' });
  });

  it('refuses a corrupt JPEG header with 422 corrupt_image', async () => {
    const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).jpeg().toBuffer();
    // Keep the SOI marker and a little of the header: a JPEG that ends inside its headers.
    const broken = jpeg.subarray(0, 30);
    await expect(probeImage(broken, DEFAULT_IMAGE_LIMITS)).rejects.toMatchObject({ code: 'corrupt_image', status: 422 });
  });

  it('reports the displayed size of an EXIF-rotated JPEG and its orientation', async () => {
    const jpeg = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#808080' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    await expect(probeImage(jpeg, DEFAULT_IMAGE_LIMITS)).resolves.toEqual({
      format: 'jpeg',
      width: 20,
      height: 40,
      pages: 1,
      hasAlpha: false,
      animated: false,
      orientation: 6,
    });
  });

  it('names AVIF sources avif, and sees alpha and SVG', async () => {
    const avif = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } })
      .avif({ effort: 0 })
      .toBuffer();
    await expect(probeImage(avif, DEFAULT_IMAGE_LIMITS)).resolves.toMatchObject({ format: 'avif', hasAlpha: true, animated: false });
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"/>');
    await expect(probeImage(svg, DEFAULT_IMAGE_LIMITS)).resolves.toMatchObject({ format: 'svg', width: 30, height: 20, pages: 1 });
  });

  it('refuses an SVG declaring a huge canvas by its pixels', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"/>');
    await expect(probeImage(svg, DEFAULT_IMAGE_LIMITS)).rejects.toMatchObject({ code: 'image_too_large', status: 422 });
  });
});
