import { describe, expect, it } from 'vitest';
import { recencyHash } from '../../../src/blob/disk-recency.js';
import { MAX_READ_HASHES, ReadHashes, readHashesOf } from '../../../src/blob/read-hashes.js';

const keys = Array.from({ length: 10_000 }, (_, i) => `cdn.example/img/${i}.jpg`);

describe('recencyHash', () => {
  it('is FNV-1a over the UTF-16 code units, as an unsigned 32-bit integer', () => {
    expect(recencyHash('')).toBe(0x811c9dc5);
    expect(recencyHash('a')).toBe(0xe40c292c);
    expect(recencyHash('foobar')).toBe(0xbf9cf968);
  });
});

describe('ReadHashes', () => {
  it('sends the hashes of the keys read, each key once per batch, when flushed', () => {
    const sent: number[][] = [];
    const reads = new ReadHashes((h) => sent.push(h));
    for (const k of ['a', 'b', 'a', 'a', 'c', 'b']) reads.note(k);
    expect(sent).toEqual([]);
    reads.flush();
    expect(sent).toEqual([[recencyHash('a'), recencyHash('b'), recencyHash('c')]]);
    // A new batch sends a key again: the owner notes it with its newest generation.
    reads.note('a');
    reads.flush();
    reads.flush(); // nothing batched: nothing sent
    expect(sent).toEqual([[recencyHash('a'), recencyHash('b'), recencyHash('c')], [recencyHash('a')]]);
  });

  it('takes a read by its hash as by its key', () => {
    const sent: number[][] = [];
    const reads = new ReadHashes((h) => sent.push(h));
    reads.noteHash(recencyHash('a'));
    reads.note('a');
    reads.noteHash(recencyHash('b'));
    reads.flush();
    expect(sent).toEqual([[recencyHash('a'), recencyHash('b')]]);
  });

  it(`sends a batch as soon as it holds ${MAX_READ_HASHES} hashes, never more in one`, () => {
    const sent: number[][] = [];
    const reads = new ReadHashes((h) => sent.push(h));
    for (const k of keys) reads.note(k);
    const counted = sent.map((b) => b.length);
    expect(counted.length).toBeGreaterThanOrEqual(2);
    for (const n of counted) expect(n).toBe(MAX_READ_HASHES);
    reads.flush();
    // Every key read is in some batch (distinct keys are never dropped, only repeats within a batch).
    const all = new Set(sent.flat());
    for (const k of keys) expect(all.has(recencyHash(k))).toBe(true);
    expect(sent.flat()).toHaveLength(keys.length);
  });
});

describe('readHashesOf', () => {
  it.each([
    ['a batch', [0, 1, 0xffffffff], [0, 1, 0xffffffff]],
    ['an empty batch', [], []],
    ['a full batch', Array.from({ length: MAX_READ_HASHES }, (_, i) => i), Array.from({ length: MAX_READ_HASHES }, (_, i) => i)],
    ['too many', Array.from({ length: MAX_READ_HASHES + 1 }, (_, i) => i), undefined],
    ['not an array', { 0: 1, length: 1 }, undefined],
    ['a string', '1,2', undefined],
    ['a negative number', [1, -1], undefined],
    ['above 32 bits', [2 ** 32], undefined],
    ['a fraction', [1.5], undefined],
    ['NaN', [Number.NaN], undefined],
    ['a numeric string', ['7'], undefined],
    ['null', null, undefined],
  ])('%s', (_name, value, expected) => {
    expect(readHashesOf(value)).toEqual(expected);
  });
});
