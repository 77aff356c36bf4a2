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
 *
 * With several writers (disk-blob-store.ts), the head generation, what it holds and which
 * generations are evicted live in the index's state, changed inside its write transactions:
 * whoever's commit fills the head starts the next one, and only the owner evicts (co-writers
 * refuse a body that would take the disk over maxBytes; the owner keeps room ahead for them).
 */
import { stat } from 'node:fs/promises';
import { sameVersion, type DiskIndex, type IndexRecord, type IndexState } from './disk-index.js';
import { BLOB_ERROR_CODES, blobError } from './blob-store.js';
import { SEGMENT_HEADER_BYTES, keyHash, segmentHeader, type DiskLayout } from './disk-layout.js';
import { readRecord, type RecordReader } from './disk-read.js';
import type { RecencyMarks } from './disk-recency.js';
import type { Segments } from './disk-segments.js';

/** Entries moved at most per background run, and per makeRoom: a full generation of read objects costs bounded copying at a time. */
const MAX_MOVES = 1024;
/** How long a co-writer waits for the owner to make room before it refuses a body, and how often it looks. */
const ROOM_WAIT_MS = 250;
const ROOM_POLL_MS = 10;
/** The room the owner keeps free while co-writers are open, in segments: what they may write before it evicts again. */
const WRITERS_ROOM_SEGMENTS = 2;
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
  /** The owner evicts and moves; a co-writer only writes. */
  readonly owner: boolean;
  /** A co-writer's: its writes took the room its owner keeps for co-writers, or it waits for room; the owner is to evict. */
  roomWanted(): void;
}

