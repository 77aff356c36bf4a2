/**
 * The on-disk format of the disk blob store, version 3:
 *
 * ```
 * <dir>/LOCK                          owner pid (see disk-fs.ts): the process that evicts
 * <dir>/LOCK-w<id>                    a co-writer's pid: another process writing beside the owner
 * <dir>/tmp/                          bodies of large objects being written; wiped at the owner's open
 * <dir>/tmp/w<id>/                    the same for co-writer <id>; wiped at its open
 * <dir>/v3/index.lmdb                 the index (LMDB, see disk-index.ts); `index.lmdb-lock` beside it
 * <dir>/v3/seg/<generation>.seg       packed small objects the owner appended, in generation order
 * <dir>/v3/seg/<generation>-w<id>.seg the same, appended by co-writer <id> (1–1023)
 * <dir>/v3/files/<aa>/<hash>.<gen>    a large object's body, one file each
 * ```
 *
 * A segment holds records back to back, each a 24-byte header and the body:
 *
 * ```
 * magic u32 "ACS2" | body length u32 | first 8 bytes of SHA-256(key) | CRC-32 of the body u32 | CRC-32 of the 20 bytes before u32
 * ```
 *
 * so a read can tell that the bytes at an offset are the body of this key, whole, before serving
 * any of them. Large files keep one CRC-32 per block in the index. `<hash>` is the hex SHA-256 of
 * the key, `<gen>` 16 random hex characters per write, so a new version never overwrites a body a
 * reader has open.
 *
 * Earlier versions are not read: a cache is not the source of truth, so their folders are
 * discarded at open (in the background) and the edge fills the new one. Version 1 kept one `.meta`
 * JSON record and one body file per object under `<dir>/v1/`; version 2 was this layout with index
 * records in msgpack (key, location, checksums and the whole metadata, ~360 bytes a record where
 * version 3's binary records (disk-record.ts) take ~150).
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

export const DISK_FORMAT_VERSION = 3;
/** What a file system block costs at least: the unit a file's size is rounded up to in accounting. */
export const FS_BLOCK = 4096;
export const SEGMENT_HEADER_BYTES = 24;
const SEGMENT_MAGIC = 0x41435332; // "ACS2"

export interface DiskLayout {
  root: string;
  tmpDir: string;
  dataDir: string;
  indexPath: string;
  segmentDir: string;
  fileDir: string;
  /** Where earlier formats lived: discarded at open. */
  oldDataDirs: string[];
}

export function layoutOf(root: string): DiskLayout {
  const dataDir = join(root, `v${DISK_FORMAT_VERSION}`);
  return {
    root,
    tmpDir: join(root, 'tmp'),
    dataDir,
    indexPath: join(dataDir, 'index.lmdb'),
    segmentDir: join(dataDir, 'seg'),
    fileDir: join(dataDir, 'files'),
    oldDataDirs: [join(root, 'v1'), join(root, 'v2')],
  };
}

/**
 * One-shot SHA-256 (Node ≥ 20.12): a disk hit checks its record's key with keyHash, and a Hash
 * object per call (createHash) costs about three times the digest (~3 µs against ~1 here).
 */
const oneShotHash = (nodeCrypto as { hash?: (algorithm: string, data: string, encoding: 'buffer') => Buffer }).hash;

export function keyHash(key: string): Buffer {
  return oneShotHash !== undefined ? oneShotHash('sha256', key, 'buffer') : createHash('sha256').update(key, 'utf8').digest();
}

export function newFileGeneration(): string {
  return randomBytes(8).toString('hex');
}

/**
 * A segment file is named by its generation and the writer that appends to it (0: the owner; a
 * co-writer 1–1023). In memory it is one number, `segmentId`: the generation in the low 32 bits,
 * the writer above them, so the owner's segment ids are its generations.
 */
export const WRITER_SHIFT = 2 ** 32;
export const MAX_WRITER_ID = 1023;

