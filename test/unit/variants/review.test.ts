/** Planning limits found in review: an animated output counts every frame against maxInputPixels. */
import { describe, expect, it } from 'vitest';
import { planTransform } from '../../../origin/variants/plan.js';

const limits = { maxInputPixels: 50_000_000, maxOutputDimension: 8192 };

describe('planTransform with frames', () => {
  const gif = { format: 'gif' as const, width: 16, height: 16 };

  it('refuses a letterboxed animation whose frames together exceed maxInputPixels, naming w', () => {
    expect(() => planTransform(gif, { w: 512, h: 512, fit: 'contain' }, limits, 500)).toThrowError(
      expect.objectContaining({ code: 'output_too_large', status: 400, field: 'w', message: expect.stringContaining('512x512 x 500 frames') }),
    );
    expect(() => planTransform(gif, { h: 8192, w: 8192, fit: 'contain' }, limits, 2)).toThrowError(expect.objectContaining({ code: 'output_too_large' }));
  });

  it('plans the same output within the bound, and single frames as before', () => {
    expect(planTransform(gif, { w: 512, h: 512, fit: 'contain' }, limits, 190)).toMatchObject({ width: 512, height: 512 });
    expect(planTransform(gif, { w: 512, h: 512, fit: 'contain' }, limits)).toMatchObject({ width: 512, height: 512 });
    // Shrinking never multiplies: the frames of a source within the input bound stay within it.
    expect(planTransform({ ...gif, width: 500, height: 500 }, { w: 400 }, limits, 199)).toMatchObject({ width: 400, height: 400 });
  });
});
