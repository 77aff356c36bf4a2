/**
 * Recency of the disk store: a read is only noted; the entries read since they were written move
 * to the head when their generation comes up for eviction (ahead of it, in the background, once
 * the disk is near maxBytes), and the others are evicted.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { recencyHash } from '../../../src/blob/disk-recency.js';
import { expectBody, pattern, put } from '../../contract/blob-store-contract.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function openStore(options: { maxBytes: number; segmentSize: number; syncIntervalMs?: number }): Promise<DiskBlobStore> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-recency-'));
  const store = await DiskBlobStore.open({ dir, maxEntrySize: 64 * KiB, ...options });
  cleanups.push(async () => {
    await store.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return store;
}

/** Puts k<from>…k<to - 1> (2 KiB each), 20 at a time, so the generations follow the numbers to within 20. */
async function putRange(store: DiskBlobStore, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, to - i) }, (_, j) => put(store, `k${i + j}`, pattern(2 * KiB, i + j + 1))));
  }
}

describe('DiskBlobStore recency', () => {
  it('keeps every object read over the objects stored before the read and not read since, through evictions', async () => {
    const store = await openStore({ maxBytes: 2 * MiB, segmentSize: 128 * KiB });
    await putRange(store, 0, 600); // 1.2 MiB: no eviction yet
    const read = [0, 1, 2, 50, 51, 100, 300, 301, 599];
    for (const i of read) await expectBody(store, `k${i}`, pattern(2 * KiB, i + 1));
    await putRange(store, 600, 1100); // 1 MiB more: the oldest generations go
    await store.flush();
    const stats = store.stats();
    expect(stats.evictions).toBeGreaterThan(100);
    expect(stats.diskBytes).toBeLessThanOrEqual(2 * MiB);
    for (const i of read) await expectBody(store, `k${i}`, pattern(2 * KiB, i + 1));
    // What was evicted is what was stored before the reads and not read: the oldest of those first.
    expect(await store.get('k3')).toBeUndefined();
    expect(await store.get('k49')).toBeUndefined();
    const keys = store.keys();
    expect(keys.filter((k) => Number(k.slice(1)) < 600).sort()).toEqual(expect.arrayContaining(read.map((i) => `k${i}`).sort()));
    expect(stats.moved).toBeGreaterThanOrEqual(read.length - 1); // k599 may sit in a generation not evicted yet
  });

  it('counts a hit answered at once (getNow, given the key\'s recencyHash as the tiered store passes it) as a read', async () => {
    const store = await openStore({ maxBytes: 2 * MiB, segmentSize: 128 * KiB });
    await putRange(store, 0, 600);
    const read = [0, 1, 50, 300];
    for (const i of read) {
      const hot = store.getNow(`k${i}`, -1, recencyHash(`k${i}`))!;
      expect(hot.data.equals(pattern(2 * KiB, i + 1))).toBe(true);
      hot.release?.();
    }
    await putRange(store, 600, 1100);
    await store.flush();
    expect(store.stats().evictions).toBeGreaterThan(100);
    for (const i of read) await expectBody(store, `k${i}`, pattern(2 * KiB, i + 1));
    expect(await store.get('k2')).toBeUndefined();
    expect(await store.get('k49')).toBeUndefined();
  });

  it('near maxBytes, moves the read entries of the generation evicted next in the background, before any write needs the room', async () => {
    // No periodic flush: the test flushes (which measures the index file) when it chooses.
    const store = await openStore({ maxBytes: 4 * MiB, segmentSize: 256 * KiB, syncIntervalMs: 3_600_000 });
    let n = 0;
    while (store.stats().diskBytes < 0.8 * 4 * MiB) {
      await putRange(store, n, (n += 20));
      await store.flush();
    }
    const filled = store.keys();
    const [oldest, recent] = [filled[0]!, filled.at(-30)!]; // the generation evicted next, and a recent one
    const evictions = store.stats().evictions;
    for (const key of [oldest, recent]) expect((await store.get(key))?.meta.key).toBe(key);
    await store.flush();
    // The oldest one read moved to the head; the recent one stays where it is, as does every entry not read.
    const after = store.keys();
    expect(after.at(-1)).toBe(oldest);
    expect(after.slice(0, -1)).toEqual(filled.filter((k) => k !== oldest));
    expect(store.stats()).toMatchObject({ moved: 1, evictions });
    const i = Number(oldest.slice(1));
    await expectBody(store, oldest, pattern(2 * KiB, i + 1));
  });

  it('moves nothing while the disk is far from maxBytes, however old what was read', async () => {
    const store = await openStore({ maxBytes: 8 * MiB, segmentSize: 128 * KiB });
    await putRange(store, 0, 800);
    const before = store.keys();
    for (let i = 0; i < 800; i += 3) await expectBody(store, `k${i}`, pattern(2 * KiB, i + 1));
    await store.flush();
    expect(store.keys()).toEqual(before);
    expect(store.stats().moved).toBe(0);
  });
});
