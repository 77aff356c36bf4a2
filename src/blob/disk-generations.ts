/**
 * Recency, space and eviction of the disk store, by generation (see disk-blob-store.ts): time is
 * cut into generations, a new one starting when the head segment (or the bytes of files written
 * since it began) reaches `segmentSize`. When the disk would exceed maxBytes, the oldest generation
 * goes: its entries read since they were written or last moved (disk-recency.ts) are moved to the
 * head first (a packed body is copied there), the others are evicted, and its segment is removed.
 * A hit only notes the read (a hash and a store); no body is copied and no index entry written
 * until its generation comes up for eviction, and the disk is near maxBytes. Once the disk holds
 * more than NEAR_BOUND of maxBytes, that move is done ahead, in the background, for the generation
 * evicted next, so an eviction on the miss path finds little left to move. No memory per object:
 * the index lists entries by generation, the marks are a fixed table.
 */
import { stat } from 'node:fs/promises';
import { sameVersion, type DiskIndex, type IndexRecord } from './disk-index.js';
import { SEGMENT_HEADER_BYTES, keyHash, segmentHeader, type DiskLayout } from './disk-layout.js';
import { readRecord, type RecordReader } from './disk-read.js';
import type { RecencyMarks } from './disk-recency.js';
import type { Segments } from './disk-segments.js';

/** Entries moved at most per background run, and per makeRoom: a full generation of read objects costs bounded copying at a time. */
const MAX_MOVES = 1024;
/** Above this share of maxBytes, the read entries of the generation evicted next are moved ahead, in the background. */
const NEAR_BOUND = 0.75;

export interface GenerationsHost {
  readonly index: DiskIndex;
  readonly segments: Segments;
  readonly layout: DiskLayout;
  readonly reader: RecordReader;
  readonly maxBytes: number;
  readonly segmentSize: number;
  /** Which entries were read since they were written. */
  readonly marks: RecencyMarks;
  /** Where the marks are saved between runs (their file counts as disk space). */
  readonly marksPath: string;
  isClosed(): boolean;
  /** Remove an entry of an evicted generation (index, body file) and tell the drop listeners. */
  evict(rec: IndexRecord): void;
  /** Forget an entry whose bytes failed their checks. */
  dropCorrupt(rec: IndexRecord): void;
}

export class DiskGenerations {
  /** The generation written to now. */
  head: number;
  /** Bytes of body files written in the head generation. */
  private headFileBytes = 0;
  /** Generations up to this one have been evicted (their stale committed list entries are skipped). */
  private evictedUpTo: number;
  private indexBytes = 0;
  private marksBytes = 0;
  private evicting: Promise<void> = Promise.resolve();
  /** Generations up to this one had their read entries moved ahead of their eviction. */
  private evacuatedUpTo: number;
  /** Entries read after their generation's moves were done ahead of its eviction. */
  private readonly late = new Set<string>();
  /** Entries moved to the head so far (read while their generation came up for eviction). */
  moved = 0;

  constructor(private readonly host: GenerationsHost) {
    const { index, segments } = host;
    this.head = DiskGenerations.headOf(index, segments);
    this.evictedUpTo = Math.min(index.oldestGeneration() ?? this.head, ...segments.generations()) - 1;
    this.evacuatedUpTo = this.evictedUpTo;
  }

  /** The generation a store on `index` and `segments` writes to first. */
  static headOf(index: DiskIndex, segments: Segments): number {
    return Math.max(index.newestGeneration(), ...segments.generations(), 0) + 1;
  }

  /** What the disk holds: segment files, body files in whole blocks, the index file, the saved read marks. */
  diskBytes(): number {
    return this.host.segments.allocated + this.host.index.state.fileBytes + this.indexBytes + this.marksBytes;
  }

  /** The allocated blocks of the index file (LMDB may grow it ahead of use, sparsely) and of the saved read marks. */
  async measureIndex(): Promise<void> {
    const allocated = (path: string) =>
      stat(path).then(
        (st) => st.blocks * 512,
        () => 0,
      );
    this.indexBytes = await allocated(this.host.layout.indexPath);
    this.marksBytes = await allocated(this.host.marksPath);
  }

  /** The generation a new body goes to; a full head starts the next one. */
  generationFor(bytes: number, packed: boolean): number {
    const full = this.host.segments.sizeOf(this.head) + this.headFileBytes;
    if (full > 0 && full + bytes > this.host.segmentSize) {
      this.head += 1;
      this.headFileBytes = 0;
    }
    if (!packed) this.headFileBytes += bytes;
    return this.head;
  }

  /** Evict whole generations, oldest first, until `incoming` more bytes fit. Runs one at a time. */
  makeRoom(incoming: number): Promise<void> {
    const run = this.evicting.then(async () => {
      const budget = { moves: MAX_MOVES };
      while (this.diskBytes() + incoming > this.host.maxBytes && !this.host.isClosed()) {
        // Every round evicts a generation after evictedUpTo and moves it on: this ends.
        const oldest = this.oldestGeneration();
        if (oldest === undefined || oldest > this.head) break;
        if (oldest === this.head) {
          // Only the head is left: start a new one so the old head can go.
          this.head += 1;
          this.headFileBytes = 0;
        }
        await this.evictGeneration(oldest, budget);
      }
    });
    this.evicting = run.catch(() => undefined);
    return run;
  }

