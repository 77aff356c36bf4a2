import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import type { StoredMeta } from '../../../src/blob/blob-store.js';
import { indexKey, type IndexRecord } from '../../../src/blob/disk-index.js';
import { decodeRecord, encodeRecord, imfDate, recordKey } from '../../../src/blob/disk-record.js';

const KEY = '127.0.0.1:43210/s/123456-2048.bin';
const SHA = 'c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a';

/** A record as the edge stores a 2 KiB response of the bench's counting origin. */
function benchRecord(over: Partial<IndexRecord> = {}, metaOver: Partial<StoredMeta> = {}): IndexRecord {
  const key = over.key ?? KEY;
  const meta: StoredMeta = {
    version: 1,
    key,
    size: 2048,
    status: 200,
    headers: [
      ['content-type', 'application/octet-stream'],
      ['content-length', '2048'],
      ['cache-control', 'public, max-age=86400'],
      ['etag', '"1e240"'],
      ['last-modified', 'Sun, 06 Dec 2026 00:00:00 GMT'],
    ],
    requestTime: 1_796_000_000_123,
    responseTime: 1_796_000_000_130,
    storedAt: 1_796_000_000_131,
    sha256: SHA,
    ...metaOver,
  };
  return { key, g: 7, seq: 123_456_789_012, off: 52_428_800, file: undefined, bs: 262_144, crc: [0xdeadbeef], cost: 2_600, meta, ...over };
}

function roundTrip(rec: IndexRecord): IndexRecord {
  const ikey = indexKey(rec.key);
  return decodeRecord(encodeRecord(rec, ikey), ikey);
}

