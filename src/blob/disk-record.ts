/**
 * The binary form of an index record (the value of the `objects` database, disk-index.ts): what a
 * hit needs to find and check the body and to answer (status, headers, times), in as few bytes as
 * is cheap to decode, so that a lookup among millions of entries touches as few LMDB pages as it
 * can (a bench record took 356 bytes as msgpack, 150 here):
 *
 * ```
 * flags u8          FULL_KEY, FILE, SHA_BINARY, SHA_TEXT, TAGS, INVALIDATED, FLOAT_TIMES
 * key               string, only with FULL_KEY (an LMDB key cut for length); else the LMDB key is the cache key
 * g seq             varint, varint
 * off + 1           varint (0: no packed body)
 * file              with FILE: 32 bytes key hash and 8 bytes generation (kind 0) or a string (kind 1), after a kind u8
 * size bs cost      varint ×3
 * status version    varint ×2
 * crc               varint count, then u32 LE each
 * sha256            32 bytes (SHA_BINARY) or a string (SHA_TEXT)
 * times             storedAt varint, requestTime − storedAt and responseTime − storedAt zigzag varints
 *                   (FLOAT_TIMES: the three as f64 LE)
 * headers           varint count; each a name (u8 code from HEADER_NAMES, 0: a string follows) and a
 *                   value: a varint v, then for v = 0 nothing (the value is String(size)), 1 a varint
 *                   of seconds since 1970 (an IMF-fixdate that reads back the same, RFC 9110 §5.6.7),
 *                   2 a u8 code from HEADER_VALUES, and otherwise v − 3 bytes of UTF-8
 * tags              with TAGS: varint count, strings
 * extra fields      to the end: u8 field id, varint value (none yet: a small field added later goes
 *                   here, and a reader skips the ids it does not know)
 * ```
 *
 * A string is a varint byte length and its UTF-8 bytes. Every number but the times is a
 * non-negative safe integer (checked when encoding).
 */
import type { StoredMeta } from './blob-store.js';
import type { IndexRecord } from './disk-index.js';
import { BODY_FILE } from './disk-layout.js';

const FULL_KEY = 1;
const FILE = 2;
const SHA_BINARY = 4;
const SHA_TEXT = 8;
const TAGS = 16;
const INVALIDATED = 32;
const FLOAT_TIMES = 64;

/**
 * Response header names stored as one byte (their position + 1). Part of the format: append only,
 * and a change of meaning bumps DISK_FORMAT_VERSION. Names are matched exactly as received.
 */
const HEADER_NAMES: readonly string[] = [
  'content-type',
  'content-length',
  'cache-control',
  'etag',
  'last-modified',
  'date',
  'vary',
  'expires',
  'age',
  'accept-ranges',
  'content-encoding',
  'server',
  'surrogate-key',
  'surrogate-control',
  'cdn-cache-control',
  'cache-tag',
  'access-control-allow-origin',
  'access-control-expose-headers',
  'timing-allow-origin',
  'cross-origin-resource-policy',
  'x-content-type-options',
  'content-disposition',
  'content-language',
  'content-security-policy',
  'strict-transport-security',
  'x-frame-options',
  'link',
  'via',
  'x-cache',
  'set-cookie',
];
const HEADER_CODE = new Map(HEADER_NAMES.map((name, i) => [name, i + 1]));

/** Frequent whole header values stored as one byte (their position). Append only, as HEADER_NAMES. */
const HEADER_VALUES: readonly string[] = [
  'application/octet-stream',
  'image/jpeg',
  'image/png',
  'image/webp',
  'image/avif',
  'image/gif',
  'image/svg+xml',
  'image/x-icon',
  'text/css',
  'text/css; charset=utf-8',
  'text/html',
  'text/html; charset=utf-8',
  'text/plain',
  'text/plain; charset=utf-8',
  'application/javascript',
  'application/javascript; charset=utf-8',
  'text/javascript',
  'text/javascript; charset=utf-8',
  'application/json',
  'application/json; charset=utf-8',
  'application/wasm',
  'font/woff2',
  'font/woff',
  'video/mp4',
  'bytes',
  'Accept',
  'Accept-Encoding',
  'accept',
  'accept-encoding',
  'gzip',
  'br',
  'zstd',
  'nosniff',
  '*',
  'cross-origin',
  'same-origin',
];
const VALUE_CODE = new Map(HEADER_VALUES.map((value, i) => [value, i]));

const VALUE_SIZE = 0;
const VALUE_DATE = 1;
const VALUE_CODED = 2;
const VALUE_TEXT = 3;

