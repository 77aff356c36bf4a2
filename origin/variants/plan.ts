/**
 * Planning a transform: from the probed source and the normalised parameters, the sharp resize
 * options, the SVG rasterisation density and the output size, computed before any pixel is
 * decoded so an output over `maxOutputDimension` is refused for free. Pure: no I/O.
 *
 * Rules (sharp's `fit` vocabulary, DESIGN.md "Image parameters"):
 * - Raster sources are never enlarged (`withoutEnlargement`): a variant never has more pixels in
 *   a dimension than its source, since upscaling adds bytes and no detail. `w=2000` on an 800 px
 *   photo gives 800 px. `contain` is the exception that proves it: the image is not enlarged but
 *   the letterbox canvas is exactly `w`×`h`. `cover` and `fill` keep the box's shape: a box
 *   larger than the source is scaled down until it fits inside it.
 * - With one dimension (or none) the other follows the aspect ratio, whatever `fit` says.
 * - SVG is vector: it is rasterised at the density that makes it the requested size, so it is
 *   sharp at any size (enlargement allowed), within `maxInputPixels` for the rasterised bitmap.
 * - No output has more pixels than `maxInputPixels` (every frame counted).
 */
import type { Fit, ImageParams } from '../../src/image/params.js';
import { outputPixelsTooLarge, outputTooLarge } from './image-errors.js';
import type { ImageLimits } from './limits.js';
import type { ProbedImage } from './probe.js';

/** The density at which SVG has its intrinsic (CSS pixel) size. */
export const SVG_BASE_DENSITY = 72;
/** sharp's accepted density range. */
const MIN_DENSITY = 1;
const MAX_DENSITY = 100_000;

export interface TransformPlan {
  /** sharp resize options; undefined when neither `w` nor `h` is set (format conversion only). */
  resize?: { width?: number; height?: number; fit: Fit; withoutEnlargement: boolean };
  /** SVG only: rasterisation density in DPI. */
  density?: number;
  /** Expected output size of one frame (sharp may differ by a pixel from rounding). */
  width: number;
  height: number;
}

/**
 * Plans the transform; throws 400 `output_too_large` (field `w` or `h`) past `maxOutputDimension`,
 * or when the output would have more pixels, every frame counted, than `maxInputPixels`: a 300-byte
 * SVG or a 1-pixel PNG must not cost a 67-megapixel encode (`w=8192&h=8192`), and each frame of
 * an animation is a full canvas, so 500 tiny frames must not become 500 large ones.
 */
export function planTransform(
  source: Pick<ProbedImage, 'format' | 'width' | 'height'>,
  params: Pick<ImageParams, 'w' | 'h' | 'fit'>,
  limits: Pick<ImageLimits, 'maxInputPixels' | 'maxOutputDimension'>,
  frames = 1,
): TransformPlan {
  const { w, h } = params;
  const fit: Fit = w !== undefined && h !== undefined ? (params.fit ?? 'cover') : 'inside';
  const vector = source.format === 'svg';
  let sw = source.width;
  let sh = source.height;
  let density: number | undefined;
  if (vector) {
    const scale = svgScale(sw, sh, w, h, fit, limits.maxInputPixels);
    density = clamp(SVG_BASE_DENSITY * scale, MIN_DENSITY, MAX_DENSITY);
    sw = Math.max(1, Math.round((sw * density) / SVG_BASE_DENSITY));
    sh = Math.max(1, Math.round((sh * density) / SVG_BASE_DENSITY));
  }
  const enlarge = vector;
  let [bw, bh] = [w, h];
  if (!enlarge && bw !== undefined && bh !== undefined && (fit === 'cover' || fit === 'fill')) {
    // A box larger than the source shrinks to the largest box of the same shape inside it, so the
    // answer keeps the asked-for aspect ratio (a 600x450 photo at w=1000&h=1000 is 450x450, not
    // sharp's uncropped 600x450): a layout expecting a square gets a square, at the source's
    // resolution.
    const excess = Math.max(bw / sw, bh / sh);
    if (excess > 1) [bw, bh] = [Math.max(1, Math.round(bw / excess)), Math.max(1, Math.round(bh / excess))];
  }
  const size = outputSize(sw, sh, bw, bh, fit, enlarge);
  if (size.width > limits.maxOutputDimension) throw outputTooLarge('w', size.width, limits.maxOutputDimension);
  if (size.height > limits.maxOutputDimension) throw outputTooLarge('h', size.height, limits.maxOutputDimension);
  // A raster output has no more pixels than its source, which passed maxInputPixels; an SVG
  // rasterised large, a `contain` canvas around a small image and an animation's frames can.
  if (size.width * size.height * frames > limits.maxInputPixels) {
    throw outputPixelsTooLarge(w !== undefined ? 'w' : 'h', size.width, size.height, frames, limits.maxInputPixels);
  }
  const plan: TransformPlan = { ...size };
  if (w !== undefined || h !== undefined) {
    plan.resize = { fit, withoutEnlargement: !enlarge };
    if (bw !== undefined) plan.resize.width = bw;
    if (bh !== undefined) plan.resize.height = bh;
  }
  if (density !== undefined) plan.density = density;
  return plan;
}

/**
 * The output size sharp produces for a `sw`×`sh` source (checked against sharp 0.35 for every
 * fit, with and without each dimension, smaller and larger sources).
 */
export function outputSize(
  sw: number,
  sh: number,
  w: number | undefined,
  h: number | undefined,
  fit: Fit,
  enlarge: boolean,
): { width: number; height: number } {
  const cap = (scale: number) => (enlarge ? scale : Math.min(scale, 1));
  const scaled = (scale: number) => ({ width: Math.max(1, Math.round(sw * scale)), height: Math.max(1, Math.round(sh * scale)) });
  if (w === undefined && h === undefined) return { width: sw, height: sh };
  if (w === undefined || h === undefined) {
    const scale = w !== undefined ? w / sw : (h ?? sh) / sh;
    return scale >= 1 && !enlarge ? { width: sw, height: sh } : scaled(scale);
  }
  switch (fit) {
    case 'contain':
      return { width: w, height: h };
    case 'cover':
    case 'fill':
      return enlarge ? { width: w, height: h } : { width: Math.min(w, sw), height: Math.min(h, sh) };
    case 'inside':
      return scaled(cap(Math.min(w / sw, h / sh)));
    case 'outside':
      return scaled(cap(Math.max(w / sw, h / sh)));
  }
}

/**
 * How much to scale an SVG's intrinsic size so the rasterised bitmap already has the requested
 * size (covers the box for cover/fill/outside, fits it for contain/inside), reduced when the
 * bitmap would exceed `maxPixels`.
 */
function svgScale(sw: number, sh: number, w: number | undefined, h: number | undefined, fit: Fit, maxPixels: number): number {
  let scale = 1;
  if (w !== undefined && h !== undefined) {
    const covers = fit === 'cover' || fit === 'fill' || fit === 'outside';
    scale = covers ? Math.max(w / sw, h / sh) : Math.min(w / sw, h / sh);
  } else if (w !== undefined) {
    scale = w / sw;
  } else if (h !== undefined) {
    scale = h / sh;
  }
  return Math.min(scale, Math.sqrt(maxPixels / (sw * sh)));
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
