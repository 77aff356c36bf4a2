/**
 * What every process writing a disk index shares beside its records (disk-index.ts): the counters
 * (entries, bytes), the head generation and what it holds, the generations evicted, the co-writers
 * open, the next block of write sequence numbers, and the bytes committed into each segment file,
 * all in the index's `state` database and changed only inside LMDB write transactions, which LMDB
 * serialises across processes: no process keeps a private truth of them. A process reads the
 * committed state, plus its own changes not yet committed (estimated when issued, then exact
 * once their transaction ran, until a committed state of that version is read).
 */
import { ABORT, type Database, type RootDatabase } from 'lmdb';
import type { IndexRecord } from './disk-index.js';
import { FS_BLOCK } from './disk-layout.js';

export interface IndexState {
  entries: number;
  /** Sum of `cost` over all entries. */
  liveBytes: number;
  /** Allocated bytes of body files. */
  fileBytes: number;
  /** Next write sequence number not handed to a writer. */
  seq: number;
  /** Bytes of segment files: what was committed into each, plus one block each for its rounding (absent in an index of before: counted at the owner's open). */
  segBytes?: number;
  /** The generation bodies are written to now. */
  head?: number;
  /** Bytes committed into the head generation (segments and files): it ends at segmentSize. */
  headBytes?: number;
  /** Generations up to this one are evicted or being evicted: nothing more is committed into them. */
  evictedUpTo?: number;
  /** Co-writers open now (their ids), so that the owner keeps room ahead for them. */
  writers?: number[];
  /** Version of the counters: one more with every change of a record. */
  v?: number;
}

/** A change's conditions and what it brings to the disk. */
export interface ChangeOptions {
  /** Apply only if the key's current record is this version (its seq); undefined: whatever it is. */
  ifSeq?: number;
  /**
   * Bytes the new record brought to the disk (a packed record appended, a body file's blocks): a
   * new body. Counted into its generation, and refused if the generation was evicted meanwhile.
   */
  newBytes?: number;
  /** The head generation ends once this many bytes are committed into it. */
  segmentSize?: number;
  /** Refuse a record in a generation evicted meanwhile (implied by newBytes). */
  ifLive?: boolean;
}

/** What a change found in its transaction: whether it applied, and the record it replaced (or would have). */
export interface Applied {
  applied: boolean;
  old: IndexRecord | undefined;
}

/** What one operation of a batch gave: its value, or what it threw (the others run on). */
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Operations waiting for the next write transaction, run there in order. */
interface Batch {
  ops: ((state: IndexState) => unknown)[];
  /** Resolves with each operation's outcome once the transaction is committed. */
  done: Promise<Outcome[]>;
}

/** Write sequence numbers a writer takes at a time, by default. */
const SEQ_BLOCK = 1 << 20;

function addCounters(to: Counters, d: Counters, sign: 1 | -1): void {
  to.entries += sign * d.entries;
  to.liveBytes += sign * d.liveBytes;
  to.fileBytes += sign * d.fileBytes;
  to.segBytes += sign * d.segBytes;
}

/** A state and its bytes in LMDB. */
interface KnownState {
  raw: Buffer;
  state: IndexState;
}

/** A state to hand out or keep: its own object, and its own list of writers. */
function copyState(state: IndexState): IndexState {
  const copy = { ...state };
  if (state.writers !== undefined) copy.writers = [...state.writers];
  return copy;
}

export type Counters = { entries: number; liveBytes: number; fileBytes: number; segBytes: number };

/** Where the bytes committed into segment file (g, w) are counted, beside the state. */
function segBytesKey(g: number, w: number): string {
  return `s${String(g).padStart(10, '0')}/${w}`;
}

/** The range of segBytesKey of generation `g`. */
function segBytesRange(g: number): { start: string; end: string } {
  return { start: segBytesKey(g, 0), end: `s${String(g).padStart(10, '0')}0` };
}

/** A change of this process in flight: its estimated effect on the counters, and the state version its transaction wrote. */
export interface InFlight {
  d: Counters;
  v: number;
  /** Its estimate is counted in `queued`: issued, and neither run in its batch nor failed yet. */
  queued: boolean;
}

