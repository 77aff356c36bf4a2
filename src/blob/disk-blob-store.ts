/**
 * The disk blob store: objects as files under one directory (format in disk-layout.ts), an
 * in-memory LRU index bounded in bytes, crash safety by construction:
 *
 * - write: temp file in `tmp/` (streamed, hashed, fsynced) → rename into `v1/<aa>/` → record
 *   written atomically (temp, fsync, rename, fsync dir). The record rename is the commit point; a
 *   crash before it leaves the previous version (or nothing) visible, and the residue is swept at
 *   the next open.
 * - open: wipe `tmp/`, rebuild the index from the records (disk-load.ts), evict down to maxBytes.
 * - read: small bodies (≤ inlineReadMaxSize) come back whole as `data`; larger ones stream. Every
 *   block is CRC-checked before it is served; a corrupt entry is dropped on the spot.
 * - full disk or any I/O error while storing: the write is abandoned quietly (`begin` → undefined,
 *   or `blob_not_stored` from write/commit), `storeErrors` counts it, the store keeps working.
 *
 * One process owns a directory (LOCK file). Eviction happens before each commit, so committed
 * bytes (bodies plus records) never exceed maxBytes; temp files of writes in progress are extra.
 */
import { resolve } from 'node:path';
import { isCdnError } from '../errors.js';
import {
  BLOB_ERROR_CODES,
  applyMetaChanges,
  blobError,
  blobOptionError,
  finalMeta,
  requirePositiveInt,
  type BlobEntry,
  type BlobStore,
  type BlobStoreStats,
  type BlobWriter,
  type CommitMeta,
  type MetaChanges,
  type StoredMeta,
} from './blob-store.js';
import { errnoCode, lockDir, makeDirs, nodeDiskFs, tempPath, unlinkQuietly, writeFileAtomic, type DiskFs } from './disk-fs.js';
import { DiskIndex, recordCost, type IndexRecord } from './disk-index.js';
import { loadIndex, prepareDirs, type LoadReport } from './disk-load.js';
import { bodyName, bodyPath, decodeRecord, encodeRecord, hashKey, layoutOf, metaPath, newGeneration, type DiskLayout, type DiskRecord } from './disk-layout.js';
import { readEntry, type ReadContext } from './disk-reader.js';
import { DiskBlobWriter, type DiskWriterHost, type WrittenBody } from './disk-writer.js';
import { KeyedLock } from './keyed-lock.js';

export interface DiskBlobStoreOptions {
  /** Cache directory, created if missing. Owned by one store in one process (LOCK file). */
  dir: string;
  /** Required, no default: most bytes of committed bodies plus records before LRU eviction. An unbounded disk cache fills the disk. */
  maxBytes: number;
  /** Largest single body accepted. Default maxBytes / 8, so one object cannot flush most of the cache. */
  maxEntrySize?: number;
  /** Bodies up to this size are read whole into `data` by get(): one readFile beats a stream per request. Default 64 KiB. */
  inlineReadMaxSize?: number;
  /** Bytes per checksummed block. Default 256 KiB: a reader holds one block; a 1 GiB body needs a 45 KB record. */
  blockSize?: number;
  /** Records read in parallel at open. Default 32: fast on SSDs without exhausting file descriptors. */
  loadConcurrency?: number;
  /** File-system operations to use instead of node:fs/promises (tests inject failures). Default: node's. */
  fsOps?: Partial<DiskFs>;
}

export interface DiskBlobStoreStats extends BlobStoreStats {
  /** Entries dropped because their bytes failed a checksum on read. */
  corruptDropped: number;
  /** get() calls that failed on I/O and were answered as misses. */
  readErrors: number;
  /** Writers begun and not yet committed or aborted. */
  openWriters: number;
}

export type DropReason = 'evicted' | 'corrupt';

export class DiskBlobStore implements BlobStore, DiskWriterHost {
  readonly maxBytes: number;
  readonly maxEntrySize: number;
  readonly fs: DiskFs;
  private readonly index = new DiskIndex();
  private readonly locks = new KeyedLock();
  private readonly writers = new Set<DiskBlobWriter>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly dropListeners = new Set<(key: string, reason: DropReason) => void>();
  private readonly counters = { storeErrors: 0, evictions: 0, corruptDropped: 0, readErrors: 0 };
  /** Bytes of commits between eviction and index insertion. */
  private reserved = 0;
  private closed = false;
  private readonly reading: ReadContext;

