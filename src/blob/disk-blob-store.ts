/**
 * The disk blob store, built for millions of objects: an LMDB index (disk-index.ts), small bodies
 * packed into segment files (disk-segments.ts), large ones in a file each (format in
 * disk-layout.ts). Like ATS and nginx, the cache is not the source of truth, so it trades the last
 * seconds of objects on a power loss for a miss path without a single fsync:
 *
 * - **write**: a body ≤ packMaxSize (64 KiB) is held in memory, then appended to the head segment
 *   with a header naming its key, length and CRC; a larger one streams to `tmp/` and is renamed into
 *   `files/`. Then the index entry goes to LMDB: visible here at once, committed (and so surviving a
 *   crash of the process, and visible to cluster workers) within ~10 ms, fsynced by LMDB in a
 *   background thread once for each batch of commits. Segments are fdatasynced within
 *   `syncInterval` (1 s) of a write. No fsync waits on the miss path. A store nobody writes is
 *   looked at less and less often (up to 8 syncIntervals apart: flush-schedule.ts).
 * - **read**: the index gives the location and the metadata (no record file to parse); a packed
 *   body comes back whole with one `pread` and is checked (header, length, CRC; the CRC once per
 *   location and process); a file is checked block by block as it streams. Whatever fails is
 *   dropped on the spot and never served.
 * - **recency and eviction**: time is cut into generations: a new one starts when the head segment
 *   (or the bytes of files written since it began) reaches `segmentSize`. Every entry carries the
 *   generation it was written in; a read only notes that the entry was read (disk-recency.ts: a
 *   hash and a store into a fixed table). When the disk would exceed maxBytes, the oldest
 *   generation goes: its entries read since they were written (or last moved) are moved to the
 *   head (a packed body is copied there), at most 1,024 per eviction run, and the rest are evicted
 *   whole: entries, files, segment. Above 3/4 of maxBytes, the moves for the generation evicted
 *   next are done ahead, in the background. So a read object outlives every object stored before
 *   the read and not read since (a second chance, as ATS and CLOCK give), a hit copies nothing,
 *   eviction costs no memory per object, and frees space a segment at a time.
 * - **open**: takes the LOCK, opens LMDB, lists the segment files: no scan of the objects, so a node
 *   serves at once whatever it holds. When the previous owner did not stop cleanly (its LOCK was
 *   still there: a crash, a kill, a power loss), a background check then walks the index (entries
 *   whose bytes are missing or fail their checksum are dropped) and removes body files nothing
 *   points at. After a clean stop there is nothing for it to find, and it does not run: a walk of
 *   ten million entries reads every record and body for many minutes, beside the requests.
 * - **space**: maxBytes bounds what the disk really holds: segment files (dead records included,
 *   until their generation goes), body files rounded up to 4 KiB blocks, the index file, and the
 *   read marks saved at the last clean stop (4 bytes per 4 KiB of maxBytes, at most 8 MiB).
 *
 * What a power loss can lose (a crash of the process loses nothing committed): the index goes back
 * to LMDB's last synced transaction (milliseconds to a second behind under load), packed bodies
 * appended since the last segment sync (≤ `syncInterval`) and body files the kernel had not
 * written back yet (Linux: ~30 s) fail their checks when read or at the background check, and are
 * dropped. Objects, never correctness: nothing is served without passing its checksum.
 *
 * Several processes may write one directory at once. One is its **owner** (`LOCK`): it opens it
 * first (or after co-writers, when the folder allows them to open before it: openBeforeOwner,
 * disk-open.ts), and alone evicts, moves read entries, keeps the read marks and runs the
 * background check. The others open it as **co-writers** (`writer: <id>`, 1–1023; `LOCK-w<id>`): each appends to
 * segment files of its own (`<gen>-w<id>.seg`, the index record's `w`), its body files go through
 * `tmp/w<id>/`, and its index changes run in LMDB write transactions like the owner's, which
 * keep the counters, the head generation and the evicted ones in the index's state (disk-index.ts).
 * Bytes are written before the entry that points at them, and a commit into a generation the
 * owner evicted meanwhile is refused: a writer killed at any moment leaves only bytes no entry
 * points at, which go with their generation. A co-writer never evicts: a body that would take
 * the disk over maxBytes is not stored, and the owner keeps room ahead while co-writers are open:
 * a co-writer whose commits reach into that room asks for more (onRoomWanted: its process tells the
 * owner's, which calls makeRoomForWriters), and the owner's flush makes room too. Nothing polls:
 * an idle store is not woken for it.
 * Every writer should be given the same options.
 */
