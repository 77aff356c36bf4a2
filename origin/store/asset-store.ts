/**
 * The asset store interface: where the origin keeps publishers' originals and the image variants
 * generated from them. Metadata is split from data so a HEAD or a 304 is answered without opening
 * the bytes. "Not found" is `undefined`; failures are CdnErrors (`internal` for I/O, `client` for
 * bad input such as an oversized body), never HTTP errors.
 *
 * Every implementation runs the contract suite in test/contract/asset-store-contract.ts.
 */
import type { Readable } from 'node:stream';

/** Current on-disk metadata format version; readers accept this and earlier versions. */
export const ASSET_META_VERSION = 1;

export interface AssetMeta {
  /** Format version of the persisted record. */
  version: number;
  /** Normalised asset path, without a leading slash: `photos/cat.jpg`. */
  path: string;
  /** Content type sniffed from the bytes (magic numbers), falling back to the file extension for text types. */
  contentType: string;
  size: number;
  /** Lower-case hex SHA-256 of the bytes: the content address. */
  sha256: string;
  /** Strong entity tag, quoted, derived from the hash: `"<first 32 hex of sha256>"`. */
  etag: string;
  /** Time of the upload, milliseconds since the epoch (whole seconds, as HTTP dates carry). */
  lastModified: number;
  /** `Cache-Control` given by the publisher at upload, served as is. */
  cacheControl?: string;
  /** Surrogate keys (tags) given by the publisher at upload. */
  tags: string[];
}

export interface PutOptions {
  cacheControl?: string;
  tags?: string[];
  /** Larger bodies are refused with CdnError code `payload_too_large` (status 413), and nothing is stored. */
  maxBytes: number;
  /** Upload time in ms; defaults to the store's clock. */
  now?: number;
  /**
   * Called with the path's current version (undefined: none) right before the new one replaces
   * it, with no other change of the path in between; throwing refuses the put and changes nothing
   * (If-Match / If-None-Match on an upload, RFC 9110 §13.1).
   */
  precondition?: Precondition;
  /**
   * When the current version is the same as the new one would be (same bytes, Cache-Control and
   * tags: `sameVersion`), write nothing and return the current metadata as it is, its
   * `lastModified` included. Default false: every put makes a new version. (A deploy that uploads
   * 3 000 unchanged files must not make 3 000 new versions, and purge them all.)
   */
  keepUnchanged?: boolean;
}

export interface ListOptions {
  /** Only paths starting with this string (`photos/`, or `photos/ca`). Default '': every path. */
  prefix?: string;
  /** Only paths after this one in path order (where the previous page ended). */
  after?: string;
  /** Most assets in one answer. */
  limit: number;
}

export interface AssetListing {
  assets: AssetMeta[];
  /** The last path of this page when more follow (pass it as `after`); undefined at the end. */
  next: string | undefined;
}

/** See PutOptions.precondition. */
export type Precondition = (current: AssetMeta | undefined) => void;

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface VariantMeta {
  version: number;
  /** Hash of the source bytes the variant was made from. */
  sourceSha256: string;
  /** Canonical variant name, e.g. `fmt=webp&w=400` (the resolved output format is always included). */
  variant: string;
  contentType: string;
  size: number;
  sha256: string;
  etag: string;
  width: number;
  height: number;
  createdAt: number;
}

export interface AssetStore {
  /** Metadata of the current version of `path`, or undefined. */
  head(path: string): Promise<AssetMeta | undefined>;
  /** Stream the bytes (or a range) of the current version; undefined if absent. */
  read(path: string, range?: ByteRange): Promise<{ meta: AssetMeta; body: Readable } | undefined>;
  /** Read the whole current version into memory (for image transforms; callers bound the size first via head()). */
  readBuffer(path: string): Promise<{ meta: AssetMeta; data: Buffer } | undefined>;
  /**
   * The whole bytes of the version `meta` (from head()) describes, found by its hash without
   * resolving the path again: a transform that already holds the metadata reads only the bytes.
   * Undefined when that version is no longer stored; never another version's bytes. Callers bound
   * the size first (`meta.size`).
   */
  readVersion(meta: AssetMeta): Promise<Buffer | undefined>;
  /**
   * Store a new version atomically: the bytes are written to a temporary file, fsynced and renamed
   * into place before the metadata is switched, so a crash at any moment leaves either the old or
   * the new version visible, never a partial one. Returns the new metadata.
   */
  put(path: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<AssetMeta>;
  /** Remove `path`; returns the removed metadata or undefined if it did not exist. */
  delete(path: string, precondition?: Precondition): Promise<AssetMeta | undefined>;
  /**
   * The current versions of stored assets in path order (`compareAssetPaths`: segment by
   * segment, each by code point, so `a/b` comes before `a-b`), a page at a time.
   */
  list(options: ListOptions): Promise<AssetListing>;

  /** A stored variant of the source with hash `sourceSha256`, or undefined. */
  getVariant(sourceSha256: string, variant: string): Promise<{ meta: VariantMeta; data: Buffer } | undefined>;
  /** Store a generated variant atomically. */
  putVariant(sourceSha256: string, variant: string, data: Buffer, info: { contentType: string; width: number; height: number }): Promise<VariantMeta>;
}