  private constructor(
    private readonly layout: DiskLayout,
    private readonly options: Required<Omit<DiskBlobStoreOptions, 'fsOps' | 'dir'>>,
    fs: DiskFs,
    private readonly unlock: () => Promise<void>,
    /** What open() found and removed; log it. */
    readonly loadReport: LoadReport,
  ) {
    this.maxBytes = options.maxBytes;
    this.maxEntrySize = options.maxEntrySize;
    this.fs = fs;
    this.reading = {
      fs,
      layout,
      inlineReadMaxSize: options.inlineReadMaxSize,
      isCurrent: (rec) => this.index.peek(rec.key) === rec,
      dropCorrupt: (key, gen) => this.dropCorrupt(key, gen),
    };
  }

  static async open(options: DiskBlobStoreOptions): Promise<DiskBlobStore> {
    const maxBytes = requirePositiveInt('maxBytes', options.maxBytes);
    const opts = {
      maxBytes,
      maxEntrySize: requirePositiveInt('maxEntrySize', options.maxEntrySize ?? Math.max(1, Math.floor(maxBytes / 8))),
      inlineReadMaxSize: options.inlineReadMaxSize ?? 64 * 1024,
      blockSize: requirePositiveInt('blockSize', options.blockSize ?? 256 * 1024),
      loadConcurrency: requirePositiveInt('loadConcurrency', options.loadConcurrency ?? 32),
    };
    if (opts.maxEntrySize > maxBytes) throw blobOptionError('maxEntrySize', 'must not exceed maxBytes');
    if (!Number.isSafeInteger(opts.inlineReadMaxSize) || opts.inlineReadMaxSize < 0) throw blobOptionError('inlineReadMaxSize', 'must be an integer ≥ 0');
    if (typeof options.dir !== 'string' || options.dir === '') throw blobOptionError('dir', 'is required');
    const fs: DiskFs = { ...nodeDiskFs, ...options.fsOps };
    const layout = layoutOf(resolve(options.dir));
    let unlock: (() => Promise<void>) | undefined;
    try {
      await makeDirs(fs, layout.root);
      unlock = await lockDir(fs, layout.root);
      await prepareDirs(fs, layout, opts.loadConcurrency);
      const { records, report } = await loadIndex(fs, layout, opts.loadConcurrency);
      const store = new DiskBlobStore(layout, opts, fs, unlock, report);
      for (const rec of records) store.index.set(rec);
      store.drop(store.index.evictFor(0, maxBytes), 'evicted');
      await store.settle();
      return store;
    } catch (err) {
      await unlock?.();
      if (isCdnError(err)) throw err;
      throw blobError(BLOB_ERROR_CODES.storeUnavailable, `cannot open the blob store in ${layout.root} (${errnoCode(err) ?? 'error'})`, err);
    }
  }

  async get(key: string): Promise<BlobEntry | undefined> {
    this.assertOpen();
    // Retry when a concurrent commit swaps the record between the index lookup and the reads.
    for (let attempt = 0; attempt < 3; attempt++) {
      const rec = this.index.touch(key);
      if (rec === undefined) return undefined;
      try {
        const found = await readEntry(this.reading, rec);
        if (found !== 'retry') return found;
      } catch {
        this.counters.readErrors += 1;
        return undefined;
      }
    }
    return undefined;
  }

  async begin(key: string, expectedSize?: number): Promise<BlobWriter | undefined> {
    this.assertOpen();
    if (expectedSize !== undefined && expectedSize > this.maxEntrySize) return undefined;
    const limits = { maxEntrySize: this.maxEntrySize, expectedSize, blockSize: this.options.blockSize };
    try {
      const writer = await DiskBlobWriter.create(this, key, tempPath(this.layout.tmpDir, '.body.part'), limits);
      this.writers.add(writer);
      return writer;
    } catch {
      this.counters.storeErrors += 1;
      return undefined;
    }
  }

  /** DiskWriterHost: make a finished temp body the committed version of `key`. */
  place(key: string, body: WrittenBody, meta: CommitMeta): Promise<StoredMeta> {
    const stored = finalMeta(key, body.size, body.sha256, meta);
    const hash = hashKey(key);
    const gen = newGeneration();
    const record: DiskRecord = { version: 1, body: bodyName(hash, gen), blockSize: body.blockSize, blockCrc32: body.blockCrc32, meta: stored };
    const bytes = encodeRecord(record);
    const cost = body.size + bytes.length;
    if (cost > this.maxBytes) throw blobError(BLOB_ERROR_CODES.tooLarge, 'object and record exceed maxBytes');
    return this.track(
      this.locks.run(key, async () => {
        this.assertOpen();
        const old = this.index.peek(key);
        // Evict before committing, counting this key's current version as freed by the replacement.
        const incoming = cost + this.reserved - (old === undefined ? 0 : recordCost(old));
        this.drop(this.index.evictFor(incoming, this.maxBytes, key), 'evicted');
        this.reserved += cost;
        const finalBody = bodyPath(this.layout, hash, gen);
        try {
          await this.fs.rename(body.tmpPath, finalBody);
          try {
            await writeFileAtomic(this.fs, this.layout.tmpDir, metaPath(this.layout, hash), bytes);
          } catch (err) {
            await unlinkQuietly(this.fs, finalBody);
            throw err;
          }
        } finally {
          this.reserved -= cost;
        }
        const replaced = this.index.set({ key, hash, gen, size: body.size, recordBytes: bytes.length });
        if (replaced !== undefined) await unlinkQuietly(this.fs, bodyPath(this.layout, hash, replaced.gen));
        return stored;
      }),
    );
  }

