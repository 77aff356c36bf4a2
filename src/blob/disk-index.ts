/**
 * The disk store's index, in LMDB (one memory-mapped file, sorted keys, crash-safe commits, read
 * by any number of processes, written by several one transaction at a time): what is stored where, its metadata, and the
 * secondary lists that let eviction, purge and lookups find objects without visiting every one.
 *
 * | database  | key                                  | value                          |
 * | --------- | ------------------------------------ | ------------------------------ |
 * | `objects` | the cache key (UTF-8; long keys cut and hashed) | IndexRecord (disk-record.ts) |
 * | `byGen`   | generation u32, write sequence u48   | objects key                    |
 * | `byPath`  | path (pathOf(key)), 0, hash8(key)     | objects key                    |
 * | `byTag`   | tag, 0, hash8(key)                   | objects key                    |
 * | `files`   | body file name                       | objects key                    |
 * | `state`   | "state"                              | counters, head generation, evicted generations |
 * | `state`   | "s<generation, 10 digits>/<writer>"  | bytes committed into that segment file |
 *
 * Several processes may write one index (the owner and co-writers, disk-blob-store.ts): LMDB
 * serialises their write transactions, and every change runs inside one (the changes a process
 * issued meanwhile, as one batch, each all or nothing: disk-index-state.ts), reading the key's current record and the
 * state there, so counters,
 * secondary lists and conditions (`ifSeq`: only over this version; a body brought into a
 * generation the owner evicted meanwhile is refused) hold whatever the other writers did. No
 * process keeps a private truth of the totals: `state` is the last committed state read, plus
 * this process's changes not yet committed (disk-index-state.ts). Write sequence numbers are
 * unique across writers: each takes a block of them from the state. A record without `w` is the
 * owner's, as every record of an index from before co-writers: the format did not change.
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
import { GenerationMap } from '../generation-map.js';
import { SharedIndexState, type Applied, type ChangeOptions, type Counters, type InFlight, type IndexState } from './disk-index-state.js';
import { FS_BLOCK, keyHash } from './disk-layout.js';
import { recencyHash } from './disk-recency.js';
import { SeenRecently } from './seen-recently.js';
import { decodeRecord, encodeRecord, recordKey } from './disk-record.js';

export type { Applied, ChangeOptions, IndexState } from './disk-index-state.js';

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


/** Decoded records remembered per process: two generations of this many (a few MB at most). */
const MEMO_GENERATION = 5_000;

interface Memo {
  /** The record's bytes in LMDB, as decoded: a copy in memory of its own (ownedCopy). */
  raw: Buffer;
  rec: IndexRecord;
}

/**
 * `bytes` copied into memory of their own. A small Buffer.from() is a slice of one of Node's
 * 8 KiB pool slabs, shared with whatever else was allocated from it at the time (mostly
 * short-lived), and the slab lives as long as its longest-lived slice. Memo entries outlive
 * young collections: in a heap snapshot after hits over 100,000 objects (test/bench/disk-soak.ts),
 * the memo's 10,000 records of ~100 bytes held 2,300 slabs, 18 MB.
 */
export function ownedCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
}

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

export function fileBytesOf(rec: IndexRecord | undefined): number {
  return rec?.file === undefined ? 0 : Math.ceil(rec.meta.size / FS_BLOCK) * FS_BLOCK;
}

type Op = { rec: IndexRecord | null };


export interface DiskIndexOptions {
  path: string;
  readOnly: boolean;
  /** The path a key belongs to, for keysUnderPath (the edge: the URL path without host and query). */
  pathOf: (key: string) => string;
  /** Write sequence numbers taken from the shared state at a time (SharedIndexState). Default 2^20. */
  seqBlock?: number | undefined;
}

export class DiskIndex {
  /** Changes issued and not yet committed by LMDB: what this process reads before LMDB. */
  private readonly pending = new Map<string, Op>();
  /** Keyed by cache key; records decoded lately for the second time (or more). */
  private readonly memo = new GenerationMap<string, Memo>(MEMO_GENERATION);
  /** The memo's doorkeeper: keys decoded lately. */
  private readonly decoded = new SeenRecently();
  /** The counters, generations and sequence numbers every writer shares (disk-index-state.ts). */
  readonly shared: SharedIndexState;

