/**
 * The memory blob store: whole bodies in Buffers inside an lru-cache bounded in bytes (body length
 * plus an estimate of the metadata). It is the hot tier of the edge: a hit is a Buffer handed to
 * the response with no I/O. Construction is refused without both bounds.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import {
  BLOB_ERROR_CODES,
  applyMetaChanges,
  blobError,
  blobOptionError,
  estimateMetaBytes,
  finalMeta,
  requirePositiveInt,
  type BlobEntry,
  type BlobStore,
  type BlobStoreStats,
  type BlobWriter,
  type CommitMeta,
  type MetaChanges,
  type StoredMeta,
  type WriteOptions,
} from './blob-store.js';
import { bufferEntry, freezeMeta, wholeOf } from './buffer-entry.js';
import { KeyLists } from './key-lists.js';

export interface MemoryBlobStoreOptions {
  /**
   * Required, no default: the most bytes (bodies plus estimated metadata) the store holds before
   * evicting the least recently used objects. An unbounded memory cache is how edges fall over.
   */
  maxBytes: number;
  /**
   * Required, no default, at most maxBytes: the largest single object (body plus metadata
   * estimate) accepted. One big object must not flush everything else out of memory.
   */
  maxEntrySize: number;
  /** The path a key belongs to, for keysUnderPath (the edge passes the URL path of its cache keys). Default: the key itself. */
  pathOf?: (key: string) => string;
  /**
   * Keep lists of keys by path and by tag as objects come and go, so keysUnderPath and keysWithTag
   * answer without visiting every object. Default true. A memory tier under a store that lists its
   * keys itself (the tiered store asks its disk) turns them off: they cost a set membership and a
   * path parse per object stored, for lists nobody reads; without them those two calls still
   * answer, by a visit of every object.
   */
  keyLists?: boolean;
}

interface MemoryRecord {
  meta: StoredMeta;
  data: Buffer;
}

export class MemoryBlobStore implements BlobStore {
  readonly maxBytes: number;
  readonly maxEntrySize: number;
  private readonly cache: LRUCache<string, MemoryRecord>;
  private readonly writers = new Set<MemoryBlobWriter>();
  private evictions = 0;
  private closed = false;
  private readonly dropListeners = new Set<(key: string, reason: 'evicted') => void>();
  private readonly lists: KeyLists | undefined;
  private readonly pathOf: (key: string) => string;

  constructor(options: MemoryBlobStoreOptions) {
    this.pathOf = options.pathOf ?? ((key) => key);
    this.lists = options.keyLists === false ? undefined : new KeyLists(this.pathOf);
    this.maxBytes = requirePositiveInt('maxBytes', options.maxBytes);
    this.maxEntrySize = requirePositiveInt('maxEntrySize', options.maxEntrySize);
    if (this.maxEntrySize > this.maxBytes) throw blobOptionError('maxEntrySize', 'must not exceed maxBytes');
    this.cache = new LRUCache<string, MemoryRecord>({
      maxSize: this.maxBytes,
      maxEntrySize: this.maxEntrySize,
      sizeCalculation: (rec) => recordSize(rec),
      dispose: (rec, key, reason) => {
        // A replacement's lists are updated by put(), which knows both versions.
        if (reason !== 'set') this.lists?.remove(key, rec.meta);
        if (reason !== 'evict') return;
        this.evictions += 1;
        for (const listener of this.dropListeners) listener(key, 'evicted');
      },
    });
  }

  async get(key: string): Promise<BlobEntry | undefined> {
    this.assertOpen();
    const rec = this.cache.get(key);
    return rec === undefined ? undefined : bufferEntry(rec.meta, rec.data);
  }

  /**
   * Calls `listener` with each key this store drops by itself to make room (not deletes or
   * replacements): whoever keeps an index of its keys forgets them then. Returns the unsubscribe.
   */
  onDrop(listener: (key: string, reason: 'evicted') => void): () => void {
    this.dropListeners.add(listener);
    return () => this.dropListeners.delete(listener);
  }

  getHot(key: string): { meta: StoredMeta; data: Buffer } | undefined {
    this.assertOpen();
    return this.cache.get(key);
  }

  /** The entry without counting a use (the tiered store checks memory before disk with it). */
  peek(key: string): BlobEntry | undefined {
    const rec = this.cache.peek(key);
    return rec === undefined ? undefined : bufferEntry(rec.meta, rec.data);
  }

