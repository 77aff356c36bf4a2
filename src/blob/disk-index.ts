/**
 * The disk store's index, in LMDB (one memory-mapped file, sorted keys, crash-safe commits, read
 * by any number of processes while one writes): what is stored where, its metadata, and the
 * secondary lists that let eviction, purge and lookups find objects without visiting every one.
 *
 * | database  | key                                  | value                          |
 * | --------- | ------------------------------------ | ------------------------------ |
 * | `objects` | the cache key (UTF-8; long keys cut and hashed) | IndexRecord (msgpack) |
 * | `byGen`   | generation u32, write sequence u48   | objects key                    |
 * | `byPath`  | path (pathOf(key)), 0, hash8(key)     | objects key                    |
 * | `byTag`   | tag, 0, hash8(key)                   | objects key                    |
 * | `files`   | body file name                       | objects key                    |
 * | `state`   | "state"                              | counters, head generation, evicted generations |
 * | `state`   | "s<generation, 10 digits>/<writer>"  | bytes committed into that segment file |
 *
 * Several processes may write one index (the owner and co-writers, disk-blob-store.ts): LMDB
 * serialises their write transactions, and every change runs as a callback inside one
 * (lmdb-js `transaction`) that reads the key's current record and the state there, so counters,
 * secondary lists and conditions (`ifSeq`: only over this version; a body brought into a
 * generation the owner evicted meanwhile is refused) hold whatever the other writers did. No
 * process keeps a private truth of the totals: `state` is the last committed state read, plus
 * this process's changes not yet committed. Write sequence numbers are unique across writers:
 * each takes a block of them from the state.
 *
 * A change is issued to LMDB at once and kept in `pending` (read before LMDB) until LMDB has
 * committed it, so this process sees it immediately and other processes (co-writers, cluster
 * workers reading) once it is committed. Changes issued within 10 ms share one transaction (lmdb-js
 * `commitDelay`), and LMDB syncs committed transactions in a background thread (`overlappingSync`),
 * one fsync for every batch: the miss path has no fsync of its own, and under load each fsync
 * covers more writes. A committed change survives a crash of the process; a power loss takes the
 * index back to its last synced transaction, never to a half-written one.
 *
 * Memory: `pending` (the writes in flight, some milliseconds' worth), a bounded memo of decoded
 * records, and nothing per stored object; LMDB's pages are file-backed and shared by every process
 * that maps them.
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import type { StoredMeta } from './blob-store.js';
import { freezeMeta } from './buffer-entry.js';
import { FS_BLOCK, keyHash } from './disk-layout.js';

export interface IndexRecord {
  key: string;
  /** Recency generation: the generation it was written or last moved up in. A packed body lives in segment `g`. */
  g: number;
  /** Write sequence: orders records within a generation. */
  seq: number;
  /** Offset of the packed record in segment `g` of writer `w`; -1 for a body in a file of its own. */
  off: number;
  /** The co-writer that appended the packed record (its segment is `<g>-w<w>`); absent: the owner. */
  w?: number;
  /** Name of the body file (file bodies). */
  file?: string;
  /** Bytes per checksummed block. */
  bs: number;
  /** CRC-32 per block of the body (one block for a packed body; none for an empty one). */
  crc: number[];
  /** Bytes this entry is accounted: its body as stored plus a metadata estimate (stats.bytes). */
  cost: number;
  meta: StoredMeta;
}

/** Records read from LMDB are new objects every time: a version is known by its write sequence. */
export function sameVersion(a: IndexRecord | undefined, b: IndexRecord): boolean {
  return a !== undefined && a.seq === b.seq && a.key === b.key;
}

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

/** Write sequence numbers a writer takes at a time. */
const SEQ_BLOCK = 1 << 20;

/** Decoded records remembered per process: two generations of this many (a few MB at most). */
const MEMO_GENERATION = 5_000;

/** Where msgpackr keeps the shared record structures in `objects`: 0xff never starts a UTF-8 key. */
const STRUCTURES_KEY = Buffer.from([0xff, 0xff, 0xff]);

/** LMDB's key limit is 1978 bytes; longer cache keys keep their first bytes (so prefix scans still find them) and a hash. */
const MAX_KEY_BYTES = 1900;
const CUT_KEY_BYTES = 1800;

export function indexKey(key: string): Buffer {
  const bytes = Buffer.from(key, 'utf8');
  if (bytes.length <= MAX_KEY_BYTES) return bytes;
  return Buffer.concat([bytes.subarray(0, CUT_KEY_BYTES), Buffer.from([0, 0]), keyHash(key)]);
}

