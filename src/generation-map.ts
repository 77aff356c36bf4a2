/**
 * A bounded map for caches of lookups: two generations of at most `generation` entries each. A
 * get that finds its entry only in the older one brings it into the newer one; when the newer one
 * is full, the older one is dropped whole and the newer one takes its place. So entries in use
 * stay, at most 2 × `generation` are held, and setting an entry costs one Map set, where a
 * least-recently-used cache (lru-cache) relinks its list on every get and set and, once full,
 * evicts one entry per set: several microseconds of every cold miss, which sets a few.
 */
export class GenerationMap<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();

  /** @param generation Entries per generation: the newest `generation` entries set or used are always kept. */
  constructor(private readonly generation: number) {
    if (!Number.isInteger(generation) || generation < 1) throw new RangeError(`generation must be a positive integer, got ${generation}`);
  }

  get(key: K): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old !== undefined) this.set(key, old);
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.size >= this.generation && !this.current.has(key)) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }

  delete(key: K): void {
    this.current.delete(key);
    this.previous.delete(key);
  }

  /** Every key held, once each. */
  *keys(): IterableIterator<K> {
    yield* this.current.keys();
    for (const key of this.previous.keys()) if (!this.current.has(key)) yield key;
  }
}
