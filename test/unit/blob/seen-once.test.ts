import { describe, expect, it } from 'vitest';
import { recencyHash } from '../../../src/blob/disk-recency.js';
import { SeenOnce } from '../../../src/blob/seen-once.js';

describe('SeenOnce', () => {
  it('answers false the first time a key is asked about and true after, for each key apart', () => {
    const seen = new SeenOnce();
    const keys = Array.from({ length: 1000 }, (_, i) => `cdn.example/p/${i}.png`);
    expect(keys.map((k) => seen.seenBefore(k)).filter(Boolean).length).toBeLessThanOrEqual(1); // a rare shared pair of bits
    expect(keys.every((k) => seen.seenBefore(k))).toBe(true);
    expect(keys.every((k) => seen.has(k))).toBe(true);
  });

  it('forgets everything once a quarter of its bits are used, so "seen" means recently', () => {
    const seen = new SeenOnce();
    seen.add('first');
    expect(seen.has('first')).toBe(true);
    for (let i = 0; i < 2 ** 19; i++) seen.add(`k${i}`);
    expect(seen.has('first')).toBe(false);
    expect(seen.has(`k${2 ** 19 - 1}`)).toBe(true);
  });

  it('takes a key or its recencyHash alike (a hit hashes its key once for every use)', () => {
    const seen = new SeenOnce();
    seen.addHash(recencyHash('cdn.example/a.png'));
    expect(seen.has('cdn.example/a.png')).toBe(true);
    expect(seen.hasHash(recencyHash('cdn.example/b.png'))).toBe(false);
    seen.add('cdn.example/b.png');
    expect(seen.hasHash(recencyHash('cdn.example/b.png'))).toBe(true);
    expect(seen.seenBefore('cdn.example/a.png')).toBe(true);
  });
});
