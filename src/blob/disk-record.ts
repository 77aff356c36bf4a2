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
 * extra fields      to the end: u8 field id, varint value; a reader skips the ids it does not know.
 *                   1: the co-writer that appended a packed body (IndexRecord.w; absent: the owner)
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
/** Extra field ids (see the format above). */
const EXTRA_WRITER = 1;

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

const DAYS = ['Thu', 'Fri', 'Sat', 'Sun', 'Mon', 'Tue', 'Wed']; // 1970-01-01 was a Thursday
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/**
 * The IMF-fixdate of `seconds` since 1970 (RFC 9110 §5.6.7), as Date's toUTCString writes it for
 * years 1970–9999, by arithmetic: a Date and its formatting cost a microsecond per header.
 */
export function imfDate(seconds: number): string {
  const days = Math.floor(seconds / 86400);
  const rest = seconds - days * 86400;
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, eras of 400 years from 0000-03-01).
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = Math.floor(rest / 3600);
  const m = Math.floor((rest % 3600) / 60);
  return `${DAYS[days % 7]}, ${two(day)} ${MONTHS[month - 1]} ${year} ${two(h)}:${two(m)}:${two(rest % 60)} GMT`;
}

/** Seconds since 1970 of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) that imfDate writes back as the same text; else undefined. */
function httpDateSeconds(value: string): number | undefined {
  if (value.length !== 29 || value.charCodeAt(3) !== 44 /* , */ || !value.endsWith(' GMT')) return undefined;
  const month = MONTHS.indexOf(value.slice(8, 11)) + 1;
  const day = digits(value, 5, 2);
  const year = digits(value, 12, 4);
  const h = digits(value, 17, 2);
  const m = digits(value, 20, 2);
  const sec = digits(value, 23, 2);
  if (month === 0 || year < 1970 || day < 1 || day > 31 || h > 23 || m > 59 || sec > 59) return undefined;
  // Days since 1970 of the civil date (H. Hinnant's days_from_civil); imfDate then checks the whole text, weekday included.
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  const seconds = (era * 146097 + doe - 719468) * 86400 + h * 3600 + m * 60 + sec;
  return imfDate(seconds) === value ? seconds : undefined;
}

/** The number written by `count` decimal digits at `at`; -1 if any is not a digit. */
function digits(text: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** A lower-case hex SHA-256 (what the store writes), the only kind stored as 32 bytes: others would not read back the same. */
function isHexSha(text: string): boolean {
  if (text.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}


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
    if (v < 0x80) {
      this.buf[this.pos++] = v;
      return;
    }
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

  /** `hex`: an even number of hex digits. */
  hex(hex: string): void {
    this.room(hex.length / 2);
    this.pos += this.buf.write(hex, this.pos, 'hex');
  }

  /** `lengthBias` leaves the varints below it free for markers (header values). */
  str(s: string, lengthBias = 0): void {
    const n = s.length;
    if (n < 0x80 - lengthBias) {
      // One length byte, then the characters as bytes while they are ASCII (headers nearly always are).
      this.room(n + 1);
      const at = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        this.buf[at + i] = c;
      }
      if (i === n) {
        this.buf[this.pos] = n + lengthBias;
        this.pos = at + n;
        return;
      }
    }
    const bytes = Buffer.byteLength(s, 'utf8');
    this.uint(bytes + lengthBias);
    this.room(bytes);
    this.pos += this.buf.write(s, this.pos, bytes, 'utf8');
  }
}

const writer = new Writer();

const wholeTime = (t: number) => Number.isSafeInteger(t) && t >= 0;

/**
 * The bytes of `rec` for the `objects` database under `ikey` (indexKey(rec.key)): the key is not
 * repeated when `ikey` is the whole key.
 */
export function encodeRecord(rec: IndexRecord, ikey: Buffer): Buffer {
  const w = writer;
  w.pos = 0;
  const m = rec.meta;
  const fullKey = ikey.length !== Buffer.byteLength(rec.key, 'utf8');
  const shaBinary = m.sha256 !== undefined && isHexSha(m.sha256);
  const floatTimes = !(wholeTime(m.storedAt) && wholeTime(m.requestTime) && wholeTime(m.responseTime));
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
      w.hex(parts[1]!);
      w.hex(parts[2]!);
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
  if (shaBinary) w.hex(m.sha256!);
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
  if (rec.w !== undefined) {
    w.u8(EXTRA_WRITER);
    w.uint(rec.w);
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
    const first = this.u8();
    if (first < 0x80) return first;
    let v = first & 0x7f;
    let scale = 0x80;
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
    const start = this.pos;
    const end = start + length;
    const buf = this.buf;
    if (end > buf.length) throw new RangeError('index record: truncated');
    this.pos = end;
    if (length <= 64) {
      // Short ASCII strings in JS: cheaper than a call into Buffer's decoder.
      let s = '';
      for (let i = start; i < end; i++) {
        const c = buf[i]!;
        if (c >= 0x80) return buf.toString('utf8', start, end);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return buf.toString('utf8', start, end);
  }
}

function headerValue(r: Reader, size: number): string {
  const v = r.uint();
  if (v >= VALUE_TEXT) return r.str(v - VALUE_TEXT);
  if (v === VALUE_SIZE) return String(size);
  if (v === VALUE_DATE) return imfDate(r.uint());
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
  const rec: IndexRecord = { key: recKey, g, seq, off, file, bs, crc, cost, meta };
  // Extra fields (see the format above), each an id and a varint; unknown ids are skipped.
  while (r.pos < raw.length) {
    const id = r.u8();
    const value = r.uint();
    if (id === EXTRA_WRITER) rec.w = value;
  }
  return rec;
}
