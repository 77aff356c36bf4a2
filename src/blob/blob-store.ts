/**
 * The blob store interface: where an edge keeps the responses it caches, keyed by the cache key.
 * Metadata (status, headers, timing) is split from the body so freshness and 304s are judged
 * without touching the bytes. "Not found" is `undefined`; failures are CdnErrors with the codes in
 * `BLOB_ERROR_CODES`, never HTTP errors.
 *
 * Writing is a transaction: `begin()` hands out a writer, bytes stream in, and only `commit()`
 * makes the object visible (all at once, replacing any previous version). A writer that fails
 * cleans up after itself; the caller treats any CdnError from it as "not stored" and carries on
 * serving its client.
 *
 * Every implementation (memory, disk, tiered) runs test/contract/blob-store-contract.ts.
 */
import type { Readable } from 'node:stream';
import { CdnError } from '../errors.js';

/** Current format version of StoredMeta (and of the disk record that carries it). */
export const BLOB_META_VERSION = 1;

/** What the edge needs to judge a stored response later (RFC 9111 §4.2: request/response times). */
export interface StoredMeta {
  /** Format version, set by the store to BLOB_META_VERSION at commit. */
  version: number;
  /** The cache key, exactly as given to begin(). */
  key: string;
  /** Body length in bytes. */
  size: number;
  /** HTTP status of the stored response. */
  status: number;
  /** Response header fields in received order; repeated names stay repeated. */
  headers: [string, string][];
  /** When the request that produced this response was sent (ms since epoch). */
  requestTime: number;
  /** When the response headers arrived (ms since epoch). */
  responseTime: number;
  /** When the object was stored or last refreshed (ms since epoch). */
  storedAt: number;
  /**
   * Lower-case hex SHA-256 of the body, computed by the store at commit; absent when the writer was
   * begun with `hash: false` (WriteOptions).
   */
  sha256?: string;
  /** Surrogate keys, for purge by tag. */
  tags?: string[];
  /**
   * A soft purge marked the object stale: it is revalidated before it is served again, and a
   * refresh (a 304) clears the mark. Absent: not marked.
   */
  invalidated?: true;
}

/** What a caller passes to commit(): the store fills in `version` and `sha256`, and checks `key` and `size`. */
export type CommitMeta = Omit<StoredMeta, 'version' | 'sha256'> & {
  version?: number;
  /**
   * If given, the body's hash must equal it or the commit fails with `blob_checksum_mismatch`. A
   * writer begun with `hash: false` has no hash to compare: it neither checks nor keeps this one.
   */
  sha256?: string;
};

/** How a write is made (BlobStore.begin). */
export interface WriteOptions {
  /**
   * Hash the body (SHA-256, into StoredMeta.sha256). Default true. false: for a body whose hash
   * nothing will read; hashing costs about 1.5 µs of CPU per KiB, a few percent of a cold miss
   * (the edge hashes only what it may compress: edge/compression.ts, mayCompress).
   */
  hash?: boolean;
}

/** Fields a 304 refresh may change; key, size, version and sha256 belong to the body and stay. */
export type MetaChanges = Partial<Pick<StoredMeta, 'status' | 'headers' | 'requestTime' | 'responseTime' | 'storedAt' | 'tags'>> & {
  /** true: mark the object stale (soft purge); false: clear the mark (a refresh). */
  invalidated?: boolean;
};

/** An inclusive byte range, already validated against the size (RFC 9110 §14.1.2 semantics). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobEntry {
  meta: StoredMeta;
  /** The whole body, when the store has it in memory or it is small enough to read in one go. */
  data?: Buffer;
  /**
   * Stream the body or an inclusive range of it. Throws `blob_range_invalid` synchronously for a
   * range outside [0, size). The stream fails with `blob_corrupt` before yielding any byte that does
   * not match its checksum, and with `blob_gone` if the object was replaced or evicted between
   * get() and open() (treat as a miss when nothing was sent yet).
   */
  open(range?: ByteRange): Readable;
}

