/**
 * The doorkeeper of the disk read path's memos (decoded index records, record checks): whether a
 * key was looked up lately, from a fixed table of key hashes. A memo entry made for every lookup
 * costs little when lookups come back to the same objects, and much when they do not: under hits
 * spread over a million objects nearly every one is the first for its object in the process, and
 * each entry kept outlives a young-generation collection, is promoted and is collected late: a
 * first read's store work cost about twice a read again, half of it in the memos' upkeep and in
 * page faults of a growing heap (test/bench/disk-first-touch.ts). Admitted on its second lookup
 * within the table's reach, an entry is kept only for objects that come back, and objects read
 * once no longer push those out.
 *
 * One slot per hash (direct-mapped): a key's mark lasts until another key takes its slot, so
 * "lately" means within roughly the table's size in distinct lookups, and decays by itself without
 * a clearing pass. Keys sharing a slot only forget each other (admitted a lookup later); keys
 * whose hashes are equal but for their lowest bit count as one (admitted a lookup early). Both
 * cost only time, never an answer.
 */

/** Slots by default: 32 Ki (128 KiB), some times the read path's memos (10–16 Ki entries each). */
const DEFAULT_SLOTS = 2 ** 15;

export class SeenRecently {
  private readonly slots: Uint32Array;
  private readonly mask: number;

  /** @param slots A power of two, at least 2; default 32 Ki. */
  constructor(slots = DEFAULT_SLOTS) {
    if (!Number.isInteger(slots) || slots < 2 || (slots & (slots - 1)) !== 0) throw new RangeError(`slots must be a power of two of at least 2, got ${slots}`);
    this.slots = new Uint32Array(slots);
    this.mask = slots - 1;
  }

  /**
   * True when the key whose hash (recencyHash, 32 bits unsigned) is `hash` was marked and its
   * slot not taken since; otherwise marks it and answers false.
   */
  seenBefore(hash: number): boolean {
    // Never 0, which marks an empty slot.
    const mark = (hash | 1) >>> 0;
    const i = (hash ^ (hash >>> 17)) & this.mask;
    if (this.slots[i] === mark) return true;
    this.slots[i] = mark;
    return false;
  }
}
