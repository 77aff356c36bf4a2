/**
 * One in-progress write to the disk store. Bytes are checksummed (CRC-32 per block) as they come,
 * and hashed (SHA-256) unless the write was begun with `hash: false` (WriteOptions). A body that stays within `packMaxSize` is held in memory and packed
 * into a segment at commit; a larger one (announced or grown past it) streams into a temp file
 * under `<dir>/tmp/`, which the commit renames into place. Nothing is fsynced here: the store's
 * periodic sync orders durability (disk-blob-store.ts). Any failure (ENOSPC, EIO, a size limit)
 * aborts the write: the temp file is removed, the error is a CdnError (`blob_not_stored` for I/O,
 * with the errno as `cause`), and nothing else is affected.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { isCdnError } from '../errors.js';
import { BLOB_ERROR_CODES, blobError, type BlobWriter, type BodyFile, type CommitMeta, type CommitOptions, type StoredMeta } from './blob-store.js';
import { wholeOf } from './buffer-entry.js';
import { unlinkQuietly, type DiskFs } from './disk-fs.js';

/** A finished body, ready to be placed: in memory (packed) or in a temp file. */
export interface WrittenBody {
  data: Buffer | undefined;
  tmpPath: string | undefined;
  size: number;
  /** Undefined when the body was not hashed (DiskWriterLimits.hash). */
  sha256: string | undefined;
  blockSize: number;
  blockCrc32: number[];
  /**
   * The host calls this once the bytes are on disk and a get() in this process finds them (the
   * index record is pending): `data` is read no more, and the writer lets go of what it can.
   */
  readable?: () => void;
}

/** What a writer needs from its store. */
export interface DiskWriterHost {
  fs: DiskFs;
  /** A fresh temp file path. */
  tempPath(): string;
  /** Make the body the committed version of `key`; throws on failure (a temp file is cleaned up by the writer). */
  place(key: string, body: WrittenBody, meta: CommitMeta): Promise<StoredMeta>;
  /** Count an I/O failure (stats.storeErrors). */
  ioFailed(): void;
  /** The writer is finished (committed or aborted). */
  release(writer: DiskBlobWriter): void;
}

export interface DiskWriterLimits {
  maxEntrySize: number;
  expectedSize: number | undefined;
  blockSize: number;
  /** Bodies up to this size are packed into a segment; larger ones get a file. */
  packMaxSize: number;
  /** Hash the body (WriteOptions.hash). */
  hash: boolean;
}

type State = 'open' | 'committing' | 'done';

/** A read-back view: memory until the body moves to a file, then its own reference to the read handle. */
interface ReadBackView {
  handle: SharedHandle | undefined;
  closed: boolean;
}

/** A file handle shared by the writer and its read-back views, closed when the last lets go. */
class SharedHandle {
  private refs = 1;
  constructor(readonly fh: FileHandle) {}
  retain(): this {
    this.refs += 1;
    return this;
  }
  async release(): Promise<void> {
    if (--this.refs === 0) await this.fh.close().catch(() => undefined);
  }
}

export class DiskBlobWriter implements BlobWriter {
  private state: State = 'open';
  private written = 0;
  private tail: Promise<void> = Promise.resolve();
  /** Writes queued on `tail` and not settled yet. */
  private queued = 0;
  /** commit() was called: a write after that is refused, as ever (it waits for the queue, then finds the writer closed). */
  private commitAsked = false;
  /** The running SHA-256 of a body in a file (when hashed); a body held in memory is hashed whole at commit. */
  private hash: Hash | undefined;
  private readonly crcs: number[] = [];
  private blockCrc = 0;
  private blockFill = 0;
  /** The body while it is held in memory (undefined once in a file). */
  private chunks: Buffer[] | undefined = [];
  private tmpPath: string | undefined;
  private fh: FileHandle | undefined;
  /** For read-back views: a read handle on the temp file once there is one. */
  private readHandle: SharedHandle | undefined;
  /**
   * The whole body once packed at commit, for read-back views made before and for packedBody;
   * dropped once the store reads it from the disk (WrittenBody.readable) and neither needs it.
   */
  private packed: Buffer | undefined;
  /** The caller reads packedBody after the commit (keepPackedBody). */
  private packedWanted = false;
  /** The store finds the committed bytes on the disk already. */
  private onDisk = false;
  private readonly views = new Set<ReadBackView>();