  private constructor(
    private readonly env: RootDatabase,
    private readonly objects: Database<Buffer, Buffer>,
    private readonly byGen: Database<Buffer, Buffer>,
    private readonly byPath: Database<Buffer, Buffer>,
    private readonly byTag: Database<Buffer, Buffer>,
    private readonly files: Database<Buffer, Buffer>,
    stateDb: Database<IndexState | number, string>,
    private readonly pathOf: (key: string) => string,
    seqBlock: number | undefined,
  ) {
    this.shared = new SharedIndexState(env, stateDb, seqBlock);
  }

  /** The counters every writer shares as committed, plus this process's changes in flight. */
  get state(): IndexState {
    return this.shared.current();
  }

  /** Hold this process's commits while another process opens the index (SharedIndexState.hold). */
  hold(maxMs: number): Promise<() => void> {
    return this.shared.hold(maxMs);
  }

  /** A write sequence number no other writer hands out. */
  nextSeq(): number {
    return this.shared.nextSeq();
  }

  static open(options: DiskIndexOptions): DiskIndex {
    // separateFlushed: a write's promise resolves once committed (in the page cache: a crash of this
    // process keeps it), not after the fsync, which LMDB runs in the background (overlappingSync).
    // commitDelay: writes of the next 10 ms share a transaction, so under load each fsync covers more.
    const env = open({ path: options.path, noSubdir: true, maxDbs: 8, readOnly: options.readOnly, encoding: 'msgpack', separateFlushed: true, commitDelay: 10 });
    const binary = { keyEncoding: 'binary', encoding: 'binary' } as const;
    return new DiskIndex(
      env,
      env.openDB<Buffer, Buffer>('objects', binary),
      env.openDB<Buffer, Buffer>('byGen', binary),
      env.openDB<Buffer, Buffer>('byPath', binary),
      env.openDB<Buffer, Buffer>('byTag', binary),
      env.openDB<Buffer, Buffer>('files', binary),
      env.openDB<IndexState | number, string>('state', { encoding: 'msgpack' }),
      options.pathOf,
      options.seqBlock,
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

  /**
   * The committed record at `ikey` (of `key` when known: a cut key's record names its whole key,
   * and another key's is not this one's), the same object as last time while its bytes in LMDB are
   * the same (compared, not decoded), from its second lookup lately on: per-object memos
   * downstream (the edge's hit templates, keyed by the meta object) keep working for objects read
   * from disk again. Bounded: two generations of MEMO_GENERATION records; frozen, as callers share
   * them. The bytes are LMDB's read buffer, compared or decoded before the next read (no copy of
   * every value looked up).
   */
  private committedRecord(ikey: Buffer, key?: string): IndexRecord | undefined {
    const fast = this.objects.getBinaryFast(ikey);
    if (fast === undefined) return undefined;
    // LMDB's read buffer, its `length` set to the value's: a view of just the value.
    const raw = fast.subarray(0, fast.length);
    const id = recordKey(raw, ikey, key);
    if (key !== undefined && id !== key) return undefined;
    const memo = this.memo.get(id);
    if (memo !== undefined && memo.raw.equals(raw)) return memo.rec;
    const rec = decodeRecord(raw, ikey, id);
    freezeMeta(rec.meta);
    Object.freeze(rec.crc);
    Object.freeze(rec);
    // Kept from its second decode lately on (seen-recently.ts): one decoded once is garbage by the next young collection.
    if (memo !== undefined || this.decoded.seenBefore(recencyHash(id))) this.memo.set(id, { raw: ownedCopy(raw), rec });
    return rec;
  }

  /** The record a secondary list points at, if it is still current. */
  private current(ikey: Buffer): IndexRecord | undefined {
    const committed = this.committedRecord(Buffer.from(ikey));
    if (committed === undefined) return undefined;
    const op = this.pending.get(committed.key);
    return op === undefined ? committed : (op.rec ?? undefined);
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
    const change = this.shared.issue(est);
    const done = this.shared.inTransaction((state) => this.apply(key, ikey, rec, options, knownHash8, change, state));
    const settle = () => {
      if (this.pending.get(key) === op) this.pending.delete(key);
    };
    return done.then(
      (applied) => {
        this.shared.committed(change);
        settle();
        return applied;
      },
      (err: unknown) => {
        this.shared.failed(change);
        settle();
        throw err;
      },
    );
  }

  /** The change, inside its write transaction, with the state as the transaction has it (shared by its batch). */
  private apply(key: string, ikey: Buffer, rec: IndexRecord | null, options: ChangeOptions, knownHash8: Buffer | undefined, change: InFlight, state: IndexState): Applied {
    // Read in this transaction (other writers' commits included), not through the memo; decoded at
    // once, before the next read reuses LMDB's buffer.
    const fast = this.objects.getBinaryFast(ikey);
    const raw = fast?.subarray(0, fast.length);
    const old = raw !== undefined && recordKey(raw, ikey, key) === key ? decodeRecord(raw, ikey, key) : undefined;
    const refused = { applied: false, old };
    if (options.ifSeq !== undefined && old?.seq !== options.ifSeq) return this.shared.ran(change, false), refused;
    if (rec === null && old === undefined) return this.shared.ran(change, false), refused;
    const newBytes = rec === null ? undefined : options.newBytes;
    if (rec !== null && (newBytes !== undefined || options.ifLive === true) && rec.g <= (state.evictedUpTo ?? 0)) return this.shared.ran(change, false), refused;
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
      void this.objects.put(ikey, encodeRecord(rec, ikey));
      void this.byGen.put(genKey(rec.g, rec.seq), ikey);
      if (old === undefined) void this.byPath.put(taggedKey(this.pathOf(rec.key), hashed()), ikey);
      for (const tag of rec.meta.tags ?? []) if (!(old?.meta.tags ?? []).includes(tag)) void this.byTag.put(taggedKey(tag, hashed()), ikey);
      if (rec.file !== undefined && rec.file !== old?.file) void this.files.put(Buffer.from(rec.file), ikey);
    }
    state.entries += (rec === null ? 0 : 1) - (old === undefined ? 0 : 1);
    state.liveBytes += (rec?.cost ?? 0) - (old?.cost ?? 0);
    state.fileBytes += fileBytesOf(rec ?? undefined) - fileBytesOf(old);
    if (rec !== null && newBytes !== undefined) this.shared.countNewBytes(state, rec, newBytes, options.segmentSize ?? Infinity);
    this.shared.ran(change, true);
    return { applied: true, old };
  }

  /**
   * Run `fn` in one synchronous LMDB transaction: the puts and removes it issues are written as
   * one batch and committed together when it returns. For bulk loads (tools, benchmarks): ten
   * million entries take minutes this way, where one transaction per 10 ms batch of commits takes hours.
   */
  batch(fn: () => void): void {
    this.shared.transactionSync(fn);
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
    for (const { key: ikey, value } of this.objects.getRange({ start, end: rangeEnd(start) })) {
      if (out.size >= limit) break;
      const key = recordKey(value, ikey);
      const op = this.pending.get(key);
      if (key.startsWith(prefix) && (op === undefined || op.rec !== null)) out.add(key);
    }
    // Every lookup of a primary not seen lately (each cold miss) looks here: the writes in flight
    // are tens under load, mostly of keys sharing a long host and path prefix with `prefix`, so
    // their last character is compared before the whole prefix is.
    const last = prefix.length - 1;
    const lastChar = prefix.charCodeAt(last);
    for (const key of this.pending.keys()) {
      if (out.size >= limit) break;
      if ((last >= 0 && key.charCodeAt(last) !== lastChar) || !key.startsWith(prefix)) continue;
      if (this.pending.get(key)!.rec !== null) out.add(key);
    }
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
      if (after !== undefined && key.equals(after)) continue;
      if (records.length >= limit) break;
      records.push(decodeRecord(value, key));
      last = Buffer.from(key);
    }
    return { records, last };
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
