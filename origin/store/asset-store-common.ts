/**
 * What every AssetStore backend shares, so the memory and filesystem stores cannot drift apart:
 * reading an upload body under a byte limit while hashing it and keeping the head for sniffing,
 * building and validating AssetMeta / VariantMeta, variant keys, ranges, and the domain errors
 * these raise (`payload_too_large` 413, `body_read_failed` 400, `range_not_satisfiable` 416).
 */
import { createHash } from 'node:crypto';
import { CdnError, clientError } from '../../src/errors.js';
import { SNIFF_BYTES, sniffContentType } from '../../src/sniff.js';
import { ASSET_META_VERSION, type AssetMeta, type ByteRange, type ListOptions, type PutOptions, type VariantMeta } from './asset-store.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Longest encoded variant name: a file name on disk (plus `.json`) must stay within NAME_MAX. */
export const MAX_VARIANT_NAME = 200;

/** What reading an upload body produced. */
export interface BodyDigest {
  sha256: string;
  size: number;
  /** The first SNIFF_BYTES bytes (fewer if the body is shorter), for content sniffing. */
  head: Buffer;
}

/**
 * Read `body` to its end, handing each chunk to `onChunk` (which may write it somewhere), while
 * hashing and counting. Past `maxBytes` reading stops (the source is returned/destroyed) and
 * `payload_too_large` is thrown before the offending chunk reaches `onChunk`. A failure of the body
 * itself (client gone) is `body_read_failed`; a failure in `onChunk` propagates as is.
 */
export async function digestBody(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
  onChunk: (chunk: Uint8Array) => Promise<void> | void,
): Promise<BodyDigest> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new CdnError('invalid_max_bytes', 'internal', 'maxBytes must be a non-negative integer');
  }
  const hash = createHash('sha256');
  const headParts: Buffer[] = [];
  let size = 0;
  let headSize = 0;
  const iterator = body[Symbol.asyncIterator]();
  try {
    for (;;) {
      let step: IteratorResult<Uint8Array>;
      try {
        step = await iterator.next();
      } catch (err) {
        if (err instanceof CdnError) throw err;
        throw new CdnError('body_read_failed', 'client', 'the request body could not be read', { cause: err });
      }
      if (step.done === true) break;
      const chunk = step.value;
      size += chunk.length;
      if (size > maxBytes) {
        throw new CdnError('payload_too_large', 'client', `the body is larger than ${maxBytes} bytes`, { status: 413 });
      }
      hash.update(chunk);
      if (headSize < SNIFF_BYTES) {
        const part = Buffer.from(chunk.subarray(0, SNIFF_BYTES - headSize));
        headParts.push(part);
        headSize += part.length;
      }
      await onChunk(chunk);
    }
  } catch (err) {
    // Stop the source (destroys a stream) so nothing more is read; its own errors no longer matter.
    await Promise.resolve(iterator.return?.()).catch(() => undefined);
    throw err;
  }
  return { sha256: hash.digest('hex'), size, head: Buffer.concat(headParts) };
}

/** The metadata of a new upload: sniffed type, hash-derived ETag, time in whole seconds. */
export function newAssetMeta(path: string, digest: BodyDigest, options: PutOptions, clockNow: number): AssetMeta {
  return {
    version: ASSET_META_VERSION,
    path,
    contentType: sniffContentType(digest.head, path),
    size: digest.size,
    sha256: digest.sha256,
    etag: etagOf(digest.sha256),
    lastModified: wholeSeconds(options.now ?? clockNow),
    ...(options.cacheControl === undefined ? {} : { cacheControl: options.cacheControl }),
    tags: [...(options.tags ?? [])],
  };
}

export function newVariantMeta(
  sourceSha256: string,
  variant: string,
  data: Uint8Array,
  info: { contentType: string; width: number; height: number },
  clockNow: number,
): VariantMeta {
  const sha256 = sha256Hex(data);
  return {
    version: ASSET_META_VERSION,
    sourceSha256,
    variant,
    contentType: info.contentType,
    size: data.length,
    sha256,
    etag: etagOf(sha256),
    width: info.width,
    height: info.height,
    createdAt: wholeSeconds(clockNow),
  };
}

/**
 * Check a variant key and return the variant's file-safe name: percent-encoded, `.` included, so
 * no name is `.`/`..` and none ends in `.json`. Bad keys are caller bugs (`internal`).
 */
