/**
 * A cluster worker's store writes the node's disk as a co-writer: what it stores the owner reads,
 * small bodies stay in its memory too (bounded by memoryMaxEntrySize), and a purge finds a memory
 * copy whose disk entry another process removed first.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { MemoryBlobStore } from '../../../src/blob/memory-blob-store.js';
import { WorkerBlobStore } from '../../../src/blob/worker-blob-store.js';
import { expectBody, pattern, put } from '../../contract/blob-store-contract.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Keys are paths here: pathOf is the key itself. */
async function node(): Promise<{ owner: DiskBlobStore; store: WorkerBlobStore; memory: MemoryBlobStore }> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-worker-writes-'));
  cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
  const owner = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB });
  cleanups.push(() => owner.close());
  const memory = new MemoryBlobStore({ maxBytes: 8 * MiB, maxEntrySize: 1 * MiB, keyLists: true });
  const store = new WorkerBlobStore({ memory, disk: await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, writer: 1 }), memoryMaxEntrySize: 32 * KiB });
  cleanups.push(() => store.close());
  return { owner, store, memory };
}

describe('WorkerBlobStore writes', () => {
  it('stores on the disk for the owner to read, keeping in memory only bodies within memoryMaxEntrySize', async () => {
    const { owner, store, memory } = await node();
    await put(store, '/a/small', pattern(2 * KiB, 1));
    await put(store, '/a/large', pattern(100 * KiB, 2));
    await expectBody(owner, '/a/small', pattern(2 * KiB, 1));
    await expectBody(owner, '/a/large', pattern(100 * KiB, 2));
    expect(memory.keys()).toEqual(['/a/small']);
    expect(owner.stats().entries).toBe(2);
    // What this worker holds (the disk's counts are its owner's to report).
    expect(store.stats().entries).toBe(1);
    expect(store.stats().memory.entries).toBe(1);
  });

  it('finds for a purge the memory copy of an entry another process removed from the disk, and sweeps only its memory', async () => {
    const { owner, store, memory } = await node();
    await put(store, '/p/one', pattern(2 * KiB, 1));
    await put(store, '/p/two', pattern(2 * KiB, 2));
    await put(owner, '/p/three', pattern(2 * KiB, 3));
    // The owner applies a purge first: the disk entry goes, this worker's memory copy stays until it applies it too.
    expect(await owner.delete('/p/one')).toBe(true);
    expect(memory.peek('/p/one')).toBeDefined();
    expect(store.keysUnderPath('/p/').sort()).toEqual(['/p/one', '/p/three', '/p/two']);
    expect(await store.delete('/p/one')).toBe(false); // not on the disk any more…
    expect(memory.peek('/p/one')).toBeUndefined(); // …and gone from memory
    expect(await store.get('/p/one')).toBeUndefined();
    // A sweep of everything (after the node's watermark made it all absent) takes this worker's memory.
    expect(store.keysToSweep()).toEqual(['/p/two']);
  });
});
