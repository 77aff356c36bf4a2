/**
 * The origin's purge log: append-only, durable, on disk at `<dataDir>/purge/log.jsonl` (format in
 * purge-log-format.ts), with a sequence number per purge that only grows, across restarts too.
 *
 * - **Appending** is group-committed: purges that arrive while a write is being fsynced wait for
 *   the next write, which takes all of them at once, so many concurrent purges share one fsync.
 *   `append` resolves once its entry is on disk (after `fdatasync`), never before; only then do
 *   subscribers (the purge streams) see it.
 * - **Reading**: the retained entries are kept in memory as their lines (bounded by the retention
 *   limits; lines are ASCII, so characters are bytes), so a stream catching up reads no file.
 * - **Compaction** (the documented rule, `compactionCut`): once the log holds a quarter more than
 *   `retain.entries` entries or `retain.bytes` bytes, it is rewritten with only the newest entries
 *   within both limits, through a temp file renamed over it; the header then records the first
 *   retained sequence number, and the numbering goes on from where it was.
 * - **Opening** reads the file back, cuts a torn last write off (see scanLog), and refuses a
 *   damaged file or one of a format it cannot read with an error naming the file.
 *
 * One process owns the data folder (the asset store's LOCK), so this is the only writer.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CdnError } from '../../src/errors.js';
import type { Purge } from '../../src/purge/purge-request.js';
import {
  compactionCut,
  encodeEntry,
  encodeHeader,
  scanLog,
  wireOf,
  type PurgeEntry,
  type PurgeSource,
  type RetentionLimits,
} from './purge-log-format.js';

export interface PurgeLogOptions {
  /** The log's folder (`<dataDir>/purge`); created when missing. */
  dir: string;
  retain: RetentionLimits;
  /** Clock in ms for entry times; injected so tests use literal times. Default Date.now. */
  now?: () => number;
  /** Told when a compaction fails (it is tried again after the next append). Default: ignored. */
  onCompactionError?: (err: unknown) => void;
}

/** A retained entry: its sequence number, time and source, and its line in the file. */
export interface LoggedPurge {
  seq: number;
  time: number;
  source: PurgeSource;
  line: string;
}

export type PurgeListener = (appended: readonly LoggedPurge[]) => void;

interface Pending {
  purge: Purge;
  source: PurgeSource;
  resolve: (entry: PurgeEntry) => void;
  reject: (err: unknown) => void;
}

