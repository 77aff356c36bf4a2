/**
 * A body that is read while it is still being written: the edge's request coalescing streams one
 * upstream response to every waiting client and to the store at once, and followers do not wait
 * for the whole object. One producer appends chunks; any number of readers each get a Readable
 * that yields every byte from the start, then follows new bytes as they arrive, ends when the
 * producer ends, and fails when the producer fails.
 *
 * Memory is bounded by `maxMemoryBytes` (plus the newest chunk): only the most recent bytes stay
 * in memory. Readers at the head (the usual case) read from memory. Older bytes are dropped:
 * - with a `file` (the store writer's temp file, from `BlobWriter.openReadBack()`), readers that
 *   fall behind, and readers created late, read the dropped range from the file. The handle stays
 *   valid after the writer commits (rename) or aborts (unlink).
 * - without a file, a reader that falls more than the window behind fails with
 *   `body_reader_behind`, and createReader() throws `body_not_joinable` once the start is gone.
 *
 * Producer contract when a file is given: append a chunk only after the writer's write() of the
 * same chunk resolved; if the writer fails, call detachFile() and keep appending. The bytes already
 * in the file stay readable from it; later bytes are held as if there were no file.
 *
 * The owner calls close() when it stops handing out readers (typically when the producer is done
 * and the object is in the store): the file handle is closed once the last reader finishes.
 * release() closes it too, and lets go of the bytes in memory once the last reader finishes (the
 * store has them: later requests read it there). Held until every store write is durable, the
 * body of a miss would outlive the young generation's collections and wait for a mark-compact.
 */
import { Readable } from 'node:stream';
import { CdnError } from '../errors.js';
import type { BodyFile } from './blob-store.js';

export const BODY_ERROR_CODES = {
  readerBehind: 'body_reader_behind',
  notJoinable: 'body_not_joinable',
  closed: 'body_closed',
  ended: 'body_ended',
  fileShort: 'body_file_short',
} as const;

function bodyError(code: string, message: string): CdnError {
  return new CdnError(code, 'internal', message);
}

export interface GrowingBodyOptions {
  /** Bytes of the body kept in memory (the newest ones). Default 8 MiB: a few seconds of a fast upstream, so followers at the head never touch the disk. */
  maxMemoryBytes?: number;
  /** The file holding the same bytes (see the module comment). Default none: memory only. */
  file?: BodyFile;
  /** Bytes per file read for readers behind the memory window. Default 64 KiB, a stream chunk. */
  fileReadSize?: number;
}

type Next =
  | { kind: 'data'; buf: Buffer }
  | { kind: 'file'; length: number }
  | { kind: 'wait' }
  | { kind: 'end' }
  | { kind: 'error'; error: Error };

export class GrowingBody {
  private readonly maxMemoryBytes: number;
  private readonly fileReadSize: number;
  private file: BodyFile | undefined;
  private fileFollows: boolean;
  private chunks: Buffer[] = [];
  private starts: number[] = [];
  private memStart = 0;
  private memBytes = 0;
  private total = 0;
  /** Bytes [0, fileBytes) are readable from the file. */
  private fileBytes = 0;
  private state: 'open' | 'ended' | 'failed' = 'open';
  private error: Error | undefined;
  private closed = false;
  /** release() was called: the bytes in memory go with the last reader. */
  private releasing = false;
  private readonly readers = new Set<BodyReader>();

  constructor(options: GrowingBodyOptions = {}) {
    this.maxMemoryBytes = options.maxMemoryBytes ?? 8 * 1024 * 1024;
    this.fileReadSize = options.fileReadSize ?? 64 * 1024;
    this.file = options.file;
    this.fileFollows = this.file !== undefined;
  }

  /** Bytes appended so far. */
  get length(): number {
    return this.total;
  }

  /** Bytes held in memory now. */
  get memoryBytes(): number {
    return this.memBytes;
  }

  get done(): boolean {
    return this.state !== 'open';
  }

  /** release() was called: the body is read from the store now, not from here (whole() and createReader() refuse it). */
  get released(): boolean {
    return this.releasing;
  }

  /** Producer: add bytes (kept by reference; do not reuse the buffer). */
  append(chunk: Uint8Array): void {
    if (this.state !== 'open') throw bodyError(BODY_ERROR_CODES.ended, 'append after end or failure');
    if (chunk.byteLength === 0) return;
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.starts.push(this.total);
    this.total += chunk.byteLength;
    this.memBytes += chunk.byteLength;
    if (this.fileFollows) this.fileBytes = this.total;
    this.trim();
    this.wake();
  }

  /** Producer: the file stops receiving bytes (the store write failed); what it has stays readable. */
  detachFile(): void {
    this.fileFollows = false;
  }

  /** Producer: all bytes are in. */
  end(): void {
    if (this.state !== 'open') return;
    this.state = 'ended';
    this.wake();
  }

