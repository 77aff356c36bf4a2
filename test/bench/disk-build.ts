/**
 * Builds a disk cache folder of `n` small objects for the benchmarks, fast enough for ten million
 * (minutes, where the store's API, one LMDB transaction per 10 ms batch of commits, takes hours):
 * bodies packed into segments with one write per batch of records, index entries written in one
 * LMDB transaction per batch. The folder is the store's own format, built with its own functions
 * (segment headers, key hashes, metadata, index records and their encoding), as if every object
 * had been stored by a miss from the counting origin: `anycdn edge` opens it as its own and serves
 * every entry. Objects are `${host}/s/${i}-${size}.bin`, bodies objectBody(path).
 */
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { pathOfKey, splitStoredKey } from '../../edge/cache-keys.js';
import { finalMeta, type CommitMeta } from '../../src/blob/blob-store.js';
import { freezeMeta } from '../../src/blob/buffer-entry.js';
import { metaCost } from '../../src/blob/disk-blob-store.js';
import { nodeDiskFs } from '../../src/blob/disk-fs.js';
import { DiskIndex, type IndexRecord } from '../../src/blob/disk-index.js';
import { SEGMENT_HEADER_BYTES, keyHash, layoutOf, segmentHeader } from '../../src/blob/disk-layout.js';
import { Segments } from '../../src/blob/disk-segments.js';
import { objectBody } from './counting-origin.js';

/** The store's default bytes per checksummed block (a packed body is one block). */
const BLOCK_SIZE = 256 * 1024;
/** Records per segment write and per index transaction. */
const BATCH = 20_000;

export function benchPath(i: number, size: number): string {
  return `/s/${i}-${size}.bin`;
}

/** What the edge commits for an object of the counting origin (the headers it sends). */
export function benchMeta(key: string, i: number, size: number, now: number): CommitMeta {
  return {
    key,
    size,
    status: 200,
    headers: [
      ['content-type', 'application/octet-stream'],
      ['content-length', String(size)],
      ['cache-control', 'public, max-age=86400'],
      ['etag', `"${i.toString(16)}"`],
      ['last-modified', 'Sun, 06 Dec 2026 00:00:00 GMT'],
    ],
    requestTime: now,
    responseTime: now,
    storedAt: now,
  };
}

export interface BuildOptions {
  /** The cache folder (created; must not hold a cache yet). */
  dir: string;
  /** host:port the edge will listen on (the first part of its cache keys). */
  host: string;
  objects: number;
  /** Body bytes of every object. */
  size: number;
  /** Bytes per generation (segment): what the edge's store would use for its maxBytes. */
  segmentSize: number;
  onProgress?: (done: number) => void;
}

export interface BuildResult {
  ms: number;
  segments: number;
}

export async function buildCache(o: BuildOptions): Promise<BuildResult> {
  const layout = layoutOf(resolve(o.dir));
  await rm(layout.root, { recursive: true, force: true });
  for (const dir of [layout.tmpDir, layout.segmentDir, layout.fileDir]) await mkdir(dir, { recursive: true });
  const index = DiskIndex.open({ path: layout.indexPath, readOnly: false, pathOf: (key) => pathOfKey(splitStoredKey(key).primary) });
  const segments = new Segments(nodeDiskFs, layout);
  const t0 = performance.now();
  const now = Date.now();
  const recordBytes = SEGMENT_HEADER_BYTES + o.size;
  let g = 1;
  try {
    for (let first = 0; first < o.objects; first += BATCH) {
      const count = Math.min(BATCH, o.objects - first);
      if (segments.sizeOf(g) > 0 && segments.sizeOf(g) + count * recordBytes > o.segmentSize) g += 1;
      const parts: Buffer[] = [];
      const records: IndexRecord[] = [];
      let off = 0;
      for (let i = first; i < first + count; i++) {
        const key = `${o.host}${benchPath(i, o.size)}`;
        const body = objectBody(benchPath(i, o.size))!;
        const crc = crc32(body);
        parts.push(segmentHeader(keyHash(key), body, crc), body);
        const meta = freezeMeta(finalMeta(key, o.size, createHash('sha256').update(body).digest('hex'), benchMeta(key, i, o.size, now)));
        records.push({ key, g, seq: 0, off, file: undefined, bs: BLOCK_SIZE, crc: [crc], cost: recordBytes + metaCost(meta), meta });
        off += recordBytes;
      }
      // Bodies first, then the entries that point at them (as the store orders them).
      const base = await segments.append(g, [Buffer.concat(parts)]);
      index.batch(() => {
        for (const rec of records) void index.put({ ...rec, off: base + rec.off, seq: index.nextSeq() });
      });
      o.onProgress?.(first + count);
      await new Promise((r) => setImmediate(r));
    }
    await segments.sync();
    await index.flushed();
  } finally {
    await segments.close();
    await index.close();
  }
  return { ms: performance.now() - t0, segments: g };
}
