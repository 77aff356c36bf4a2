/**
 * Reading one entry of the disk store from where its index record says: a packed body whole from
 * its segment (header, length, key and CRC checked before a byte is handed out; the CRC once per
 * location and process, as the page cache then holds verified bytes), a body file whole when small
 * or as a stream verified block by block (disk-reader.ts). Used by the owner and by every
 * co-writer alike.
 */
import { checkRange, type BlobEntry, type HotEntry } from './blob-store.js';
import { bufferEntry } from './buffer-entry.js';
import type { DiskFs } from './disk-fs.js';
import type { IndexRecord } from './disk-index.js';
import { SEGMENT_HEADER_BYTES, checkSegmentRecord, filePath, keyHash, segmentOf, type DiskLayout } from './disk-layout.js';
import { openVerified, readVerified, type VerifiedBody } from './disk-reader.js';
import type { Segments } from './disk-segments.js';
import { GenerationMap } from '../generation-map.js';
import { ReadBuffers } from './read-buffers.js';
import { recencyHash } from './disk-recency.js';
import { SeenRecently } from './seen-recently.js';

export interface RecordReader {
  segments: Segments;
  layout: DiskLayout;
  fs: DiskFs;
  /** Packed locations verified in this process: two generations, the older dropped when the newer fills. */
  verified: [Set<number>, Set<number>];
  verifiedLimit: number;
  /** The same for records co-writers appended (the index record's `w`), by writer: their offsets overlap the owner's. */
  verifiedByWriter?: Map<number, { verified: [Set<number>, Set<number>] }>;
  /** What hits answered without waiting are read into (getNow), lent until written. */
  buffers: ReadBuffers;
  /**
   * What a hit needs to check a record, per index record: keyHash(rec.key) for the segment
   * record's key check (a SHA-256 per hit was ~5% of a disk hit's CPU), and whether its location
   * was verified here (two Set lookups by location per hit otherwise). Index records are the same
   * object while their version is (DiskIndex memoises them), and weakly held here, so this holds no
   * more than the records in use; a record seen afresh falls back to `verified`.
   */
  checks: WeakMap<IndexRecord, RecordCheck>;
  /**
   * The same by cache key, two generations of CHECKS_BY_KEY: the index hands out
   * a new record object for the same version once its own memo dropped it, and a SHA-256 per hit
   * came back with 10,000 objects read at random.
   */
  checksByKey: GenerationMap<string, RecordCheck>;
  /**
   * The doorkeeper of `checks` and `checksByKey` (seen-recently.ts): a check is kept from its key's
   * second read lately on. Under hits spread over millions of objects nearly every read is the
   * first of its object here, and a check kept for each (an object, its key hash, two map
   * entries) was promoted and collected late for nothing.
   */
  seen: SeenRecently;
}

/** See RecordReader.checks. */
export interface RecordCheck {
  hash: Buffer;
  /** The record's body passed its CRC in this process (at this record's location). */
  verified: boolean;
  /** Where the record was, and its body's CRC: a check applies to a record only there and with it. */
  g: number;
  off: number;
  crc: number;
  /** The writer whose segment holds it (the index record's `w`; undefined for the owner). */
  w: number | undefined;
}

/** RecordReader.checksByKey's generations: ~100 bytes each, so at most ~1.6 MB. */
const CHECKS_BY_KEY = 8192;

/** A reader's state for `segments` with nothing verified yet. */
export function recordReader(segments: Segments, layout: DiskLayout, fs: DiskFs, buffers: ReadBuffers, verifiedLimit: number): RecordReader {
  return { segments, layout, fs, verified: [new Set(), new Set()], verifiedLimit, buffers, checks: new WeakMap(), checksByKey: new GenerationMap(CHECKS_BY_KEY), seen: new SeenRecently() };
}

/** The check of `rec`: kept for this record object, or for its key at the same location, or made now. */
function checkOf(r: RecordReader, rec: IndexRecord): RecordCheck {
  let check = r.checks.get(rec);
  if (check !== undefined) return check;
  const crc = rec.crc[0] ?? 0;
  const known = r.checksByKey.get(rec.key);
  if (known !== undefined && known.g === rec.g && known.off === rec.off && known.crc === crc && known.w === rec.w) check = known;
  else {
    const loc = rec.g * 2 ** 32 + rec.off;
    const v = verifiedAt(r, rec.w);
    check = { hash: known?.hash ?? keyHash(rec.key), verified: v.verified[0].has(loc) || v.verified[1].has(loc), g: rec.g, off: rec.off, crc, w: rec.w };
    // Kept from the key's second read lately on (see RecordReader.seen); its location's CRC is remembered in any case.
    if (known === undefined && !r.seen.seenBefore(recencyHash(rec.key))) return check;
  }
  if (known !== check) r.checksByKey.set(rec.key, check);
  r.checks.set(rec, check);
  return check;
}

