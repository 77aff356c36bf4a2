/**
 * The disk index's changes issued before its next write transaction run there as one batch
 * (disk-index-state.ts): the state is written once for the batch, its counters and segment counts
 * are exact whatever mix of puts, replacements, removals and refusals it holds, and a change of
 * the state early in a batch (a generation marked evicted) binds the changes after it; and while
 * held (another process opens the index), no transaction begins: what is issued meanwhile waits.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskIndex } from '../../../src/blob/disk-index.js';
import { FS_BLOCK } from '../../../src/blob/disk-layout.js';
import { recount, testRecord as record } from '../../support/index-records.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openIndex(): Promise<{ index: DiskIndex; path: string }> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-index-batch-'));
  const path = join(dir, 'index.mdb');
  const index = DiskIndex.open({ path, readOnly: false, pathOf: (key) => key });
  cleanups.push(async () => {
    await index.close().catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return { index, path };
}

describe('disk index batches', () => {
  it('commits the changes issued meanwhile in one transaction: the state written once, counters and segment counts exact', async () => {
    const { index } = await openIndex();
    const puts = Array.from({ length: 50 }, (_, i) => index.put(record(index, `k${i}`, 1, i * 1000, 1000 + i), undefined, { newBytes: 500 + i, segmentSize: 1 << 30 }));
    const results = await Promise.all(puts);
    expect(results.every((r) => r.applied && r.old === undefined)).toBe(true);
    let s = index.shared.committedState();
    expect(s.v).toBe(1);
    expect(s.entries).toBe(50);
    const costs = Array.from({ length: 50 }, (_, i) => 1000 + i).reduce((a, b) => a + b, 0);
    expect(s.liveBytes).toBe(costs);
    // One segment file (generation 1, the owner's): its bytes plus one block for its rounding.
    const appended = Array.from({ length: 50 }, (_, i) => 500 + i).reduce((a, b) => a + b, 0);
    expect(s.segBytes).toBe(FS_BLOCK + appended);
    expect(s.headBytes).toBe(appended);

    // A second batch: a replacement, a removal, a refused conditional change, a body file, a removal of nothing.
    const k0 = index.get('k0')!;
    const second = await Promise.all([
      index.put(record(index, 'k0', 1, 60_000, 2000), undefined, { newBytes: 300, segmentSize: 1 << 30 }),
      index.remove('k1'),
      index.put({ ...index.get('k2')!, seq: index.nextSeq(), cost: 9 }, undefined, { ifSeq: k0.seq }),
      index.put(record(index, 'big', 1, -1, 200_100, { file: 'ab.cd' }), undefined, { newBytes: 204_800, segmentSize: 1 << 30 }),
      index.remove('nothing'),
    ]);
    expect(second.map((r) => r.applied)).toEqual([true, true, false, true, false]);
    expect(second[0]!.old?.seq).toBe(k0.seq);
    expect(second[1]!.old?.key).toBe('k1');
    s = index.shared.committedState();
    expect(s.v).toBe(2);
    expect({ entries: s.entries, liveBytes: s.liveBytes, fileBytes: s.fileBytes }).toEqual(recount(index));
    expect(s.entries).toBe(50);
    expect(s.liveBytes).toBe(costs - 1000 + 2000 - 1001 + 200_100);
    expect(s.fileBytes).toBe(Math.ceil(200_000 / FS_BLOCK) * FS_BLOCK);
    // A body file counts in its generation, not in a segment.
    expect(s.segBytes).toBe(FS_BLOCK + appended + 300);
    expect(s.headBytes).toBe(appended + 300 + 204_800);
    // What this process reads: the committed state and nothing in flight.
    expect(index.state.entries).toBe(50);
  });

  it('a generation marked evicted early in a batch refuses the bodies brought into it after, in the same batch', async () => {
    const { index } = await openIndex();
    await index.put(record(index, 'old', 3, 0, 1000), undefined, { newBytes: 400, segmentSize: 1 << 30 });
    const marked = index.shared.updateState((state) => void (state.evictedUpTo = 3));
    const into3 = index.put(record(index, 'late', 3, 400, 1000), undefined, { newBytes: 400, segmentSize: 1 << 30 });
    const into4 = index.put(record(index, 'next', 4, 0, 1000), undefined, { newBytes: 400, segmentSize: 1 << 30 });
    const forgotten = index.shared.forgetSegmentBytes(3);
    await marked;
    expect((await into3).applied).toBe(false);
    expect((await into4).applied).toBe(true);
    await forgotten;
    const s = index.shared.committedState();
    expect(s.evictedUpTo).toBe(3);
    expect(s.v).toBe(2);
    // Generation 3's segment is forgotten; generation 4's counted.
    expect(s.segBytes).toBe(FS_BLOCK + 400);
    expect(s.entries).toBe(2);
    expect(index.get('late')).toBeUndefined();
    expect(index.get('next')?.g).toBe(4);
  });

  it('counts a segment written and forgotten within one batch as gone', async () => {
    const { index } = await openIndex();
    const put = index.put(record(index, 'a', 2, 0, 1000), undefined, { newBytes: 700, segmentSize: 1 << 30 });
    const forgotten = index.shared.forgetSegmentBytes(2);
    const other = index.put(record(index, 'b', 5, 0, 1000), undefined, { newBytes: 100, segmentSize: 1 << 30 });
    await Promise.all([put, forgotten, other]);
    expect(index.shared.committedState().segBytes).toBe(FS_BLOCK + 100);
  });

  it('reads the state another writer committed, not the one it last wrote or read itself', async () => {
    const { index, path } = await openIndex();
    await index.put(record(index, 'a', 1, 0, 1000), undefined, { newBytes: 100, segmentSize: 1 << 30 });
    expect(index.shared.committedState()).toMatchObject({ entries: 1, liveBytes: 1000, v: 1 });
    const other = DiskIndex.open({ path, readOnly: false, pathOf: (key) => key });
    cleanups.push(() => other.close());
    expect(other.shared.committedState()).toMatchObject({ entries: 1, liveBytes: 1000, v: 1 });
    await other.put(record(other, 'b', 1, 100, 2000), undefined, { newBytes: 100, segmentSize: 1 << 30 });
    await other.shared.updateState((state) => void (state.writers = [5]));
    const seen = index.shared.committedState();
    expect(seen).toMatchObject({ entries: 2, liveBytes: 3000, v: 2, writers: [5], segBytes: FS_BLOCK + 200 });
    // What is handed out is a copy: changing it changes nothing of what is read next.
    seen.writers!.push(6);
    seen.entries = 99;
    expect(index.shared.committedState()).toMatchObject({ entries: 2, writers: [5] });
    await index.put(record(index, 'c', 1, 200, 500), undefined, { newBytes: 100, segmentSize: 1 << 30 });
    expect(other.shared.committedState()).toMatchObject({ entries: 3, liveBytes: 3500, v: 3, writers: [5], segBytes: FS_BLOCK + 300 });
  });

  it('begins no transaction while held: a hold waits for the one in flight, changes issued meanwhile commit as one batch at the release', async () => {
    const { index } = await openIndex();
    const first = index.put(record(index, 'a', 1, 0, 1000), undefined, { newBytes: 100, segmentSize: 1 << 30 });
    const release = await index.shared.hold(60_000);
    // The change in flight when the hold was asked is committed by the time it is in force.
    expect(index.shared.committedState()).toMatchObject({ entries: 1, v: 1 });
    expect((await first).applied).toBe(true);
    let done = 0;
    const held = ['b', 'c'].map((k, i) => index.put(record(index, k, 1, 100 * (i + 1), 1000), undefined, { newBytes: 100, segmentSize: 1 << 30 }).then((r) => ((done += 1), r)));
    // Seen here at once (pending), committed nowhere.
    expect(index.get('b')?.key).toBe('b');
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(0);
    expect(index.shared.committedState()).toMatchObject({ entries: 1, v: 1 });
    release();
    release(); // twice: the second does nothing
    expect((await Promise.all(held)).map((r) => r.applied)).toEqual([true, true]);
    expect(index.shared.committedState()).toMatchObject({ entries: 3, v: 2 });
  });
  it('lists keys by prefix among writes not yet committed as among committed ones, removals left out', async () => {
    const { index } = await openIndex();
    await index.put(record(index, 'h/a\u0000accept=webp', 1, 0, 1000));
    await index.put(record(index, 'h/gone\u0000x', 1, 1000, 1000));
    // Issued, not awaited: pending until the next transaction commits.
    const issued = [
      index.put(record(index, 'h/a', 1, 2000, 1000)),
      index.put(record(index, 'h/a\u0000accept=avif', 1, 3000, 1000)),
      index.put(record(index, 'h/b\u0000', 1, 4000, 1000)),
      index.put(record(index, 'h/', 1, 5000, 1000)),
      index.remove('h/gone\u0000x'),
    ];
    expect(index.pendingCount).toBe(5);
    expect(index.keysWithPrefix('h/a\u0000').sort()).toEqual(['h/a\u0000accept=avif', 'h/a\u0000accept=webp']);
    expect(index.keysWithPrefix('h/a\u0000', 1)).toHaveLength(1);
    expect(index.keysWithPrefix('h/b\u0000')).toEqual(['h/b\u0000']);
    expect(index.keysWithPrefix('h/gone')).toEqual([]);
    expect(index.keysWithPrefix('h/').sort()).toEqual(['h/', 'h/a', 'h/a\u0000accept=avif', 'h/a\u0000accept=webp', 'h/b\u0000']);
    expect(index.keysWithPrefix('').sort()).toEqual(['h/', 'h/a', 'h/a\u0000accept=avif', 'h/a\u0000accept=webp', 'h/b\u0000']);
    expect(index.keysWithPrefix('h/ab')).toEqual([]);
    await Promise.all(issued);
    expect(index.pendingCount).toBe(0);
    expect(index.keysWithPrefix('h/a\u0000').sort()).toEqual(['h/a\u0000accept=avif', 'h/a\u0000accept=webp']);
  });
});
