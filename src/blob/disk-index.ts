/**
 * The disk store's in-memory index: which keys are committed, where their files are, how many
 * bytes they take, and their recency. A Map keeps insertion order, so moving a key to the end on
 * use makes the first key the least recently used: O(1) touch and eviction. Only small fixed
 * fields live here (not headers), so the index stays small for millions of entries.
 *
 * A use moves a key only when it is not among the most recent quarter already (memcached bumps
 * an item at most once a minute for the same reason): every move leaves a deleted slot in the
 * Map, and V8 rebuilds the whole table when they fill it. Moving on every hit cost 6 µs per hit
 * and stalls of 125 ms with a million keys (measured); eviction order stays LRU up to that quarter.
 */

export interface IndexRecord {
  key: string;
  /** SHA-256 of the key: the file name stem. */
  hash: string;
  /** Generation of the committed body file. */
  gen: string;
  /** Body bytes. */
  size: number;
  /** Bytes of the `.meta` record file. */
  recordBytes: number;
  /** The index's own: its use count when the record last moved to the recent end. */
  moved?: number;
}

export function recordCost(rec: IndexRecord): number {
  return rec.size + rec.recordBytes;
}

export class DiskIndex {
  private readonly map = new Map<string, IndexRecord>();
  /** Sum of recordCost over all records. */
  bytes = 0;
  /** Moves to the recent end so far (inserts and uses). */
  private moves = 0;

  get count(): number {
    return this.map.size;
  }

  peek(key: string): IndexRecord | undefined {
    return this.map.get(key);
  }

  /** Look up and mark as recently used (moved to the recent end unless in its newest quarter already). */
  touch(key: string): IndexRecord | undefined {
    const rec = this.map.get(key);
    if (rec !== undefined && this.moves - (rec.moved ?? -Infinity) > this.map.size >> 2) {
      this.map.delete(key);
      this.map.set(key, rec);
      rec.moved = ++this.moves;
    }
    return rec;
  }

  /** Insert as most recently used, replacing (and returning) any record for the same key. */
  set(rec: IndexRecord): IndexRecord | undefined {
    const old = this.remove(rec.key);
    this.map.set(rec.key, rec);
    rec.moved = ++this.moves;
    this.bytes += recordCost(rec);
    return old;
  }

  /** Replace a record in place, keeping its recency (metadata refresh). */
  replace(rec: IndexRecord): void {
    const old = this.map.get(rec.key);
    if (old === undefined) return;
    this.bytes += recordCost(rec) - recordCost(old);
    rec.moved = old.moved;
    this.map.set(rec.key, rec);
  }

  /** Remove `key` (only if its generation is `gen`, when given). */
  remove(key: string, gen?: string): IndexRecord | undefined {
    const rec = this.map.get(key);
    if (rec === undefined || (gen !== undefined && rec.gen !== gen)) return undefined;
    this.map.delete(key);
    this.bytes -= recordCost(rec);
    return rec;
  }

  /**
   * Remove least recently used records, never `keepKey`, until `bytes + incoming <= limit`.
   * Returns the removed records; the caller deletes their files.
   */
  evictFor(incoming: number, limit: number, keepKey?: string): IndexRecord[] {
    const victims: IndexRecord[] = [];
    if (this.bytes + incoming <= limit) return victims;
    let freed = 0;
    for (const rec of this.map.values()) {
      if (rec.key === keepKey) continue;
      victims.push(rec);
      freed += recordCost(rec);
      if (this.bytes + incoming - freed <= limit) break;
    }
    for (const v of victims) this.remove(v.key);
    return victims;
  }

  keys(): string[] {
    return [...this.map.keys()];
  }
}

