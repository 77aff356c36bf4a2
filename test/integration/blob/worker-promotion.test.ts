/** A cluster worker's store keeps a disk hit in memory on its second recent hit, as a single process does. */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { MemoryBlobStore } from '../../../src/blob/memory-blob-store.js';
import { WorkerBlobStore } from '../../../src/blob/worker-blob-store.js';
import { expectBody, pattern, put } from '../../contract/blob-store-contract.js';

const KiB = 1024;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('WorkerBlobStore promotion', () => {
  it('answers a first disk hit from the disk, and keeps the object in memory from its second', async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-worker-'));
    cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
    const writer = await DiskBlobStore.open({ dir, maxBytes: 64 * 1024 * KiB });
    cleanups.push(() => writer.close());
    await put(writer, 'packed', pattern(2 * KiB, 1));
    await put(writer, 'small', pattern(90 * KiB, 2));
    await writer.flush(); // committed: visible to the co-writer
    const disk = await DiskBlobStore.open({ dir, maxBytes: 64 * 1024 * KiB, writer: 1 });
    const memory = new MemoryBlobStore({ maxBytes: 8 * 1024 * KiB, maxEntrySize: 1024 * KiB, keyLists: true });
    const store = new WorkerBlobStore({ memory, disk, memoryMaxEntrySize: 1024 * KiB });
    cleanups.push(() => store.close());
    const first = store.getHot('packed');
    expect(Buffer.from(first!.data!).equals(pattern(2 * KiB, 1))).toBe(true);
    first!.release?.();
    expect(memory.peek('packed')).toBeUndefined();
    expect(store.getHot('packed')).toBeUndefined(); // seen: get() reads it and keeps it
    await expectBody(store, 'packed', pattern(2 * KiB, 1));
    expect(memory.peek('packed')?.data?.equals(pattern(2 * KiB, 1))).toBe(true);
    await expectBody(store, 'small', pattern(90 * KiB, 2));
    expect(memory.peek('small')).toBeUndefined();
    await expectBody(store, 'small', pattern(90 * KiB, 2));
    expect(memory.peek('small')?.data?.equals(pattern(90 * KiB, 2))).toBe(true);
  });
});