function cut(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length <= CUT_KEY_BYTES ? bytes : bytes.subarray(0, CUT_KEY_BYTES);
}

function genKey(g: number, seq: number): Buffer {
  const b = Buffer.allocUnsafe(10);
  b.writeUInt32BE(g, 0);
  b.writeUIntBE(seq, 4, 6);
  return b;
}

/** A secondary list's key: `text`, 0, the first 8 bytes of the key's hash (`hash8`, see hash8Of). */
function taggedKey(text: string, hash8: Buffer): Buffer {
  return Buffer.concat([cut(text), ZERO, hash8]);
}

const ZERO = Buffer.from([0]);

function hash8Of(key: string): Buffer {
  return keyHash(key).subarray(0, 8);
}

/** The exclusive end of a range of keys starting with `prefix` (0xff is never part of UTF-8). */
function rangeEnd(prefix: Buffer): Buffer {
  return Buffer.concat([prefix, Buffer.from([0xff])]);
}

function addCounters(to: Counters, d: Counters, sign: 1 | -1): void {
  to.entries += sign * d.entries;
  to.liveBytes += sign * d.liveBytes;
  to.fileBytes += sign * d.fileBytes;
  to.segBytes += sign * d.segBytes;
}

export function fileBytesOf(rec: IndexRecord | undefined): number {
  return rec?.file === undefined ? 0 : Math.ceil(rec.meta.size / FS_BLOCK) * FS_BLOCK;
}

type Op = { rec: IndexRecord | null };

type Counters = { entries: number; liveBytes: number; fileBytes: number; segBytes: number };

/** Where the bytes committed into segment file (g, w) are counted, beside the state. */
function segBytesKey(g: number, w: number): string {
  return `s${String(g).padStart(10, '0')}/${w}`;
}

/** The range of segBytesKey of generation `g`. */
function segBytesRange(g: number): { start: string; end: string } {
  return { start: segBytesKey(g, 0), end: `s${String(g).padStart(10, '0')}0` };
}

export interface DiskIndexOptions {
  path: string;
  readOnly: boolean;
  /** The path a key belongs to, for keysUnderPath (the edge: the URL path without host and query). */
  pathOf: (key: string) => string;
}

export class DiskIndex {
  /** Changes issued and not yet committed by LMDB: what this process reads before LMDB. */
  private readonly pending = new Map<string, Op>();
  private memo: [Map<string, { raw: Buffer; rec: IndexRecord }>, Map<string, { raw: Buffer; rec: IndexRecord }>] = [new Map(), new Map()];
  /** This process's changes issued whose transaction has not run yet, as it estimates them: added to the committed state. */
  private readonly queued: Counters = { entries: 0, liveBytes: 0, fileBytes: 0, segBytes: 0 };
  /**
   * Changes whose transaction ran, by the state version it wrote (`v`), until a committed state of
   * that version is read: added to a committed state older than that.
   */
  private ran: { v: number; d: Counters }[] = [];
  private snap: IndexState | undefined;
  /** The block of write sequence numbers this process hands out: [seqNext, seqEnd). */
  private seqNext = 0;
  private seqEnd = 0;

  private constructor(
    private readonly env: RootDatabase,
    private readonly objects: Database<IndexRecord, Buffer>,
    private readonly byGen: Database<Buffer, Buffer>,
    private readonly byPath: Database<Buffer, Buffer>,
    private readonly byTag: Database<Buffer, Buffer>,
    private readonly files: Database<Buffer, Buffer>,
    private readonly stateDb: Database<IndexState | number, string>,
    private readonly pathOf: (key: string) => string,
  ) {}

  /** The committed state (every writer's changes), plus this process's changes in flight. */
  get state(): IndexState {
    const s = this.snapshot();
    const v = s.v ?? 0;
    while (this.ran.length > 0 && this.ran[0]!.v <= v) this.ran.shift();
    const d: Counters = { ...this.queued };
    for (const r of this.ran) addCounters(d, r.d, 1);
    return { ...s, entries: s.entries + d.entries, liveBytes: s.liveBytes + d.liveBytes, fileBytes: s.fileBytes + d.fileBytes, segBytes: (s.segBytes ?? 0) + d.segBytes };
  }

