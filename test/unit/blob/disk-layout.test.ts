import { describe, expect, it } from 'vitest';
import { crc32 } from 'node:zlib';
import { indexKey } from '../../../src/blob/disk-index.js';
import { allocated, checkSegmentRecord, keyHash, segmentHeader, segmentName, SEGMENT_FILE } from '../../../src/blob/disk-layout.js';
import { KeyedLock } from '../../../src/blob/keyed-lock.js';

describe('segment records', () => {
  const body = Buffer.from('hello, packed world');
  const hash = keyHash('example.com/a.txt');
  const record = Buffer.concat([segmentHeader(hash, body), body]);

  it('lay out magic, length, key hash, body CRC and header CRC in 24 bytes', () => {
    expect(record.length).toBe(24 + body.length);
    expect(record.subarray(0, 4).toString('latin1')).toBe('ACS2');
    expect(record.readUInt32BE(4)).toBe(body.length);
    expect(record.subarray(8, 16).equals(hash.subarray(0, 8))).toBe(true);
    expect(record.readUInt32BE(16)).toBe(crc32(body));
    expect(record.readUInt32BE(20)).toBe(crc32(record.subarray(0, 20)));
  });

  it('check out whole, and name what is wrong otherwise', () => {
    const ok = checkSegmentRecord(record, hash, body.length, crc32(body), true);
    expect(Buffer.isBuffer(ok) && ok.equals(body)).toBe(true);
    const flip = (at: number) => {
      const copy = Buffer.from(record);
      copy[at] = copy[at]! ^ 1;
      return copy;
    };
    const cases: [string, Buffer | string][] = [
      ['short read (30 of 43 bytes)', checkSegmentRecord(record.subarray(0, 30), hash, body.length, crc32(body), true)],
      ['segment header damaged', checkSegmentRecord(flip(1), hash, body.length, crc32(body), true)],
      ['segment header damaged', checkSegmentRecord(flip(21), hash, body.length, crc32(body), true)],
      ['segment record belongs to another object', checkSegmentRecord(record, keyHash('example.com/b.txt'), body.length, crc32(body), true)],
      ['segment record is another version', checkSegmentRecord(record, hash, body.length, crc32(body) ^ 1, true)],
      ['body fails its checksum', checkSegmentRecord(flip(30), hash, body.length, crc32(body), true)],
    ];
    for (const [reason, got] of cases) expect(got).toBe(reason);
    // A location verified before skips the body CRC, never the header's fields: each is compared
    // with what the index expects, so a flip in any of them is still refused (only the header's
    // own CRC, which covers these same bytes, is not computed again).
    expect(Buffer.isBuffer(checkSegmentRecord(flip(30), hash, body.length, crc32(body), false))).toBe(true);
    expect(checkSegmentRecord(flip(2), hash, body.length, crc32(body), false)).toBe('segment header damaged');
    expect(checkSegmentRecord(flip(5), hash, body.length, crc32(body), false)).toBe('segment record belongs to another object');
    expect(checkSegmentRecord(flip(9), hash, body.length, crc32(body), false)).toBe('segment record belongs to another object');
    expect(checkSegmentRecord(flip(17), hash, body.length, crc32(body), false)).toBe('segment record is another version');
    expect(Buffer.isBuffer(checkSegmentRecord(flip(21), hash, body.length, crc32(body), false))).toBe(true);
  });
});

describe('names and sizes', () => {
  it('names segments by generation, sortably', () => {
    expect(segmentName(7)).toBe('0000000007.seg');
    expect(SEGMENT_FILE.exec('0000000007.seg')?.[1]).toBe('0000000007');
    expect(SEGMENT_FILE.test('7.seg')).toBe(false);
  });

  it('rounds file sizes up to 4 KiB blocks', () => {
    expect([0, 1, 4096, 4097, 50 * 1024].map(allocated)).toEqual([0, 4096, 4096, 8192, 53248]);
  });

  it('keeps keys as UTF-8 in the index, and cuts long ones keeping their start (prefix scans) plus a hash', () => {
    expect(indexKey('example.com/ü').equals(Buffer.from('example.com/ü', 'utf8'))).toBe(true);
    const long = `example.com/${'x'.repeat(3000)}`;
    const k = indexKey(long);
    expect(k.length).toBe(1800 + 2 + 32);
    expect(k.subarray(0, 1800).equals(Buffer.from(long).subarray(0, 1800))).toBe(true);
    expect(k.subarray(1802).equals(keyHash(long))).toBe(true);
    expect(indexKey(`${long}y`).equals(k)).toBe(false);
  });
});

describe('KeyedLock', () => {
  it('runs work for one key in call order, other keys alongside, and survives failures', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    let releaseFirst!: () => void;
    const first = lock.run('k', async () => {
      await new Promise<void>((resolve) => (releaseFirst = resolve));
      log.push('k1');
      throw new Error('boom');
    });
    const second = lock.run('k', async () => void log.push('k2'));
    await lock.run('other', async () => void log.push('other'));
    expect(log).toEqual(['other']);
    releaseFirst();
    await expect(first).rejects.toThrow('boom');
    await second;
    expect(log).toEqual(['other', 'k1', 'k2']);
    await Promise.resolve();
    expect(lock.size).toBe(0);
  });
});
