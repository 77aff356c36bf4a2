/**
 * An operation of a disk index batch that throws partway leaves nothing behind
 * (disk-index-state.ts runOp): neither the writes it made before throwing (a record without its
 * counters or list entries, a replaced record's list entries removed) nor its changes to the
 * batch's state and segment counts, nor its estimate in what this process reads; the other
 * operations of its batch commit.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskIndex, type Applied } from '../../../src/blob/disk-index.js';
import { FS_BLOCK } from '../../../src/blob/disk-layout.js';
import { recount, testRecord as record } from '../../support/index-records.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An index whose pathOf throws for the key `unlisted` (as a bug in it would). */
async function openIndex(): Promise<DiskIndex> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-index-failure-'));
  const pathOf = (key: string): string => {
    if (key === 'unlisted') throw new Error('no path for unlisted');
    return key;
  };
  const index = DiskIndex.open({ path: join(dir, 'index.mdb'), readOnly: false, pathOf });
  cleanups.push(async () => {
    await index.close().catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return index;
}

const counters = (s: { entries: number; liveBytes: number; fileBytes: number }) => ({ entries: s.entries, liveBytes: s.liveBytes, fileBytes: s.fileBytes });
const packed = { segmentSize: 1 << 30 };

describe('a disk index operation that throws partway', () => {
  it('a new record written before its path list entry failed is not committed; the rest of its batch is', async () => {
    const index = await openIndex();
    const first = record(index, 'a', 1, 0, 900);
    expect((await index.put(first, undefined, { newBytes: 400, ...packed })).applied).toBe(true);
    // A replacement before the failures: what it replaced is the record committed before, once.
    const a = index.put(record(index, 'a', 1, 400, 1000), undefined, { newBytes: 100, ...packed });
    // Its record and generation entry are written, then its path is asked for, and throws.
    const unlisted = index.put(record(index, 'unlisted', 1, 500, 3000), undefined, { newBytes: 700, ...packed });
    const c = index.put(record(index, 'c', 1, 1200, 2000), undefined, { newBytes: 300, ...packed });
    // A second failure in the same batch: a size is a whole number of bytes.
    const odd = index.put({ ...record(index, 'odd', 1, 1500, 1000), cost: 0.5 }, undefined, { newBytes: 100, ...packed });
    await expect(unlisted).rejects.toThrow('no path for unlisted');
    await expect(odd).rejects.toThrow(RangeError);
    expect(await a).toMatchObject({ applied: true, old: { seq: first.seq, cost: 900 } });
    expect((await c).applied).toBe(true);

    expect(index.get('unlisted')).toBeUndefined();
    expect(index.get('odd')).toBeUndefined();
    expect(index.generation(1).map((r) => r.key).sort()).toEqual(['a', 'c']);
    expect(index.keysByRecency()).toEqual(['a', 'c']);
    const s = index.shared.committedState();
    expect(counters(s)).toEqual({ entries: 2, liveBytes: 3000, fileBytes: 0 });
    expect(counters(s)).toEqual(recount(index));
    expect(s.segBytes).toBe(FS_BLOCK + 400 + 100 + 300);
    expect(s.headBytes).toBe(800);
    expect(s.v).toBe(2);
    // What this process reads: the committed state, the failed changes' estimates not in it.
    expect(counters(index.state)).toEqual({ entries: 2, liveBytes: 3000, fileBytes: 0 });
    expect(index.state.segBytes).toBe(FS_BLOCK + 800);
  });

  it('a replacement that does not encode leaves the old record with its generation, tag and body file entries', async () => {
    const index = await openIndex();
    const old = record(index, 'x', 1, -1, 20_100, { file: 'ab.cd', tags: ['t1', 't2'] });
    expect((await index.put(old, undefined, { newBytes: 20_480, ...packed })).applied).toBe(true);
    const before = index.shared.committedState();

    // Its old generation entry, tag t1 and body file are removed before its record is encoded,
    // which fails: a cost is a whole number of bytes.
    const bad = { ...record(index, 'x', 2, -1, 30_100, { file: 'ef.gh', tags: ['t2'] }), cost: 30_100.5 };
    const replaced = index.put(bad, undefined, { newBytes: 32_768, ...packed });
    const y = index.put(record(index, 'y', 2, 0, 1000, { tags: ['t1'] }), undefined, { newBytes: 400, ...packed });
    await expect(replaced).rejects.toThrow(RangeError);
    expect((await y).applied).toBe(true);

    expect(index.get('x')?.seq).toBe(old.seq);
    expect(index.generation(1).map((r) => r.key)).toEqual(['x']);
    expect(index.generation(2).map((r) => r.key)).toEqual(['y']);
    expect(index.keysWithTag('t1').sort()).toEqual(['x', 'y']);
    expect(index.keysWithTag('t2')).toEqual(['x']);
    expect(index.byFile('ab.cd')?.key).toBe('x');
    expect(index.byFile('ef.gh')).toBeUndefined();
    const s = index.shared.committedState();
    expect(counters(s)).toEqual(recount(index));
    expect(counters(s)).toEqual({ entries: 2, liveBytes: 21_100, fileBytes: 20_480 });
    // Only y's bytes were brought in: into generation 2, which became the head.
    expect(s.segBytes).toBe(FS_BLOCK + 400);
    expect({ head: s.head, headBytes: s.headBytes }).toEqual({ head: 2, headBytes: 400 });
    expect(s.v).toBe((before.v ?? 0) + 1);
    expect(counters(index.state)).toEqual(counters(s));
  });

  it("an operation's changes to the batch's state and segment counts are undone when it throws after them", async () => {
    const index = await openIndex();
    const a = index.put(record(index, 'a', 1, 0, 1000), undefined, { newBytes: 500, ...packed });
    const halfway = index.shared.inTransaction((state) => {
      // Bytes into generation 1 and a new head, then a throw.
      index.shared.countNewBytes(state, record(index, 'ghost', 1, 500, 5000), 4000, 4200);
      state.evictedUpTo = 7;
      throw new Error('halfway');
    });
    const writers = index.shared.updateState((state) => {
      state.writers = [9];
      throw new Error('no writers');
    });
    const b = index.put(record(index, 'b', 1, 500, 2000), undefined, { newBytes: 300, ...packed });
    await expect(halfway).rejects.toThrow('halfway');
    await expect(writers).rejects.toThrow('no writers');
    expect((await a).applied).toBe(true);
    expect((await b).applied).toBe(true);

    const s = index.shared.committedState();
    expect(s.evictedUpTo).toBeUndefined();
    expect(s.writers).toBeUndefined();
    expect({ head: s.head, headBytes: s.headBytes }).toEqual({ head: 1, headBytes: 800 });
    // One segment, generation 1's: a's and b's bytes (and one block for its rounding), not the ghost's.
    expect(s.segBytes).toBe(FS_BLOCK + 800);
    expect(counters(s)).toEqual({ entries: 2, liveBytes: 3000, fileBytes: 0 });

    // The next batch counts on from what was committed, not from the failed operation's count.
    await index.put(record(index, 'c', 1, 800, 1000), undefined, { newBytes: 100, ...packed });
    expect(index.shared.committedState().segBytes).toBe(FS_BLOCK + 900);
  });

  it('a bulk load runs as one batch in its synchronous transaction, committed when it returns; one that throws leaves nothing', async () => {
    const index = await openIndex();
    const puts: Promise<Applied>[] = [];
    index.batch(() => {
      ['a', 'unlisted', 'b'].forEach((key, i) => puts.push(index.put(record(index, key, 1, 100 * i, 1000), undefined, { newBytes: 100, ...packed })));
    });
    // Committed already, the state written once.
    expect(index.shared.committedState()).toMatchObject({ entries: 2, liveBytes: 2000, segBytes: FS_BLOCK + 200, v: 1 });
    const results = await Promise.allSettled(puts);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(index.get('unlisted')).toBeUndefined();
    expect(counters(index.shared.committedState())).toEqual(recount(index));
    expect(counters(index.state)).toEqual({ entries: 2, liveBytes: 2000, fileBytes: 0 });
  });
});