/** Seconds since 1970 of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) that reads back as the same text; else undefined. */
function httpDateSeconds(value: string): number | undefined {
  if (value.length !== 29 || !value.endsWith(' GMT')) return undefined;
  const ms = Date.parse(value);
  if (!Number.isSafeInteger(ms) || ms < 0 || ms % 1000 !== 0) return undefined;
  return new Date(ms).toUTCString() === value ? ms / 1000 : undefined;
}

const HEX_SHA = /^[0-9a-f]{64}$/;

/** Writes into one growing buffer, reused between records (encode copies out what it wrote). */
class Writer {
  buf = Buffer.allocUnsafe(1024);
  pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  uint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`index record: ${v} is not a non-negative integer`);
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  /** Zigzag: small negative numbers stay short. */
  int(v: number): void {
    this.uint(v < 0 ? -2 * v - 1 : 2 * v);
  }

  u32(v: number): void {
    this.room(4);
    this.pos = this.buf.writeUInt32LE(v >>> 0, this.pos);
  }

  f64(v: number): void {
    this.room(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }

  bytes(b: Buffer): void {
    this.room(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }

  /** `lengthBias` leaves the varints below it free for markers (header values). */
  str(s: string, lengthBias = 0): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.uint(n + lengthBias);
    this.room(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }
}

const writer = new Writer();

/**
 * The bytes of `rec` for the `objects` database under `ikey` (indexKey(rec.key)): the key is not
 * repeated when `ikey` is the whole key.
 */
export function encodeRecord(rec: IndexRecord, ikey: Buffer): Buffer {
  const w = writer;
  w.pos = 0;
  const m = rec.meta;
  const fullKey = ikey.length !== Buffer.byteLength(rec.key, 'utf8');
  const shaBinary = m.sha256 !== undefined && HEX_SHA.test(m.sha256);
  const floatTimes = ![m.storedAt, m.requestTime, m.responseTime].every((t) => Number.isSafeInteger(t) && t >= 0 && Number.isSafeInteger(t - m.storedAt));
  let flags = 0;
  if (fullKey) flags |= FULL_KEY;
  if (rec.file !== undefined) flags |= FILE;
  if (m.sha256 !== undefined) flags |= shaBinary ? SHA_BINARY : SHA_TEXT;
  if (m.tags !== undefined) flags |= TAGS;
  if (m.invalidated === true) flags |= INVALIDATED;
  if (floatTimes) flags |= FLOAT_TIMES;
  w.u8(flags);
  if (fullKey) w.str(rec.key);
  w.uint(rec.g);
  w.uint(rec.seq);
  w.uint(rec.off + 1);
  if (rec.file !== undefined) {
    const parts = BODY_FILE.exec(rec.file);
    if (parts !== null) {
      w.u8(0);
      w.bytes(Buffer.from(parts[1]!, 'hex'));
      w.bytes(Buffer.from(parts[2]!, 'hex'));
    } else {
      w.u8(1);
      w.str(rec.file);
    }
  }
  w.uint(m.size);
  w.uint(rec.bs);
  w.uint(rec.cost);
  w.uint(m.status);
  w.uint(m.version);
  w.uint(rec.crc.length);
  for (const c of rec.crc) w.u32(c);
  if (shaBinary) w.bytes(Buffer.from(m.sha256!, 'hex'));
  else if (m.sha256 !== undefined) w.str(m.sha256);
  if (floatTimes) {
    w.f64(m.storedAt);
    w.f64(m.requestTime);
    w.f64(m.responseTime);
  } else {
    w.uint(m.storedAt);
    w.int(m.requestTime - m.storedAt);
    w.int(m.responseTime - m.storedAt);
  }
  w.uint(m.headers.length);
  const sizeText = String(m.size);
  for (const [name, value] of m.headers) {
    const code = HEADER_CODE.get(name);
    if (code !== undefined) w.u8(code);
    else {
      w.u8(0);
      w.str(name);
    }
    const coded = VALUE_CODE.get(value);
    const seconds = value === sizeText || coded !== undefined ? undefined : httpDateSeconds(value);
    if (value === sizeText) w.uint(VALUE_SIZE);
    else if (coded !== undefined) {
      w.uint(VALUE_CODED);
      w.u8(coded);
    } else if (seconds !== undefined) {
      w.uint(VALUE_DATE);
      w.uint(seconds);
    } else w.str(value, VALUE_TEXT);
  }
  if (m.tags !== undefined) {
    w.uint(m.tags.length);
    for (const tag of m.tags) w.str(tag);
  }
  return Buffer.from(w.buf.subarray(0, w.pos));
}

/** Reads one record; `pos` moves along. */
class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  u8(): number {
    if (this.pos >= this.buf.length) throw new RangeError('index record: truncated');
    return this.buf[this.pos++]!;
  }

  uint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
    }
  }

  int(): number {
    const z = this.uint();
    return z % 2 === 1 ? -(z + 1) / 2 : z / 2;
  }

  u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  hex(n: number): string {
    const end = this.pos + n;
    if (end > this.buf.length) throw new RangeError('index record: truncated');
    const s = this.buf.toString('hex', this.pos, end);
    this.pos = end;
    return s;
  }

  str(length = this.uint()): string {
    const end = this.pos + length;
    if (end > this.buf.length) throw new RangeError('index record: truncated');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }
}

