/**
 * Records for tests of the disk index (src/blob/disk-index.ts) and the walk that recounts what it
 * holds, to hold against the counters its state keeps.
 */
import { fileBytesOf, type DiskIndex, type IndexRecord } from '../../src/blob/disk-index.js';

/** A record of `key` in generation `g`: packed at `off`, or in body file `file` (off -1). */
export function testRecord(index: DiskIndex, key: string, g: number, off: number, cost: number, extra: { file?: string; tags?: string[] } = {}): IndexRecord {
  const meta = { version: 1, key, size: cost - 100, status: 200, headers: [['content-type', 'text/plain']] as [string, string][], requestTime: 1, responseTime: 2, storedAt: 3, tags: extra.tags };
  return { key, g, seq: index.nextSeq(), off, file: extra.file, bs: 65536, crc: [7], cost, meta };
}

/** Every committed record, walked: the counters the index's state should keep. */
export function recount(index: DiskIndex): { entries: number; liveBytes: number; fileBytes: number } {
  const out = { entries: 0, liveBytes: 0, fileBytes: 0 };
  let after: Buffer | undefined;
  for (;;) {
    const { records, last } = index.scan(after, 1000);
    for (const rec of records) {
      out.entries += 1;
      out.liveBytes += rec.cost;
      out.fileBytes += fileBytesOf(rec);
    }
    if (last === undefined) return out;
    after = last;
  }
}