  async begin(key: string, expectedSize?: number, options?: WriteOptions): Promise<BlobWriter | undefined> {
    this.assertOpen();
    if (expectedSize !== undefined && expectedSize > this.maxEntrySize) return undefined;
    const writer = new MemoryBlobWriter(key, this.maxEntrySize, options?.hash !== false, this, () => this.writers.delete(writer));
    this.writers.add(writer);
    return writer;
  }

  /**
   * Insert a finished object directly (the tiered store promotes disk hits with it). `meta` must
   * already be final (as returned by a commit or a get). False when it exceeds maxEntrySize.
   */
  put(meta: StoredMeta, data: Buffer): boolean {
    this.assertOpen();
    const rec: MemoryRecord = { meta: freezeMeta({ ...meta }), data };
    if (recordSize(rec) > this.maxEntrySize) {
      this.cache.delete(meta.key);
      return false;
    }
    const old = this.cache.peek(meta.key);
    this.cache.set(meta.key, rec);
    if (old !== undefined) this.lists?.remove(meta.key, old.meta);
    if (!this.cache.has(meta.key)) return false;
    this.lists?.add(meta.key, rec.meta);
    return true;
  }

  async updateMeta(key: string, changes: MetaChanges): Promise<boolean> {
    this.assertOpen();
    const rec = this.cache.peek(key);
    if (rec === undefined) return false;
    this.put(applyMetaChanges(rec.meta, changes), rec.data);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    this.assertOpen();
    return this.cache.delete(key);
  }

  keys(): string[] {
    this.assertOpen();
    return [...this.cache.keys()];
  }

  /** Keys whose path (options.pathOf) starts with `prefix`: purge by prefix. */
  keysUnderPath(prefix: string): string[] {
    this.assertOpen();
    if (this.lists !== undefined) return this.lists.underPath(prefix);
    return [...this.cache.keys()].filter((key) => this.pathOf(key).startsWith(prefix));
  }

  /** Keys whose metadata carries `tag`: purge by tag. */
  keysWithTag(tag: string): string[] {
    this.assertOpen();
    if (this.lists !== undefined) return this.lists.withTag(tag);
    const out: string[] = [];
    for (const [key, rec] of this.cache.entries()) if (rec.meta.tags?.includes(tag) === true) out.push(key);
    return out;
  }

  stats(): BlobStoreStats {
    return {
      entries: this.cache.size,
      bytes: this.cache.calculatedSize,
      maxBytes: this.maxBytes,
      storeErrors: 0,
      evictions: this.evictions,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.writers].map((w) => w.abort()));
    this.cache.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw blobError(BLOB_ERROR_CODES.storeClosed, 'memory blob store is closed');
  }
}

function recordSize(rec: MemoryRecord): number {
  return rec.data.length + estimateMetaBytes(rec.meta);
}

class MemoryBlobWriter implements BlobWriter {
  private chunks: Buffer[] = [];
  private written = 0;
  private done = false;

  constructor(
    private readonly key: string,
    private readonly maxBodyBytes: number,
    /** Hash the body at commit (WriteOptions.hash). */
    private readonly hash: boolean,
    private readonly store: MemoryBlobStore,
    private readonly release: () => void,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw blobError(BLOB_ERROR_CODES.writerClosed, 'write after commit or abort');
    this.written += chunk.byteLength;
    if (this.written > this.maxBodyBytes) {
      await this.abort();
      throw blobError(BLOB_ERROR_CODES.tooLarge, `object exceeds maxEntrySize (${this.maxBodyBytes} bytes)`);
    }
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }

  async commit(meta: CommitMeta): Promise<StoredMeta> {
    if (this.done) throw blobError(BLOB_ERROR_CODES.writerClosed, 'commit after commit or abort');
    const data = wholeOf(this.chunks, this.written);
    await this.abort();
    const stored = finalMeta(this.key, data.length, this.hash ? createHash('sha256').update(data).digest('hex') : undefined, meta);
    if (!this.store.put(stored, data)) {
      throw blobError(BLOB_ERROR_CODES.tooLarge, `object and metadata exceed maxEntrySize`);
    }
    return stored;
  }

  async abort(): Promise<void> {
    this.done = true;
    this.chunks = [];
    this.release();
  }
}
