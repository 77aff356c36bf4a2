/**
 * The on-disk format of the disk blob store (format version 1):
 *
 * ```
 * <dir>/LOCK                              owner pid (see disk-fs.ts)
 * <dir>/tmp/                              bodies and records being written; wiped at open
 * <dir>/v1/<aa>/<hash>.meta               the record: JSON below; its rename is the commit point
 * <dir>/v1/<aa>/<hash>.<gen>.body         the raw body bytes
 * ```
 *
 * `<hash>` is the lower-case hex SHA-256 of the cache key (keys are arbitrary strings, file names
 * are not), `<aa>` its first two characters, `<gen>` 16 random hex characters chosen per commit,
 * so a new version never overwrites the body an in-flight reader has open, and a body left by a
 * crash between the two renames is recognisable as unreferenced.
 *
 * The record: `{ "format": "anycdn-blob", "version": 1, "body": "<hash>.<gen>.body",
 * "blockSize": 262144, "blockCrc32": [..], "meta": StoredMeta }`, with one CRC-32 per block of
 * the body (the last block may be short), so every read, ranged or not, is verified block by block
 * before a byte of it is served. Readers accept this version; a later version adds a case to
 * `decodeRecord` and keeps this one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { BLOB_META_VERSION, type StoredMeta } from './blob-store.js';

export const DISK_FORMAT = 'anycdn-blob';
export const DISK_FORMAT_VERSION = 1;

export interface DiskRecord {
  version: number;
  /** File name of the body, in the same directory as the record. */
  body: string;
  blockSize: number;
  blockCrc32: number[];
  meta: StoredMeta;
}

export interface DiskLayout {
  root: string;
  tmpDir: string;
  dataDir: string;
}

export function layoutOf(root: string): DiskLayout {
  return { root, tmpDir: join(root, 'tmp'), dataDir: join(root, `v${DISK_FORMAT_VERSION}`) };
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function newGeneration(): string {
  return randomBytes(8).toString('hex');
}

export function shardDir(layout: DiskLayout, hash: string): string {
  return join(layout.dataDir, hash.slice(0, 2));
}

export function metaPath(layout: DiskLayout, hash: string): string {
  return join(shardDir(layout, hash), `${hash}.meta`);
}

export function bodyName(hash: string, gen: string): string {
  return `${hash}.${gen}.body`;
}

export function bodyPath(layout: DiskLayout, hash: string, gen: string): string {
  return join(shardDir(layout, hash), bodyName(hash, gen));
}

export const META_FILE = /^([0-9a-f]{64})\.meta$/;
export const BODY_FILE = /^([0-9a-f]{64})\.([0-9a-f]{16})\.body$/;

export function encodeRecord(rec: DiskRecord): Buffer {
  const { version, body, blockSize, blockCrc32, meta } = rec;
  return Buffer.from(JSON.stringify({ format: DISK_FORMAT, version, body, blockSize, blockCrc32, meta }), 'utf8');
}

export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/**
 * Parse and check a record read from `<hash>.meta`. Returns the record, or a string saying why it
 * cannot be trusted (the caller drops the entry and names the reason in its log).
 */
export function decodeRecord(text: string, hash: string): DiskRecord | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return 'record is not JSON';
  }
  if (!isObject(raw) || raw['format'] !== DISK_FORMAT) return 'not an anycdn-blob record';
  if (raw['version'] !== 1) return `unsupported record version ${String(raw['version'])}`;
  const { body, blockSize, blockCrc32 } = raw;
  const meta = checkMeta(raw['meta']);
  if (typeof meta === 'string') return meta;
  const bodyMatch = typeof body === 'string' ? BODY_FILE.exec(body) : null;
  if (bodyMatch === null || bodyMatch[1] !== hash) return 'body file name does not match the record';
  if (!isCount(blockSize) || blockSize === 0) return 'bad blockSize';
  if (!Array.isArray(blockCrc32) || blockCrc32.length !== blockCount(meta.size, blockSize)) return 'bad block checksums';
  if (!blockCrc32.every((c) => isCount(c) && c <= 0xffffffff)) return 'bad block checksums';
  if (hashKey(meta.key) !== hash) return 'key does not hash to the file name';
  return { version: 1, body: body as string, blockSize, blockCrc32: blockCrc32 as number[], meta };
}

function checkMeta(m: unknown): StoredMeta | string {
  if (!isObject(m)) return 'meta missing';
  if (m['version'] !== BLOB_META_VERSION) return `unsupported meta version ${String(m['version'])}`;
  if (typeof m['key'] !== 'string') return 'meta.key missing';
  for (const f of ['size', 'status'] as const) {
    if (!isCount(m[f])) return `meta.${f} is not a non-negative integer`;
  }
  for (const f of ['requestTime', 'responseTime', 'storedAt'] as const) {
    if (typeof m[f] !== 'number' || !Number.isFinite(m[f])) return `meta.${f} is not a number`;
  }
  const headers = m['headers'];
  if (!Array.isArray(headers) || !headers.every((h) => Array.isArray(h) && h.length === 2 && h.every((s) => typeof s === 'string'))) {
    return 'meta.headers malformed';
  }
  const sha = m['sha256'];
  if (sha !== undefined && (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha))) return 'meta.sha256 malformed';
  const tags = m['tags'];
  if (tags !== undefined && (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string'))) return 'meta.tags malformed';
  return m as unknown as StoredMeta;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
