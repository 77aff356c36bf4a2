/**
 * The disk read path's memos take an object on its second read lately, not its first
 * (src/blob/seen-recently.ts): the decoded index record (its metadata object, which the edge's
 * per-object memos are keyed by) is the same object from the second read on, and objects read once
 * do not push out those read again.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { pattern, put } from '../../contract/blob-store-contract.js';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A folder of `n` objects k0…k<n-1> of 64 bytes, written and closed; the store opened on it again (a restarted edge). */
async function filled(n: number): Promise<DiskBlobStore> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-read-memo-'));
  const store = await DiskBlobStore.open({ dir, maxBytes: 64 * 1024 * 1024, maxEntrySize: 1024 * 1024 });
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) {
        const i = next++;
        await put(store, `k${i}`, pattern(64, i + 1));
      }
    }),
  );
  await store.close();
  const reader = await DiskBlobStore.open({ dir, maxBytes: 64 * 1024 * 1024, maxEntrySize: 1024 * 1024 });
  cleanups.push(async () => {
    await reader.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return reader;
}

function read(reader: DiskBlobStore, key: string, seed: number) {
  const hit = reader.getNow(key);
  expect(hit, key).toBeDefined();
  expect(hit!.data.equals(pattern(64, seed))).toBe(true);
  hit!.release?.();
  return hit!.meta;
}

describe('disk read memos', () => {
  it('hand out the same metadata object for an object from its second read on, not for its first', async () => {
    const reader = await filled(3);
    const first = read(reader, 'k1', 2);
    const second = read(reader, 'k1', 2);
    const third = read(reader, 'k1', 2);
    expect(second).toEqual(first);
    expect(second).not.toBe(first);
    expect(third).toBe(second);
    expect(read(reader, 'k2', 3)).not.toBe(read(reader, 'k2', 3)); // its first read, then its second
  });

  it('keep the objects read again while thousands of others are read once each', async () => {
    const reader = await filled(12_000);
    read(reader, 'k0', 1);
    const kept = read(reader, 'k0', 1);
    // More than the index memo's two generations of 5,000: each read once would have pushed k0 out.
    for (let i = 1; i < 12_000; i++) read(reader, `k${i}`, i + 1);
    expect(read(reader, 'k0', 1)).toBe(kept);
  });
});
