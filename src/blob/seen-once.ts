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

/** Two independent-enough indexes from the key's FNV-1a hash (the disk's recencyHash; the second from a multiplied mix). */
function indexes(hash: number): [number, number] {
  const b = Math.imul(hash ^ (hash >>> 15), 0x2c1b3c6d) >>> 0;
  return [hash & (BITS - 1), (b ^ (b >>> 12)) & (BITS - 1)];
}

export class SeenOnce {
  private readonly bits = new Uint32Array(BITS / 32);
  private added = 0;

  /** Was `key` recorded since the last clear? */
  has(key: string): boolean {
    return this.hasHash(recencyHash(key));
  }

  /** has() for the key whose recencyHash is `hash` (a hit hashes its key once for every use). */
  hasHash(hash: number): boolean {
    const [a, b] = indexes(hash);
    return (this.bits[a >>> 5]! & (1 << (a & 31))) !== 0 && (this.bits[b >>> 5]! & (1 << (b & 31))) !== 0;
  }

  /** Records `key`. */
  add(key: string): void {
    this.addHash(recencyHash(key));
  }

  /** add() for the key whose recencyHash is `hash`. */
  addHash(hash: number): void {
    const [a, b] = indexes(hash);
    if (++this.added > RESET_AFTER) {
      this.bits.fill(0);
      this.added = 1;
    }
    this.bits[a >>> 5] = this.bits[a >>> 5]! | (1 << (a & 31));
    this.bits[b >>> 5] = this.bits[b >>> 5]! | (1 << (b & 31));
  }

  /** True when `key` was recorded since the last clear; otherwise records it and answers false. */
  seenBefore(key: string): boolean {
    const hash = recencyHash(key);
    if (this.hasHash(hash)) return true;
    this.addHash(hash);
    return false;
  }
}