export class SharedIndexState {
  /** This process's changes issued whose transaction has not run yet, as it estimates them: added to the committed state. */
  private readonly queued: Counters = { entries: 0, liveBytes: 0, fileBytes: 0, segBytes: 0 };
  /**
   * Changes whose transaction ran, by the state version it wrote (`v`), until a committed state of
   * that version is read: added to a committed state older than that.
   */
  private readonly inTxn: InFlight[] = [];
  private snap: IndexState | undefined;
  /** The block of write sequence numbers this process hands out: [seqNext, seqEnd). */
  private seqNext = 0;
  private seqEnd = 0;
  /** The start of the next block, taken ahead and committed: handed out once the current one ends. */
  private reserved: number | undefined;
  /** A batch in flight takes the next block ahead. */
  private reserving = false;
  /** Operations issued since the last batch began to run: the next write transaction's. */
  private batch: Batch | undefined;
  /** The last batch handed to LMDB: settled once its transaction is committed (or failed). */
  private lastBegun: Promise<unknown> = Promise.resolve();
  /** Holds in force (hold()): no write transaction begins while there is one. */
  private holds = 0;
  /** A batch waiting for the holds to end: begun at the last release. */
  private held: (() => void) | undefined;
  /** While a batch runs: the segment byte counts it read or changed, written at its end. */
  private segCounts = new Map<string, number>();
  /** While a batch runs: the changes it applied, given its state version at its end. */
  private readonly appliedHere: InFlight[] = [];
  /** While a batch runs: whether the state is to be written at its end. */
  private stateChanged = false;
  /** States whose bytes are known: the last this process wrote, and the last it decoded. */
  private wrote: KnownState | undefined;
  private decoded: KnownState | undefined;
  /** The committed state's bytes when stateMoved() last looked. */
  private looked: Buffer | undefined;

  constructor(
    private readonly env: RootDatabase,
    private readonly db: Database<IndexState | number, string>,
    /** Write sequence numbers taken at a time (DiskBlobStoreOptions.seqBlock). */
    private readonly seqBlock: number = SEQ_BLOCK,
  ) {}

  /** The committed state (every writer's changes), plus this process's changes in flight. */
  current(): IndexState {
    const s = this.snapshot();
    const v = s.v ?? 0;
    while (this.inTxn.length > 0 && this.inTxn[0]!.v <= v) this.inTxn.shift();
    const d: Counters = { ...this.queued };
    for (const r of this.inTxn) addCounters(d, r.d, 1);
    return { ...s, entries: s.entries + d.entries, liveBytes: s.liveBytes + d.liveBytes, fileBytes: s.fileBytes + d.fileBytes, segBytes: (s.segBytes ?? 0) + d.segBytes };
  }

  /** Whether a state was ever committed (not in a new index). */
  hasState(): boolean {
    return this.db.getBinary('state') !== undefined;
  }

  /**
   * The committed state as read once per event turn: reads (outside a write transaction) see one
   * snapshot per turn anyway (lmdb-js renews its read transaction then), and a miss asks for the
   * state more than once. A snapshot older than the latest commit only counts more changes in flight.
   */
  private snapshot(): IndexState {
    if (this.snap === undefined) {
      this.snap = this.committedState();
      setImmediate(() => (this.snap = undefined));
    }
    return this.snap;
  }

  /**
   * The state as last committed (inside a write transaction: as this transaction has it). Its
   * bytes are compared with the last ones this process wrote or decoded, and decoded only when
   * they differ (another writer's commit): a state is a msgpack record that carries its
   * structure's definition, and decoding one costs ~10 µs, a copy of the known one well under 1.
   */
  committedState(): IndexState {
    const fast = this.db.getBinaryFast('state');
    if (fast === undefined) return { entries: 0, liveBytes: 0, fileBytes: 0, seq: 0 };
    // LMDB's read buffer, its `length` set to the value's, reused by the next read.
    const raw = fast.subarray(0, fast.length);
    if (this.wrote?.raw.equals(raw) === true) return copyState(this.wrote.state);
    if (this.decoded?.raw.equals(raw) === true) return copyState(this.decoded.state);
    const copied = Buffer.from(raw);
    const saved = this.db.get('state') as IndexState;
    this.decoded = { raw: copied, state: copyState(saved) };
    return copyState(saved);
  }

  /**
   * Whether any writer (this process or another) committed a change since the last call (true at
   * the first): every commit changes the state's counters or version. One read of the state's
   * bytes, nothing decoded: for periodic work that has nothing to do while the index stands still.
   */
  stateMoved(): boolean {
    const raw = this.db.getBinaryFast('state');
    const now = raw === undefined ? Buffer.alloc(0) : raw.subarray(0, raw.length);
    if (this.looked?.equals(now) === true) return false;
    this.looked = Buffer.from(now);
    return true;
  }

  /** Write `state` (inside a write transaction), and know its bytes from now on. */
  private putState(state: IndexState): void {
    void this.db.put('state', state);
    const fast = this.db.getBinaryFast('state');
    if (fast !== undefined) this.wrote = { raw: Buffer.from(fast.subarray(0, fast.length)), state: copyState(state) };
  }