  private constructor(
    private readonly host: DiskWriterHost,
    readonly key: string,
    private readonly limits: DiskWriterLimits,
  ) {}

  /**
   * The whole body once committed packed: the very bytes appended to the segment, so that a
   * memory tier keeps them without a copy of its own. Undefined before the commit and for a body
   * in a file.
   */
  get packedBody(): Buffer | undefined {
    return this.state === 'done' ? this.packed : undefined;
  }

  /** The caller will read packedBody after the commit: keep it past the moment the disk has it. */
  keepPackedBody(): void {
    this.packedWanted = true;
  }

  /** Create the writer; a body announced larger than packMaxSize gets its temp file now (I/O errors propagate). */
  static async create(host: DiskWriterHost, key: string, limits: DiskWriterLimits): Promise<DiskBlobWriter> {
    const writer = new DiskBlobWriter(host, key, limits);
    if (limits.expectedSize !== undefined && limits.expectedSize > limits.packMaxSize) await writer.toFile();
    return writer;
  }

  write(chunk: Uint8Array): Promise<void> {
    // The usual case, a small body held in memory with nothing queued before it: taken at once,
    // without the queue's promises (no I/O, no limit reached, so nothing can fail).
    if (this.queued === 0 && this.state === 'open' && !this.commitAsked && this.chunks !== undefined && this.fitsInMemory(this.written + chunk.byteLength)) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.written += chunk.byteLength;
      this.updateCrcs(chunk);
      return DONE;
    }
    this.queued += 1;
    const run = this.tail.then(() => this.writeNow(chunk));
    const settled = () => void (this.queued -= 1);
    this.tail = run.then(settled, settled);
    return run;
  }

  /** Whether a body of `total` bytes stays in memory within every limit. */
  private fitsInMemory(total: number): boolean {
    const { maxEntrySize, expectedSize, packMaxSize } = this.limits;
    return total <= packMaxSize && total <= maxEntrySize && (expectedSize === undefined || total <= expectedSize);
  }

  private async writeNow(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw blobError(BLOB_ERROR_CODES.writerClosed, 'write after commit or abort');
    const total = this.written + chunk.byteLength;
    if (total > this.limits.maxEntrySize) {
      await this.discard();
      throw blobError(BLOB_ERROR_CODES.tooLarge, `object exceeds maxEntrySize (${this.limits.maxEntrySize} bytes)`);
    }
    if (this.limits.expectedSize !== undefined && total > this.limits.expectedSize) {
      await this.discard();
      throw blobError(BLOB_ERROR_CODES.sizeMismatch, `more than the announced ${this.limits.expectedSize} bytes`);
    }
    try {
      if (this.chunks !== undefined && total > this.limits.packMaxSize) await this.toFile();
      if (this.chunks !== undefined) this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      else await writeAll(this.fh!, chunk);
    } catch (err) {
      if (this.state !== 'open') throw blobError(BLOB_ERROR_CODES.writerClosed, 'writer aborted during write');
      throw await this.fail(err);
    }
    this.written = total;
    this.hash?.update(chunk);
    this.updateCrcs(chunk);
  }

  /** Move the body from memory into a temp file (it outgrew packing, or was announced large). */
  private async toFile(): Promise<void> {
    const path = this.host.tempPath();
    this.tmpPath = path;
    this.fh = await this.host.fs.open(path, 'wx');
    this.readHandle = new SharedHandle(await this.host.fs.open(path, 'r'));
    for (const view of this.views) view.handle ??= this.readHandle.retain();
    const held = this.chunks ?? [];
    this.chunks = undefined;
    if (this.limits.hash) {
      this.hash = createHash('sha256');
      for (const chunk of held) this.hash.update(chunk);
    }
    for (const chunk of held) await writeAll(this.fh, chunk);
  }

  private updateCrcs(chunk: Uint8Array): void {
    const { blockSize } = this.limits;
    let off = 0;
    while (off < chunk.byteLength) {
      const take = Math.min(blockSize - this.blockFill, chunk.byteLength - off);
      this.blockCrc = crc32(chunk.subarray(off, off + take), this.blockCrc);
      this.blockFill += take;
      off += take;
      if (this.blockFill === blockSize) {
        this.crcs.push(this.blockCrc);
        this.blockCrc = 0;
        this.blockFill = 0;
      }
    }
  }

  async commit(meta: CommitMeta, options?: CommitOptions): Promise<StoredMeta> {
    this.commitAsked = true;
    await this.tail;
    if (this.state !== 'open') throw blobError(BLOB_ERROR_CODES.writerClosed, 'commit after commit or abort');
    this.state = 'committing';
    if (this.blockFill > 0) this.crcs.push(this.blockCrc);
    const data = this.chunks === undefined ? undefined : wholeOf(this.chunks, this.written);
    this.packed = data;
    this.chunks = undefined;
    const sha256 = !this.limits.hash ? undefined : data !== undefined ? sha256Hex(data) : this.hash!.digest('hex');
    const body: WrittenBody = { data, tmpPath: this.tmpPath, size: this.written, sha256, blockSize: this.limits.blockSize, blockCrc32: this.crcs };
    body.readable = () => {
      body.data = undefined;
      this.onDisk = true;
      this.dropPacked();
      options?.onReadable?.();
    };
    try {
      const fh = this.fh;
      this.fh = undefined;
      await fh?.close();
      return await this.host.place(this.key, body, meta);
    } catch (err) {
      throw await this.fail(err);
    } finally {
      this.finish();
    }
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'done';
    await this.tail; // let a write in progress finish before its file goes away
    await this.cleanup();
    this.host.release(this);
  }

  /**
   * The bytes written so far, readable while the write goes on and after it ends: from memory
   * while the body is held there, from the temp file (kept open, so a rename or unlink does not
   * matter) once it is in one.
   */
  async openReadBack(): Promise<BodyFile> {
    if (this.state !== 'open') throw blobError(BLOB_ERROR_CODES.writerClosed, 'read-back after commit or abort');
    const view: ReadBackView = { handle: this.readHandle?.retain(), closed: false };
    this.views.add(view);
    return {
      read: async (buffer, offset, length, position) => {
        if (view.closed) throw blobError(BLOB_ERROR_CODES.writerClosed, 'read-back view is closed');
        if (view.handle !== undefined) return view.handle.fh.read(buffer, offset, length, position);
        const memory = this.packed ?? (this.chunks === undefined ? Buffer.alloc(0) : Buffer.concat(this.chunks));
        const n = Math.max(0, Math.min(length, memory.length - position));
        memory.copy(buffer, offset, position, position + n);
        return { bytesRead: n };
      },
      close: async () => {
        view.closed = true;
        this.views.delete(view);
        this.dropPacked();
        await view.handle?.release();
      },
    };
  }

  /** Let go of the packed body once the disk has it and neither a read-back view nor packedBody's reader needs it. */
  private dropPacked(): void {
    if (this.onDisk && this.views.size === 0 && !this.packedWanted) this.packed = undefined;
  }

  /** Abort from inside a write (cannot wait for the write queue it is part of). */
  private async discard(): Promise<void> {
    this.state = 'done';
    await this.cleanup();
    this.host.release(this);
  }

  /** Abort after an error and return what to throw: CdnErrors as they are, I/O errors as blob_not_stored. */
  private async fail(err: unknown): Promise<Error> {
    await this.discard();
    if (isCdnError(err)) return err;
    this.host.ioFailed();
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return blobError(BLOB_ERROR_CODES.notStored, `disk write failed (${code}); object not stored`, err);
  }

  private finish(): void {
    this.state = 'done';
    void this.readHandle?.release();
    this.readHandle = undefined;
    this.host.release(this);
  }

  private async cleanup(): Promise<void> {
    this.chunks = undefined;
    const fh = this.fh;
    this.fh = undefined;
    if (fh !== undefined) await fh.close().catch(() => undefined);
    const rh = this.readHandle;
    this.readHandle = undefined;
    await rh?.release();
    if (this.tmpPath !== undefined) await unlinkQuietly(this.host.fs, this.tmpPath);
  }
}

const DONE: Promise<void> = Promise.resolve();

/**
 * One-shot SHA-256 (Node ≥ 20.12) of a body held whole: a Hash object fed chunk by chunk costs
 * more than the digest of a small body (see keyHash in disk-layout.ts).
 */
const oneShotHash = (nodeCrypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'hex') => string }).hash;

function sha256Hex(data: Uint8Array): string {
  return oneShotHash !== undefined ? oneShotHash('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) off += (await fh.write(chunk, off, chunk.byteLength - off)).bytesWritten;
}