  /** Producer: the body is incomplete; every reader fails with `error`. */
  fail(error: Error): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.error = error;
    this.chunks = [];
    this.starts = [];
    this.memBytes = 0;
    for (const reader of this.readers) reader.destroy(error);
  }

  /**
   * The whole body as one Buffer, when the producer has ended it and every byte is still in
   * memory, even once closed (closing is about readers that may need the file) but not once
   * released; else undefined
   * (read it with createReader). A body that came in one chunk is that chunk's memory, not a
   * copy. A small object usually arrives with its response head, and an answer that is bytes in
   * memory skips a stream per reader.
   */
  whole(): Buffer | undefined {
    if (this.state !== 'ended' || this.memStart !== 0 || this.releasing) return undefined;
    if (this.chunks.length === 1) return this.chunks[0];
    return Buffer.concat(this.chunks, this.total);
  }

  /** A stream of the whole body from byte 0, following the producer. */
  createReader(): Readable {
    if (this.closed) throw bodyError(BODY_ERROR_CODES.closed, 'body is closed to new readers');
    const joinable = this.memStart === 0 || (this.file !== undefined && this.fileBytes >= this.memStart);
    if (this.state !== 'failed' && !joinable) throw bodyError(BODY_ERROR_CODES.notJoinable, 'the start of the body is no longer held');
    const reader = new BodyReader(this);
    this.readers.add(reader);
    reader.once('close', () => {
      this.readers.delete(reader);
      this.maybeDropMemory();
      this.maybeCloseFile();
    });
    if (this.state === 'failed') reader.destroy(this.error);
    return reader;
  }

  /** Owner: no new readers; the file is closed once the current readers finish. */
  async close(): Promise<void> {
    this.closed = true;
    await this.maybeCloseFile();
  }

  /**
   * Owner: the producer has ended the body and the store finds it, so later requests read it there:
   * no new readers, and the bytes in memory are dropped once the current readers finish.
   */
  async release(): Promise<void> {
    this.releasing = true;
    this.maybeDropMemory();
    await this.close();
  }

  /** For readers: what comes at `pos`. */
  next(pos: number): Next {
    if (this.state === 'failed') return { kind: 'error', error: this.error! };
    if (pos < this.memStart) {
      if (this.file !== undefined && pos < this.fileBytes) return { kind: 'file', length: Math.min(this.fileReadSize, this.fileBytes - pos) };
      return { kind: 'error', error: bodyError(BODY_ERROR_CODES.readerBehind, 'reader fell behind the memory window') };
    }
    if (pos < this.total) {
      const i = this.chunkIndex(pos);
      return { kind: 'data', buf: this.chunks[i]!.subarray(pos - this.starts[i]!) };
    }
    return this.state === 'ended' ? { kind: 'end' } : { kind: 'wait' };
  }

  /** For readers: `length` bytes at `pos` from the file. */
  async readFile(pos: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.file!.read(buf, got, length - got, pos + got);
      if (bytesRead === 0) throw bodyError(BODY_ERROR_CODES.fileShort, `file ends before byte ${pos + got}`);
      got += bytesRead;
    }
    return buf;
  }

  private chunkIndex(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Drop the oldest chunks beyond the memory bound (always keeping the newest). */
  private trim(): void {
    while (this.memBytes > this.maxMemoryBytes && this.chunks.length > 1) {
      const end = this.starts[0]! + this.chunks[0]!.length;
      if (end > this.fileBytes) {
        const error = bodyError(BODY_ERROR_CODES.readerBehind, 'reader fell behind the memory window');
        for (const reader of this.readers) if (reader.position < end) reader.destroy(error);
      }
      this.memBytes -= this.chunks[0]!.length;
      this.memStart = end;
      this.chunks.shift();
      this.starts.shift();
    }
  }

  private maybeDropMemory(): void {
    if (!this.releasing || this.readers.size > 0 || this.state !== 'ended') return;
    this.chunks = [];
    this.starts = [];
    this.memBytes = 0;
    this.memStart = this.total;
  }

  private wake(): void {
    for (const reader of this.readers) reader.wake();
  }

  private async maybeCloseFile(): Promise<void> {
    if (!this.closed || this.readers.size > 0 || this.file === undefined) return;
    const file = this.file;
    this.file = undefined;
    this.fileBytes = 0;
    await file.close().catch(() => undefined);
  }
}

class BodyReader extends Readable {
  position = 0;
  private pumping = false;
  private waiting = false;

  constructor(private readonly body: GrowingBody) {
    super();
  }

  override _read(): void {
    this.pump();
  }

  /** The body has news; continue if this reader was waiting for it. */
  wake(): void {
    if (!this.waiting) return;
    this.waiting = false;
    this.pump();
  }

  private pump(): void {
    if (this.pumping || this.destroyed) return;
    this.pumping = true;
    for (;;) {
      const next = this.body.next(this.position);
      if (next.kind === 'data') {
        this.position += next.buf.length;
        if (this.push(next.buf)) continue;
      } else if (next.kind === 'end') {
        this.push(null);
      } else if (next.kind === 'wait') {
        this.waiting = true;
      } else if (next.kind === 'error') {
        this.destroy(next.error);
      } else {
        this.body.readFile(this.position, next.length).then(
          (buf) => {
            this.pumping = false;
            if (this.destroyed) return;
            this.position += buf.length;
            if (this.push(buf)) this.pump();
          },
          (err: unknown) => {
            this.pumping = false;
            this.destroy(err as Error);
          },
        );
        return;
      }
      break;
    }
    this.pumping = false;
  }
}
