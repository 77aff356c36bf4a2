/**
 * The store of a cluster worker (edge/cluster.ts): its own memory tier, bounded like a single
 * process's (`memory.maxBytes`, and no body above `memory.maxEntrySize`), over a read-only view of
 * the disk cache the shield process writes. A memory miss is looked up on disk directly, so a disk
 * hit costs no trip to the shield; only what is on neither goes to the shield, which fetches and
 * stores it on disk. Writes (the bodies a worker receives from the shield) go to memory only.
 *
 * A metadata refresh (a 304 from the shield) of an object this worker read from disk is kept
 * beside it (bounded), until the shield's own refresh of the disk entry is at least as new.
 *
 * Its hits are reported to the shield (reportReads), which notes them in the disk's recency marks:
 * as in a single process (TieredBlobStore), a disk hit and a memory hit both count as a read of the
 * disk entry, so eviction keeps what the workers read.
 */
import { LRUCache } from 'lru-cache';
import {
  BLOB_ERROR_CODES,
  applyMetaChanges,
  blobError,
  requirePositiveInt,
  type BlobEntry,
  type BlobStore,
  type BlobStoreStats,
  type BlobWriter,
  type CommitMeta,
  type HotEntry,
  type MetaChanges,
  type StoredMeta,
} from './blob-store.js';
import { bufferEntry, readAll } from './buffer-entry.js';
import type { DiskBlobReader } from './disk-blob-reader.js';
import type { MemoryBlobStore } from './memory-blob-store.js';
import { recencyHash } from './disk-recency.js';
import { ReadHashes } from './read-hashes.js';
import { SeenOnce } from './seen-once.js';

export interface WorkerBlobStoreOptions {
  memory: MemoryBlobStore;
  disk: DiskBlobReader;
  /** Largest body kept in memory (the edge's `memory.maxEntrySize`). */
  memoryMaxEntrySize: number;
}

export interface WorkerBlobStoreStats extends BlobStoreStats {
  /** Disk entries read by this worker. */
  diskReads: number;
}

/** Metadata refreshes of disk entries kept at most. */
const MAX_REFRESHED = 10_000;

export class WorkerBlobStore implements BlobStore {
  readonly memory: MemoryBlobStore;
  readonly disk: DiskBlobReader;
  readonly memoryMaxEntrySize: number;
  private readonly refreshed = new LRUCache<string, StoredMeta>({ max: MAX_REFRESHED });
  private diskReads = 0;
  /** Counts deletions: a read that began before one does not put its bytes in memory. */
  private changes = 0;
  /** Keys hit on disk once recently: promoted into memory on their next disk hit (as TieredBlobStore). */
  private readonly seen = new SeenOnce();
  private closed = false;
  /** The hits not yet reported to the disk's owner (none until reportReads). */
  private reads: ReadHashes | undefined;

  constructor(options: WorkerBlobStoreOptions) {
    this.memory = options.memory;
    this.disk = options.disk;
    this.memoryMaxEntrySize = requirePositiveInt('memoryMaxEntrySize', options.memoryMaxEntrySize);
  }

  async get(key: string): Promise<BlobEntry | undefined> {
    this.assertOpen();
    const hot = await this.memory.get(key);
    if (hot !== undefined) {
      this.reads?.note(key);
      return hot;
    }
    const before = this.changes;
    const entry = await this.disk.get(key);
    if (entry === undefined) return undefined;
    this.diskReads += 1;
    this.reads?.note(key);
    // A body memory keeps comes whole, as in a single process (TieredBlobStore): one over the
    // inline read size arrives as a stream, read once here, then served from memory.
    const data = entry.meta.size <= this.memoryMaxEntrySize ? (entry.data ?? (await readAll(entry))) : undefined;
    if (entry.meta.size <= this.memoryMaxEntrySize && data === undefined) return undefined;
    const newer = this.refreshed.get(key);
    // A disk entry a soft purge marked stale outranks a refresh this worker made before the purge:
    // one made after it went through the shield, which revalidated and cleared the mark first.
    const meta = newer !== undefined && newer.sha256 === entry.meta.sha256 && newer.storedAt > entry.meta.storedAt && entry.meta.invalidated !== true ? newer : entry.meta;
    if (newer !== undefined && meta === entry.meta) this.refreshed.delete(key);
    if (data === undefined) return meta === entry.meta ? entry : { ...entry, meta };
    // Not when the key was deleted (a purge, an invalidation) while its bytes were read; not on a first disk hit.
    if (this.changes === before && this.seen.seenBefore(key)) this.memory.put(meta, data);
    return bufferEntry(meta, data);
  }

