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
import { CODING_SEPARATOR, VARY_SEPARATOR, splitStoredKey } from './cache-keys.js';
import { GenerationMap } from '../src/generation-map.js';

/** What the index needs of the store. */
export interface StoredKeys {
  keys(): Iterable<string>;
  /** Keys starting with `prefix`, from a sorted index (never a scan of every key). */
  keysWithPrefix?(prefix: string, limit?: number): Iterable<string>;
}

/** Marks a primary known not to vary; compared by identity. */
const NOT_VARYING: string[] = [];

/**
 * Primaries whose lookups are cached over an indexed store, per generation (GenerationMap): the
 * last 50,000 used are always cached, at most 100,000 are. A generation map rather than an LRU
 * cache: every cold miss sets both maps, and an lru-cache set (with an eviction once full) cost
 * microseconds of it.
 */
const CACHED_PRIMARIES = 50_000;

/**
 * The stored keys of one primary: the key itself when there is one (nearly always: the object,
 * not varying and not compressed), a Set only once there are several.
 */
type KeySet = string | Set<string>;

/** What both bookkeeping maps need: a Map (every key, no index) or a GenerationMap (lookups, indexed store). */
interface KeyedMap<V> {
  get(key: string): V | undefined;
  set(key: string, value: V): void;
  delete(key: string): unknown;
  keys(): IterableIterator<string>;
}

export class VaryIndex {
  /** Vary fields by primary; NOT_VARYING: known not to vary. */
  private readonly fieldsOf: KeyedMap<string[]>;
  /** Stored keys by primary: all of them (no index), or those stored by this process lately (indexed store). */
  private readonly keysOf: KeyedMap<KeySet>;

  constructor(private readonly store?: StoredKeys) {
    if (store?.keysWithPrefix !== undefined) {
      this.fieldsOf = new GenerationMap(CACHED_PRIMARIES);
      this.keysOf = new GenerationMap(CACHED_PRIMARIES);
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
    const held = this.keysOf.get(primary);
    if (held === undefined) this.keysOf.set(primary, key);
    else if (typeof held !== 'string') held.add(key);
    else if (held !== key) this.keysOf.set(primary, new Set([held, key]));
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
    const held = this.keysOf.get(primary);
    if (held === undefined) return;
    if (typeof held !== 'string') held.delete(key);
    if (typeof held === 'string' ? held === key : held.size === 0) {
      this.keysOf.delete(primary);
      if (this.store?.keysWithPrefix === undefined) this.fieldsOf.delete(primary);
    }
  }

  /** Every stored key of a URL: the primary, its variants and their compressed copies. */
  keysFor(primary: string): string[] {
    const held = this.keysOf.get(primary);
    const out = new Set(typeof held === 'string' ? [held] : held);
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
