/**
 * The CdnErrors of image handling, and the one translation from whatever sharp/libvips throws into
 * them. Any input, however broken, ends as a 4xx with a stable code: user bytes never produce a
 * 500. Status per code:
 *
 * - 413 `source_too_large`: the file has more bytes than `maxInputBytes`.
 * - 415 `unsupported_image`: not an image, or a format anycdn does not transform.
 * - 422 `image_too_large`: more pixels than `maxInputPixels` (decompression bombs).
 * - 422 `corrupt_image`: a header or pixel data that does not decode (truncated files included).
 * - 422 `transform_timeout`: the transform ran longer than `timeoutMs`.
 * - 400 `output_too_large`: the requested output exceeds `maxOutputDimension`, or is animated
 *   with more pixels (every frame counted) than `maxInputPixels`.
 */
import { CdnError, isCdnError } from '../../src/errors.js';

/** libvips messages are multi-line logs; clients get the first line, this long at most. */
const MESSAGE_LIMIT = 200;

export function sourceTooLarge(bytes: number, limit: number): CdnError {
  return new CdnError('source_too_large', 'client', `the source image is ${bytes} bytes, more than the limit of ${limit} bytes`, {
    status: 413,
  });
}

export function unsupportedImage(detail: string): CdnError {
  return new CdnError('unsupported_image', 'client', `not an image anycdn can transform: ${detail}`, { status: 415 });
}

export function imageTooLarge(width: number, height: number, frames: number, limit: number): CdnError {
  const size = frames > 1 ? `${width}x${height} x ${frames} frames` : `${width}x${height}`;
  const pixels = width * height * frames;
  return new CdnError('image_too_large', 'client', `the source image is ${size} (${pixels} pixels), more than the limit of ${limit} pixels`, {
    status: 422,
  });
}

export function corruptImage(detail: string, cause?: unknown): CdnError {
  return new CdnError('corrupt_image', 'client', `the image could not be decoded: ${detail}`, { status: 422, cause });
}

export function transformTimeout(timeoutMs: number, cause?: unknown): CdnError {
  return new CdnError('transform_timeout', 'client', `the transform took longer than ${timeoutMs} ms`, { status: 422, cause });
}

export function outputTooLarge(field: 'w' | 'h', size: number, limit: number): CdnError {
  const side = field === 'w' ? 'width' : 'height';
  return new CdnError('output_too_large', 'client', `the output ${side} would be ${size} pixels, more than the limit of ${limit}; set a smaller w or h`, {
    status: 400,
    field,
  });
}

/** An animated output would have more pixels (all frames counted) than a source may have. */
export function outputPixelsTooLarge(field: 'w' | 'h', width: number, height: number, frames: number, limit: number): CdnError {
  const size = frames > 1 ? `${width}x${height} x ${frames} frames` : `${width}x${height}`;
  const pixels = width * height * frames;
  return new CdnError('output_too_large', 'client', `the output would be ${size} (${pixels} pixels), more than the limit of ${limit} pixels; set a smaller w or h`, {
    status: 400,
    field,
  });
}

/**
 * Maps anything thrown while probing or transforming to a CdnError. CdnErrors pass through;
 * sharp's errors are recognised by their (stable) message prefixes; anything else is treated as
 * undecodable input, since the only variable in a transform is the user's bytes.
 */
export function imageErrorOf(err: unknown, timeoutMs = 0): CdnError {
  if (isCdnError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  const detail = firstLine(message);
  if (/unsupported image format|input buffer is empty/i.test(message)) {
    return unsupportedImage(detail);
  }
  if (/exceeds pixel limit/i.test(message)) {
    return new CdnError('image_too_large', 'client', `the source image has more pixels than allowed: ${detail}`, { status: 422, cause: err });
  }
  if (/^timeout:|killed for image/im.test(message)) return transformTimeout(timeoutMs, err);
  return corruptImage(detail, err);
}

function firstLine(message: string): string {
  const line = (message.split('\n', 1)[0] ?? '').trim();
  return line.length > MESSAGE_LIMIT ? `${line.slice(0, MESSAGE_LIMIT)}…` : line;
}
