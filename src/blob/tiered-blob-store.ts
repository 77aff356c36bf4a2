/**
 * The tiered blob store: a memory store over a disk store. The disk is the record of what is
 * cached (entries, bytes, eviction, persistence); memory holds copies of small hot objects so a hit
 * costs no I/O.
 *
 * - get: memory first (and the disk entry is marked used, so disk LRU follows real use); else disk,
 *   promoting objects ≤ memoryMaxEntrySize into memory on their second disk hit within the last
 *   few hundred thousand distinct ones (seen-once.ts): a first hit is served from what the disk
 *   read, so objects asked for once do not push hot ones out. Larger objects never sit whole in memory.
 * - begin: writes go to disk; small objects are also collected and put into memory at commit
 *   (with `admitAtCommit: 'seen'`, only those whose key was asked for recently; the others are
 *   kept on their first hit: see the option).
 * - updateMeta / delete apply to both; whatever the disk drops (eviction, corruption) leaves memory.
 *
 * Consistency: memory never serves a version the disk no longer has. A promotion is skipped when
 * any change happened during its disk read (a global change counter), so a slow get cannot put a
 * replaced version back into memory.
 */
import {
  BLOB_ERROR_CODES,
  blobError,
  requirePositiveInt,
  type BlobEntry,
  type BlobStore,
  type BlobStoreStats,
  type BlobWriter,
  type BodyFile,
  type CommitMeta,
  type CommitOptions,
  type HotEntry,
  type MetaChanges,
  type StoredMeta,
  type WriteOptions,
} from './blob-store.js';
import { bufferEntry, readAll, wholeOf } from './buffer-entry.js';
import type { DiskBlobStore, DiskBlobStoreStats } from './disk-blob-store.js';
import type { DiskBlobWriter } from './disk-writer.js';
import type { MemoryBlobStore } from './memory-blob-store.js';
import { recencyHash } from './disk-recency.js';
import { SeenOnce } from './seen-once.js';

export interface TieredBlobStoreOptions {
  /** The hot tier. Its own maxBytes bounds the memory used. */
  memory: MemoryBlobStore;
  /** The tier of record; its maxBytes is the store's maxBytes. */
  disk: DiskBlobStore;
  /**
   * Objects up to this size are kept in memory as well. Default 1 MiB: images and small assets are
   * served from RAM, while video-sized bodies stream from disk instead of evicting hundreds of them.
   */
  memoryMaxEntrySize?: number;
  /**
   * Which committed objects go into memory as well. `'always'` (the default): every small one.
   * `'seen'`: one whose key was asked for recently (a disk hit, or an earlier commit of it), as a
   * refetch of a known object is; a first fetch is noted instead, and its first hit, getHot's
   * read of the disk or get()'s, keeps a copy in memory. Most objects a CDN fetches are asked for
   * once: holding each in memory from its miss on costs every miss fresh pages (a 50 KiB body is
   * ~13 page faults) and garbage collections over bodies never read again. The edge uses `'seen'`.
   */
  admitAtCommit?: 'always' | 'seen';
}

export interface TieredBlobStoreStats extends DiskBlobStoreStats {
  memory: BlobStoreStats;
}

export class TieredBlobStore implements BlobStore {
  readonly memory: MemoryBlobStore;
  readonly disk: DiskBlobStore;
  readonly memoryMaxEntrySize: number;
  private readonly admitSeenOnly: boolean;
  /** Bumped on every change to what is stored; see the module comment. */
  private changes = 0;
  /** Keys hit on disk once recently: promoted on their next disk hit. */
  private readonly seen = new SeenOnce();
  /** Keys committed recently without a memory copy (admitAtCommit 'seen'): promoted on their first hit. */
  private readonly committedOnly = new SeenOnce();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(options: TieredBlobStoreOptions) {
    this.memory = options.memory;
    this.disk = options.disk;
    this.memoryMaxEntrySize = requirePositiveInt('memoryMaxEntrySize', options.memoryMaxEntrySize ?? 1024 * 1024);
    this.admitSeenOnly = options.admitAtCommit === 'seen';
    this.unsubscribe = this.disk.onDrop((key) => this.forget(key));
  }

  async get(key: string): Promise<BlobEntry | undefined> {
    this.assertOpen();
    const hot = await this.memory.get(key);
    if (hot !== undefined) {
      this.disk.touch(key);
      return hot;
    }
    const before = this.changes;
    const entry = await this.disk.get(key);
    if (entry === undefined || entry.meta.size > this.memoryMaxEntrySize) return entry;
    if (!this.committedOnly.has(key) && !this.seen.seenBefore(key)) return entry;
    const data = entry.data ?? (await readAll(entry));
    if (data === undefined) return undefined;
    if (this.changes === before) this.memory.put(entry.meta, data);
    return bufferEntry(entry.meta, data);
  }

  /**
   * From memory, or a small body the disk can read at once (DiskBlobStore.getNow): one memory
   * would not keep, or one not hit on disk recently (its first hit). Never promoted from here: the
   * caller uses get() when this says no, which promotes. `hash`: the key's recencyHash, made once
   * per hit for the seen-once filters and the disk's recency marks (and a cluster worker's read
   * report: WorkerBlobStore passes its own).
   */
  getHot(key: string, hash = recencyHash(key)): HotEntry | undefined {
    const hot = this.memory.getHot(key);
    if (hot !== undefined) {
      this.disk.touch(key, hash);
      return hot;
    }
    if (this.committedOnly.hasHash(hash)) return this.promoteNow(key, hash);
    if (this.seen.hasHash(hash)) return this.disk.getNow(key, this.memoryMaxEntrySize, hash);
    const now = this.disk.getNow(key, -1, hash);
    if (now !== undefined && now.meta.size <= this.memoryMaxEntrySize) this.seen.addHash(hash);
    return now;
  }

