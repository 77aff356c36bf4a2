import { describe, expect, it } from 'vitest';
import { CdnError } from '../../../src/errors.js';
import { imageErrorOf } from '../../../origin/variants/image-errors.js';

describe('imageErrorOf', () => {
  // Messages as sharp 0.35 / libvips 8.18 word them.
  it.each([
    ['Input buffer contains unsupported image format', 'unsupported_image', 415],
    ['Input Buffer is empty', 'unsupported_image', 415],
    ['Input image exceeds pixel limit', 'image_too_large', 422],
    ['timeout: 100% complete\nVipsImage: killed for image "temp-62"\nwebpsave: unable to encode', 'transform_timeout', 422],
    ['VipsJpeg: premature end of JPEG image', 'corrupt_image', 422],
    ['Input buffer has corrupt header: VipsJpeg: premature end of JPEG image\nVipsJpeg: JPEG datastream contains no image', 'corrupt_image', 422],
    ['vipspng: libpng read error', 'corrupt_image', 422],
    ['source: bad seek to 1024', 'corrupt_image', 422],
  ])('%j → %s %i', (message, code, status) => {
    const err = imageErrorOf(new Error(message), 30_000);
    expect(err).toBeInstanceOf(CdnError);
    expect(err).toMatchObject({ code, status, source: 'client' });
    expect(err.message).not.toContain('\n');
  });

  it('keeps the first line of a decoder message for the client', () => {
    const err = imageErrorOf(new Error('Input buffer has corrupt header: VipsJpeg: premature end of JPEG image\nmore'));
    expect(err.message).toBe('the image could not be decoded: Input buffer has corrupt header: VipsJpeg: premature end of JPEG image');
  });

  it('names the limit in a timeout', () => {
    expect(imageErrorOf(new Error('timeout: 5% complete'), 1500).message).toBe('the transform took longer than 1500 ms');
  });

  it('passes CdnErrors through and maps non-Errors', () => {
    const original = new CdnError('overloaded', 'internal', 'x', { status: 503 });
    expect(imageErrorOf(original)).toBe(original);
    expect(imageErrorOf('weird')).toMatchObject({ code: 'corrupt_image', status: 422 });
  });
});
