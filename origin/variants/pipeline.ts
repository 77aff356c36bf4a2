/**
 * The sharp pipeline that turns a source image into one variant: decode under the input limits,
 * auto-orient from EXIF, resize, convert to sRGB, strip metadata, encode. Knows nothing of storage
 * or HTTP; every failure is a CdnError (see image-errors.ts), never a 500.
 *
 * Output properties, whatever the source:
 * - sRGB, 8 bits per channel, no ICC profile: embedded profiles (CMYK, Display P3, …) are applied
 *   when decoding, and an untagged image is sRGB to every browser, so a profile would be bytes
 *   for nothing.
 * - No EXIF, XMP, IPTC or comments (privacy: camera serials and GPS positions stay at the origin).
 *   Orientation is applied to the pixels first.
 * - Alpha kept for WebP, AVIF and PNG; JPEG is flattened onto white.
 * - Animated GIF/WebP sources stay animated only when the output is WebP (the one animated format
 *   sharp writes among ours); JPEG, PNG and AVIF get the first frame.
 * - SVG is rasterised at the size asked for; librsvg, reading from memory, loads no external file
 *   or URL (`<image href="file:…">`, `<use href=…>`), runs no script, and refuses external XML
 *   entities; only `data:` URIs inside the SVG are drawn.
 */
import sharp, { type Sharp } from 'sharp';
import { isAnimatableOutput } from '../../src/image/negotiate.js';
import type { ImageParams, OutputFormat } from '../../src/image/params.js';
import { imageErrorOf } from './image-errors.js';
import type { ImageLimits } from './limits.js';
import { planTransform } from './plan.js';
import type { ProbedImage } from './probe.js';

export const CONTENT_TYPES: Readonly<Record<OutputFormat, string>> = {
  avif: 'image/avif',
  webp: 'image/webp',
  jpeg: 'image/jpeg',
  png: 'image/png',
};

/**
 * Encoder settings. Timings below are medians of 5–9 runs on this project's 2-core reference
 * machine, one transform at a time: the 2725×2225 fixture photo resized to 400 px wide (decode +
 * resize alone take ~22 ms of each figure).
 */
export interface TransformOptions {
  /**
   * Quality used when the request has no `q`. Default `{ jpeg: 80, webp: 80, avif: 50 }`: sharp's
   * and most CDNs' defaults, visually equivalent across the three encoders. PNG is lossless and
   * ignores quality.
   */
  quality: { jpeg: number; webp: number; avif: number };
  /**
   * AVIF encoder effort, 0 (fastest) to 9. Default 2. Measured at q50 (ms / bytes):
   * effort 0: 37 / 10 742, 1: 58 / 10 195, 2: 83 / 10 052, 3: 160 / 9 596, 4 (sharp's default):
   * 783 / 9 570. Effort 2 is ~9x faster than 4 for 5% more bytes; the first request for a
   * variant waits for it, and AVIF encoding is the origin's CPU hot spot. The AVIF encoder is also
   * the one step `timeoutMs` cannot interrupt, so a low effort bounds the worst case too.
   */
  avifEffort: number;
  /** libaom's tuning for AVIF. Default `AVIF_TUNE` ('ssim', measured there). */
  avifTune?: 'ssim' | 'iq' | 'psnr' | 'auto';
  /**
   * WebP encoder effort, 0 to 6. Default 4 (sharp's default). Measured at q80 (ms / bytes):
   * effort 0: 27 / 24 040, 2: 31 / 18 482, 4: 37 / 17 810, 6: 73 / 16 630. 4 costs 6 ms more than
   * 2 for 4% fewer bytes; 6 doubles the time for 7% fewer.
   */
  webpEffort?: number;
  /**
   * Encode JPEG with mozjpeg's trellis quantisation. Default false. Measured at q80
   * (ms / bytes): libjpeg baseline 24 / 24 338, libjpeg progressive 25 / 24 028, mozjpeg 42 /
   * 20 255. mozjpeg saves 16% of the bytes for 1.7x the time, but its `q` scale differs from
   * libjpeg's (the q80 everyone knows); progressive libjpeg is nearly free and is always on.
   */
  mozjpeg?: boolean;
  limits: ImageLimits;
}

