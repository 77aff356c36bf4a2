/**
 * The store of a cluster worker (edge/cluster.ts): a tiered store, as a single process's, whose
 * disk tier is the node's disk cache opened as a co-writer (disk-blob-store.ts: the primary owns
 * it, every worker writes its own segments). A worker looks its memory and then the disk up, and
 * stores what it fetches on the disk itself (and small bodies in its memory), as one process does.
 *
 * What differs from TieredBlobStore:
 *
 * - **reads** are reported to the disk's owner (reportReads), which alone keeps the recency marks
 *   that eviction reads: a memory hit and a disk hit both count as a read of the disk entry, as in
 *   a single process, so eviction keeps what the workers read.
 * - **purges** find keys in the disk's index and in this worker's memory: another process may
 *   have removed a disk entry (a purge applied there first) whose copy this memory still holds.
 *   The memory tier keeps its lists of keys by path and tag for that.
 * - **a sweep of everything** (a hard purge of everything) removes this worker's memory copies
 *   only: the node's watermark has made every object stored before it absent already, and the
 *   disk's owner sweeps the disk.
 * - **stats** count what this worker holds (its memory); the disk's objects and bytes are its
 *   owner's to report, or a node's metrics, summed over its processes, would count them once per
 *   worker.
 */
import type { BlobEntry, HotEntry } from './blob-store.js';
import type { DiskBlobStore } from './disk-blob-store.js';
import type { MemoryBlobStore } from './memory-blob-store.js';
import { recencyHash } from './disk-recency.js';
import { ReadHashes } from './read-hashes.js';
import { TieredBlobStore, type TieredBlobStoreOptions, type TieredBlobStoreStats } from './tiered-blob-store.js';

export interface WorkerBlobStoreOptions {
  /** This worker's memory tier, with its key lists (MemoryBlobStoreOptions.keyLists). */
  memory: MemoryBlobStore;
  /** The node's disk cache, opened as a co-writer (DiskBlobStoreOptions.writer). */
  disk: DiskBlobStore;
  /** Largest body kept in memory (the edge's `memory.maxEntrySize`). */
  memoryMaxEntrySize: number;
  /** Which committed objects go into memory too (TieredBlobStoreOptions.admitAtCommit). */
  admitAtCommit?: TieredBlobStoreOptions['admitAtCommit'];
}

export class WorkerBlobStore extends TieredBlobStore {
  /** The hits not yet reported to the disk's owner (none until reportReads). */
  private reads: ReadHashes | undefined;

  constructor(options: WorkerBlobStoreOptions) {
    super(options);
  }

  override async get(key: string): Promise<BlobEntry | undefined> {
    const entry = await super.get(key);
    if (entry !== undefined) this.reads?.note(key);
    return entry;
  }

  /** The key is hashed once for the tiers and the read report alike. */
  override getHot(key: string): HotEntry | undefined {
    const hash = recencyHash(key);
    const hot = super.getHot(key, hash);
    if (hot !== undefined) this.reads?.noteHash(hash);
    return hot;
  }

  /** Keys under a path on the disk, and in this worker's memory (see the module comment). */
  override keysUnderPath(prefix: string): string[] {
    return union(this.disk.keysUnderPath(prefix), this.memory.keysUnderPath(prefix));
  }

  /** Keys carrying `tag` on the disk, and in this worker's memory. */
  override keysWithTag(tag: string): string[] {
    return union(this.disk.keysWithTag(tag), this.memory.keysWithTag(tag));
  }

  /** What a hard purge of everything removes here: this worker's memory copies (the disk is its owner's to sweep). */
  keysToSweep(): string[] {
    return this.memory.keys();
  }

  /** This worker's memory tier's objects, bytes and evictions; the failures of its own disk reads and writes. */
  override stats(): TieredBlobStoreStats {
    const all = super.stats();
    const { entries, bytes, maxBytes, evictions } = all.memory;
    return { ...all, entries, bytes, maxBytes, evictions };
  }

  /**
   * From now on, hits (memory and disk) are batched and given to `send` as the recencyHash of
   * their keys (read-hashes.ts), for the disk's owner (DiskBlobStore.noteReadHashes).
   */
  reportReads(send: (hashes: number[]) => void): void {
    this.reads?.flush();
    this.reads = new ReadHashes(send);
  }

  override async close(): Promise<void> {
    this.reads?.flush();
    this.reads = undefined;
    await super.close();
  }
}

function union(a: string[], b: string[]): string[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  return [...new Set([...a, ...b])];
}