export function segmentId(generation: number, writer = 0): number {
  return generation + writer * WRITER_SHIFT;
}

/** The segment a packed record lives in (`w` absent: the owner's). */
export function segmentOf(rec: { g: number; w?: number }): number {
  return rec.w === undefined ? rec.g : rec.g + rec.w * WRITER_SHIFT;
}

export function generationOfSegment(sid: number): number {
  return sid % WRITER_SHIFT;
}

export function writerOfSegment(sid: number): number {
  return Math.floor(sid / WRITER_SHIFT);
}

export function segmentName(sid: number): string {
  const g = String(generationOfSegment(sid)).padStart(10, '0');
  const w = writerOfSegment(sid);
  return w === 0 ? `${g}.seg` : `${g}-w${w}.seg`;
}

export const SEGMENT_FILE = /^(\d{10})(?:-w([1-9]\d{0,3}))?\.seg$/;

/** The segment id a file name stands for, or undefined for another file. */
export function segmentIdOf(name: string): number | undefined {
  const m = SEGMENT_FILE.exec(name);
  if (m === null) return undefined;
  const w = m[2] === undefined ? 0 : Number(m[2]);
  return w > MAX_WRITER_ID ? undefined : segmentId(Number(m[1]), w);
}

export function segmentPath(layout: DiskLayout, sid: number): string {
  return join(layout.segmentDir, segmentName(sid));
}

export function fileName(hash: Buffer, gen: string): string {
  return `${hash.toString('hex')}.${gen}`;
}

export const BODY_FILE = /^([0-9a-f]{64})\.([0-9a-f]{16})$/;

export function filePath(layout: DiskLayout, name: string): string {
  return join(layout.fileDir, name.slice(0, 2), name);
}

/** Bytes a file of `size` bytes occupies on a file system of 4 KiB blocks. */
export function allocated(size: number): number {
  return Math.ceil(size / FS_BLOCK) * FS_BLOCK;
}

export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/** The header that precedes a body in a segment. */
export function segmentHeader(hash: Buffer, body: Uint8Array, bodyCrc = crc32(body)): Buffer {
  const h = Buffer.allocUnsafe(SEGMENT_HEADER_BYTES);
  h.writeUInt32BE(SEGMENT_MAGIC, 0);
  h.writeUInt32BE(body.byteLength, 4);
  hash.copy(h, 8, 0, 8);
  h.writeUInt32BE(bodyCrc, 16);
  h.writeUInt32BE(crc32(h.subarray(0, 20)), 20);
  return h;
}

/**
 * Check a record read from a segment (header and body) against what the index says: the header is
 * intact and names this key and length, and the body matches its CRC. `verifyBody: false` skips
 * the body CRC (a location already verified in this process) and the header's own CRC: every
 * byte it covers (magic, length, key hash, body CRC) is compared with its expected value below
 * all the same, so it only names a damaged header apart. Returns the body, or why not.
 */
export function checkSegmentRecord(record: Buffer, hash: Buffer, size: number, bodyCrc: number, verifyBody: boolean): Buffer | string {
  if (record.length !== SEGMENT_HEADER_BYTES + size) return `short read (${record.length} of ${SEGMENT_HEADER_BYTES + size} bytes)`;
  if (record.readUInt32BE(0) !== SEGMENT_MAGIC || (verifyBody && crc32(record.subarray(0, 20)) !== record.readUInt32BE(20))) return 'segment header damaged';
  if (record.readUInt32BE(4) !== size || record.compare(hash, 0, 8, 8, 16) !== 0) return 'segment record belongs to another object';
  if (record.readUInt32BE(16) !== bodyCrc) return 'segment record is another version';
  const body = record.subarray(SEGMENT_HEADER_BYTES);
  if (verifyBody && crc32(body) !== bodyCrc) return 'body fails its checksum';
  return body;
}