import { join } from 'node:path';
import { isCdnError } from '../errors.js';
import {
  BLOB_ERROR_CODES,
  applyMetaChanges,
  blobError,
  blobOptionError,
  estimateMetaBytes,
  finalMeta,
  type BlobEntry,
  type BlobStore,
  type BlobStoreStats,
  type CommitMeta,
  type HotEntry,
  type MetaChanges,
  type StoredMeta,
  type WriteOptions,
} from './blob-store.js';
import { freezeMeta } from './buffer-entry.js';
import { backgroundCheck, type CheckReport } from './disk-check.js';
import { marksPath, openAsCoWriter, openAsOwner, writerTmpDir, type OpenedFolder, type OpenReport } from './disk-open.js';
import { errnoCode, makeDirs, tempPath, unlinkQuietly, type DiskFs } from './disk-fs.js';
import { DiskGenerations } from './disk-generations.js';
import { diskStoreOptions, type DiskBlobStoreOptions, type DiskStoreSettings } from './disk-options.js';
import { DiskIndex, sameVersion, type IndexRecord } from './disk-index.js';
import { MAX_WRITER_ID, SEGMENT_HEADER_BYTES, allocated, filePath, fileName, keyHash, newFileGeneration, segmentHeader, segmentId, type DiskLayout } from './disk-layout.js';
import { lendPackedNow, readBuffersFor, readRecord, recordReader, type RecordReader } from './disk-read.js';
import type { RecencyMarks } from './disk-recency.js';
import { Segments } from './disk-segments.js';
import { DiskBlobWriter, type DiskWriterHost, type WrittenBody } from './disk-writer.js';
import { FlushSchedule } from './flush-schedule.js';
import { KeyedLock } from './keyed-lock.js';

export interface DiskBlobStoreStats extends BlobStoreStats {
  /** Bytes the cache takes on disk: segments, body files (allocated blocks) and the index. Kept ≤ maxBytes. */
  diskBytes: number;
  /** Entries dropped because their bytes failed a check on read. */
  corruptDropped: number;
  /** get() calls that failed on I/O and were answered as misses. */
  readErrors: number;
  /** Writers begun and not yet committed or aborted. */
  openWriters: number;
  /** Entries moved to the head because they were read when their generation came up for eviction. */
  moved: number;
}

export type DropReason = 'evicted' | 'corrupt';

export type { OpenReport } from './disk-open.js';

/** Packed locations whose CRC was verified in this process; two generations of this many. */
const VERIFIED_GENERATION = 100_000;

/** The flush's period, while no writer commits anything, grows up to this many syncIntervals. */
const IDLE_FLUSH_PERIODS = 8;

/** A co-writer asks its owner for room at most this often (ms): a burst of commits into the room kept for co-writers asks once. */
const ROOM_ASK_MS = 10;

export class DiskBlobStore implements BlobStore, DiskWriterHost {
  readonly maxBytes: number;
  /** 0: the owner; else this co-writer's id. */
  readonly writer: number;
  readonly maxEntrySize: number;
  readonly fs: DiskFs;
  private readonly locks = new KeyedLock();
  private readonly writers = new Set<DiskBlobWriter>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly dropListeners = new Set<(key: string, reason: DropReason) => void>();
  private readonly roomListeners = new Set<() => void>();
  private roomAskedAt = -Infinity;
  private readonly counters = { storeErrors: 0, evictions: 0, corruptDropped: 0, readErrors: 0 };
  private readonly reader: RecordReader;
  private readonly generations: DiskGenerations;
  private closed = false;
  private readonly flushes: FlushSchedule;
  private readonly tmpDir: string;
  /** Aborted at close: the background check stops. */
  private readonly stopping = new AbortController();
  /** The background check started at open after an unclean stop; resolves with what it found (`ran: false` after a clean stop). */
  readonly checked: Promise<CheckReport>;