  /**
   * Change the state at once, in a synchronous write transaction of its own (the owner's open, a
   * co-writer's registration, a block of sequence numbers not taken ahead in time): rare, and what
   * follows depends on it.
   */
  updateStateSync<T>(fn: (state: IndexState) => T): T {
    return this.env.transactionSync(() => {
      const state = this.committedState();
      const out = fn(state);
      this.putState(state);
      return out;
    });
  }

  /**
   * Run `op` in the next write transaction, after the operations issued before it, with the
   * state as that transaction has it (changes to it are written at the batch's end when an
   * operation says so: `ran`, or updateState). Resolves with what `op` returned once committed;
   * rejects with what it threw, and then nothing of it is committed (runBatch). `op` may run more
   * than once (when another operation of its batch throws): it changes nothing but the state, the
   * index's databases and what this class's methods change.
   */
  inTransaction<T>(op: (state: IndexState) => T): Promise<T> {
    let batch = this.batch;
    let i: number;
    if (batch === undefined) {
      const fresh: Batch = { ops: [op], done: Promise.resolve([]) };
      this.batch = batch = fresh;
      i = 0;
      if (this.holds > 0) fresh.done = new Promise<Outcome[]>((resolve) => (this.held = () => resolve(this.begin(fresh))));
      else fresh.done = this.begin(fresh);
    } else {
      i = batch.ops.push(op) - 1;
    }
    return batch.done.then((outcomes) => {
      const outcome = outcomes[i]!;
      if (!outcome.ok) throw outcome.error;
      return outcome.value as T;
    });
  }

  /** Hand `batch` to LMDB: its write transaction runs once the ones begun before it are committed. */
  private begin(batch: Batch): Promise<Outcome[]> {
    let done: Promise<Outcome[]>;
    try {
      done = Promise.resolve(this.env.transaction(() => this.runBatch(batch)));
    } catch (err) {
      if (this.batch === batch) this.batch = undefined;
      done = Promise.reject(err);
    }
    this.lastBegun = done.catch(() => undefined);
    return done;
  }

