/**
 * Probing: what an uploaded image is (format, size, frames, alpha, orientation) from its headers
 * alone, and the input limits checked on that answer. sharp's `metadata()` reads headers without
 * decoding pixels, so a PNG declaring 65536×65536 is refused after reading a few bytes, before any
 * memory is allocated for it.
 */
import sharp, { type Metadata } from 'sharp';
import { corruptImage, imageErrorOf, imageTooLarge, sourceTooLarge, unsupportedImage } from './image-errors.js';
import type { ImageLimits } from './limits.js';
import { assertTransformableSvg } from './svg-guard.js';

/**
 * Source formats anycdn transforms. Anything else libvips could load (PPM, Radiance, VIPS, CSV
 * matrices …) is refused with 415: an allow-list, so a decoder nobody meant to expose is never
 * reachable from an upload.
 */
export const SOURCE_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'avif', 'tiff', 'svg'] as const;
export type SourceFormat = (typeof SOURCE_FORMATS)[number];

export interface ProbedImage {
  format: SourceFormat;
  /** Width of one frame as displayed, i.e. after EXIF orientation (orientations 5–8 swap sides). */
  width: number;
  /** Height of one frame as displayed. */
  height: number;
  /** Frames (animation) or images (multi-page TIFF, HEIF collections) in the file; 1 for most. */
  pages: number;
  hasAlpha: boolean;
  /** A GIF or WebP with more than one frame. */
  animated: boolean;
  /** EXIF orientation 1–8, when the file has one. */
  orientation?: number;
}

/** Frames that a transform decodes: all of an animation, the first (or primary) image otherwise. */
export function decodedFrames(probed: ProbedImage): number {
  return probed.animated ? probed.pages : 1;
}

/**
 * Reads the headers of `data` and checks them against `limits`.
 *
 * Throws (CdnError, never anything else): 413 `source_too_large` when `data` exceeds
 * `maxInputBytes`; 415 `unsupported_image` for non-images and formats outside SOURCE_FORMATS;
 * 422 `corrupt_image` for a header that does not parse; 422 `image_too_large` when width ×
 * height × decoded frames exceeds `maxInputPixels`.
 */
export async function probeImage(data: Buffer, limits: Pick<ImageLimits, 'maxInputBytes' | 'maxInputPixels'>): Promise<ProbedImage> {
  if (data.length > limits.maxInputBytes) throw sourceTooLarge(data.length, limits.maxInputBytes);
  if (data.length === 0) throw unsupportedImage('the file is empty');
  let metadata: Metadata;
  try {
    // The pixel limit is ours to check below, with a message naming the dimensions.
    metadata = await sharp(data, { limitInputPixels: false, failOn: 'error' }).metadata();
  } catch (err) {
    throw imageErrorOf(err);
  }
  const probed = probedOf(metadata);
  if (probed.format === 'svg') assertTransformableSvg(data);
  const frames = decodedFrames(probed);
  if (probed.width * probed.height * frames > limits.maxInputPixels) {
    throw imageTooLarge(probed.width, probed.height, frames, limits.maxInputPixels);
  }
  return probed;
}

function probedOf(metadata: Metadata): ProbedImage {
  const format = sourceFormatOf(metadata);
  const { width, height } = metadata;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw corruptImage(`the header declares a size of ${String(width)}x${String(height)}`);
  }
  const pages = Math.max(1, metadata.pages ?? 1);
  const orientation = metadata.orientation;
  const swapped = orientation !== undefined && orientation >= 5 && orientation <= 8;
  const probed: ProbedImage = {
    format,
    width: swapped ? height : width,
    height: swapped ? width : height,
    pages,
    hasAlpha: metadata.hasAlpha,
    animated: (format === 'gif' || format === 'webp') && pages > 1,
  };
  if (orientation !== undefined) probed.orientation = orientation;
  return probed;
}

function sourceFormatOf(metadata: Metadata): SourceFormat {
  const format: string = metadata.format;
  if (format === 'heif') {
    // sharp's prebuilt libheif decodes AV1 (AVIF) only; HEVC (HEIC) would fail at decode time.
    if (metadata.compression === 'av1') return 'avif';
    throw unsupportedImage(`HEIF with ${metadata.compression ?? 'unknown'} compression`);
  }
  if (isSourceFormat(format)) return format;
  throw unsupportedImage(`${format} images are not accepted`);
}

function isSourceFormat(format: string): format is SourceFormat {
  return (SOURCE_FORMATS as readonly string[]).includes(format);
}
