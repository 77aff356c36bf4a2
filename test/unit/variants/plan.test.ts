import { describe, expect, it } from 'vitest';
import type { Fit } from '../../../src/image/params.js';
import { outputSize, planTransform } from '../../../origin/variants/plan.js';

const limits = { maxInputPixels: 50_000_000, maxOutputDimension: 8192 };

describe('outputSize (raster: never enlarged)', () => {
  // [source w, source h, w, h, fit, expected w, expected h], observed from sharp 0.35.5.
  const rows: [number, number, number | undefined, number | undefined, Fit, number, number][] = [
    [200, 100, undefined, undefined, 'cover', 200, 100],
    [200, 100, 100, undefined, 'inside', 100, 50],
    [200, 100, 300, undefined, 'inside', 200, 100],
    [200, 100, undefined, 100, 'inside', 200, 100],
    [100, 200, undefined, 100, 'inside', 50, 100],
    [1000, 10, 100, undefined, 'inside', 100, 1],
    [1000, 10, undefined, 100, 'inside', 1000, 10],
    [200, 100, 100, 100, 'cover', 100, 100],
    [200, 100, 300, 50, 'cover', 200, 50],
    [100, 200, 60, 1000, 'cover', 60, 200],
    [50, 50, 100, 30, 'fill', 50, 30],
    [200, 100, 100, 30, 'fill', 100, 30],
    [50, 50, 300, 300, 'contain', 300, 300],
    [200, 100, 100, 30, 'contain', 100, 30],
    [200, 100, 100, 100, 'inside', 100, 50],
    [37, 91, 100, 30, 'inside', 12, 30],
    [37, 91, 30, 100, 'inside', 30, 74],
    [50, 50, 300, 300, 'inside', 50, 50],
    [200, 100, 100, 30, 'outside', 100, 50],
    [100, 200, 30, 100, 'outside', 50, 100],
    [1000, 10, 100, 100, 'outside', 1000, 10],
    [200, 100, 100, 100, 'outside', 200, 100],
  ];
  it.each(rows)('%ix%i w=%s h=%s %s → %ix%i', (sw, sh, w, h, fit, ew, eh) => {
    expect(outputSize(sw, sh, w, h, fit, false)).toEqual({ width: ew, height: eh });
  });

  it('enlarges when allowed (vector sources)', () => {
    expect(outputSize(100, 50, 400, undefined, 'inside', true)).toEqual({ width: 400, height: 200 });
    expect(outputSize(100, 50, 400, 400, 'cover', true)).toEqual({ width: 400, height: 400 });
    expect(outputSize(100, 50, 400, 400, 'inside', true)).toEqual({ width: 400, height: 200 });
    expect(outputSize(100, 50, 400, 400, 'outside', true)).toEqual({ width: 800, height: 400 });
  });
});

