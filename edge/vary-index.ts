/**
 * Which primary keys have Vary-dependent entries, on which fields, and which stored keys belong
 * to each URL (so an unsafe request or a purge can remove all of them).
 *
 * Over a store that lists its keys by prefix from an index (the disk store: a range of LMDB's
 * sorted keys), the store is the record: this index only caches what it looked up (bounded), so
 * start-up reads nothing and memory does not grow with the objects on disk. Over a store without
 * one (a memory store, bounded by its own size) every stored key is kept here, as the store's
 * drops are reported (onDrop).
 */
import { LRUCache } from 'lru-cache';
import { CODING_SEPARATOR, VARY_SEPARATOR, splitStoredKey } from './cache-keys.js';

/** What the index needs of the store. */
export interface StoredKeys {
  keys(): Iterable<string>;
  /** Keys starting with `prefix`, from a sorted index (never a scan of every key). */
  keysWithPrefix?(prefix: string, limit?: number): Iterable<string>;
}

/** Marks a primary known not to vary (lru-cache holds no null); compared by identity. */
const NOT_VARYING: string[] = [];

/** Primaries whose lookups are cached over an indexed store. */
const CACHED_PRIMARIES = 100_000;
/**
 * Bounded by count as `maxSize` with every entry of size 1, not as `max`: with `max`, lru-cache
 * allocates its tables for the whole bound up front, 16 ms of CPU per cache at every start on the
 * 2-core reference machine (two caches in each process of an edge) for entries that come one by
 * one; with `maxSize` they grow as entries come. The bound is the same.
 */
const LOOKUP_CACHE = { maxSize: CACHED_PRIMARIES, sizeCalculation: () => 1 } as const;

export class VaryIndex {
  /** Vary fields by primary; NOT_VARYING: known not to vary. */
  private readonly fieldsOf: Map<string, string[]> | LRUCache<string, string[]>;
  /** Stored keys by primary: all of them (no index), or those stored by this process lately (indexed store). */
  private readonly keysOf: Map<string, Set<string>> | LRUCache<string, Set<string>>;

  constructor(private readonly store?: StoredKeys) {
    if (store?.keysWithPrefix !== undefined) {
      this.fieldsOf = new LRUCache(LOOKUP_CACHE);
      this.keysOf = new LRUCache(LOOKUP_CACHE);
    } else {
      this.fieldsOf = new Map();
      this.keysOf = new Map();
      for (const key of store?.keys() ?? []) this.add(key);
    }
  }

  /** Build from a list of keys (a store without an index). */
  static fromKeys(keys: Iterable<string>): VaryIndex {
    return new VaryIndex({ keys: () => keys });
  }

  /** The vary fields last seen for `primary`, or undefined when its response does not vary. */
  fields(primary: string): string[] | undefined {
    let fields = this.fieldsOf.get(primary);
    if (fields === undefined && this.store?.keysWithPrefix !== undefined) {
      fields = NOT_VARYING;
      for (const key of this.store.keysWithPrefix(primary + VARY_SEPARATOR, 1)) fields = splitStoredKey(key).fields ?? NOT_VARYING;
      this.fieldsOf.set(primary, fields);
    }
    return fields === NOT_VARYING ? undefined : fields;
  }

  /** Record a stored key (primary, variant or derived copy). */
  add(key: string): void {
    const { primary, fields } = splitStoredKey(key);
    if (fields !== undefined) this.fieldsOf.set(primary, fields);
    let set = this.keysOf.get(primary);
    if (set === undefined) this.keysOf.set(primary, (set = new Set()));
    set.add(key);
  }

  /** A primary whose response stopped varying: forget the fields. */
  clearFields(primary: string): void {
    if (this.store?.keysWithPrefix !== undefined) this.fieldsOf.set(primary, NOT_VARYING);
    else this.fieldsOf.delete(primary);
  }

  remove(key: string): void {
    const { primary, fields } = splitStoredKey(key);
    // Over an indexed store, look again next time (another variant may still be stored).
    if (fields !== undefined && this.store?.keysWithPrefix !== undefined) this.fieldsOf.delete(primary);
    const set = this.keysOf.get(primary);
    if (set === undefined) return;
    set.delete(key);
    if (set.size === 0) {
      this.keysOf.delete(primary);
      if (this.store?.keysWithPrefix === undefined) this.fieldsOf.delete(primary);
    }
  }

  /** Every stored key of a URL: the primary, its variants and their compressed copies. */
  keysFor(primary: string): string[] {
    const out = new Set(this.keysOf.get(primary) ?? []);
    for (const key of this.store?.keysWithPrefix?.(primary) ?? []) {
      const next = key.charAt(primary.length);
      if (next === '' || next === VARY_SEPARATOR || next === CODING_SEPARATOR) out.add(key);
    }
    return [...out];
  }

  /** Primaries with keys kept here (all of them over a store without an index). */
  primaries(): IterableIterator<string> {
    return this.keysOf.keys();
  }
}