export const DEFAULT_QUALITY: Readonly<TransformOptions['quality']> = Object.freeze({ jpeg: 80, webp: 80, avif: 50 });
export const DEFAULT_AVIF_EFFORT = 2;
export const DEFAULT_WEBP_EFFORT = 4;
/**
 * libaom's tuning for AVIF. sharp 0.35 defaults to 'auto', which libvips 8.18 turns into libaom's
 * newer 'iq' tuning; sharp up to 0.34 (and so ipx and most deployed image servers) encoded with
 * 'ssim'. Measured at q50, effort 2, one at a time on the 2725x2225 fixture photo resized (ms /
 * bytes, 'auto' vs 'ssim'): 400 px 61 / 10 052 vs 51 / 9 772; 800 px 796 / 33 184 vs 642 /
 * 28 313; 1400 px 2 001 / 84 818 vs 1 676 / 63 377. 'iq' spends up to 34% more bytes and ~20% more
 * CPU at the same `q`; the default q50 was chosen on the 'ssim' scale, so 'ssim' keeps `q` meaning
 * what it meant and AVIF, the origin's CPU hot spot, as cheap as before.
 */
export const AVIF_TUNE: NonNullable<TransformOptions['avifTune']> = 'ssim';

export interface TransformedImage {
  data: Buffer;
  /** Output size of one frame. */
  width: number;
  height: number;
  contentType: string;
}

/** Letterbox colour for `fit=contain`: transparent where the format has alpha, white for JPEG. */
const TRANSPARENT = { r: 0, g: 0, b: 0, alpha: 0 };
const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };

/**
 * Renders one variant. `params` are normalised (dpr folded into w/h), so only `w`, `h`, `fit` and
 * `q` matter here; `output` is the negotiated format.
 *
 * Throws CdnErrors only: 400 `output_too_large`, 422 `image_too_large`, `corrupt_image` (including
 * truncated files: decoding uses `failOn: 'error'`, so a JPEG cut short is refused rather than
 * served with a grey lower half, while the harmless warnings many camera files carry pass),
 * `transform_timeout`, 415 `unsupported_image`.
 */
export async function transformImage(
  data: Buffer,
  probed: ProbedImage,
  params: ImageParams,
  output: OutputFormat,
  options: TransformOptions,
): Promise<TransformedImage> {
  const { limits } = options;
  const animated = probed.animated && isAnimatableOutput(output);
  const plan = planTransform(probed, params, limits, animated ? probed.pages : 1);
  try {
    let image = sharp(data, {
      animated,
      limitInputPixels: limits.maxInputPixels,
      failOn: 'error',
      ...(plan.density === undefined ? {} : { density: plan.density }),
    })
      .timeout({ seconds: Math.max(1, Math.ceil(limits.timeoutMs / 1000)) })
      .autoOrient();
    if (plan.resize !== undefined) {
      image = image.resize({ ...plan.resize, background: output === 'jpeg' ? WHITE : TRANSPARENT });
    }
    if (output === 'jpeg') image = image.flatten({ background: WHITE });
    image = encode(image.toColourspace('srgb'), output, params.q, options);
    const { data: out, info } = await image.toBuffer({ resolveWithObject: true });
    const height = animated && info.pageHeight !== undefined ? info.pageHeight : info.height;
    return { data: out, width: info.width, height, contentType: CONTENT_TYPES[output] };
  } catch (err) {
    throw imageErrorOf(err, limits.timeoutMs);
  }
}

function encode(image: Sharp, output: OutputFormat, q: number | undefined, options: TransformOptions): Sharp {
  switch (output) {
    case 'jpeg':
      return image.jpeg({ quality: q ?? options.quality.jpeg, progressive: true, mozjpeg: options.mozjpeg ?? false });
    case 'webp':
      return image.webp({ quality: q ?? options.quality.webp, effort: options.webpEffort ?? DEFAULT_WEBP_EFFORT });
    case 'avif':
      return image.avif({ quality: q ?? options.quality.avif, effort: options.avifEffort, tune: options.avifTune ?? AVIF_TUNE });
    case 'png':
      return image.png();
  }
}
