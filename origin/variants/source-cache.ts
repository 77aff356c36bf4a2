/**
 * The sources of recent transforms, kept in memory by content hash. A page asks for several
 * widths and formats of the same upload at once (`srcset`, `<picture>`), so the variants of one
 * source are generated together: each would otherwise re-read the whole original from disk into
 * a fresh buffer (~1 MB for a photo), and the garbage collector pays for every copy. Keyed by the
 * SHA-256 of the bytes, an entry can never be stale: a new upload is a new hash.
 *
 * Bounded by bytes (lru-cache `maxSize`); a source larger than the bound is read for each use
 * and never kept. Concurrent reads of one source share one store read.
 */
import { LRUCache } from 'lru-cache';
import type { AssetMeta, AssetStore } from '../store/asset-store.js';

/**
 * Default bound, 64 MiB: about 80 typical 800 KB photos, i.e. every source of a busy minute's
 * new uploads, for a fraction of what two concurrent decodes of a 50 MP image take (~400 MB).
 */
export const DEFAULT_SOURCE_CACHE_BYTES = 64 * 1024 * 1024;

export interface SourceCache {
  /**
   * The bytes of the version `meta` describes, or undefined when the store no longer has it.
   * Callers must not modify the buffer: it is shared with every other reader of the source.
   */
  read(meta: AssetMeta): Promise<Buffer | undefined>;
  /** Bytes held now (in-flight reads not counted). */
  readonly size: number;
}

export interface SourceCacheOptions {
  store: Pick<AssetStore, 'readVersion'>;
  /** Bound in bytes; 0 keeps nothing (reads are still shared while in flight). */
  maxBytes: number;
}

export function createSourceCache(options: SourceCacheOptions): SourceCache {
  const { store, maxBytes } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError(`maxBytes must be a non-negative integer, got ${maxBytes}`);
  }
  // lru-cache refuses maxSize 0, and `maxEntrySize` defaults to `maxSize`: larger sources are not kept.
  const kept = maxBytes === 0 ? undefined : new LRUCache<string, Buffer>({ maxSize: maxBytes, sizeCalculation: (data) => Math.max(1, data.length) });
  // One entry per source being read: bounded by the callers (reads happen inside the transform limiter).
  const reading = new Map<string, Promise<Buffer | undefined>>();

  function readOnce(meta: AssetMeta): Promise<Buffer | undefined> {
    const job = store.readVersion(meta).then((data) => {
      if (data !== undefined) kept?.set(meta.sha256, data);
      return data;
    });
    reading.set(meta.sha256, job);
    job.then(
      () => reading.delete(meta.sha256),
      () => reading.delete(meta.sha256),
    );
    return job;
  }

  return {
    read(meta) {
      const cached = kept?.get(meta.sha256);
      if (cached !== undefined) return Promise.resolve(cached);
      return reading.get(meta.sha256) ?? readOnce(meta);
    },
    get size() {
      return kept?.calculatedSize ?? 0;
    },
  };
}
