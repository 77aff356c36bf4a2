/**
 * Which disk entries were read since they were written: the disk store's "second chance"
 * (disk-generations.ts). A read costs one hash of the key and one store into a fixed table, so a
 * hit pays nothing for recency that grows with the number of objects; the table's size depends on
 * maxBytes only, never on how many objects there are.
 *
 * Each slot holds the newest generation that was the head when a key hashing to it was read. An
 * entry written in generation g was read since iff its slot holds ≥ g. Keys that share a slot can
 * only make an entry look read when it was not (it is kept a little longer), never the reverse, so
 * an entry that was read is always found read. The table is saved at a clean close and loaded at
 * open; after a crash the marks of the last run are lost, and entries are evicted oldest first.
 *
 * File (`v3/recency`): "ACR1" | slots u32 | head when saved u32 | slots × u32, little-endian.
 */
import { endianness } from 'node:os';
import type { DiskFs } from './disk-fs.js';
import { writeFileAtomic } from './disk-fs.js';

/** The table's bytes are copied as they are in memory where that is the file's order (little-endian). */
const NATIVE_LE = endianness() === 'LE';

const MAGIC = 0x31524341; // "ACR1" read as u32 LE
const HEADER_BYTES = 12;
const MIN_SLOTS = 64;
const MAX_SLOTS = 2 ** 21;

/** Slots for a cache of `maxBytes`: one per 4 KiB, a power of two within 64–2 Mi (256 B–8 MiB of memory). */
export function slotsFor(maxBytes: number): number {
  let slots = MIN_SLOTS;
  while (slots < MAX_SLOTS && slots * 4096 < maxBytes) slots *= 2;
  return slots;
}

/**
 * FNV-1a over the key's UTF-16 code units: cheap, and spread enough for a table index. A cluster
 * worker sends these for its reads to the process that owns the table (noteHash), which masks
 * them to its own size.
 */
export function recencyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class RecencyMarks {
  private readonly mask: number;

  private constructor(private readonly slots: Uint32Array) {
    this.mask = slots.length - 1;
  }

  static empty(slots: number): RecencyMarks {
    return new RecencyMarks(new Uint32Array(slots));
  }

  /** Bytes the table takes in memory and, once saved, on disk. */
  get bytes(): number {
    return HEADER_BYTES + this.slots.byteLength;
  }

  /** `key` was read while `head` was the newest generation. */
  note(key: string, head: number): void {
    this.noteHash(recencyHash(key), head);
  }

  /** A key whose recencyHash is `hash` was read while `head` was the newest generation. */
  noteHash(hash: number, head: number): void {
    const i = hash & this.mask;
    if (this.slots[i]! < head) this.slots[i] = head;
  }

  /** Was `key`, written (or last moved) in generation `g`, read since? False positives only. */
  readSince(key: string, g: number): boolean {
    return this.slots[recencyHash(key) & this.mask]! >= g;
  }

  /** Writes the table to `path` (a temp file renamed over it). */
  async save(fs: DiskFs, tmpDir: string, path: string, head: number): Promise<void> {
    const out = Buffer.alloc(this.bytes);
    out.writeUInt32LE(MAGIC, 0);
    out.writeUInt32LE(this.slots.length, 4);
    out.writeUInt32LE(head, 8);
    Buffer.from(this.slots.buffer, this.slots.byteOffset, this.slots.byteLength).copy(out, HEADER_BYTES);
    if (!NATIVE_LE) out.subarray(HEADER_BYTES).swap32();
    await writeFileAtomic(fs, tmpDir, path, out);
  }

  /**
   * The table saved at `path`, resized to `slots` (folded or repeated, which keeps every mark), or
   * an empty one when there is none or it is damaged. A mark above `head` (the generation the
   * store writes to now) comes down to it: it can only make entries of the head look read.
   */
  static async load(fs: DiskFs, path: string, slots: number, head: number): Promise<RecencyMarks> {
    const data = await fs.readFile(path).catch(() => undefined);
    if (data === undefined || data.length < HEADER_BYTES || data.readUInt32LE(0) !== MAGIC) return RecencyMarks.empty(slots);
    const saved = data.readUInt32LE(4);
    if (saved < 1 || (saved & (saved - 1)) !== 0 || data.length !== HEADER_BYTES + saved * 4) return RecencyMarks.empty(slots);
    // The file's bytes used in place (a copy only when unaligned or big-endian): read slot by slot,
    // the table (8 MiB at most) took ~130 ms of a start, and even one copy ~30 ms here.
    const start = data.byteOffset + HEADER_BYTES;
    const inPlace = NATIVE_LE && start % 4 === 0;
    const bytes = inPlace ? data.buffer : data.buffer.slice(start, data.byteOffset + data.length);
    if (!NATIVE_LE) Buffer.from(bytes).swap32();
    const old = new Uint32Array(bytes, inPlace ? start : 0, saved);
    // Marks are at most the head when saved: only a head that went back (a damaged index) needs a pass.
    if (data.readUInt32LE(8) > head) for (let i = 0; i < saved; i++) old[i] = Math.min(head, old[i]!);
    if (saved === slots) return new RecencyMarks(old);
    const table = new Uint32Array(slots);
    if (saved >= slots) {
      for (let i = 0; i < saved; i++) if (old[i]! > table[i & (slots - 1)]!) table[i & (slots - 1)] = old[i]!;
    } else {
      for (let i = 0; i < slots; i++) table[i] = old[i & (saved - 1)]!;
    }
    return new RecencyMarks(table);
  }
}