function headerValue(r: Reader, size: number): string {
  const v = r.uint();
  if (v >= VALUE_TEXT) return r.str(v - VALUE_TEXT);
  if (v === VALUE_SIZE) return String(size);
  if (v === VALUE_DATE) return new Date(r.uint() * 1000).toUTCString();
  const value = HEADER_VALUES[r.u8()];
  if (value === undefined) throw new RangeError('index record: unknown header value code');
  return value;
}

/**
 * The cache key of the record `raw` stored under `ikey`, without decoding the rest. `key`: the key
 * looked up (indexKey(key) is `ikey`), returned as it is when it is the record's.
 */
export function recordKey(raw: Buffer, ikey: Buffer, key?: string): string {
  if ((raw[0]! & FULL_KEY) === 0) return key !== undefined && Buffer.byteLength(key, 'utf8') === ikey.length ? key : ikey.toString('utf8');
  const r = new Reader(raw);
  r.pos = 1;
  return r.str();
}

/**
 * Decode `raw` (the bytes under `ikey`; read at once, as LMDB may reuse them after the next read).
 * `key`: the cache key when the caller knows it (the LMDB key then need not be decoded).
 */
export function decodeRecord(raw: Buffer, ikey: Buffer, key?: string): IndexRecord {
  const r = new Reader(raw);
  const flags = r.u8();
  const recKey = (flags & FULL_KEY) !== 0 ? r.str() : (key ?? ikey.toString('utf8'));
  const g = r.uint();
  const seq = r.uint();
  const off = r.uint() - 1;
  let file: string | undefined;
  if ((flags & FILE) !== 0) file = r.u8() === 0 ? `${r.hex(32)}.${r.hex(8)}` : r.str();
  const size = r.uint();
  const bs = r.uint();
  const cost = r.uint();
  const status = r.uint();
  const version = r.uint();
  const crc: number[] = new Array<number>(r.uint());
  for (let i = 0; i < crc.length; i++) crc[i] = r.u32();
  const sha256 = (flags & SHA_BINARY) !== 0 ? r.hex(32) : (flags & SHA_TEXT) !== 0 ? r.str() : undefined;
  let storedAt: number;
  let requestTime: number;
  let responseTime: number;
  if ((flags & FLOAT_TIMES) !== 0) {
    storedAt = r.f64();
    requestTime = r.f64();
    responseTime = r.f64();
  } else {
    storedAt = r.uint();
    requestTime = storedAt + r.int();
    responseTime = storedAt + r.int();
  }
  const headers: [string, string][] = new Array<[string, string]>(r.uint());
  for (let i = 0; i < headers.length; i++) {
    const code = r.u8();
    const name = code === 0 ? r.str() : HEADER_NAMES[code - 1];
    if (name === undefined) throw new RangeError(`index record: unknown header code ${code}`);
    headers[i] = [name, headerValue(r, size)];
  }
  const meta: StoredMeta = { version, key: recKey, size, status, headers, requestTime, responseTime, storedAt };
  if (sha256 !== undefined) meta.sha256 = sha256;
  if ((flags & TAGS) !== 0) {
    const tags: string[] = new Array<string>(r.uint());
    for (let i = 0; i < tags.length; i++) tags[i] = r.str();
    meta.tags = tags;
  }
  if ((flags & INVALIDATED) !== 0) meta.invalidated = true;
  // Extra fields (see the format above): none is known yet; each is an id and a varint.
  while (r.pos < raw.length) {
    r.u8();
    r.uint();
  }
  return { key: recKey, g, seq, off, file, bs, crc, cost, meta };
}