export function variantName(sourceSha256: string, variant: string): string {
  if (!SHA256_HEX.test(sourceSha256)) {
    throw new CdnError('invalid_hash', 'internal', 'variant source hash must be 64 lower-case hex digits');
  }
  const name = encodeURIComponent(variant).replaceAll('.', '%2E');
  if (variant === '' || name.length > MAX_VARIANT_NAME) {
    throw new CdnError('invalid_variant', 'internal', `variant name must be 1 to ${MAX_VARIANT_NAME} encoded characters`);
  }
  return name;
}

/** Persisted AssetMeta if `value` is a valid current-version record for `path`, else undefined (absent). */
export function parseAssetMeta(value: unknown, path: string): AssetMeta | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Record<string, unknown>;
  const valid =
    m.version === ASSET_META_VERSION &&
    m.path === path &&
    typeof m.contentType === 'string' &&
    isSize(m.size) &&
    typeof m.sha256 === 'string' &&
    SHA256_HEX.test(m.sha256) &&
    m.etag === etagOf(m.sha256) &&
    Number.isSafeInteger(m.lastModified) &&
    (m.cacheControl === undefined || typeof m.cacheControl === 'string') &&
    Array.isArray(m.tags) &&
    m.tags.every((t) => typeof t === 'string');
  return valid ? (m as unknown as AssetMeta) : undefined;
}

/** Persisted VariantMeta if valid for this key, else undefined. */
export function parseVariantMeta(value: unknown, sourceSha256: string, variant: string): VariantMeta | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Record<string, unknown>;
  const valid =
    m.version === ASSET_META_VERSION &&
    m.sourceSha256 === sourceSha256 &&
    m.variant === variant &&
    typeof m.contentType === 'string' &&
    isSize(m.size) &&
    typeof m.sha256 === 'string' &&
    SHA256_HEX.test(m.sha256) &&
    m.etag === etagOf(m.sha256) &&
    isSize(m.width) &&
    isSize(m.height) &&
    Number.isSafeInteger(m.createdAt);
  return valid ? (m as unknown as VariantMeta) : undefined;
}

/**
 * Whether an upload would make the same version as `current`: same bytes, Cache-Control and tags
 * (in order: they are served in that order). The content type follows from the bytes and path.
 */
export function sameVersion(current: AssetMeta, next: Pick<AssetMeta, 'sha256' | 'cacheControl' | 'tags'>): boolean {
  return (
    current.sha256 === next.sha256 &&
    current.cacheControl === next.cacheControl &&
    current.tags.length === next.tags.length &&
    current.tags.every((t, i) => t === next.tags[i])
  );
}

/**
 * Path order: segment by segment, each segment by code point (the order of its UTF-8 bytes), a
 * path before the paths under it. It is the order of a walk of a folder tree with sorted names,
 * so a store on a file system lists without sorting everything first.
 */
export function compareAssetPaths(a: string, b: string): number {
  return compareSegments(a.split('/'), b.split('/'));
}

export function compareSegments(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return Buffer.compare(Buffer.from(a[i]!), Buffer.from(b[i]!));
  }
  return a.length - b.length;
}

/** A listing's options checked: a prefix and `after` that no path could match are caller bugs. */
export function checkListOptions(options: ListOptions): { prefix: string; after: string | undefined; limit: number } {
  if (!Number.isSafeInteger(options.limit) || options.limit < 1) {
    throw new CdnError('invalid_limit', 'internal', 'limit must be a positive integer');
  }
  return { prefix: options.prefix ?? '', after: options.after, limit: options.limit };
}

/** A range must be satisfiable (the HTTP layer evaluates Range headers first); else 416. */
export function checkRange(range: ByteRange, size: number): void {
  const ok =
    Number.isSafeInteger(range.start) &&
    Number.isSafeInteger(range.end) &&
    range.start >= 0 &&
    range.start <= range.end &&
    range.end < size;
  if (!ok) {
    throw clientError('range_not_satisfiable', `range ${range.start}-${range.end} is outside the ${size} bytes`, {
      status: 416,
      field: 'range',
    });
  }
}

/** Whether `value` is a content hash as stores name objects by it (64 lower-case hex digits). */
export function isSha256Hex(value: string): boolean {
  return SHA256_HEX.test(value);
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Strong ETag from the content hash: `"` + first 32 hex digits + `"` (128 bits is plenty). */
export function etagOf(sha256: string): string {
  return `"${sha256.slice(0, 32)}"`;
}

/** Truncate to whole seconds, as HTTP dates carry, so Last-Modified comparisons are exact. */
export function wholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

function isSize(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