export class DiskGenerations {
  /** The generation written to now, as this process last saw it (the index's state has the truth). */
  head: number;
  /** Bytes this process put into the head generation. */
  private headIssued = 0;
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
    const state = index.shared.committedState();
    this.head = state.head ?? DiskGenerations.headOf(index, segments);
    this.evictedUpTo = state.evictedUpTo ?? Math.min(index.oldestGeneration() ?? this.head, ...segments.generations()) - 1;
    this.evacuatedUpTo = this.evictedUpTo;
  }

  /** The generation a store on `index` and `segments` writes to first, when the index's state does not say. */
  static headOf(index: DiskIndex, segments: Segments): number {
    return Math.max(index.newestGeneration(), ...segments.generations(), 0) + 1;
  }

  /** The owner's open: the head and evicted generations into `state`, where every writer reads them (when an index of before has none). */
  static initState(state: IndexState, index: DiskIndex, segments: Segments): void {
    if (state.head !== undefined && state.evictedUpTo !== undefined) return;
    const head = DiskGenerations.headOf(index, segments);
    state.head ??= head;
    state.headBytes ??= 0;
    state.evictedUpTo ??= Math.min(index.oldestGeneration() ?? head, ...segments.generations()) - 1;
  }

  /** What the disk holds: segment files, body files in whole blocks, the index file, the saved read marks. */
  diskBytes(): number {
    const state = this.host.index.state;
    return (state.segBytes ?? 0) + state.fileBytes + this.indexBytes + this.marksBytes;
  }

  /** The room the owner keeps free while co-writers are open: they do not evict, and refuse what does not fit. */
  writersRoom(): number {
    return WRITERS_ROOM_SEGMENTS * this.host.segmentSize;
  }

  /** Entries read after their generation's moves were done, waiting for the next background run to move them. */
  get movesWaiting(): boolean {
    return this.late.size > 0;
  }

  /**
   * A co-writer, after a commit: when what the disk holds has reached into the room the owner
   * keeps for co-writers, the owner is asked to evict (roomWanted), so the next writes find room
   * without waiting.
   */
  askRoomWhenLow(): void {
    if (!this.host.owner && this.diskBytes() > this.host.maxBytes - this.writersRoom()) this.host.roomWanted();
  }

  /** The last generation evicted, as this process last saw it; refreshed from the index's state. */
  evictedNow(): number {
    const upTo = this.host.index.shared.committedState().evictedUpTo ?? 0;
    this.evictedUpTo = Math.max(this.evictedUpTo, upTo);
    return this.evictedUpTo;
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

  /**
   * The generation a new body of `bytes` goes to: the head, or the next one when the head would
   * go past segmentSize (the commit makes it the head for every writer).
   */
  generationFor(bytes: number): number {
    const state = this.host.index.state;
    if ((state.head ?? 0) > this.head) {
      this.head = state.head!;
      this.headIssued = 0;
    }
    const full = Math.max(this.headIssued, state.head === this.head ? (state.headBytes ?? 0) : 0);
    if (full > 0 && full + bytes > this.host.segmentSize) {
      this.head += 1;
      this.headIssued = 0;
    }
    this.headIssued += bytes;
    return this.head;
  }

  /**
   * Evict whole generations, oldest first, until `incoming` more bytes fit with `headroom` to
   * spare. Runs one at a time. A co-writer does not evict: it refuses the body when it does not fit.
   */
  makeRoom(incoming: number, headroom = 0): Promise<void> {
    if (!this.host.owner) return this.waitForRoom(incoming);
    const run = this.evicting.then(async () => {
      const budget = { moves: MAX_MOVES };
      // Another writer may have moved the head on. Read from this turn's snapshot of the state
      // (index.state), as diskBytes and generationFor read it: a second read of LMDB per miss else.
      const head = this.host.index.state.head ?? 0;
      if (head > this.head) {
        this.head = head;
        this.headIssued = 0;
      }
      while (this.diskBytes() + incoming > this.host.maxBytes - headroom && !this.host.isClosed()) {
        // Every round evicts a generation after evictedUpTo and moves it on: this ends.
        const oldest = this.oldestGeneration();
        if (oldest === undefined || oldest > this.head) break;
        await this.evictGeneration(oldest, budget);
      }
    });
    this.evicting = run.catch(() => undefined);
    return run;
  }

  /**
   * A co-writer's room: the owner evicts ahead while co-writers are open; when it lags behind
   * (more written in a moment than the room it keeps), ask it again, wait for it a little, then
   * refuse the body.
   */
  private async waitForRoom(incoming: number): Promise<void> {
    for (let waited = 0; this.diskBytes() + incoming > this.host.maxBytes; waited += ROOM_POLL_MS) {
      if (waited >= ROOM_WAIT_MS || this.host.isClosed()) throw blobError(BLOB_ERROR_CODES.notStored, 'disk cache full until its owner evicts; object not stored');
      this.host.roomWanted();
      await new Promise((r) => setTimeout(r, ROOM_POLL_MS));
    }
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
    if (!this.host.owner) return Promise.resolve();
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

  /**
   * Evicts generation `g`: its entries read since they were written move to the head (within
   * `budget`), the others go, then every writer's segment of `g`. Marked evicted first, in the
   * index's state: from then on no writer commits into `g` (its commit checks, in its transaction).
   */
  private async evictGeneration(g: number, budget: { moves: number }): Promise<void> {
    const { index } = this.host;
    await this.moveReadEntries(g, budget);
    await index.shared.updateState((state) => {
      state.evictedUpTo = Math.max(state.evictedUpTo ?? 0, g);
      if ((state.head ?? 0) <= g) {
        // Only the head is left: start a new one so the old head can go.
        state.head = g + 1;
        state.headBytes = 0;
      }
    });
    if (this.head <= g) {
      this.head = g + 1;
      this.headIssued = 0;
    }
    this.evictedUpTo = Math.max(this.evictedUpTo, g);
    this.evacuatedUpTo = Math.max(this.evacuatedUpTo, g);
    const victims = index.generation(g);
    for (let i = 0; i < victims.length; i++) {
      const rec = victims[i]!;
      if (sameVersion(index.get(rec.key), rec)) this.host.evict(rec);
      if (i % 512 === 511) await new Promise((r) => setImmediate(r)); // a large generation yields to requests
    }
    await index.committed();
    await this.host.segments.removeGeneration(g);
    await index.shared.forgetSegmentBytes(g);
  }

  private async moveUp(rec: IndexRecord): Promise<void> {
    const { index, segments } = this.host;
    if (this.host.isClosed() || !sameVersion(index.get(rec.key), rec)) return;
    if (rec.file !== undefined) {
      const g = this.generationFor(0);
      if ((await index.put({ ...rec, g, seq: index.nextSeq() }, undefined, { ifSeq: rec.seq, ifLive: true })).applied) this.moved += 1;
      return;
    }
    const found = await readRecord(this.host.reader, rec, { inlineReadMaxSize: Infinity, onCorrupt: () => undefined });
    if (typeof found === 'string' || found.data === undefined) {
      this.host.dropCorrupt(rec);
      return;
    }
    if (!sameVersion(index.get(rec.key), rec)) return;
    const bytes = SEGMENT_HEADER_BYTES + found.data.length;
    const g = this.generationFor(bytes);
    // The owner moves: into its own segment of the head.
    const off = await segments.append(g, [segmentHeader(keyHash(rec.key), found.data, rec.crc[0] ?? 0), found.data]);
    if (sameVersion(index.get(rec.key), rec) && segments.has(g)) {
      const copy: IndexRecord = { ...rec, g, off, seq: index.nextSeq() };
      delete copy.w;
      if ((await index.put(copy, undefined, { ifSeq: rec.seq, newBytes: bytes, segmentSize: this.host.segmentSize })).applied) this.moved += 1;
    }
  }
}
