import { describe, expect, it } from 'vitest';
import { DiskIndex, type IndexRecord } from '../../../src/blob/disk-index.js';
import { KeyedLock } from '../../../src/blob/keyed-lock.js';

const rec = (key: string, size: number, gen = '0000000000000000'): IndexRecord => ({ key, hash: key, gen, size, recordBytes: 10 });

describe('DiskIndex', () => {
  it('tracks bytes and evicts least recently used first, never the key being committed', () => {
    const index = new DiskIndex();
    for (const k of ['a', 'b', 'c', 'd']) index.set(rec(k, 90));
    expect(index.bytes).toBe(400);
    index.touch('a');
    expect(index.keys()).toEqual(['b', 'c', 'd', 'a']);
    expect(index.evictFor(0, 400)).toEqual([]);
    const victims = index.evictFor(150, 400, 'b');
    expect(victims.map((v) => v.key)).toEqual(['c', 'd']);
    expect(index.keys()).toEqual(['b', 'a']);
    expect(index.bytes).toBe(200);
  });

  it('moves a used key only when it is not among the newest quarter already', () => {
    const index = new DiskIndex();
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'];
    for (const k of keys) index.set(rec(k, 10));
    for (const k of ['k7', 'k6', 'k5']) expect(index.touch(k)?.key).toBe(k);
    expect(index.keys()).toEqual(keys);
    index.touch('k4');
    index.touch('k0');
    expect(index.keys()).toEqual(['k1', 'k2', 'k3', 'k5', 'k6', 'k7', 'k4', 'k0']);
    expect(index.evictFor(0, 120).map((v) => v.key)).toEqual(['k1', 'k2']);
  });

  it('replaces a key as most recent, keeps recency on a metadata refresh, removes by generation', () => {
    const index = new DiskIndex();
    index.set(rec('a', 10, 'g1'));
    index.set(rec('b', 10));
    expect(index.set(rec('a', 50, 'g2'))?.gen).toBe('g1');
    expect(index.keys()).toEqual(['b', 'a']);
    expect(index.bytes).toBe(80);
    index.replace({ ...rec('b', 10), recordBytes: 30 });
    expect(index.keys()).toEqual(['b', 'a']);
    expect(index.bytes).toBe(100);
    expect(index.remove('a', 'g1')).toBeUndefined();
    expect(index.remove('a', 'g2')?.size).toBe(50);
    expect(index.count).toBe(1);
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
