/**
 * One in-progress write to the disk store. Bytes stream into a temp file under `<dir>/tmp/` while
 * their SHA-256 and per-block CRC-32s are computed; commit fsyncs and closes the file and hands it
 * to the store, which renames it into place and writes the record (the commit point). Any failure
 * (ENOSPC, EIO, a size limit) aborts the write: the temp file is removed, the error is a CdnError
 * (`blob_not_stored` for I/O, with the errno as `cause`), and nothing else is affected.
 */
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { isCdnError } from '../errors.js';
import { BLOB_ERROR_CODES, blobError, type BlobWriter, type BodyFile, type CommitMeta, type StoredMeta } from './blob-store.js';
import { unlinkQuietly, type DiskFs } from './disk-fs.js';

/** A finished temp body, ready to be placed. */
export interface WrittenBody {
  tmpPath: string;
  size: number;
  sha256: string;
  blockSize: number;
  blockCrc32: number[];
}

/** What a writer needs from its store. */
export interface DiskWriterHost {
  fs: DiskFs;
  /** Rename the body into place and write its record; throws on failure (the body is cleaned up). */
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
}

type State = 'open' | 'committing' | 'done';

export class DiskBlobWriter implements BlobWriter {
  private state: State = 'open';
  private written = 0;
  private tail: Promise<void> = Promise.resolve();
  private readonly hash: Hash = createHash('sha256');
  private readonly crcs: number[] = [];
  private blockCrc = 0;
  private blockFill = 0;

  private constructor(
    private readonly host: DiskWriterHost,
    readonly key: string,
    readonly tmpPath: string,
    private fh: FileHandle | undefined,
    private readonly limits: DiskWriterLimits,
  ) {}

  /** Create the temp file; I/O errors propagate (the store turns them into "not stored"). */
  static async create(host: DiskWriterHost, key: string, tmpPath: string, limits: DiskWriterLimits): Promise<DiskBlobWriter> {
    const fh = await host.fs.open(tmpPath, 'wx');
    return new DiskBlobWriter(host, key, tmpPath, fh, limits);
  }

  write(chunk: Uint8Array): Promise<void> {
    const run = this.tail.then(() => this.writeNow(chunk));
    this.tail = run.catch(() => undefined);
    return run;
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
      let off = 0;
      while (off < chunk.byteLength) off += (await this.fh!.write(chunk, off, chunk.byteLength - off)).bytesWritten;
    } catch (err) {
      if (this.state !== 'open') throw blobError(BLOB_ERROR_CODES.writerClosed, 'writer aborted during write');
      throw await this.fail(err);
    }
    this.written = total;
    this.hash.update(chunk);
    this.updateCrcs(chunk);
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

  async commit(meta: CommitMeta): Promise<StoredMeta> {
    await this.tail;
    if (this.state !== 'open') throw blobError(BLOB_ERROR_CODES.writerClosed, 'commit after commit or abort');
    this.state = 'committing';
    if (this.blockFill > 0) this.crcs.push(this.blockCrc);
    const body: WrittenBody = {
      tmpPath: this.tmpPath,
      size: this.written,
      sha256: this.hash.digest('hex'),
      blockSize: this.limits.blockSize,
      blockCrc32: this.crcs,
    };
    try {
      const fh = this.fh!;
      this.fh = undefined;
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
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

  async openReadBack(): Promise<BodyFile> {
    if (this.state !== 'open') throw blobError(BLOB_ERROR_CODES.writerClosed, 'read-back after commit or abort');
    return this.host.fs.open(this.tmpPath, 'r');
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
    this.host.release(this);
  }

  private async cleanup(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh !== undefined) await fh.close().catch(() => undefined);
    await unlinkQuietly(this.host.fs, this.tmpPath);
  }
}
