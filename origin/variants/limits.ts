/**
 * The bounds on one image transform: how large a source may be (bytes and pixels), how large an
 * output may be, and how long one transform may take. Every variant request is checked against
 * these before any pixel is decoded (see probe.ts), so a decompression bomb costs a header read.
 */

export interface ImageLimits {
  /**
   * Largest source in pixels, counting every frame that will be decoded (width × height × frames
   * for animated GIF/WebP, width × height otherwise). Default 50 000 000: a 50 MP RGBA decode
   * needs ~200 MB, which two concurrent transforms on a small origin can afford; a 24 MP camera
   * photo passes, a 280 MP scan or a 65536×65536 PNG bomb does not. An animated output is held
   * to the same bound, every written frame counted.
   */
  maxInputPixels: number;
  /**
   * Largest source file in bytes that may be read into memory for a transform. Default 50 MiB:
   * the whole file is held in memory while it is decoded, once per running transform.
   */
  maxInputBytes: number;
  /**
   * Largest output width or height in pixels. Default 8192: bounds the encoder's memory and CPU
   * and stays inside every output format's own limit (WebP stops at 16383).
   */
  maxOutputDimension: number;
  /**
   * A transform still running after this many milliseconds is answered with 422
   * `transform_timeout`. Default 30 000: far above the ~0.1 s a typical photo takes, so only
   * pathological inputs hit it. libvips stops interruptible work (decode, resize, WebP/JPEG/PNG
   * encode) at this point; the AVIF encoder cannot be interrupted, so its work finishes in the
   * background, still holding its concurrency slot (see variant-service.ts).
   */
  timeoutMs: number;
}

/** The defaults documented on each field of `ImageLimits`. */
export const DEFAULT_IMAGE_LIMITS: Readonly<ImageLimits> = Object.freeze({
  maxInputPixels: 50_000_000,
  maxInputBytes: 50 * 1024 * 1024,
  maxOutputDimension: 8192,
  timeoutMs: 30_000,
});