  private constructor(
    private readonly layout: DiskLayout,
    private readonly options: DiskStoreSettings,
    fs: DiskFs,
    private readonly index: DiskIndex,
    private readonly segments: Segments,
    private readonly unlock: () => Promise<void>,
    readonly openReport: OpenReport,
    /** After an unclean stop, the owner's: body files younger than this may be commits in flight (ms since epoch). */
    checkFrom: number | undefined,
    private readonly marks: RecencyMarks,
    writer: number,
  ) {
    this.writer = writer;
    this.tmpDir = writerTmpDir(layout, writer);
    this.maxBytes = options.maxBytes;
    this.maxEntrySize = options.maxEntrySize;
    this.fs = fs;
    this.reader = recordReader(segments, layout, fs, readBuffersFor(options.packMaxSize), VERIFIED_GENERATION);
    this.generations = new DiskGenerations({
      index,
      segments,
      layout,
      reader: this.reader,
      maxBytes: options.maxBytes,
      segmentSize: options.segmentSize,
      marks,
      marksPath: marksPath(layout),
      isClosed: () => this.closed,
      evict: (rec) => this.drop(rec, 'evicted'),
      dropCorrupt: (rec) => this.dropCorrupt(rec),
      owner: writer === 0,
      roomWanted: () => this.askForRoom(),
    });
    this.flushes = new FlushSchedule(options.syncIntervalMs, IDLE_FLUSH_PERIODS * options.syncIntervalMs, () => this.flushIfMoved());
    // After a clean stop every entry's bytes were written and synced: nothing to look for.
    this.checked = checkFrom !== undefined && writer === 0
      ? this.track(
          backgroundCheck({
            index,
            segments,
            layout,
            fs,
            pauseMs: options.checkPauseMs,
            openedAt: checkFrom,
            stopped: this.stopping.signal,
            verify: (rec) => this.verifyRecord(rec),
          }),
        )
      : Promise.resolve({ ran: false, checked: 0, dropped: 0, orphanFiles: 0, complete: false });
  }

  static async open(options: DiskBlobStoreOptions): Promise<DiskBlobStore> {
    const opts = diskStoreOptions(options);
    const writer = options.writer ?? 0;
    if (!Number.isSafeInteger(writer) || writer < 0 || writer > MAX_WRITER_ID) throw blobOptionError('writer', `must be an integer from 1 to ${MAX_WRITER_ID} (absent: the owner)`);
    const folder = writer === 0 ? await openAsOwner(options, opts) : (await openAsCoWriter(options, writer, undefined))!;
    return DiskBlobStore.build(folder, opts, writer);
  }

  /**
   * Opens `options.dir` as co-writer `options.writer` (1–1023) before its owner, process
   * `ownerPid`, has opened it in this run, when the folder allows it (disk-open.ts: the current
   * format, an index of this version, no other owner alive); resolves undefined when it does not (a first
   * start, an earlier format to discard, an index of before co-writers, another node's folder):
   * open it with open() once the owner has. The owner's open keeps it.
   */
  static async openBeforeOwner(options: DiskBlobStoreOptions, ownerPid: number): Promise<DiskBlobStore | undefined> {
    const opts = diskStoreOptions(options);
    const writer = options.writer ?? 0;
    if (!Number.isSafeInteger(writer) || writer < 1 || writer > MAX_WRITER_ID) throw blobOptionError('writer', `must be an integer from 1 to ${MAX_WRITER_ID}`);
    const folder = await openAsCoWriter(options, writer, ownerPid);
    return folder === undefined ? undefined : DiskBlobStore.build(folder, opts, writer);
  }