  /**
   * Begin no write transaction until the returned release is called; resolves once the ones
   * begun before are committed. While another process opens the index's LMDB environment, every
   * process that has it open holds its commits: lmdb-js's LMDB (its mdb_env_open2) writes the
   * transaction id of the snapshot it read into the lock file shared by all processes, even when
   * it is not the first to open it (upstream LMDB fixed this in ITS#9496, lmdb-js 3.5.6 has not);
   * a commit between that read and that write is then overwritten by the next one, in whichever
   * process, and lost: records, counters and all. Operations issued meanwhile wait, batched,
   * and run once the last hold is released. Synchronous transactions (updateStateSync) are not
   * held: an open's first one (the owner's recount, a co-writer's registration) runs inside the
   * open, while the others hold (DiskBlobStoreOptions.exclusiveEnvOpen). A process takes its next
   * block of sequence numbers ahead, in a batch (nextSeq), which holds cover; only when that batch
   * has not committed by the end of the current block (half a block of writes later: held all
   * that time, or failed) does it take one at once, in a synchronous transaction that no hold
   * stops. Should that commit land in the milliseconds of another process's open, it would be
   * lost, and two writers could hand out the same numbers. A hold ends by itself after `maxMs`: a
   * release that never comes (its sender died) does not stop this process's writes for good.
   */
  async hold(maxMs: number): Promise<() => void> {
    this.holds += 1;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      this.endHold();
    };
    const timer = setTimeout(release, maxMs);
    timer.unref();
    await this.lastBegun;
    return release;
  }

  /** A hold ends: at the last, the batch it held begins. */
  private endHold(): void {
    this.holds -= 1;
    if (this.holds > 0 || this.held === undefined) return;
    const begin = this.held;
    this.held = undefined;
    begin();
  }

  /**
   * Run `fn` in one synchronous write transaction, the operations it issues run there as one batch
   * when it returns (held meanwhile): a bulk load (tools, benchmarks) pays one child transaction
   * for all of them (runBatch), not one each.
   */
  transactionSync(fn: () => void): void {
    this.env.transactionSync(() => {
      this.holds += 1;
      try {
        fn();
      } finally {
        // Inside a write transaction, lmdb-js runs the batch's at once: in this one.
        this.endHold();
      }
    });
  }

  /**
   * A batch, inside its write transaction: the state read once, each operation in turn, then what
   * they changed written. An operation is all or nothing: the operations run in a child
   * transaction of the batch's, and when one throws, that child is aborted and the batch's state,
   * segment counts and applied changes start over, the operations that threw left out. Otherwise
   * the writes an operation made before throwing would commit (a record without its counters or
   * list entries, a replaced record's list entries removed). One child transaction a batch, not
   * one an operation: LMDB's nested begin, the pages it copies and its merge cost an operation
   * ~5 µs, a seventh of the write path (test/bench/index-writes.ts); a throw is a bug or a bad
   * record, rare.
   */
  private runBatch(batch: Batch): Outcome[] {
    if (this.batch === batch) this.batch = undefined; // operations issued from now on go to the next transaction
    const committed = this.committedState();
    const outcomes: Outcome[] = [];
    let state: IndexState;
    do {
      state = copyState(committed);
      this.segCounts.clear();
      this.appliedHere.length = 0;
      this.stateChanged = false;
      // Inside a write transaction lmdb-js runs a child transaction at once and returns what its
      // callback returned (its type, a promise, is for a call outside one); ABORT aborts it.
    } while ((this.env.childTransaction(() => (this.runOps(batch, state, outcomes) ? true : ABORT)) as unknown) !== true);
    for (const [key, bytes] of this.segCounts) void this.db.put(key, bytes);
    this.segCounts.clear();
    if (this.stateChanged) {
      // A new index's first commit (its owner's open committed nothing): the sequence numbers handed out.
      if (state.seq < this.seqEnd) state.seq = this.seqEnd;
      if (this.appliedHere.length > 0) {
        state.v = (state.v ?? 0) + 1;
        for (const change of this.appliedHere) {
          change.v = state.v;
          this.inTxn.push(change);
        }
        this.appliedHere.length = 0;
      }
      this.putState(state);
    }
    return outcomes;
  }

  /**
   * The batch's operations in turn, with `state`, but those that threw before (their outcome in
   * `outcomes`). False at the first that throws, its outcome noted: what this run did is undone,
   * and the batch runs again without it. So an operation may run more than once in its
   * transaction: it changes nothing but `state`, the index's databases and what this class's
   * methods change (all of which start over).
   */
  private runOps(batch: Batch, state: IndexState, outcomes: Outcome[]): boolean {
    for (let i = 0; i < batch.ops.length; i++) {
      if (outcomes[i]?.ok === false) continue;
      try {
        outcomes[i] = { ok: true, value: batch.ops[i]!(state) };
      } catch (error) {
        outcomes[i] = { ok: false, error };
        return false;
      }
    }
    return true;
  }

  /** Change the state in the next write transaction (with the changes issued before; `fn` may run more than once: inTransaction); resolves once committed. */
  updateState(fn: (state: IndexState) => void): Promise<void> {
    return this.inTransaction((state) => {
      fn(state);
      this.stateChanged = true;
    });
  }

  /**
   * Generation `g`'s segments are deleted: take their bytes off segBytes and forget them, in the
   * next write transaction. Resolves once committed.
   */
  forgetSegmentBytes(g: number): Promise<void> {
    return this.inTransaction((state) => {
      const range = segBytesRange(g);
      let freed = 0;
      for (const { key, value } of this.db.getRange(range)) {
        freed += this.segCounts.get(key) ?? (value as number);
        this.segCounts.delete(key);
        void this.db.remove(key);
      }
      // Counts of this batch not committed before.
      for (const [key, bytes] of this.segCounts) {
        if (key < range.start || key >= range.end) continue;
        freed += bytes;
        this.segCounts.delete(key);
      }
      state.segBytes = Math.max(0, (state.segBytes ?? 0) - freed);
      this.stateChanged = true;
    });
  }

  /**
   * Count the segment files anew from what the disk holds, in `state` (inside updateStateSync: the
   * owner's open; bytes appended by a writer that died before committing them are on the disk, and
   * count from now on).
   */
  recountSegments(state: IndexState, sizes: Map<number, number>, allocatedOf: (size: number) => number): void {
    for (const key of this.db.getKeys({ start: 's', end: 't' })) void this.db.remove(key);
    let total = 0;
    for (const [sid, size] of sizes) {
      const bytes = allocatedOf(size);
      total += bytes;
      void this.db.put(segBytesKey(sid % 2 ** 32, Math.floor(sid / 2 ** 32)), bytes);
    }
    state.segBytes = total;
  }

  /**
   * A write sequence number no other writer hands out, from this process's block. Past half of
   * it, the next block is taken ahead in the next batch (reserveSeqBlock), which holds cover; the
   * current block's end switches to it.
   */
  nextSeq(): number {
    if (this.seqNext >= this.seqEnd) this.nextSeqBlock();
    else if (this.reserved === undefined && !this.reserving && this.seqNext >= this.seqEnd - this.seqBlock / 2) this.reserveSeqBlock();
    return this.seqNext++;
  }

  /** The current block has run out: on to the one taken ahead. */
  private nextSeqBlock(): void {
    if (this.reserved !== undefined) {
      this.seqNext = this.reserved;
      this.seqEnd = this.reserved + this.seqBlock;
      this.reserved = undefined;
      return;
    }
    // The block taken ahead has not committed (its batch, begun half a block of writes ago, is
    // still held or failed): practically never with blocks of 2^20. Taken here in a synchronous
    // transaction of its own, which no hold stops (hold() says what that risks).
    this.updateStateSync((state) => this.takeSeqBlock(state));
  }

  /**
   * Take the next block in the next batch, kept once that batch has committed: one that fails
   * (its state not written, or not committed) leaves none, and the next number handed out asks again.
   */
  private reserveSeqBlock(): void {
    this.reserving = true;
    const taken = this.inTransaction((state) => {
      const start = this.seqBlockFrom(state);
      state.seq = start + this.seqBlock;
      this.stateChanged = true;
      return start;
    });
    taken.then(
      (start) => {
        this.reserving = false;
        this.reserved = start;
      },
      () => (this.reserving = false),
    );
  }

  /**
   * Inside a co-writer's registration in an index whose state was never committed: its owner's
   * open took the first block (openAsOwner, disk-open.ts) without a commit, to leave a new index's
   * file as it was; the blocks of the others start after it (every writer has the same seqBlock).
   */
  skipOwnersFirstSeqBlock(state: IndexState): void {
    state.seq = Math.max(state.seq, this.seqBlock);
  }

  /** Take the next block of write sequence numbers from `state` (inside updateStateSync: at open, with the rest). */
  takeSeqBlock(state: IndexState): void {
    this.seqNext = this.seqBlockFrom(state);
    this.seqEnd = this.seqNext + this.seqBlock;
    state.seq = this.seqEnd;
  }

  /**
   * Where the next block taken from `state` starts: after this process's own, which a new index's
   * state may not have yet (its owner's first block, taken at its open).
   */
  private seqBlockFrom(state: IndexState): number {
    return Math.max(state.seq, this.seqEnd);
  }

  /** A change is issued: counted in flight until its transaction runs. */
  issue(d: Counters): InFlight {
    addCounters(this.queued, d, 1);
    return { d, v: -1, queued: true };
  }

  /** The change no longer waits for its batch: its estimate leaves `queued`, once. */
  private unqueue(change: InFlight): void {
    if (!change.queued) return;
    change.queued = false;
    addCounters(this.queued, change.d, -1);
  }

  /**
   * The change failed: its operation threw (nothing of it applied), or its batch's transaction
   * did not begin or commit. It is no longer in flight, and no longer counted.
   */
  failed(change: InFlight): void {
    this.unqueue(change);
    const at = this.inTxn.indexOf(change);
    if (at >= 0) this.inTxn.splice(at, 1);
  }

  /**
   * Inside its batch: the change applied (its counters changed in the batch's state, written at
   * the batch's end), or was refused. Applied, it stays counted in flight until a committed state
   * of the batch's version is read.
   */
  ran(change: InFlight, applied: boolean): void {
    this.unqueue(change);
    if (!applied) return;
    this.stateChanged = true;
    this.appliedHere.push(change);
  }

  /** The change's transaction is committed: the committed state has it from now on. */
  committed(change: InFlight): void {
    while (change.v >= 0 && this.inTxn.length > 0 && this.inTxn[0]!.v <= change.v) this.inTxn.shift();
  }

  /** Inside a batch: a new body's bytes into its generation (which ends once full: the next one starts) and, packed, into its segment's count. */
  countNewBytes(state: IndexState, rec: IndexRecord, bytes: number, segmentSize: number): void {
    if (rec.g > (state.head ?? 0)) {
      state.head = rec.g;
      state.headBytes = 0;
    }
    if (rec.g === state.head) {
      state.headBytes = (state.headBytes ?? 0) + bytes;
      if (state.headBytes >= segmentSize) {
        state.head += 1;
        state.headBytes = 0;
      }
    }
    if (rec.off < 0) return;
    const key = segBytesKey(rec.g, rec.w ?? 0);
    const before = this.segCounts.get(key) ?? (this.db.get(key) as number | undefined);
    // A segment file's first record counts one block more: what rounding its size up may take.
    const after = (before ?? FS_BLOCK) + bytes;
    this.segCounts.set(key, after);
    state.segBytes = (state.segBytes ?? 0) + after - (before ?? 0);
  }
}
