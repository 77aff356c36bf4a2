/**
 * Reading body files of the disk store, verified: every block is checked against the CRC-32 kept in
 * the index before any byte of it is handed out, so a body altered on disk (bit rot, a truncating
 * crash, a stray write) is never served. A stream that meets a bad block fails with `blob_corrupt`
 * instead of emitting it, and tells the store to drop the entry.
 */
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { FileHandle } from 'node:fs/promises';
import { BLOB_ERROR_CODES, blobError, type ByteRange } from './blob-store.js';
import { errnoCode, type DiskFs } from './disk-fs.js';

export interface VerifiedBody {
  path: string;
  size: number;
  blockSize: number;
  blockCrc32: readonly number[];
}

/** True when every block of `data` matches its checksum and the length is right. */
export function verifyWhole(data: Buffer, body: VerifiedBody): boolean {
  if (data.length !== body.size) return false;
  for (let i = 0; i < body.blockCrc32.length; i++) {
    const start = i * body.blockSize;
    if (crc32(data.subarray(start, Math.min(start + body.blockSize, data.length))) !== body.blockCrc32[i]) return false;
  }
  return true;
}

/** Read a whole (small) body: the bytes, or 'gone' if the file vanished, or 'corrupt'. */
export async function readVerified(fs: DiskFs, body: VerifiedBody): Promise<Buffer | 'gone' | 'corrupt'> {
  let data: Buffer;
  try {
    data = (await fs.readFile(body.path)) as Buffer;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'gone';
    throw err;
  }
  return verifyWhole(data, body) ? data : 'corrupt';
}

/** Stream `range` (default: all) of a body, one verified block at a time. */
export function openVerified(fs: DiskFs, body: VerifiedBody, range: ByteRange | undefined, onCorrupt: () => void): Readable {
  const start = range?.start ?? 0;
  const end = range?.end ?? body.size - 1;
  return new VerifiedBodyStream(fs, body, start, end, onCorrupt);
}

class VerifiedBodyStream extends Readable {
  private fh: FileHandle | undefined;
  private block: number;
  private readonly lastBlock: number;

  constructor(
    private readonly fs: DiskFs,
    private readonly body: VerifiedBody,
    private readonly start: number,
    private readonly end: number,
    private readonly onCorrupt: () => void,
  ) {
    super();
    this.block = Math.floor(start / body.blockSize);
    this.lastBlock = end < start ? -1 : Math.floor(end / body.blockSize);
  }

  override _construct(callback: (err?: Error | null) => void): void {
    this.fs.open(this.body.path, 'r').then(
      (fh) => {
        this.fh = fh;
        callback();
      },
      (err: unknown) => {
        callback(errnoCode(err) === 'ENOENT' ? blobError(BLOB_ERROR_CODES.gone, 'object was replaced or evicted', err) : (err as Error));
      },
    );
  }

  override _read(): void {
    this.readBlock().then(
      (chunk) => this.push(chunk),
      (err: unknown) => this.destroy(err as Error),
    );
  }

  private async readBlock(): Promise<Buffer | null> {
    if (this.block > this.lastBlock) return null;
    const { blockSize, size } = this.body;
    const blockStart = this.block * blockSize;
    const length = Math.min(blockSize, size - blockStart);
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.fh!.read(buf, got, length - got, blockStart + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got !== length || crc32(buf) !== this.body.blockCrc32[this.block]) {
      this.onCorrupt();
      throw blobError(BLOB_ERROR_CODES.corrupt, `block ${this.block} of a stored body fails its checksum`);
    }
    this.block += 1;
    const from = Math.max(this.start - blockStart, 0);
    const to = Math.min(this.end - blockStart + 1, length);
    return buf.subarray(from, to);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (fh === undefined) return callback(err);
    fh.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