/** Random read access to the bytes a writer has written so far (a disk writer's temp file). */
export interface BodyFile {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

export interface CommitOptions {
  /**
   * Called once get() in this process finds the new version, which may be well before commit()
   * resolves (the disk store: its bytes are written and its index record is pending, while the
   * index transaction waits for its batch, milliseconds to a second under load). The caller may
   * let go of its own copy of the bytes then: held until the commit resolves, the copy of every
   * miss outlives the young generation's collections and waits for a mark-compact. A store that
   * makes a version readable only as commit() resolves need not call it.
   */
  onReadable?: () => void;
}

export interface BlobWriter {
  /**
   * Append bytes. Resolves when they are written (for disk: in the temp file, readable through
   * openReadBack()). The writer may keep a reference to `chunk` until commit: do not reuse it.
   * Throws `blob_too_large` past maxEntrySize or `blob_not_stored` on an I/O error; either way the
   * writer has already aborted itself.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Make the object visible atomically, replacing any previous version. Returns the stored meta. */
  commit(meta: CommitMeta, options?: CommitOptions): Promise<StoredMeta>;
  /** Drop everything written; idempotent, never throws. */
  abort(): Promise<void>;
  /**
   * Open the bytes written so far for reading while the write goes on (see GrowingBody). The handle
   * stays valid after commit or abort. Absent for stores that keep bodies in memory only.
   */
  openReadBack?(): Promise<BodyFile>;
}

export interface BlobStoreStats {
  /** Committed objects. */
  entries: number;
  /** Bytes the committed objects take, bodies plus metadata. Never above maxBytes after a commit. */
  bytes: number;
  maxBytes: number;
  /** Writes that failed on I/O (disk full, permissions…) and were dropped. */
  storeErrors: number;
  /** Objects removed to make room. */
  evictions: number;
}

/** An object at hand (BlobStore.getHot). */
export interface HotEntry {
  meta: StoredMeta;
  data: Buffer;
  /**
   * Present when `data` is memory the store lends (a disk hit, src/blob/read-buffers.ts): call it
   * once the bytes are written and touch `data` no more, so the next hit is read into the same
   * memory. Not calling it is safe (the memory is then collected), calling it early is not.
   */
  release?: () => void;
  /**
   * With `release`: how many bytes right before `data` in its memory (`data.buffer`) are free for
   * whoever writes it to fill, up to `data` (a response head, so head and body leave in one write).
   */
  headroom?: number;
}

export interface BlobStore {
  /** The committed object for `key`, or undefined. Counts as a use for LRU eviction. */
  get(key: string): Promise<BlobEntry | undefined>;
  /**
   * The committed object when the store can answer without waiting on anything (in memory, or a
   * small body a disk store reads with one synchronous pread); counts as a use like get().
   * Undefined means "not at hand", not "not stored": ask get() then.
   */
  getHot?(key: string): HotEntry | undefined;
  /** Start writing `key`; undefined when the store will not take it (too large, unusable disk). */
  begin(key: string, expectedSize?: number, options?: WriteOptions): Promise<BlobWriter | undefined>;
  /** Refresh metadata in place (after a 304). False when `key` is not stored. */
  updateMeta(key: string, changes: MetaChanges): Promise<boolean>;
  /** Remove `key`; false when it was not stored. */
  delete(key: string): Promise<boolean>;
  /** A snapshot of the committed keys. O(entries): a store on disk may hold millions; prefer the lists below. */
  keys(): Iterable<string>;
  /** Keys starting with `prefix`, from a sorted index without visiting every key; absent when the store has no such index. */
  keysWithPrefix?(prefix: string, limit?: number): string[];
  /** Keys whose path (without host and query) starts with `prefix`: purge by prefix. Absent without an index. */
  keysUnderPath?(prefix: string): string[];
  /** Keys whose metadata carries `tag`: purge by tag. Absent without an index. */
  keysWithTag?(tag: string): string[];
  stats(): BlobStoreStats;
  /** Abort open writers and release resources; every later call throws `blob_store_closed`. */
  close(): Promise<void>;
}

/** Stable error codes thrown by blob stores and their writers and readers. */
export const BLOB_ERROR_CODES = {
  tooLarge: 'blob_too_large',
  notStored: 'blob_not_stored',
  sizeMismatch: 'blob_size_mismatch',
  checksumMismatch: 'blob_checksum_mismatch',
  keyMismatch: 'blob_key_mismatch',
  writerClosed: 'blob_writer_closed',
  corrupt: 'blob_corrupt',
  gone: 'blob_gone',
  rangeInvalid: 'blob_range_invalid',
  storeClosed: 'blob_store_closed',
  storeLocked: 'blob_store_locked',
  storeUnavailable: 'blob_store_unavailable',
} as const;

export type BlobErrorCode = (typeof BLOB_ERROR_CODES)[keyof typeof BLOB_ERROR_CODES];

export function blobError(code: BlobErrorCode, message: string, cause?: unknown): CdnError {
  return new CdnError(code, 'internal', message, cause === undefined ? {} : { cause });
}

/** A store option that is missing or out of range: refused at construction (STYLE.md: everything bounded). */
export function blobOptionError(field: string, message: string): CdnError {
  return new CdnError('invalid_config', 'client', `${field}: ${message}`, { field });
}

/** Require a positive integer option. */
export function requirePositiveInt(field: string, value: number | undefined): number {
  if (value === undefined || !Number.isSafeInteger(value) || value <= 0) {
    throw blobOptionError(field, `must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** Throws `blob_range_invalid` unless 0 ≤ start ≤ end < size. */
export function checkRange(range: ByteRange, size: number): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= size) {
    throw blobError(BLOB_ERROR_CODES.rangeInvalid, `range ${start}-${end} is outside a body of ${size} bytes`);
  }
}

/**
 * Check a commit against what was written and build the meta the store keeps. `sha256`: the
 * written body's hash, undefined when it was not hashed (WriteOptions.hash false).
 */
export function finalMeta(key: string, written: number, sha256: string | undefined, meta: CommitMeta): StoredMeta {
  if (meta.key !== key) throw blobError(BLOB_ERROR_CODES.keyMismatch, 'commit meta names a different key than begin()');
  if (meta.size !== written) {
    throw blobError(BLOB_ERROR_CODES.sizeMismatch, `commit says ${meta.size} bytes but ${written} were written`);
  }
  if (meta.sha256 !== undefined && sha256 !== undefined && meta.sha256 !== sha256) {
    throw blobError(BLOB_ERROR_CODES.checksumMismatch, 'body hash differs from the sha256 given at commit');
  }
  const out: StoredMeta = {
    version: BLOB_META_VERSION,
    key,
    size: written,
    status: meta.status,
    headers: meta.headers.map(([n, v]) => [n, v] as [string, string]),
    requestTime: meta.requestTime,
    responseTime: meta.responseTime,
    storedAt: meta.storedAt,
  };
  if (sha256 !== undefined) out.sha256 = sha256;
  if (meta.tags !== undefined) out.tags = [...meta.tags];
  return out;
}

/** A copy of `meta` with `changes` applied (the body-owned fields are untouched). */
export function applyMetaChanges(meta: StoredMeta, changes: MetaChanges): StoredMeta {
  const out: StoredMeta = { ...meta };
  if (changes.status !== undefined) out.status = changes.status;
  if (changes.headers !== undefined) out.headers = changes.headers.map(([n, v]) => [n, v] as [string, string]);
  if (changes.requestTime !== undefined) out.requestTime = changes.requestTime;
  if (changes.responseTime !== undefined) out.responseTime = changes.responseTime;
  if (changes.storedAt !== undefined) out.storedAt = changes.storedAt;
  if (changes.tags !== undefined) out.tags = [...changes.tags];
  if (changes.invalidated === true) out.invalidated = true;
  else if (changes.invalidated === false) delete out.invalidated;
  return out;
}

/** Rough bytes a meta takes in memory (UTF-16 strings, array and object overhead). */
export function estimateMetaBytes(meta: StoredMeta): number {
  let n = 256 + meta.key.length * 2;
  for (const [name, value] of meta.headers) n += 48 + (name.length + value.length) * 2;
  for (const tag of meta.tags ?? []) n += 24 + tag.length * 2;
  return n;
}
