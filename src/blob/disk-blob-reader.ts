/**
 * A read-only view of a disk store that another process writes (edge/cluster.ts: the shield owns
 * the cache, its workers read it). It opens the same LMDB index read-only (LMDB serves any number
 * of readers beside one writer, each seeing committed transactions) and reads bodies from the same
 * segments and files, with the same checks: a worker answers a disk hit without a trip to the
 * shield. It never writes: a bad entry is only skipped here, and the writer drops it when it
 * meets it (on read or in its background check).
 */
import { resolve } from 'node:path';
import { BLOB_ERROR_CODES, blobError, type BlobEntry, type HotEntry } from './blob-store.js';
import { nodeDiskFs } from './disk-fs.js';
import { DiskIndex } from './disk-index.js';
import { layoutOf } from './disk-layout.js';
import { lendPackedNow, readBuffersFor, readRecord, recordReader, type RecordReader } from './disk-read.js';
import { Segments } from './disk-segments.js';

export interface DiskBlobReaderOptions {
  /** The writer's cache directory; its index must exist (the writer opened it first). */
  dir: string;
  /** See DiskBlobStoreOptions.inlineReadMaxSize; use the writer's. Default 64 KiB. */
  inlineReadMaxSize?: number;
  /** Segment files kept open at most. Default 128. */
  maxOpenSegments?: number;
}

export class DiskBlobReader {
  private closed = false;
  /** Entries that failed a check here (the writer drops them when it meets them). */
  corruptSkipped = 0;

  private constructor(
    private readonly index: DiskIndex,
    private readonly reader: RecordReader,
    private readonly inlineReadMaxSize: number,
  ) {}

  static open(options: DiskBlobReaderOptions): DiskBlobReader {
    const layout = layoutOf(resolve(options.dir));
    let index: DiskIndex;
    try {
      index = DiskIndex.open({ path: layout.indexPath, readOnly: true, pathOf: (key) => key });
    } catch (err) {
      throw blobError(BLOB_ERROR_CODES.storeUnavailable, `cannot read the disk cache index in ${layout.root}`, err);
    }
    const segments = new Segments(nodeDiskFs, layout, { maxOpen: options.maxOpenSegments ?? 128 });
    return new DiskBlobReader(index, recordReader(segments, layout, nodeDiskFs, readBuffersFor(64 * 1024), 100_000), options.inlineReadMaxSize ?? 64 * 1024);
  }

  /** The committed entry for `key`, or undefined (not stored, or its bytes are gone or bad). */
  async get(key: string): Promise<BlobEntry | undefined> {
    if (this.closed) throw blobError(BLOB_ERROR_CODES.storeClosed, 'disk blob reader is closed');
    for (let attempt = 0; attempt < 3; attempt++) {
      const rec = this.index.get(key);
      if (rec === undefined) return undefined;
      try {
        const found = await readRecord(this.reader, rec, { inlineReadMaxSize: this.inlineReadMaxSize, onCorrupt: () => void (this.corruptSkipped += 1) });
        if (found === 'gone') continue; // moved or evicted since the lookup: look again
        if (typeof found === 'string') {
          this.corruptSkipped += 1;
          return undefined;
        }
        return found;
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** The object if it can be had without waiting (see DiskBlobStore.getNow); undefined: ask get(). */
  getNow(key: string, largerThan = -1): HotEntry | undefined {
    if (this.closed) return undefined;
    const rec = this.index.get(key);
    if (rec === undefined || rec.off < 0 || rec.meta.size <= largerThan) return undefined;
    try {
      const found = lendPackedNow(this.reader, rec);
      return typeof found === 'string' ? undefined : found.entry;
    } catch {
      return undefined;
    }
  }

  keysWithPrefix(prefix: string, limit?: number): string[] {
    return this.index.keysWithPrefix(prefix, limit);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reader.segments.close();
    await this.index.close();
  }
}
