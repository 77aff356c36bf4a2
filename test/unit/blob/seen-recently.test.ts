import { describe, expect, it } from 'vitest';
import { recencyHash } from '../../../src/blob/disk-recency.js';
import { SeenRecently } from '../../../src/blob/seen-recently.js';

describe('SeenRecently', () => {
  it('answers false the first time a key is asked about and true from then on while its slot is its own', () => {
    const seen = new SeenRecently();
    const h = recencyHash('cdn.example/p/1.png');
    expect(seen.seenBefore(h)).toBe(false);
    expect(seen.seenBefore(h)).toBe(true);
    expect(seen.seenBefore(h)).toBe(true);
    expect(seen.seenBefore(recencyHash('cdn.example/p/2.png'))).toBe(false);
    expect(seen.seenBefore(h)).toBe(true);
  });

  it('keeps a mark per key in a table large enough for them (2 Mi slots, 1,000 keys: no shared slot here)', () => {
    const seen = new SeenRecently(2 ** 21);
    const hashes = Array.from({ length: 1000 }, (_, i) => recencyHash(`cdn.example/p/${i}.png`));
    expect(hashes.filter((h) => seen.seenBefore(h))).toEqual([]);
    expect(hashes.every((h) => seen.seenBefore(h))).toBe(true);
  });

  it('forgets a key once another takes its slot, and asks again', () => {
    const seen = new SeenRecently(2);
    // 2 and 4 both fall in slot 0 of two.
    expect(seen.seenBefore(2)).toBe(false);
    expect(seen.seenBefore(4)).toBe(false);
    expect(seen.seenBefore(2)).toBe(false);
    expect(seen.seenBefore(2)).toBe(true);
    // 1 falls in slot 1: the mark in slot 0 stays.
    expect(seen.seenBefore(1)).toBe(false);
    expect(seen.seenBefore(2)).toBe(true);
  });

  it('forgets by itself: "lately" is within about the table size in distinct keys', () => {
    const seen = new SeenRecently(2 ** 10);
    const first = recencyHash('first');
    seen.seenBefore(first);
    for (let i = 0; i < 100; i++) seen.seenBefore(recencyHash(`k${i}`));
    const kept = seen.seenBefore(first); // 100 keys in 1,024 slots: most likely still there
    for (let i = 0; i < 50_000; i++) seen.seenBefore(recencyHash(`k${i}`));
    expect(kept).toBe(true);
    expect(seen.seenBefore(first)).toBe(false);
  });

  it('takes the hash 0 like any other, and refuses a table that is not a power of two', () => {
    const seen = new SeenRecently(8);
    expect(seen.seenBefore(0)).toBe(false);
    expect(seen.seenBefore(0)).toBe(true);
    for (const slots of [0, 1, 3, 1000, 2.5]) expect(() => new SeenRecently(slots)).toThrow(RangeError);
  });
});