  async updateMeta(key: string, changes: MetaChanges): Promise<boolean> {
    this.assertOpen();
    return this.track(
      this.locks.run(key, async () => {
        const rec = this.index.peek(key);
        if (rec === undefined) return false;
        const path = metaPath(this.layout, rec.hash);
        try {
          const text = await this.fs.readFile(path, 'utf8').catch((err: unknown) => (errnoCode(err) === 'ENOENT' ? '' : Promise.reject(err)));
          const record = decodeRecord(text as string, rec.hash);
          if (typeof record === 'string') {
            this.dropCorrupt(rec.key, rec.gen);
            return false;
          }
          const bytes = encodeRecord({ ...record, meta: applyMetaChanges(record.meta, changes) });
          await writeFileAtomic(this.fs, this.layout.tmpDir, path, bytes);
          if (this.index.peek(key) === rec) this.index.replace({ ...rec, recordBytes: bytes.length });
        } catch (err) {
          this.counters.storeErrors += 1;
          throw blobError(BLOB_ERROR_CODES.notStored, `metadata refresh failed (${errnoCode(err) ?? 'error'})`, err);
        }
        this.drop(this.index.evictFor(0, this.maxBytes, key), 'evicted');
        return true;
      }),
    );
  }

  async delete(key: string): Promise<boolean> {
    this.assertOpen();
    return this.track(
      this.locks.run(key, async () => {
        const rec = this.index.remove(key);
        if (rec === undefined) return false;
        await unlinkQuietly(this.fs, metaPath(this.layout, rec.hash));
        await unlinkQuietly(this.fs, bodyPath(this.layout, rec.hash, rec.gen));
        return true;
      }),
    );
  }

  keys(): string[] {
    this.assertOpen();
    return this.index.keys();
  }

  /** Mark `key` as just used without reading it (the tiered store calls this on memory hits). */
  touch(key: string): boolean {
    return this.index.touch(key) !== undefined;
  }

  /** Listen for entries the store removes by itself (eviction, corruption); returns the unsubscribe. */
  onDrop(listener: (key: string, reason: DropReason) => void): () => void {
    this.dropListeners.add(listener);
    return () => this.dropListeners.delete(listener);
  }

  stats(): DiskBlobStoreStats {
    return { entries: this.index.count, bytes: this.index.bytes, maxBytes: this.maxBytes, ...this.counters, openWriters: this.writers.size };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true; // commits still queued fail with blob_store_closed and clean up after themselves
    await Promise.all([...this.writers].map((w) => w.abort()));
    await this.settle();
    await this.unlock();
  }

  /** DiskWriterHost */
  ioFailed(): void {
    this.counters.storeErrors += 1;
  }

  /** DiskWriterHost */
  release(writer: DiskBlobWriter): void {
    this.writers.delete(writer);
  }

  /** Forget `key` if its committed generation is still `gen`, and delete its files. */
  private dropCorrupt(key: string, gen: string): undefined {
    const rec = this.index.remove(key, gen);
    if (rec !== undefined) this.drop([rec], 'corrupt');
    return undefined;
  }

  /** Delete the files of records already removed from the index, each under its key's lock. */
  private drop(records: IndexRecord[], reason: DropReason): void {
    for (const rec of records) {
      this.counters[reason === 'evicted' ? 'evictions' : 'corruptDropped'] += 1;
      for (const listener of this.dropListeners) listener(rec.key, reason);
      const removal = this.locks.run(rec.key, async () => {
        await unlinkQuietly(this.fs, bodyPath(this.layout, rec.hash, rec.gen));
        // A newer version committed since owns the record file now.
        if (this.index.peek(rec.key) === undefined) await unlinkQuietly(this.fs, metaPath(this.layout, rec.hash));
      });
      void this.track(removal);
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.background.add(p);
    const done = () => this.background.delete(p);
    p.then(done, done);
    return p;
  }

  /** Wait for every commit, refresh and removal in flight. */
  private async settle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private assertOpen(): void {
    if (this.closed) throw blobError(BLOB_ERROR_CODES.storeClosed, 'disk blob store is closed');
  }
}
