/**
 * Which primary keys have Vary-dependent entries, on which fields, and which stored keys belong
 * to each URL (so an unsafe request or a purge can remove all of them). Kept in memory and
 * rebuilt from the store's keys at start-up; bounded by the store, since every entry here names a
 * stored object (a primary with no stored keys left is dropped).
 */
import { splitStoredKey } from './cache-keys.js';

export class VaryIndex {
  private readonly fieldsOf = new Map<string, string[]>();
  private readonly keysOf = new Map<string, Set<string>>();

  /** Build from the keys a store holds. */
  static fromKeys(keys: Iterable<string>): VaryIndex {
    const index = new VaryIndex();
    for (const key of keys) index.add(key);
    return index;
  }

  /** The vary fields last seen for `primary`, or undefined when its response does not vary. */
  fields(primary: string): string[] | undefined {
    return this.fieldsOf.get(primary);
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
    this.fieldsOf.delete(primary);
  }

  remove(key: string): void {
    const { primary } = splitStoredKey(key);
    const set = this.keysOf.get(primary);
    if (set === undefined) return;
    set.delete(key);
    if (set.size === 0) {
      this.keysOf.delete(primary);
      this.fieldsOf.delete(primary);
    }
  }

  /** Every stored key of a URL. */
  keysFor(primary: string): string[] {
    return [...(this.keysOf.get(primary) ?? [])];
  }

  primaries(): IterableIterator<string> {
    return this.keysOf.keys();
  }
}
