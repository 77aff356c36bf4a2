/**
 * The reads of a cluster worker, batched for the process that owns the disk cache (edge/cluster.ts:
 * the shield), so that eviction counts them as it counts its own (disk-recency.ts). A read costs a
 * hash of its key and a store into a fixed array; the batch goes out as one message when it is full
 * or at most MAX_DELAY_MS after its first read, never one message per hit. A key read again within
 * a batch is usually sent once (a small table of the hashes last seen; a collision only sends it
 * twice). Reads noted less than a batch's delay before their entry's generation is evicted may
 * come too late to keep it: that is the price of not asking the owner on every hit.
 */
import { recencyHash } from './disk-recency.js';

/** Hashes in one batch at most: the owner ignores a larger one (edge/cluster-protocol.ts). */
export const MAX_READ_HASHES = 4096;
/** A read reaches the owner this long after it at most (unless its process is killed). */
export const MAX_DELAY_MS = 1_000;
/** Slots of the table of hashes already in the batch (a power of two). */
const RECENT_SLOTS = 1024;

export class ReadHashes {
  private readonly hashes = new Uint32Array(MAX_READ_HASHES);
  private readonly recent = new Uint32Array(RECENT_SLOTS);
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `send` takes each batch (a copy, 1 to MAX_READ_HASHES hashes). */
  constructor(
    private readonly send: (hashes: number[]) => void,
    private readonly delayMs = MAX_DELAY_MS,
  ) {}

  /** `key` was read. */
  note(key: string): void {
    this.noteHash(recencyHash(key));
  }

  /** The key whose recencyHash is `hash` was read. */
  noteHash(hash: number): void {
    const slot = hash & (RECENT_SLOTS - 1);
    // A zero slot is empty: the hash 0 is always added.
    if (this.recent[slot] === hash && hash !== 0) return;
    this.recent[slot] = hash;
    this.hashes[this.count++] = hash;
    if (this.count === MAX_READ_HASHES) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.delayMs);
      this.timer.unref();
    }
  }

  /** Sends what is batched now (nothing when empty). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.count === 0) return;
    const batch = Array.from(this.hashes.subarray(0, this.count));
    this.count = 0;
    this.recent.fill(0);
    this.send(batch);
  }
}

/** The hashes of a batch from another process, or undefined when it is not one (too many, or not 32-bit unsigned integers). */
export function readHashesOf(value: unknown): number[] | undefined {
  if (!Array.isArray(value) || value.length > MAX_READ_HASHES) return undefined;
  for (const h of value) if (typeof h !== 'number' || !Number.isInteger(h) || h < 0 || h > 0xffffffff) return undefined;
  return value as number[];
}
