/**
 * Recently read asset metadata, by path, for a store that is the only writer of its data (the
 * filesystem store: one process owns a root). Every content request starts with head(); on disk
 * that is a symlink-checked path resolution and a JSON file read, five thread-pool round trips
 * that cost more CPU than the rest of the request's own work outside sharp. A hit costs none.
 *
 * Correct because every change of a path goes through the store: a write (put or delete) drops
 * the path's entry when it starts and again when it ends, and a read that overlapped any write is
 * returned but not kept, so no entry can predate the last write of its path. Absent paths are not
 * kept (requests for made-up paths must not fill memory). Bounded by entry count.
 */
import { LRUCache } from 'lru-cache';
import type { AssetMeta } from './asset-store.js';

/**
 * Default bound, 10 000 paths: an entry is a few hundred bytes (more with many tags), so a few MB
 * hold the metadata of every asset a busy site serves within minutes.
 */
export const DEFAULT_META_CACHE_ENTRIES = 10_000;

export class MetaCache {
  readonly #entries: LRUCache<string, AssetMeta> | undefined;
  /** Writes started or ended since creation: a read that saw it change overlapped a write. */
  #writeEvents = 0;
  #writesRunning = 0;

  /** `maxEntries` 0 keeps nothing; anything but a non-negative integer is refused. */
  constructor(maxEntries: number = DEFAULT_META_CACHE_ENTRIES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) {
      throw new RangeError(`maxEntries must be a non-negative integer, got ${maxEntries}`);
    }
    this.#entries = maxEntries === 0 ? undefined : new LRUCache({ max: maxEntries });
  }

  /** The kept metadata of `path`, else what `read` finds, kept unless a write overlapped the read. */
  async read(path: string, read: () => Promise<AssetMeta | undefined>): Promise<AssetMeta | undefined> {
    const kept = this.#entries?.get(path);
    if (kept !== undefined) return kept;
    const before = this.#writeEvents;
    const meta = await read();
    if (meta !== undefined && this.#writesRunning === 0 && this.#writeEvents === before) {
      this.#entries?.set(path, frozen(meta));
    }
    return meta;
  }

  /** Runs `write`, a change of `path`, so that no read before or during it is kept. */
  async write<T>(path: string, write: () => Promise<T>): Promise<T> {
    this.#writeEvents += 1;
    this.#writesRunning += 1;
    this.#entries?.delete(path);
    try {
      return await write();
    } finally {
      this.#entries?.delete(path);
      this.#writesRunning -= 1;
      this.#writeEvents += 1;
    }
  }

  /** Paths kept now. */
  get size(): number {
    return this.#entries?.size ?? 0;
  }
}

/** Every caller gets the same object: none may change what the next one reads. */
function frozen(meta: AssetMeta): AssetMeta {
  Object.freeze(meta.tags);
  return Object.freeze(meta);
}
