/**
 * A memory tier's doorkeeper (as TinyLFU's): keys seen once recently, in a fixed bit set. An object
 * is promoted into memory on its second disk hit, not its first: over a cache far larger than
 * memory, most random disk hits are of objects that will not be asked for again before they would
 * be evicted, and promoting each one costs a copy and an allocation and evicts an entry that was
 * earning its place. The set is cleared once it holds a quarter of its bits, so "recently" means
 * the last few hundred thousand distinct disk hits. A key sharing bits with another may count as
 * seen when it was not: it is then promoted on its first hit, as before.
 */
import { recencyHash } from './disk-recency.js';

/** Bits in the set: 2 Mi (256 KiB). */
const BITS = 2 ** 21;
/** Cleared after this many distinct keys (a quarter of the bits set: the false-positive rate stays below ~6%). */
const RESET_AFTER = BITS / 4;

/** Two independent-enough indexes from one FNV-1a pass (the disk's recency hash; the second from a multiplied mix). */
function hashes(key: string): [number, number] {
  const a = recencyHash(key);
  const b = Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) >>> 0;
  return [a & (BITS - 1), (b ^ (b >>> 12)) & (BITS - 1)];
}

export class SeenOnce {
  private readonly bits = new Uint32Array(BITS / 32);
  private added = 0;

  /** Was `key` recorded since the last clear? */
  has(key: string): boolean {
    const [a, b] = hashes(key);
    return (this.bits[a >>> 5]! & (1 << (a & 31))) !== 0 && (this.bits[b >>> 5]! & (1 << (b & 31))) !== 0;
  }

  /** Records `key`. */
  add(key: string): void {
    const [a, b] = hashes(key);
    if (++this.added > RESET_AFTER) {
      this.bits.fill(0);
      this.added = 1;
    }
    this.bits[a >>> 5] = this.bits[a >>> 5]! | (1 << (a & 31));
    this.bits[b >>> 5] = this.bits[b >>> 5]! | (1 << (b & 31));
  }

  /** True when `key` was recorded since the last clear; otherwise records it and answers false. */
  seenBefore(key: string): boolean {
    if (this.has(key)) return true;
    this.add(key);
    return false;
  }
}
