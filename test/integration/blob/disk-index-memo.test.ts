/**
 * The disk index's memo of decoded records (disk-index.ts): a record looked up again lately is the
 * same object while its bytes in LMDB are the same, and the bytes the memo keeps to compare are a
 * copy in memory of its own, not a slice of a pool slab that the memo would keep alive whole.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskIndex, ownedCopy, type IndexRecord } from '../../../src/blob/disk-index.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openIndex(): Promise<DiskIndex> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-index-memo-'));
  const index = DiskIndex.open({ path: join(dir, 'index.mdb'), readOnly: false, pathOf: (key) => key });
  cleanups.push(async () => {
    await index.close().catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return index;
}

function record(index: DiskIndex, key: string, off: number): IndexRecord {
  const meta = { version: 1, key, size: 2048, status: 200, headers: [['content-type', 'application/octet-stream'], ['etag', '"a1"']] as [string, string][], requestTime: 1, responseTime: 2, storedAt: 3 };
  return { key, g: 1, seq: index.nextSeq(), off, file: undefined, bs: 65536, crc: [7], cost: 2200, meta };
}

/** The memo's entry for `key` (private state, read to check what it holds). */
function memoOf(index: DiskIndex, key: string): { raw: Buffer; rec: IndexRecord } | undefined {
  return (index as unknown as { memo: { get(key: string): { raw: Buffer; rec: IndexRecord } | undefined } }).memo.get(key);
}

describe('disk index memo', () => {
  it('hands out the same record from the second lookup on, and keeps its bytes in memory of their own', async () => {
    const index = await openIndex();
    const keys = ['example.test/a.bin', 'example.test/b.bin', 'example.test/c.bin'];
    await Promise.all(keys.map((key, i) => index.put(record(index, key, i * 4096), undefined, { newBytes: 2200, segmentSize: 1 << 30 })));
    await index.flushed();
    for (const key of keys) {
      const first = index.get(key)!;
      expect(memoOf(index, key)).toBeUndefined(); // a first decode is not kept
      const second = index.get(key)!;
      expect(second).not.toBe(first);
      expect(second.meta.headers).toEqual([['content-type', 'application/octet-stream'], ['etag', '"a1"']]);
      expect(index.get(key)).toBe(second);
      const { raw, rec } = memoOf(index, key)!;
      expect(rec).toBe(second);
      expect(raw.length).toBeGreaterThan(0);
      // Memory of its own: not a slice of a pool slab shared with other allocations.
      expect(raw.byteOffset).toBe(0);
      expect(raw.buffer.byteLength).toBe(raw.length);
    }
  });

  it('ownedCopy copies the bytes into memory of their own', () => {
    const pooled = Buffer.from('a record of a few dozen bytes, in the pool');
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length); // the premise: small Buffer.from() is pooled
    const copy = ownedCopy(pooled);
    expect(copy.equals(pooled)).toBe(true);
    expect(copy.byteOffset).toBe(0);
    expect(copy.buffer.byteLength).toBe(pooled.length);
    pooled[0] = 0x41;
    expect(copy[0]).toBe(0x61);
    expect(ownedCopy(new Uint8Array(0)).length).toBe(0);
  });
});