describe('planTransform', () => {
  it('keeps the shape of a cover or fill box larger than the source, never enlarging', () => {
    const photo = { format: 'jpeg' as const, width: 600, height: 450 };
    const limits = { maxInputPixels: 50_000_000, maxOutputDimension: 8192 };
    expect(planTransform(photo, { w: 1000, h: 1000, fit: 'cover' }, limits)).toMatchObject({ width: 450, height: 450, resize: { width: 450, height: 450 } });
    expect(planTransform(photo, { w: 300, h: 1000, fit: 'cover' }, limits)).toMatchObject({ width: 135, height: 450 });
    expect(planTransform(photo, { w: 1000, h: 100, fit: 'fill' }, limits)).toMatchObject({ width: 600, height: 60 });
    // A box inside the source is used as asked; outside keeps the source's shape.
    expect(planTransform(photo, { w: 300, h: 300, fit: 'cover' }, limits)).toMatchObject({ width: 300, height: 300 });
    expect(planTransform(photo, { w: 1000, h: 1000, fit: 'outside' }, limits)).toMatchObject({ width: 600, height: 450 });
  });

  const photo = { format: 'jpeg' as const, width: 2400, height: 1600 };

  it('has no resize without w or h', () => {
    expect(planTransform(photo, {}, limits)).toEqual({ width: 2400, height: 1600 });
  });

  it('uses `inside` with one dimension, whatever fit says', () => {
    expect(planTransform(photo, { w: 400, fit: 'fill' }, limits)).toEqual({
      resize: { width: 400, fit: 'inside', withoutEnlargement: true },
      width: 400,
      height: 267,
    });
    expect(planTransform(photo, { h: 400 }, limits).resize).toEqual({ height: 400, fit: 'inside', withoutEnlargement: true });
  });

  it('defaults fit to cover with both dimensions', () => {
    expect(planTransform(photo, { w: 300, h: 300 }, limits)).toEqual({
      resize: { width: 300, height: 300, fit: 'cover', withoutEnlargement: true },
      width: 300,
      height: 300,
    });
  });

  it('refuses with 400 an output over maxOutputDimension, naming the side', () => {
    const wide = { format: 'png' as const, width: 20_000, height: 1000 };
    expect(() => planTransform(wide, {}, limits)).toThrow(
      expect.objectContaining({ code: 'output_too_large', status: 400, field: 'w', source: 'client' }),
    );
    // fit=outside keeps the side that overflows: 20000x1000 into 100x100 → 2000x100 is fine…
    expect(planTransform(wide, { w: 100, h: 100, fit: 'outside' }, limits)).toMatchObject({ width: 2000, height: 100 });
    // …but 200000x1000 → 20000x100 is not, though w and h are small.
    const wider = { format: 'png' as const, width: 200_000, height: 200 };
    expect(() => planTransform(wider, { w: 100, h: 100, fit: 'outside' }, limits)).toThrow(
      expect.objectContaining({ code: 'output_too_large', field: 'w' }),
    );
    const tall = { format: 'png' as const, width: 10, height: 9000 };
    expect(() => planTransform(tall, { w: 10 }, limits)).toThrow(expect.objectContaining({ field: 'h' }));
    expect(() => planTransform(tall, { w: 10 }, limits)).toThrow('the output height would be 9000 pixels, more than the limit of 8192; set a smaller w or h');
  });

  it('rasterises SVG at the density of the requested size and allows enlargement', () => {
    const icon = { format: 'svg' as const, width: 100, height: 50 };
    expect(planTransform(icon, { w: 800 }, limits)).toEqual({
      resize: { width: 800, fit: 'inside', withoutEnlargement: false },
      density: 576,
      width: 800,
      height: 400,
    });
    // cover must fill the box: the larger ratio wins.
    expect(planTransform(icon, { w: 200, h: 200 }, limits)).toMatchObject({ density: 288, width: 200, height: 200 });
    // contain fits the box: the smaller ratio.
    expect(planTransform(icon, { w: 200, h: 200, fit: 'contain' }, limits)).toMatchObject({ density: 144, width: 200, height: 200 });
    expect(planTransform(icon, {}, limits)).toEqual({ density: 72, width: 100, height: 50 });
  });

  it('keeps the rasterised SVG, and any output, within maxInputPixels', () => {
    const dot = { format: 'svg' as const, width: 1, height: 1 };
    const limits = { maxInputPixels: 1_000_000, maxOutputDimension: 8192 };
    const plan = planTransform(dot, { w: 1000, h: 1000, fit: 'fill' }, limits);
    expect(plan.density).toBe(72 * 1000);
    expect(plan).toMatchObject({ width: 1000, height: 1000 });
    // A 300-byte SVG must not buy a 67-megapixel encode; nor a 1-pixel PNG in a contain canvas.
    expect(() => planTransform(dot, { w: 8192, h: 8192, fit: 'fill' }, limits)).toThrow(expect.objectContaining({ code: 'output_too_large', status: 400 }));
    expect(() => planTransform(dot, { w: 1001 }, limits)).toThrow(expect.objectContaining({ code: 'output_too_large', field: 'w' }));
    const pixel = { format: 'png' as const, width: 1, height: 1 };
    expect(() => planTransform(pixel, { w: 2000, h: 2000, fit: 'contain' }, limits)).toThrow(expect.objectContaining({ code: 'output_too_large' }));
    expect(planTransform(pixel, { w: 1000, h: 1000, fit: 'contain' }, limits)).toMatchObject({ width: 1000, height: 1000 });
  });
});