  /** From memory, or a small body the disk can read at once when memory would not keep it, or on its first disk hit. */
  getHot(key: string): HotEntry | undefined {
    const hot = this.memory.getHot(key);
    if (hot !== undefined) {
      this.reads?.note(key);
      return hot;
    }
    // One hash of the key for the seen-once filter and the read report.
    const hash = recencyHash(key);
    const seen = this.seen.hasHash(hash);
    const now = this.refreshed.has(key) ? undefined : this.disk.getNow(key, seen ? this.memoryMaxEntrySize : -1);
    if (now === undefined) return undefined;
    if (!seen && now.meta.size <= this.memoryMaxEntrySize) this.seen.addHash(hash);
    this.diskReads += 1;
    this.reads?.noteHash(hash);
    return now;
  }

  async begin(key: string, expectedSize?: number): Promise<BlobWriter | undefined> {
    this.assertOpen();
    if (expectedSize !== undefined && expectedSize > this.memoryMaxEntrySize) return undefined;
    const writer = await this.memory.begin(key, expectedSize);
    return writer === undefined ? undefined : new BoundedWriter(writer, this.memoryMaxEntrySize);
  }

  async updateMeta(key: string, changes: MetaChanges): Promise<boolean> {
    this.assertOpen();
    if (await this.memory.updateMeta(key, changes)) return true;
    const entry = await this.disk.get(key);
    if (entry === undefined) return false;
    const meta = applyMetaChanges(this.refreshed.get(key) ?? entry.meta, changes);
    if (entry.data !== undefined && entry.meta.size <= this.memoryMaxEntrySize) this.memory.put(meta, entry.data);
    else this.refreshed.set(key, meta);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    this.assertOpen();
    this.changes += 1;
    this.refreshed.delete(key);
    // The disk entry is the shield's to remove (invalidations reach it too).
    return this.memory.delete(key);
  }

  keys(): string[] {
    return this.memory.keys();
  }

  keysWithPrefix(prefix: string, limit?: number): string[] {
    return this.disk.keysWithPrefix(prefix, limit);
  }

  /** This worker's memory copies under a path: what a purge removes here (the disk is the shield's to purge). */
  keysUnderPath(prefix: string): string[] {
    return this.memory.keysUnderPath(prefix);
  }

  /** This worker's memory copies carrying `tag`. */
  keysWithTag(tag: string): string[] {
    return this.memory.keysWithTag(tag);
  }

  onDrop(listener: (key: string, reason: 'evicted') => void): () => void {
    return this.memory.onDrop(listener);
  }

  /**
   * From now on, hits (memory and disk) are batched and given to `send` as the recencyHash of
   * their keys (read-hashes.ts), for the disk's owner (DiskBlobStore.noteReadHashes).
   */
  reportReads(send: (hashes: number[]) => void): void {
    this.reads?.flush();
    this.reads = new ReadHashes(send);
  }

  stats(): WorkerBlobStoreStats {
    return { ...this.memory.stats(), diskReads: this.diskReads };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.reads?.flush();
    await this.memory.close();
    await this.disk.close();
  }

  private assertOpen(): void {
    if (this.closed) throw blobError(BLOB_ERROR_CODES.storeClosed, 'worker blob store is closed');
  }
}

/** A memory writer that refuses bodies above the memory tier's entry size (the edge's setting, not the store's metadata allowance). */
class BoundedWriter implements BlobWriter {
  private written = 0;

  constructor(
    private readonly inner: BlobWriter,
    private readonly maxBody: number,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.written += chunk.byteLength;
    if (this.written > this.maxBody) {
      await this.inner.abort();
      throw blobError(BLOB_ERROR_CODES.tooLarge, `object exceeds memory.maxEntrySize (${this.maxBody} bytes)`);
    }
    await this.inner.write(chunk);
  }

  commit(meta: CommitMeta): Promise<StoredMeta> {
    return this.inner.commit(meta);
  }

  abort(): Promise<void> {
    return this.inner.abort();
  }
}