describe('index records (disk-record.ts)', () => {
  it('decode to what was encoded: a packed body with the usual headers', () => {
    const rec = benchRecord();
    expect(roundTrip(rec)).toStrictEqual(rec);
  });

  it('take well under half the bytes of the msgpack record they replace, the key not repeated', () => {
    const rec = benchRecord();
    const bytes = encodeRecord(rec, indexKey(rec.key));
    // 36 bytes of location, checksum, times and counts, 32 of SHA-256, 44 of headers (two of them coded values, a date as seconds).
    expect(bytes.length).toBe(112);
    expect(pack(rec).length).toBeGreaterThan(2 * bytes.length);
    expect(bytes.includes(Buffer.from(KEY))).toBe(false);
    expect(bytes.includes(Buffer.from('content-type'))).toBe(false);
  });

  it('keep every field of the other shapes: file bodies, tags, soft purges, odd headers and times', () => {
    const cases: IndexRecord[] = [
      benchRecord({ off: -1, file: `${'ab'.repeat(32)}.0123456789abcdef`, crc: [1, 2, 0xffffffff] }),
      benchRecord({ off: -1, file: 'not-a-body-file-name' }),
      benchRecord({}, { tags: ['a', 'product-42', 'ünïcode'], invalidated: true }),
      benchRecord({}, { tags: [] }),
      benchRecord({ crc: [], cost: 0, g: 0, seq: 0, off: 0 }, { size: 0, headers: [], sha256: undefined }),
      benchRecord({}, { sha256: 'NOT-HEX' }),
      // Times as a test or a clock may hand them: before storedAt, after it, fractional, far apart.
      benchRecord({}, { requestTime: 5, responseTime: 9_000_000_000_000, storedAt: 1 }),
      benchRecord({}, { requestTime: 1.5, responseTime: 2.25, storedAt: 3.125 }),
      benchRecord({}, { storedAt: 0, requestTime: 0, responseTime: 0 }),
      benchRecord(
        {},
        {
          status: 404,
          headers: [
            ['X-Custom', 'ßeta ☃'],
            ['content-length', '2048'],
            ['content-length', '12'],
            ['set-cookie', 'a=1'],
            ['set-cookie', 'b=2'],
            ['vary', ''],
            ['vary', 'Accept'],
            ['expires', 'Thu, 01 Jan 1970 00:00:00 GMT'],
            ['date', 'sun, 06 Dec 2026 00:00:00 GMT'],
            ['date', 'Mon, 06 Dec 2026 00:00:00 GMT'],
            ['date', 'Sun, 06 Dec 2026 00:00:00 UTC'],
            ['date', 'Sun, 06 Dec 2026 00:00:00 GMT '],
            ['x-long', 'x'.repeat(5000)],
          ],
        },
      ),
    ];
    for (const rec of cases) {
      const back = roundTrip(rec);
      if (rec.meta.sha256 === undefined) delete rec.meta.sha256;
      expect(back).toStrictEqual(rec);
    }
  });

  it('name their whole key when the LMDB key is cut, and recordKey reads it without the rest', () => {
    const long = `example.com/${'p'.repeat(3000)}`;
    const rec = benchRecord({ key: long }, { key: long });
    const ikey = indexKey(long);
    expect(ikey.length).toBeLessThan(2000);
    const bytes = encodeRecord(rec, ikey);
    expect(roundTrip(rec)).toStrictEqual(rec);
    expect(recordKey(bytes, ikey)).toBe(long);
    expect(recordKey(bytes, ikey, long)).toBe(long);
    // A short key whose bytes are another's cut LMDB key is not that key.
    const short = encodeRecord(benchRecord(), indexKey(KEY));
    expect(recordKey(short, indexKey(KEY), KEY)).toBe(KEY);
    expect(recordKey(short, indexKey(KEY), long)).toBe(KEY);
  });

  it('skip extra fields they do not know, and refuse a truncated record', () => {
    const rec = benchRecord();
    const ikey = indexKey(rec.key);
    const bytes = encodeRecord(rec, ikey);
    const extended = Buffer.concat([bytes, Buffer.from([9, 0x85, 0x01, 10, 3])]);
    expect(decodeRecord(extended, ikey)).toStrictEqual(rec);
    expect(() => decodeRecord(bytes.subarray(0, bytes.length - 10), ikey)).toThrow(RangeError);
  });

  it("keep a co-writer's id (w) as an extra field, two bytes more, and the owner's records without it", () => {
    const owner = benchRecord();
    const other = benchRecord({ w: 3 });
    const ikey = indexKey(KEY);
    expect(roundTrip(other)).toStrictEqual(other);
    expect(roundTrip(owner)).not.toHaveProperty('w');
    expect(encodeRecord(other, ikey).length).toBe(encodeRecord(owner, ikey).length + 2);
    const big = benchRecord({ w: 1023 });
    expect(roundTrip(big).w).toBe(1023);
  });

  it('write HTTP dates as Date does, and store every date that reads back the same as seconds', () => {
    const days = [0, 59, 365 + 59, 10_957 + 59, 11_016, 47_541, 47_482, 2_932_896];
    const seconds = [...days.map((d) => d * 86400), ...days.map((d) => d * 86400 + 86399)];
    let x = 7;
    for (let i = 0; i < 2000; i++) seconds.push((x = (x * 48271) % 2147483647) * 117);
    const header = (t: number) => new Date(t * 1000).toUTCString();
    for (const t of seconds) expect(imfDate(t)).toBe(header(t));
    const rec = benchRecord({}, { headers: seconds.map((t) => ['expires', header(t)]) });
    const bytes = encodeRecord(rec, indexKey(KEY));
    expect(roundTrip(rec)).toStrictEqual(rec);
    // Each date is a marker and at most 6 bytes of seconds, not 29 of text.
    expect(bytes.length).toBeLessThan(120 + seconds.length * 8);
  });

  it('refuse numbers the format cannot hold rather than store something else', () => {
    expect(() => encodeRecord(benchRecord({ g: -1 }), indexKey(KEY))).toThrow(RangeError);
    expect(() => encodeRecord(benchRecord({ cost: 1.5 }), indexKey(KEY))).toThrow(RangeError);
  });
});
