/**
 * A cluster worker's hits count for the disk's eviction: its store reports them (memory and disk
 * hits alike, as a single process's tiered store touches the disk on both), and the disk store
 * they are given to keeps what was read over what was not.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { recencyHash } from '../../../src/blob/disk-recency.js';
import { MemoryBlobStore } from '../../../src/blob/memory-blob-store.js';
import { WorkerBlobStore } from '../../../src/blob/worker-blob-store.js';
import { expectBody, pattern, put } from '../../contract/blob-store-contract.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function putRange(store: DiskBlobStore, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, to - i) }, (_, j) => put(store, `k${i + j}`, pattern(2 * KiB, i + j + 1))));
  }
}

describe('WorkerBlobStore reads', () => {
  it('reports its memory and disk hits, and the disk store keeps what they read through evictions', async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-worker-reads-'));
    cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
    const writer = await DiskBlobStore.open({ dir, maxBytes: 2 * MiB, segmentSize: 128 * KiB, maxEntrySize: 64 * KiB });
    cleanups.push(() => writer.close());
    await putRange(writer, 0, 600); // 1.2 MiB: no eviction yet
    await writer.flush(); // committed: visible to readers
    const memory = new MemoryBlobStore({ maxBytes: 8 * MiB, maxEntrySize: 1 * MiB, keyLists: true });
    const coWriter = await DiskBlobStore.open({ dir, maxBytes: 2 * MiB, segmentSize: 128 * KiB, maxEntrySize: 64 * KiB, writer: 1 });
    const store = new WorkerBlobStore({ memory, disk: coWriter, memoryMaxEntrySize: 1 * MiB });
    const sent: number[][] = [];
    store.reportReads((hashes) => {
      sent.push(hashes);
      writer.noteReadHashes(hashes);
    });
    // k0: a disk hit at once (getHot); k1: disk hits through get, the second kept in memory;
    // k2: a memory hit only (as an object the worker fetched and stored itself).
    const now = store.getHot('k0');
    expect(Buffer.from(now!.data!).equals(pattern(2 * KiB, 1))).toBe(true);
    now!.release?.();
    await expectBody(store, 'k1', pattern(2 * KiB, 2));
    await expectBody(store, 'k1', pattern(2 * KiB, 2));
    expect(memory.peek('k1')).toBeDefined();
    memory.put((await writer.get('k2'))!.meta, pattern(2 * KiB, 3));
    await expectBody(store, 'k2', pattern(2 * KiB, 3));
    expect(sent).toEqual([]); // batched, not one message a hit
    await store.close(); // sends what is batched (and closes the co-writer)
    expect(sent).toEqual([[recencyHash('k0'), recencyHash('k1'), recencyHash('k2')]]);

    await putRange(writer, 600, 1100); // 1 MiB more: the oldest generations go
    await writer.flush();
    expect(writer.stats().evictions).toBeGreaterThan(100);
    for (const i of [0, 1, 2]) await expectBody(writer, `k${i}`, pattern(2 * KiB, i + 1));
    expect(await writer.get('k3')).toBeUndefined();
    expect(writer.stats().moved).toBeGreaterThanOrEqual(3); // (and keys sharing a slot of the marks with them)
  });

  it('ignores the hashes given after the disk store is closed', async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-worker-reads-'));
    cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
    const writer = await DiskBlobStore.open({ dir, maxBytes: 2 * MiB });
    await writer.close();
    expect(() => writer.noteReadHashes([1, 2, 3])).not.toThrow();
  });
});