export interface ReadOptions {
  /** File bodies up to this size are read whole. */
  inlineReadMaxSize: number;
  /** A stream met a bad block: drop the entry. */
  onCorrupt: () => void;
  /** Check every CRC even where verified before (the background check). */
  verifyAll?: boolean;
}

/** The entry, 'gone' when its bytes are not there (moved or evicted meanwhile), or why it cannot be trusted. */
export async function readRecord(r: RecordReader, rec: IndexRecord, o: ReadOptions): Promise<BlobEntry | 'gone' | string> {
  const size = rec.meta.size;
  if (rec.off >= 0) {
    if (!(await r.segments.ready(segmentOf(rec)))) return 'gone';
    const body = readPackedNow(r, rec, o.verifyAll === true);
    if (body === 'not-open') return 'gone';
    return typeof body === 'string' ? body : bufferEntry(rec.meta, body);
  }
  const body: VerifiedBody = { path: filePath(r.layout, rec.file!), size, blockSize: rec.bs, blockCrc32: rec.crc };
  if (size <= o.inlineReadMaxSize) {
    const data = await readVerified(r.fs, body);
    if (data === 'gone') return 'gone';
    if (data === 'corrupt') return 'body file fails its checksum';
    return bufferEntry(rec.meta, data);
  }
  return {
    meta: rec.meta,
    open: (range) => {
      if (range !== undefined) checkRange(range, size);
      return openVerified(r.fs, body, range, o.onCorrupt);
    },
  };
}

/**
 * A packed body read and checked synchronously (one pread, ≤ packMaxSize; its segment opened
 * synchronously if this process has not yet): the bytes, 'not-open' when its segment is this
 * process's head still being opened (nothing waited for), 'gone', or why it cannot be trusted.
 */
export function readPackedNow(r: RecordReader, rec: IndexRecord, verifyAll = false): Buffer | 'not-open' | 'gone' | string {
  return readPacked(r, rec, verifyAll, undefined);
}

/**
 * An object at hand for a hit (see readPackedNow), its bytes in a buffer lent by `r.buffers`:
 * `release` gives it back once they are written. Undefined when the hit has to wait (get()).
 */
export function lendPackedNow(r: RecordReader, rec: IndexRecord): { entry: HotEntry } | Exclude<ReturnType<typeof readPackedNow>, Buffer> {
  const body = readPacked(r, rec, false, r.buffers);
  if (!Buffer.isBuffer(body)) return body;
  const buffers = r.buffers;
  return { entry: { meta: rec.meta, data: body, release: () => buffers.give(body), headroom: buffers.roomBefore(body) } };
}

/**
 * Bytes before a pooled record for a response head: heads of hits are ~300–700 bytes; a larger
 * one is written apart from the body (src/serve/quick-front.ts).
 */
const HEAD_ROOM = 2048 - SEGMENT_HEADER_BYTES;

/** A reader's pool: buffers for the largest packed record, with room for a response head before each. */
export function readBuffersFor(packMaxSize: number): ReadBuffers {
  // A few are in use at once (the writes a slow client holds back); more would only sit there.
  return new ReadBuffers(SEGMENT_HEADER_BYTES + packMaxSize, 32, HEAD_ROOM);
}

function readPacked(r: RecordReader, rec: IndexRecord, verifyAll: boolean, buffers: ReadBuffers | undefined): Buffer | 'not-open' | 'gone' | string {
  const sid = segmentOf(rec);
  if (!r.segments.isOpen(sid) && !r.segments.openNow(sid)) return r.segments.has(sid) ? 'not-open' : 'gone';
  const raw = r.segments.readSync(sid, rec.off, SEGMENT_HEADER_BYTES + rec.meta.size, buffers);
  if (raw === undefined) return 'gone';
  const check = checkOf(r, rec);
  const known = !verifyAll && check.verified;
  const body = checkSegmentRecord(raw, check.hash, rec.meta.size, rec.crc[0] ?? 0, !known);
  if (typeof body === 'string') {
    buffers?.give(raw);
    return body;
  }
  if (!known) {
    check.verified = true;
    remember(verifiedAt(r, rec.w), r.verifiedLimit, rec.g * 2 ** 32 + rec.off);
  }
  return body;
}

function remember(v: { verified: [Set<number>, Set<number>] }, limit: number, loc: number): void {
  if (v.verified[0].size >= limit) v.verified = [new Set(), v.verified[0]];
  v.verified[0].add(loc);
}

/** The verified locations of the owner's segments (w undefined) or of co-writer w's. */
function verifiedAt(r: RecordReader, w: number | undefined): { verified: [Set<number>, Set<number>] } {
  if (w === undefined) return r;
  r.verifiedByWriter ??= new Map();
  let v = r.verifiedByWriter.get(w);
  if (v === undefined) r.verifiedByWriter.set(w, (v = { verified: [new Set(), new Set()] }));
  return v;
}