  /** Whether a state was ever committed (not in a new index). */
  hasState(): boolean {
    return this.stateDb.getBinary('state') !== undefined;
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

  /** The state as last committed (inside a write transaction: as this transaction has it). */
  committedState(): IndexState {
    const saved = this.stateDb.get('state') as IndexState | undefined;
    return saved === undefined ? { entries: 0, liveBytes: 0, fileBytes: 0, seq: 0 } : { ...saved };
  }

  /**
   * Change the state at once, in a synchronous write transaction of its own (the owner's open, a
   * co-writer's registration, a block of sequence numbers): rare, and what follows depends on it.
   */
  updateStateSync<T>(fn: (state: IndexState) => T): T {
    return this.env.transactionSync(() => {
      const state = this.committedState();
      const out = fn(state);
      void this.stateDb.put('state', state);
      return out;
    });
  }

  /** Change the state in the next write transaction (with the changes issued before); resolves once committed. */
  updateState(fn: (state: IndexState) => void): Promise<void> {
    return Promise.resolve(
      this.env.transaction(() => {
        const state = this.committedState();
        fn(state);
        void this.stateDb.put('state', state);
      }),
    ).then(() => undefined);
  }

  /** The bytes committed into each segment file of generation `g`, by writer. */
  segmentBytesOf(g: number): Map<number, number> {
    const out = new Map<number, number>();
    for (const { key, value } of this.stateDb.getRange(segBytesRange(g))) out.set(Number(key.slice(12)), value as number);
    return out;
  }

  /**
   * Generation `g`'s segments are deleted: take their bytes off segBytes and forget them, in the
   * next write transaction. Resolves once committed.
   */
  forgetSegmentBytes(g: number): Promise<void> {
    return Promise.resolve(
      this.env.transaction(() => {
        let freed = 0;
        for (const { key, value } of this.stateDb.getRange(segBytesRange(g))) {
          freed += value as number;
          void this.stateDb.remove(key);
        }
        const state = this.committedState();
        state.segBytes = Math.max(0, (state.segBytes ?? 0) - freed);
        void this.stateDb.put('state', state);
      }),
    ).then(() => undefined);
  }

  /**
   * Count the segment files anew from what the disk holds, in `state` (inside updateStateSync: the
   * owner's open; bytes appended by a writer that died before committing them are on the disk, and
   * count from now on).
   */
  recountSegments(state: IndexState, sizes: Map<number, number>, allocatedOf: (size: number) => number): void {
    for (const key of this.stateDb.getKeys({ start: 's', end: 't' })) void this.stateDb.remove(key);
    let total = 0;
    for (const [sid, size] of sizes) {
      const bytes = allocatedOf(size);
      total += bytes;
      void this.stateDb.put(segBytesKey(sid % 2 ** 32, Math.floor(sid / 2 ** 32)), bytes);
    }
    state.segBytes = total;
  }

  static open(options: DiskIndexOptions): DiskIndex {
    // separateFlushed: a write's promise resolves once committed (in the page cache: a crash of this
    // process keeps it), not after the fsync, which LMDB runs in the background (overlappingSync).
    // commitDelay: writes of the next 10 ms share a transaction, so under load each fsync covers more.
    const env = open({ path: options.path, noSubdir: true, maxDbs: 8, readOnly: options.readOnly, encoding: 'msgpack', separateFlushed: true, commitDelay: 10 });
    const binary = { keyEncoding: 'binary', encoding: 'binary' } as const;
    return new DiskIndex(
      env,
      // Shared structures: a record's field names are stored once for all records, not in each.
      env.openDB<IndexRecord, Buffer>('objects', { keyEncoding: 'binary', encoding: 'msgpack', sharedStructuresKey: STRUCTURES_KEY }),
      env.openDB<Buffer, Buffer>('byGen', binary),
      env.openDB<Buffer, Buffer>('byPath', binary),
      env.openDB<Buffer, Buffer>('byTag', binary),
      env.openDB<Buffer, Buffer>('files', binary),
      env.openDB<IndexState | number, string>('state', { encoding: 'msgpack' }),
      options.pathOf,
    );
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** The current record of `key` (pending changes first), or undefined. */
  get(key: string): IndexRecord | undefined {
    const op = this.pending.get(key);
    if (op !== undefined) return op.rec ?? undefined;
    return this.committedRecord(indexKey(key), key);
  }

  private committedRecord(ikey: Buffer, key?: string): IndexRecord | undefined {
    const rec = this.decoded(ikey);
    return rec === undefined || (key !== undefined && rec.key !== key) ? undefined : rec;
  }

  /**
   * The committed record at `ikey`, the same object as last time while its bytes in LMDB are the
   * same (compared, not decoded): per-object memos downstream (the edge's hit templates, keyed by
   * the meta object) keep working for objects read from disk. Bounded: two generations of
   * MEMO_GENERATION records; frozen, as callers share them.
   */
  private decoded(ikey: Buffer): IndexRecord | undefined {
    const raw = this.objects.getBinary(ikey);
    if (raw === undefined) return undefined;
    const id = ikey.toString('latin1');
    const memo = this.memo[0].get(id) ?? this.memo[1].get(id);
    if (memo !== undefined && memo.raw.equals(raw)) {
      if (!this.memo[0].has(id)) this.remember(id, memo);
      return memo.rec;
    }
    const rec = this.objects.get(ikey);
    if (rec === undefined) return undefined;
    freezeMeta(rec.meta);
    Object.freeze(rec);
    this.remember(id, { raw, rec });
    return rec;
  }

  private remember(id: string, entry: { raw: Buffer; rec: IndexRecord }): void {
    if (this.memo[0].size >= MEMO_GENERATION) this.memo = [new Map(), this.memo[0]];
    this.memo[0].set(id, entry);
  }

  /** The record a secondary list points at, if it is still current. */
  private current(ikey: Buffer): IndexRecord | undefined {
    const committed = this.committedRecord(Buffer.from(ikey));
    if (committed === undefined) return undefined;
    const op = this.pending.get(committed.key);
    return op === undefined ? committed : (op.rec ?? undefined);
  }

  /** A write sequence number no other writer hands out (from this process's block; a new block when it runs out). */
  nextSeq(): number {
    if (this.seqNext >= this.seqEnd) this.updateStateSync((state) => this.takeSeqBlock(state));
    return this.seqNext++;
  }

  /** Take the next block of write sequence numbers from `state` (inside updateStateSync: at open, with the rest). */
  takeSeqBlock(state: IndexState): void {
    this.seqNext = state.seq;
    this.seqEnd = state.seq + SEQ_BLOCK;
    state.seq = this.seqEnd;
  }

  /**
   * Insert or replace `rec`: visible in this process at once; the promise resolves when LMDB has
   * committed it (visible to other processes, and surviving a crash of this one), with whether it
   * applied (see ChangeOptions) and the record it replaced. `hash`: the key's keyHash when the
   * caller has it already.
   */
  put(rec: IndexRecord, hash?: Buffer, options: ChangeOptions = {}): Promise<Applied> {
    return this.write(rec.key, rec, options, hash?.subarray(0, 8));
  }

  /** Remove `key` (if still version `ifSeq` when given); resolves once committed, with the record removed. */
  remove(key: string, ifSeq?: number): Promise<Applied> {
    return this.write(key, null, { ifSeq });
  }

  /**
   * Replace the current record of `key` by `rec` (null: remove) in every database, with the
   * counters, in a write transaction where the current record and the state are read (see the
   * module comment). Changes issued in one event turn share one transaction, in order, so a key's
   * changes land as they were made; LMDB syncs them in the background.
   */
  private write(key: string, rec: IndexRecord | null, options: ChangeOptions, knownHash8?: Buffer): Promise<Applied> {
    const ikey = indexKey(key);
    const local = this.get(key);
    const op: Op = { rec };
    if (options.ifSeq === undefined || local?.seq === options.ifSeq) this.pending.set(key, op);
    // This process's estimate of the change, until the committed state has it.
    const est: Counters = {
      entries: (rec === null ? 0 : 1) - (local === undefined ? 0 : 1),
      liveBytes: (rec?.cost ?? 0) - (local?.cost ?? 0),
      fileBytes: fileBytesOf(rec ?? undefined) - fileBytesOf(local),
      segBytes: rec !== null && rec.off >= 0 ? (options.newBytes ?? 0) : 0,
    };
    addCounters(this.queued, est, 1);
    let version = -1;
    const done = Promise.resolve(
      this.env.transaction(() => {
        addCounters(this.queued, est, -1);
        const applied = this.apply(key, ikey, rec, options, knownHash8);
        if (applied.applied) this.ran.push({ v: (version = this.committedState().v!), d: est });
        return applied;
      }),
    );
    const settle = () => {
      // Committed: the committed state has it from now on.
      while (version >= 0 && this.ran.length > 0 && this.ran[0]!.v <= version) this.ran.shift();
      if (this.pending.get(key) === op) this.pending.delete(key);
    };
    return done.then(
      (applied) => (settle(), applied),
      (err: unknown) => {
        settle();
        throw err;
      },
    );
  }

  /** The change, inside its write transaction. */
  private apply(key: string, ikey: Buffer, rec: IndexRecord | null, options: ChangeOptions, knownHash8: Buffer | undefined): Applied {
    const found = this.objects.get(ikey);
    const old = found !== undefined && found.key === key ? found : undefined;
    if (options.ifSeq !== undefined && old?.seq !== options.ifSeq) return { applied: false, old };
    if (rec === null && old === undefined) return { applied: false, old };
    const state = this.committedState();
    // A new index's first commit (its owner's open committed nothing): the sequence numbers handed out.
    if (state.seq < this.seqEnd) state.seq = this.seqEnd;
    const newBytes = rec === null ? undefined : options.newBytes;
    if (rec !== null && (newBytes !== undefined || options.ifLive === true) && rec.g <= (state.evictedUpTo ?? 0)) return { applied: false, old };
    // The key's hash (keyHash: the caller's when it has made it), made once for all its list entries (a path, each tag).
    let hash8 = knownHash8;
    const hashed = (): Buffer => (hash8 ??= hash8Of(key));
    if (old !== undefined) {
      void this.byGen.remove(genKey(old.g, old.seq));
      if (rec === null) void this.byPath.remove(taggedKey(this.pathOf(old.key), hashed()));
      for (const tag of old.meta.tags ?? []) if (rec === null || !(rec.meta.tags ?? []).includes(tag)) void this.byTag.remove(taggedKey(tag, hashed()));
      if (old.file !== undefined && old.file !== rec?.file) void this.files.remove(Buffer.from(old.file));
    }
    if (rec === null) {
      void this.objects.remove(ikey);
    } else {
      void this.objects.put(ikey, rec);
      void this.byGen.put(genKey(rec.g, rec.seq), ikey);
      if (old === undefined) void this.byPath.put(taggedKey(this.pathOf(rec.key), hashed()), ikey);
      for (const tag of rec.meta.tags ?? []) if (!(old?.meta.tags ?? []).includes(tag)) void this.byTag.put(taggedKey(tag, hashed()), ikey);
      if (rec.file !== undefined && rec.file !== old?.file) void this.files.put(Buffer.from(rec.file), ikey);
    }
    state.entries += (rec === null ? 0 : 1) - (old === undefined ? 0 : 1);
    state.liveBytes += (rec?.cost ?? 0) - (old?.cost ?? 0);
    state.fileBytes += fileBytesOf(rec ?? undefined) - fileBytesOf(old);
    if (rec !== null && newBytes !== undefined) this.countNewBytes(state, rec, newBytes, options.segmentSize ?? Infinity);
    state.v = (state.v ?? 0) + 1;
    void this.stateDb.put('state', state);
    return { applied: true, old };
  }

  /** A new body's bytes: into its generation (which ends once full: the next one starts) and, packed, into its segment's count. */
  private countNewBytes(state: IndexState, rec: IndexRecord, bytes: number, segmentSize: number): void {
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
    const before = this.stateDb.get(key) as number | undefined;
    // A segment file's first record counts one block more: what rounding its size up may take.
    const after = (before ?? FS_BLOCK) + bytes;
    void this.stateDb.put(key, after);
    state.segBytes = (state.segBytes ?? 0) + after - (before ?? 0);
  }

  /**
   * Run `fn` in one synchronous LMDB transaction: the puts and removes it issues are written at
   * once and committed together when it returns. For bulk loads (tools, benchmarks): ten million
   * entries take minutes this way, where one transaction per 10 ms batch of commits takes hours.
   */
  batch(fn: () => void): void {
    this.env.transactionSync(fn);
  }

  /** Resolves when every write issued so far is committed. */
  committed(): Promise<void> {
    return Promise.resolve(this.env.committed).then(() => undefined);
  }

  /** Resolves when every write issued so far is on the disk (LMDB's own sync). */
  flushed(): Promise<void> {
    return Promise.resolve(this.env.flushed).then(() => undefined);
  }

  /** The oldest generation after `after` that any committed or pending record is listed in (committed lists may name records moved since). */
  oldestGeneration(after = 0): number | undefined {
    let oldest: number | undefined;
    for (const key of this.byGen.getKeys({ start: genKey(after + 1, 0), limit: 1 })) oldest = key.readUInt32BE(0);
    for (const op of this.pending.values()) if (op.rec !== null && op.rec.g > after && (oldest === undefined || op.rec.g < oldest)) oldest = op.rec.g;
    return oldest;
  }

  newestGeneration(): number {
    let newest = 0;
    for (const key of this.byGen.getKeys({ reverse: true, limit: 1 })) newest = key.readUInt32BE(0);
    for (const op of this.pending.values()) if (op.rec !== null && op.rec.g > newest) newest = op.rec.g;
    return newest;
  }

  /** The records currently in generation `g`, committed and pending. */
  generation(g: number): IndexRecord[] {
    const out: IndexRecord[] = [];
    const seen = new Set<string>();
    for (const { value } of this.byGen.getRange({ start: genKey(g, 0), end: genKey(g + 1, 0) })) {
      const rec = this.current(value);
      if (rec !== undefined && rec.g === g && !seen.has(rec.key)) {
        seen.add(rec.key);
        out.push(rec);
      }
    }
    for (const op of this.pending.values()) if (op.rec !== null && op.rec.g === g && !seen.has(op.rec.key)) out.push(op.rec);
    return out;
  }

  /** Keys starting with `prefix`, in key order for committed ones (a range of the sorted index). */
  keysWithPrefix(prefix: string, limit = Infinity): string[] {
    const start = Buffer.from(prefix, 'utf8');
    const out = new Set<string>();
    for (const { value } of this.objects.getRange({ start, end: rangeEnd(start) })) {
      if (out.size >= limit) break;
      const op = this.pending.get(value.key);
      if (value.key.startsWith(prefix) && (op === undefined || op.rec !== null)) out.add(value.key);
    }
    for (const [key, op] of this.pending) if (op.rec !== null && key.startsWith(prefix) && out.size < limit) out.add(key);
    return [...out];
  }

  /** Keys whose path (pathOf) starts with `prefix`, host-independent: purge by prefix. */
  keysUnderPath(prefix: string): string[] {
    return this.listed(this.byPath, prefix, (key) => this.pathOf(key).startsWith(prefix), true);
  }

  /** Keys whose metadata carries `tag` (Surrogate-Key): purge by tag. */
  keysWithTag(tag: string): string[] {
    return this.listed(this.byTag, tag, (key) => (this.get(key)?.meta.tags ?? []).includes(tag), false);
  }

  private listed(db: Database<Buffer, Buffer>, text: string, matches: (key: string) => boolean, isPrefix: boolean): string[] {
    const start = cut(text);
    const end = isPrefix ? rangeEnd(start) : Buffer.concat([start, Buffer.from([1])]);
    const out = new Set<string>();
    for (const { value } of db.getRange({ start, end })) {
      const rec = this.current(value);
      if (rec !== undefined && matches(rec.key)) out.add(rec.key);
    }
    for (const [key, op] of this.pending) if (op.rec !== null && matches(key)) out.add(key);
    return [...out];
  }

  /** The record whose body file is `name`, if any. */
  byFile(name: string): IndexRecord | undefined {
    const ikey = this.files.get(Buffer.from(name));
    const rec = ikey === undefined ? undefined : this.current(ikey);
    if (rec?.file === name) return rec;
    for (const op of this.pending.values()) if (op.rec?.file === name) return op.rec;
    return undefined;
  }

  /** Every key, least recently used first (O(entries): for tests and tools, never on a request). */
  keysByRecency(): string[] {
    const recs = new Map<string, IndexRecord>();
    for (const { value } of this.byGen.getRange({})) {
      const rec = this.current(value);
      if (rec !== undefined) recs.set(rec.key, rec);
    }
    for (const op of this.pending.values()) if (op.rec !== null) recs.set(op.rec.key, op.rec);
    return [...recs.values()].sort((a, b) => a.g - b.g || a.seq - b.seq).map((r) => r.key);
  }

  /** Committed records in key order, `after` excluded, at most `limit` (the background check walks with it). */
  scan(after: Buffer | undefined, limit: number): { records: IndexRecord[]; last: Buffer | undefined } {
    const records: IndexRecord[] = [];
    let last: Buffer | undefined;
    for (const { key, value } of this.objects.getRange(after === undefined ? { limit } : { start: after, limit: limit + 1 })) {
      if ((after !== undefined && key.equals(after)) || key.equals(STRUCTURES_KEY)) continue;
      if (records.length >= limit) break;
      records.push(value);
      last = Buffer.from(key);
    }
    return { records, last };
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