  private static async build(f: OpenedFolder, opts: DiskStoreSettings, writer: number): Promise<DiskBlobStore> {
    try {
      const store = new DiskBlobStore(f.layout, opts, f.fs, f.index, f.segments, f.release, f.report, f.checkFrom, f.marks, writer);
      await store.generations.measureIndex();
      if (writer === 0) await store.generations.makeRoom(0);
      return store;
    } catch (err) {
      await f.index.close().catch(() => undefined);
      await f.release();
      if (isCdnError(err)) throw err;
      throw blobError(BLOB_ERROR_CODES.storeUnavailable, `cannot open the blob store in ${f.layout.root} (${errnoCode(err) ?? String(err)})`, err);
    }
  }

  async get(key: string): Promise<BlobEntry | undefined> {
    this.assertOpen();
    // A concurrent commit or eviction may move the bytes between the lookup and the read: look again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const rec = this.index.get(key);
      if (rec === undefined) return undefined;
      this.generations.noteUse(key, rec.g);
      try {
        const found = await readRecord(this.reader, rec, { inlineReadMaxSize: this.options.inlineReadMaxSize, onCorrupt: () => this.dropCorrupt(rec) });
        if (found === 'gone') {
          if (sameVersion(this.index.get(key), rec)) return this.dropCorrupt(rec);
          continue;
        }
        if (typeof found === 'string') return this.dropCorrupt(rec);
        return found;
      } catch {
        this.counters.readErrors += 1;
        return undefined;
      }
    }
    return undefined;
  }

  /**
   * The object if it can be had without waiting: a packed body (≤ packMaxSize) whose segment is
   * open here (or opens at once), read with one synchronous pread and checked; undefined otherwise
   * (ask get()), and for a body of `largerThan` bytes or fewer (one the caller's memory tier keeps:
   * get() promotes it). Counts as a use. What nginx does for every hit; here only for small bodies,
   * which the page cache holds. The bytes are lent: see HotEntry.release. `hash`: the key's
   * recencyHash when the caller has it (the tiered store's hit hashes its key once).
   */
  getNow(key: string, largerThan = -1, hash?: number): HotEntry | undefined {
    if (this.closed) return undefined;
    const rec = this.index.get(key);
    if (rec === undefined || rec.off < 0 || rec.meta.size <= largerThan) return undefined;
    let found: ReturnType<typeof lendPackedNow>;
    try {
      found = lendPackedNow(this.reader, rec);
    } catch {
      return undefined;
    }
    if (found === 'not-open') void this.segments.ready(rec.g).catch(() => undefined); // for next time
    if (found === 'not-open' || found === 'gone') return undefined;
    if (typeof found === 'string') return this.dropCorrupt(rec);
    this.generations.noteUse(key, rec.g, hash);
    return found.entry;
  }

  async begin(key: string, expectedSize?: number, options?: WriteOptions): Promise<DiskBlobWriter | undefined> {
    this.assertOpen();
    if (expectedSize !== undefined && expectedSize > this.maxEntrySize) return undefined;
    const limits = { maxEntrySize: this.maxEntrySize, expectedSize, blockSize: this.options.blockSize, packMaxSize: this.options.packMaxSize, hash: options?.hash !== false };
    try {
      const writer = await DiskBlobWriter.create(this, key, limits);
      this.writers.add(writer);
      return writer;
    } catch {
      this.counters.storeErrors += 1;
      return undefined;
    }
  }

  /** DiskWriterHost */
  tempPath(): string {
    return tempPath(this.tmpDir, '.body.part');
  }

  /** DiskWriterHost: make a finished body the committed version of `key`. */
  place(key: string, body: WrittenBody, meta: CommitMeta): Promise<StoredMeta> {
    const stored = freezeMeta(finalMeta(key, body.size, body.sha256, meta));
    const packed = body.data !== undefined;
    const onDisk = packed ? SEGMENT_HEADER_BYTES + body.size : allocated(body.size);
    if (onDisk > this.maxBytes) throw blobError(BLOB_ERROR_CODES.tooLarge, 'object exceeds maxBytes');
    return this.track(
      this.locks.run(key, async () => {
        this.assertOpen();
        await this.generations.makeRoom(onDisk);
        this.assertOpen();
        const hash = keyHash(key);
        const g = this.generations.generationFor(onDisk);
        let off = -1;
        let file: string | undefined;
        if (packed) {
          const sid = segmentId(g, this.writer);
          off = await this.segments.append(sid, [segmentHeader(hash, body.data!, body.blockCrc32[0] ?? 0), body.data!]);
          if (!this.segments.has(sid)) throw blobError(BLOB_ERROR_CODES.notStored, 'segment evicted while written');
        } else {
          file = fileName(hash, newFileGeneration());
          await this.fs.rename(body.tmpPath!, filePath(this.layout, file)).catch(async (err: unknown) => {
            if (errnoCode(err) !== 'ENOENT') throw err;
            await makeDirs(this.fs, join(this.layout.fileDir, file!.slice(0, 2)));
            await this.fs.rename(body.tmpPath!, filePath(this.layout, file!));
          });
        }
        const rec: IndexRecord = { key, g, seq: this.index.nextSeq(), off, file, bs: body.blockSize, crc: body.blockCrc32, cost: onDisk + metaCost(stored), meta: stored };
        if (packed && this.writer !== 0) rec.w = this.writer;
        const put = this.index.put(rec, hash, { newBytes: onDisk, segmentSize: this.options.segmentSize });
        // The record is pending in the index: get() finds these bytes from here on, while the
        // index transaction waits for its batch.
        body.readable?.();
        const { applied, old } = await put;
        if (!applied) {
          // The owner evicted the generation meanwhile: the bytes go with it.
          if (file !== undefined) this.unlinkLater(filePath(this.layout, file));
          throw blobError(BLOB_ERROR_CODES.notStored, 'generation evicted while written');
        }
        if (old?.file !== undefined && old.file !== file) this.unlinkLater(filePath(this.layout, old.file));
        this.generations.askRoomWhenLow();
        this.flushes.soon(); // its segment synced within syncIntervalMs
        return stored;
      }),
    );
  }

  async updateMeta(key: string, changes: MetaChanges): Promise<boolean> {
    this.assertOpen();
    return this.track(
      this.locks.run(key, async () => {
        // Over the version read only: another writer may replace it meanwhile (then refresh that one).
        for (let attempt = 0; attempt < 3; attempt++) {
          const rec = this.index.get(key);
          if (rec === undefined) return false;
          const meta = freezeMeta(applyMetaChanges(rec.meta, changes));
          try {
            const done = await this.index.put({ ...rec, seq: this.index.nextSeq(), meta, cost: rec.cost - metaCost(rec.meta) + metaCost(meta) }, undefined, { ifSeq: rec.seq, ifLive: true });
            if (done.applied) return true;
          } catch (err) {
            this.counters.storeErrors += 1;
            throw blobError(BLOB_ERROR_CODES.notStored, 'metadata refresh failed', err);
          }
        }
        return false;
      }),
    );
  }

  async delete(key: string): Promise<boolean> {
    this.assertOpen();
    return this.track(
      this.locks.run(key, async () => {
        const { applied, old } = await this.index.remove(key);
        if (!applied || old === undefined) return false;
        if (old.file !== undefined) this.unlinkLater(filePath(this.layout, old.file));
        return true;
      }),
    );
  }

  /** Every key, least recently used first: O(entries), for tests and tools; nothing on the request path calls it. */
  keys(): string[] {
    this.assertOpen();
    return this.index.keysByRecency();
  }

  /** Keys that start with `prefix` (a range of the sorted index): the stored variants of a URL. */
  keysWithPrefix(prefix: string, limit?: number): string[] {
    this.assertOpen();
    return this.index.keysWithPrefix(prefix, limit);
  }

  /** Keys whose path (options.pathOf) starts with `prefix`, whatever their host: for purge by prefix. */
  keysUnderPath(prefix: string): string[] {
    this.assertOpen();
    return this.index.keysUnderPath(prefix);
  }

  /** Keys whose metadata carries `tag` (Surrogate-Key / Cache-Groups): for purge by tag. */
  keysWithTag(tag: string): string[] {
    this.assertOpen();
    return this.index.keysWithTag(tag);
  }

  /** Mark `key` as just used without reading it (the tiered store calls this on memory hits). `hash`: its recencyHash, if made already. */
  touch(key: string, hash?: number): boolean {
    if (this.closed) return false;
    this.generations.noteUse(key, undefined, hash);
    return true;
  }

  /**
   * Keys another process read (a cluster worker's disk and memory hits), given by their
   * recencyHash (disk-recency.ts): each is noted as read now, as touch would, so that eviction
   * counts every process's reads.
   */
  noteReadHashes(hashes: ArrayLike<number>): void {
    if (this.closed) return;
    const head = this.generations.head;
    for (let i = 0; i < hashes.length; i++) this.marks.noteHash(hashes[i]!, head);
  }

  /**
   * A co-writer's: listen for its requests for room, which its owner is to get (makeRoomForWriters):
   * its commits reached into the room the owner keeps for co-writers, or one waits for room. At
   * most one every ROOM_ASK_MS. Returns the unsubscribe.
   */
  onRoomWanted(listener: () => void): () => void {
    this.roomListeners.add(listener);
    return () => this.roomListeners.delete(listener);
  }

  /** Listen for entries the store removes by itself (eviction, corruption); returns the unsubscribe. */
  onDrop(listener: (key: string, reason: DropReason) => void): () => void {
    this.dropListeners.add(listener);
    return () => this.dropListeners.delete(listener);
  }

  stats(): DiskBlobStoreStats {
    const s = this.index.state;
    return { entries: s.entries, bytes: s.liveBytes, maxBytes: this.maxBytes, diskBytes: this.generations.diskBytes(), ...this.counters, openWriters: this.writers.size, moved: this.generations.moved };
  }

  /**
   * The periodic work, also callable at will: near maxBytes, move the read entries of the
   * generation evicted next; make the segments durable, and wait for the index writes so far to
   * be committed.
   */
  async flush(): Promise<void> {
    await this.generations.evacuateAhead();
    await this.segments.sync();
    await this.index.committed();
    await this.generations.measureIndex();
    // Segments of evicted generations (another process deletes them) let go of.
    await this.segments.forgetUpTo(this.generations.evictedNow());
    // The index file grows between measures (LMDB adds pages as it fills): if that took the disk
    // over maxBytes since the last write made room, evict now, so the bound holds after each flush.
    if (this.writer === 0) await this.generations.makeRoom(0, this.headroom());
  }

  /**
   * The periodic flush, skipped while no writer has committed anything since the last look and no
   * read entry waits to be moved: an idle store has nothing to sync, measure or evict (one read of
   * the index's state, instead of a flush). Resolves whether it flushed.
   */
  private async flushIfMoved(): Promise<boolean> {
    if (!this.index.shared.stateMoved() && !this.generations.movesWaiting) return false;
    await this.flush();
    return true;
  }

  /** The room the owner keeps free while co-writers are open: they do not evict, and refuse what does not fit. */
  private headroom(): number {
    return (this.index.shared.committedState().writers ?? []).length > 0 ? this.generations.writersRoom() : 0;
  }

  /**
   * The owner, when a co-writer asks (onRoomWanted): evict ahead, so that what co-writers write
   * next fits. Nothing to do without co-writers, or with room enough. Never rejects (a failed
   * eviction is tried again at the next request, or flush); close() waits for it.
   */
  makeRoomForWriters(): Promise<void> {
    if (this.closed || this.writer !== 0) return Promise.resolve();
    const headroom = this.headroom();
    if (headroom === 0 || this.generations.diskBytes() <= this.maxBytes - headroom) return Promise.resolve();
    return this.track(this.generations.makeRoom(0, headroom)).catch(() => undefined);
  }

  /** GenerationsHost, a co-writer's: tell the listeners, at most once every ROOM_ASK_MS. */
  private askForRoom(): void {
    const now = performance.now();
    if (now - this.roomAskedAt < ROOM_ASK_MS) return;
    this.roomAskedAt = now;
    for (const listener of this.roomListeners) listener();
  }

  /** Hold this process's index commits while another process opens the store, for at most `maxMs` (SharedIndexState.hold). */
  holdCommits(maxMs: number): Promise<() => void> {
    return this.index.hold(maxMs);
  }

  /**
   * Resolves once every index change issued so far is on the disk (LMDB's own sync), so it
   * survives a power loss: what must hold before a record of it (a purge cursor) is written.
   */
  async durable(): Promise<void> {
    this.assertOpen();
    await this.index.flushed();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true; // commits still queued fail with blob_store_closed and clean up after themselves
    this.flushes.stop();
    this.stopping.abort();
    await Promise.all([...this.writers].map((w) => w.abort()));
    await this.settle();
    await this.segments.sync().catch(() => undefined);
    if (this.writer !== 0) await this.index.shared.updateState((state) => void (state.writers = (state.writers ?? []).filter((w) => w !== this.writer))).catch(() => undefined);
    await this.index.flushed().catch(() => undefined);
    // What was read survives a clean restart; after a crash eviction is oldest first until reads are noted again.
    if (this.writer === 0) await this.marks.save(this.fs, this.layout.tmpDir, marksPath(this.layout), this.generations.head).catch(() => undefined);
    await this.segments.close();
    await this.index.close();
    await this.unlock();
  }

  /** DiskWriterHost */
  ioFailed(): void {
    this.counters.storeErrors += 1;
  }

  /** DiskWriterHost */
  release(writer: DiskBlobWriter): void {
    this.writers.delete(writer);
  }

  // ---- dropping ----------------------------------------------------------------------------

  /** Forget `rec` if it is still the committed version of its key, and delete its file. */
  private dropCorrupt(rec: IndexRecord): undefined {
    if (sameVersion(this.index.get(rec.key), rec)) this.drop(rec, 'corrupt');
    return undefined;
  }

  /** Remove `rec` from the index, delete its file, and tell the listeners why. */
  private drop(rec: IndexRecord, reason: DropReason): void {
    // Only this version: another writer may have replaced it meanwhile (with a file of its own;
    // a refreshed version of this one is refused in an evicted generation, and this one is bad).
    void this.index.remove(rec.key, rec.seq).catch(() => undefined);
    if (rec.file !== undefined) this.unlinkLater(filePath(this.layout, rec.file));
    this.counters[reason === 'evicted' ? 'evictions' : 'corruptDropped'] += 1;
    for (const listener of this.dropListeners) listener(rec.key, reason);
  }

  /** For the background check: are `rec`'s bytes there and good? A bad entry is dropped as a failed read is. */
  private async verifyRecord(rec: IndexRecord): Promise<boolean> {
    if (rec.file !== undefined) {
      const ok = await this.fs.stat(filePath(this.layout, rec.file)).then(
        (st) => st.size === rec.meta.size,
        () => false,
      );
      if (ok || !sameVersion(this.index.get(rec.key), rec)) return true;
      this.dropCorrupt(rec);
      return false;
    }
    return readRecord(this.reader, rec, { inlineReadMaxSize: this.options.packMaxSize, onCorrupt: () => undefined, verifyAll: true }).then(
      (found) => {
        if (typeof found !== 'string') return true;
        if (found === 'gone' && !sameVersion(this.index.get(rec.key), rec)) return true;
        this.dropCorrupt(rec);
        return false;
      },
      () => true,
    );
  }

  private unlinkLater(path: string): void {
    void this.track(unlinkQuietly(this.fs, path));
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.background.add(p);
    const done = () => this.background.delete(p);
    p.then(done, done);
    return p;
  }

  /** Wait for every commit, refresh and removal in flight. */
  private async settle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private assertOpen(): void {
    if (this.closed) throw blobError(BLOB_ERROR_CODES.storeClosed, 'disk blob store is closed');
  }
}

/** What an entry's metadata is accounted (the index keeps it). */
export function metaCost(meta: StoredMeta): number {
  return Math.ceil(estimateMetaBytes(meta) / 2);
}