/** Most bytes written in one group commit; the rest wait for the next. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

export class PurgeLog {
  /** Random name of this log, from its header. */
  readonly id: string;
  readonly file: string;
  /** Bytes cut off the end of the file at open (a torn write); 0 after a clean stop. */
  readonly droppedAtOpen: number;
  private firstSeqValue: number;
  private entries: LoggedPurge[];
  private bytes: number;
  private handle: FileHandle | undefined;
  private size: number;
  private readonly retain: RetentionLimits;
  private readonly now: () => number;
  private readonly onCompactionError: (err: unknown) => void;
  private readonly listeners = new Set<PurgeListener>();
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;

  private constructor(init: { id: string; file: string; firstSeq: number; entries: LoggedPurge[]; handle: FileHandle; size: number; dropped: number }, options: PurgeLogOptions) {
    this.id = init.id;
    this.file = init.file;
    this.firstSeqValue = init.firstSeq;
    this.entries = init.entries;
    this.bytes = init.entries.reduce((n, e) => n + e.line.length, 0);
    this.handle = init.handle;
    this.size = init.size;
    this.droppedAtOpen = init.dropped;
    this.retain = options.retain;
    this.now = options.now ?? Date.now;
    this.onCompactionError = options.onCompactionError ?? (() => undefined);
  }

  /** Open the log in `options.dir`, creating it when there is none. */
  static async open(options: PurgeLogOptions): Promise<PurgeLog> {
    const file = join(options.dir, 'log.jsonl');
    await mkdir(options.dir, { recursive: true });
    await rm(`${file}.tmp`, { force: true });
    let text = await readFile(file, 'utf8').catch((err: unknown) => (errnoOf(err) === 'ENOENT' ? undefined : Promise.reject(ioError(file, 'read', err))));
    if (text === undefined || text === '') {
      // A new log, written whole before it is used: its header is never torn.
      text = encodeHeader({ log: randomBytes(6).toString('hex'), firstSeq: 1 });
      await writeFileDurably(file, text);
    }
    const scanned = scanLog(text);
    if (typeof scanned === 'string') {
      throw new CdnError('purge_log_unreadable', 'internal', `purge log ${file}: ${scanned}; move it away to start a new log (every edge then treats its cache as stale)`);
    }
    const handle = await open(file, 'r+').catch((err: unknown) => Promise.reject(ioError(file, 'open', err)));
    try {
      if (scanned.droppedBytes > 0) {
        await handle.truncate(scanned.goodBytes);
        await handle.sync();
      }
    } catch (err) {
      await handle.close();
      throw ioError(file, 'truncate', err);
    }
    const first = scanned.header.firstSeq;
    const entries = scanned.lines.map((line, i) => ({ seq: first + i, ...timeAndSource(line), line }));
    const log = new PurgeLog({ id: scanned.header.log, file, firstSeq: first, entries, handle, size: scanned.goodBytes, dropped: scanned.droppedBytes }, options);
    await log.compactIfDue();
    return log;
  }

  /** Sequence number of the oldest retained entry (the next one when none is retained). */
  get firstSeq(): number {
    return this.firstSeqValue;
  }

  /** Sequence number of the newest entry; firstSeq - 1 when none is retained. */
  get lastSeq(): number {
    return this.firstSeqValue + this.entries.length - 1;
  }

  /** Retained entries and their bytes in the file. */
  get retained(): { entries: number; bytes: number } {
    return { entries: this.entries.length, bytes: this.bytes };
  }

  /** The purge id of sequence number `seq` in this log. */
  idOf(seq: number): string {
    return `${this.id}-${seq}`;
  }

  /**
   * Append a purge; resolves with its entry once it is durable. Concurrent appends are written
   * and fsynced together, in the order they were called.
   */
  append(purge: Purge, source: PurgeSource): Promise<PurgeEntry> {
    if (this.closed) return Promise.reject(new CdnError('purge_log_closed', 'internal', 'the purge log is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ purge, source, resolve, reject });
      this.startFlush();
    });
  }

  /** Resolves once every append called so far is written and any compaction it started is done. */
  async settled(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
  }

  /** Retained entries after `seq`, oldest first, at most `max`. Starts at firstSeq when `seq` is older. */
  after(seq: number, max: number): readonly LoggedPurge[] {
    const from = Math.max(0, seq + 1 - this.firstSeqValue);
    return this.entries.slice(from, from + max);
  }

  /** The retained entry `seq`, decoded, or undefined. */
  get(seq: number): PurgeEntry | undefined {
    const e = this.entries[seq - this.firstSeqValue];
    return e === undefined ? undefined : (JSON.parse(wireOf(e.line)) as PurgeEntry);
  }

  /** Called after every durable append, with the entries it added, in order. */
  subscribe(listener: PurgeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Finish the appends under way, then close the file. Appends after this are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
    await this.handle?.close();
    this.handle = undefined;
  }

  /**
   * Run the flush loop unless it runs. An append made after the loop found nothing pending but
   * before it ended is picked up by starting it again.
   */
  private startFlush(): void {
    if (this.flushing !== undefined) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
      if (this.pending.length > 0) this.startFlush();
    });
  }

  /** Write every pending purge, batch by batch, each batch with one fsync. */
  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch: Pending[] = [];
      const written: LoggedPurge[] = [];
      const done: PurgeEntry[] = [];
      let text = '';
      let seq = this.lastSeq;
      while (this.pending.length > 0 && (batch.length === 0 || text.length < MAX_BATCH_BYTES)) {
        const p = this.pending.shift()!;
        seq += 1;
        const entry: PurgeEntry = { seq, id: this.idOf(seq), time: this.now(), source: p.source, ...p.purge };
        const line = encodeEntry(entry);
        batch.push(p);
        done.push(entry);
        written.push({ seq, time: entry.time, source: entry.source, line });
        text += line;
      }
      try {
        await this.write(text);
      } catch (err) {
        for (const p of batch) p.reject(err);
        continue;
      }
      this.entries.push(...written);
      this.bytes += text.length;
      batch.forEach((p, i) => p.resolve(done[i]!));
      for (const listener of this.listeners) listener(written);
      await this.compactIfDue().catch((err: unknown) => this.onCompactionError(err)); // tried again after the next append
    }
  }

  /** Append `text` at the end and fdatasync; on failure cut the file back so no half batch stays. */
  private async write(text: string): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) throw new CdnError('purge_log_closed', 'internal', 'the purge log is closed');
    const data = Buffer.from(text);
    try {
      await handle.write(data, 0, data.length, this.size);
      await handle.datasync();
      this.size += data.length;
    } catch (err) {
      await handle.truncate(this.size).catch(() => undefined);
      throw ioError(this.file, 'append', err);
    }
  }

  /** Compact when the rule says so (see compactionCut); runs between batches, never during one. */
  private async compactIfDue(): Promise<void> {
    const cut = compactionCut(
      this.entries.map((e) => e.line.length),
      this.retain,
    );
    if (cut === 0) return;
    const kept = this.entries.slice(cut);
    const firstSeq = this.firstSeqValue + cut;
    const text = encodeHeader({ log: this.id, firstSeq }) + kept.map((e) => e.line).join('');
    await writeFileDurably(this.file, text);
    const handle = await open(this.file, 'r+').catch((err: unknown) => Promise.reject(ioError(this.file, 'open', err)));
    await this.handle?.close();
    this.handle = handle;
    this.size = Buffer.byteLength(text);
    this.entries = kept;
    this.bytes = kept.reduce((n, e) => n + e.line.length, 0);
    this.firstSeqValue = firstSeq;
  }
}

/** Write a whole file through a temp file: fsync, rename over, fsync the folder. */
async function writeFileDurably(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    const dir = await open(dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw ioError(file, 'write', err);
  }
}

function timeAndSource(line: string): { time: number; source: PurgeSource } {
  const { time, source } = JSON.parse(wireOf(line)) as PurgeEntry;
  return { time, source };
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function ioError(file: string, action: string, err: unknown): CdnError {
  if (err instanceof CdnError) return err;
  return new CdnError('purge_log_io', 'internal', `purge log ${file}: ${action} failed (${errnoOf(err) ?? 'unknown'})`, { cause: err });
}