  /**
   * The first hit of an object committed without a memory copy: read from the disk at once, and
   * answered from the copy kept in memory (the disk lends its bytes only until they are written
   * out), so this hit and the next share one entry.
   */
  private promoteNow(key: string, hash: number): HotEntry | undefined {
    const now = this.disk.getNow(key, -1, hash);
    if (now === undefined || now.meta.size > this.memoryMaxEntrySize || !this.memory.put(now.meta, Buffer.from(now.data))) return now;
    now.release?.();
    return this.memory.getHot(key) ?? this.disk.getNow(key, -1, hash);
  }

  async begin(key: string, expectedSize?: number, options?: WriteOptions): Promise<BlobWriter | undefined> {
    this.assertOpen();
    const writer = await this.disk.begin(key, expectedSize, options);
    if (writer === undefined) return undefined;
    const small = expectedSize === undefined || expectedSize <= this.memoryMaxEntrySize;
    // A key not seen recently (admitAtCommit 'seen') is noted at commit instead of kept.
    const note = small && this.admitSeenOnly ? recencyHash(key) : undefined;
    const collect = small && (note === undefined || this.seen.hasHash(note) || this.committedOnly.hasHash(note));
    return new TieredBlobWriter(
      writer,
      collect ? this.memoryMaxEntrySize : -1,
      (meta, data) => this.committed(meta, data, collect ? undefined : note),
      // The new version is readable from the disk: memory must not answer with the one it replaces.
      () => this.forget(key),
    );
  }

  /** `note`: the hash of a key to record as seen (a small body not kept). */
  private committed(meta: StoredMeta, data: Buffer | undefined, note: number | undefined): void {
    this.forget(meta.key);
    if (data !== undefined) this.memory.put(meta, data);
    else if (note !== undefined && meta.size <= this.memoryMaxEntrySize) this.committedOnly.addHash(note);
  }

  async updateMeta(key: string, changes: MetaChanges): Promise<boolean> {
    this.assertOpen();
    const updated = await this.disk.updateMeta(key, changes);
    this.changes += 1;
    if (updated) await this.memory.updateMeta(key, changes);
    else await this.memory.delete(key);
    return updated;
  }

  async delete(key: string): Promise<boolean> {
    this.assertOpen();
    this.forget(key);
    const deleted = await this.disk.delete(key);
    this.forget(key);
    return deleted;
  }

  keys(): string[] {
    return this.disk.keys();
  }

  keysWithPrefix(prefix: string, limit?: number): string[] {
    return this.disk.keysWithPrefix(prefix, limit);
  }

  keysUnderPath(prefix: string): string[] {
    return this.disk.keysUnderPath(prefix);
  }

  keysWithTag(tag: string): string[] {
    return this.disk.keysWithTag(tag);
  }

  stats(): TieredBlobStoreStats {
    return { ...this.disk.stats(), memory: this.memory.stats() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    await this.disk.close();
    await this.memory.close();
  }

  /** Drop the memory copy of `key` and invalidate promotions in flight. */
  private forget(key: string): void {
    this.changes += 1;
    if (!this.closed) void this.memory.delete(key);
  }

  private assertOpen(): void {
    if (this.closed) throw blobError(BLOB_ERROR_CODES.storeClosed, 'tiered blob store is closed');
  }
}

/** A disk writer that also keeps the bytes of small objects for the memory tier. */
class TieredBlobWriter implements BlobWriter {
  private chunks: Buffer[] | undefined = [];
  private collected = 0;

  constructor(
    private readonly disk: DiskBlobWriter,
    /** Collect at most this many bytes; -1 collects nothing. */
    private readonly collectLimit: number,
    private readonly onCommit: (meta: StoredMeta, data: Buffer | undefined) => void,
    private readonly onReadable: () => void,
  ) {
    if (collectLimit < 0) this.chunks = undefined;
    else disk.keepPackedBody();
  }

  async write(chunk: Uint8Array): Promise<void> {
    await this.disk.write(chunk);
    if (this.chunks === undefined) return;
    this.collected += chunk.byteLength;
    if (this.collected > this.collectLimit) this.chunks = undefined;
    else this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }

  async commit(meta: CommitMeta, options?: CommitOptions): Promise<StoredMeta> {
    const onReadable = options?.onReadable;
    let readable = false;
    let stored: StoredMeta;
    try {
      stored = await this.disk.commit(meta, {
        onReadable: () => {
          readable = true;
          this.onReadable();
          onReadable?.();
        },
      });
    } catch (err) {
      // Readable but not committed (its generation evicted meanwhile, or the index write failed):
      // a lookup in between may have taken that version into memory, which must not outlive it.
      if (readable) this.onReadable();
      throw err;
    }
    // A packed body is one Buffer already (what the disk wrote): memory keeps the same bytes.
    const data = this.chunks === undefined ? undefined : (this.disk.packedBody ?? wholeOf(this.chunks, this.collected));
    this.chunks = undefined;
    this.onCommit(stored, data);
    return stored;
  }

  async abort(): Promise<void> {
    this.chunks = undefined;
    await this.disk.abort();
  }

  openReadBack(): Promise<BodyFile> {
    return this.disk.openReadBack();
  }
}
