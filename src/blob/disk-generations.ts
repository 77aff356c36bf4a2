/**
 * Recency, space and eviction of the disk store, by generation (see disk-blob-store.ts): time is
 * cut into generations, a new one starting when the head segment (or the bytes of files written
 * since it began) reaches `segmentSize`. An entry used while older than the newest quarter of the
 * generations is moved to the head in the background (a packed body is copied there), at most
 * MAX_MOVES per run; when the disk would exceed maxBytes, the oldest generation goes whole. No
 * memory per object: the index lists entries by generation.
 */
import { stat } from 'node:fs/promises';
import { sameVersion, type DiskIndex, type IndexRecord } from './disk-index.js';
import { SEGMENT_HEADER_BYTES, keyHash, segmentHeader, type DiskLayout } from './disk-layout.js';
import { readRecord, type RecordReader } from './disk-read.js';
import type { Segments } from './disk-segments.js';

/** Touched keys remembered for the background recency update; more are ignored until it runs. */
const MAX_TOUCHED = 10_000;
/** Entries moved up per run of applyUses (each run is at least a second apart, or one per eviction). */
const MAX_MOVES = 1024;

export interface GenerationsHost {
  readonly index: DiskIndex;
  readonly segments: Segments;
  readonly layout: DiskLayout;
  readonly reader: RecordReader;
  readonly maxBytes: number;
  readonly segmentSize: number;
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
  private evicting: Promise<void> = Promise.resolve();
  private readonly touched = new Set<string>();

  constructor(private readonly host: GenerationsHost) {
    const { index, segments } = host;
    this.head = Math.max(index.newestGeneration(), ...segments.generations(), 0) + 1;
    this.evictedUpTo = Math.min(index.oldestGeneration() ?? this.head, ...segments.generations()) - 1;
  }

  /** What the disk holds: segment files, body files in whole blocks, the index file. */
  diskBytes(): number {
    return this.host.segments.allocated + this.host.index.state.fileBytes + this.indexBytes;
  }

  /** The index file's allocated blocks (LMDB may grow the file ahead of use, sparsely). */
  async measureIndex(): Promise<void> {
    this.indexBytes = await stat(this.host.layout.indexPath).then(
      (st) => st.blocks * 512,
      () => 0,
    );
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
      await this.applyUses();
      while (this.diskBytes() + incoming > this.host.maxBytes && !this.host.isClosed()) {
        // Every round evicts a generation after evictedUpTo and moves it on: this ends.
        const oldest = this.oldestGeneration();
        if (oldest === undefined || oldest > this.head) break;
        if (oldest === this.head) {
          // Only the head is left: start a new one so the old head can go.
          this.head += 1;
          this.headFileBytes = 0;
        }
        await this.evictGeneration(oldest);
      }
    });
    this.evicting = run.catch(() => undefined);
    return run;
  }

  noteUse(key: string): void {
    if (this.touched.size < MAX_TOUCHED) this.touched.add(key);
  }

  /**
   * Move entries used since the last call to the head generation, when they are older than its
   * newest quarter (a packed body is copied: its segment will go with its generation).
   */
  async applyUses(): Promise<void> {
    if (this.touched.size === 0) return;
    // At most MAX_MOVES per run: a burst of hits on old objects costs bounded copying, and
    // makeRoom, which runs this first, never waits long. The rest wait for the next run.
    const keys: string[] = [];
    for (const key of this.touched) {
      if (keys.length >= MAX_MOVES) break;
      keys.push(key);
      this.touched.delete(key);
    }
    const oldest = this.oldestGeneration() ?? this.head;
    const fresh = this.head - Math.floor((this.head - oldest + 1) / 4);
    const moves: Promise<void>[] = [];
    for (const key of keys) {
      const rec = this.host.index.get(key);
      if (rec === undefined || rec.g >= fresh || rec.g >= this.head) continue;
      // No key lock: a commit may hold it and be waiting on this (makeRoom). moveUp checks the
      // version it read is still current right before it writes, so a concurrent commit wins.
      moves.push(this.moveUp(rec).catch(() => undefined));
    }
    await Promise.all(moves);
  }

  private oldestGeneration(): number | undefined {
    const fromIndex = this.host.index.oldestGeneration(this.evictedUpTo);
    const segments = this.host.segments.generations().filter((g) => g > this.evictedUpTo);
    const candidates = fromIndex === undefined ? segments : [fromIndex, ...segments];
    return candidates.length === 0 ? undefined : Math.min(...candidates);
  }

  private async evictGeneration(g: number): Promise<void> {
    const { index } = this.host;
    const victims = index.generation(g);
    for (let i = 0; i < victims.length; i++) {
      const rec = victims[i]!;
      if (sameVersion(index.get(rec.key), rec)) this.host.evict(rec);
      if (i % 512 === 511) await new Promise((r) => setImmediate(r)); // a large generation yields to requests
    }
    this.evictedUpTo = Math.max(this.evictedUpTo, g);
    await this.host.segments.remove(g);
  }

  private async moveUp(rec: IndexRecord): Promise<void> {
    const { index, segments } = this.host;
    if (this.host.isClosed() || !sameVersion(index.get(rec.key), rec)) return;
    if (rec.file !== undefined) {
      const g = this.generationFor(0, false);
      await index.put({ ...rec, g, seq: index.nextSeq() });
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
    if (sameVersion(index.get(rec.key), rec) && segments.has(g)) await index.put({ ...rec, g, off, seq: index.nextSeq() });
  }
}