  /**
   * `key` was read: noted, nothing moves now (see the module comment). A read of an entry whose
   * generation had its moves done ahead already (`g`, when the caller knows it) is remembered, and
   * moved at the next background run. `hash`: the key's recencyHash, when the caller has it.
   */
  noteUse(key: string, g?: number, hash?: number): void {
    if (hash === undefined) this.host.marks.note(key, this.head);
    else this.host.marks.noteHash(hash, this.head);
    if (g !== undefined && g <= this.evacuatedUpTo && this.late.size < MAX_MOVES) this.late.add(key);
  }

  /**
   * The background part of recency: once the disk holds more than NEAR_BOUND of maxBytes, move the
   * read entries of the generation evicted next (at most MAX_MOVES a run), so that its eviction,
   * which a miss may wait for, finds little to move. Runs one at a time with makeRoom.
   */
  evacuateAhead(): Promise<void> {
    const run = this.evicting.then(async () => {
      const budget = { moves: MAX_MOVES };
      await this.moveLate(budget);
      if (this.diskBytes() <= NEAR_BOUND * this.host.maxBytes || this.host.isClosed()) return;
      const g = this.oldestGeneration();
      if (g === undefined || g >= this.head || g <= this.evacuatedUpTo) return;
      // Marked first: a read of `g` while its entries are being moved is remembered (noteUse) and moved next run.
      this.evacuatedUpTo = g;
      if (!(await this.moveReadEntries(g, budget))) this.evacuatedUpTo = Math.min(this.evacuatedUpTo, g - 1);
    });
    this.evicting = run.catch(() => undefined);
    return run;
  }

  private oldestGeneration(): number | undefined {
    const fromIndex = this.host.index.oldestGeneration(this.evictedUpTo);
    const segments = this.host.segments.generations().filter((g) => g > this.evictedUpTo);
    const candidates = fromIndex === undefined ? segments : [fromIndex, ...segments];
    return candidates.length === 0 ? undefined : Math.min(...candidates);
  }

  /** Moves the entries read after their generation's moves were done, if they are still there. */
  private async moveLate(budget: { moves: number }): Promise<void> {
    const keys = [...this.late];
    this.late.clear();
    for (const key of keys) {
      const rec = this.host.index.get(key);
      if (rec === undefined || rec.g > this.evacuatedUpTo || rec.g <= this.evictedUpTo || budget.moves <= 0 || this.host.isClosed()) continue;
      budget.moves -= 1;
      await this.moveUp(rec).catch(() => undefined);
    }
  }

  /** Moves the read entries of `g` to the head, within `budget`; true when none is left behind. */
  private async moveReadEntries(g: number, budget: { moves: number }): Promise<boolean> {
    const { index, marks } = this.host;
    for (const rec of index.generation(g)) {
      if (!marks.readSince(rec.key, rec.g) || !sameVersion(index.get(rec.key), rec)) continue;
      if (budget.moves <= 0 || this.host.isClosed()) return false;
      budget.moves -= 1;
      // No key lock: a commit may hold it and be waiting on this (makeRoom). moveUp checks the
      // version it read is still current right before it writes, so a concurrent commit wins.
      await this.moveUp(rec).catch(() => undefined);
    }
    return true;
  }

  /** Evicts generation `g`: its entries read since they were written move to the head (within `budget`), the others go. */
  private async evictGeneration(g: number, budget: { moves: number }): Promise<void> {
    const { index } = this.host;
    await this.moveReadEntries(g, budget);
    const victims = index.generation(g);
    for (let i = 0; i < victims.length; i++) {
      const rec = victims[i]!;
      if (sameVersion(index.get(rec.key), rec)) this.host.evict(rec);
      if (i % 512 === 511) await new Promise((r) => setImmediate(r)); // a large generation yields to requests
    }
    this.evictedUpTo = Math.max(this.evictedUpTo, g);
    this.evacuatedUpTo = Math.max(this.evacuatedUpTo, g);
    await this.host.segments.remove(g);
  }

  private async moveUp(rec: IndexRecord): Promise<void> {
    const { index, segments } = this.host;
    if (this.host.isClosed() || !sameVersion(index.get(rec.key), rec)) return;
    if (rec.file !== undefined) {
      const g = this.generationFor(0, false);
      await index.put({ ...rec, g, seq: index.nextSeq() });
      this.moved += 1;
      return;
    }
    const found = await readRecord(this.host.reader, rec, { inlineReadMaxSize: Infinity, onCorrupt: () => undefined });
    if (typeof found === 'string' || found.data === undefined) {
      this.host.dropCorrupt(rec);
      return;
    }
    if (!sameVersion(index.get(rec.key), rec)) return;
    const g = this.generationFor(SEGMENT_HEADER_BYTES + found.data.length, true);
    const off = await segments.append(g, [segmentHeader(keyHash(rec.key), found.data, rec.crc[0] ?? 0), found.data]);
    if (sameVersion(index.get(rec.key), rec) && segments.has(g)) {
      await index.put({ ...rec, g, off, seq: index.nextSeq() });
      this.moved += 1;
    }
  }
}
