import { describe, expect, it } from 'vitest';
import { GenerationMap } from '../../src/generation-map.js';

describe('GenerationMap', () => {
  it('keeps the newest generation whole, brings used entries along, and holds at most two generations', () => {
    const map = new GenerationMap<string, number>(3);
    for (const [i, k] of ['a', 'b', 'c'].entries()) map.set(k, i);
    map.set('d', 3); // a, b, c become the older generation
    expect(map.get('a')).toBe(0); // brought into the newer one (d, a)
    map.set('e', 4); // d, a, e: full
    map.set('f', 5); // b, c dropped; older: d, a, e; newer: f
    expect(map.get('b')).toBeUndefined();
    expect(map.get('c')).toBeUndefined();
    expect([...map.keys()].sort()).toEqual(['a', 'd', 'e', 'f']);
    map.set('f', 6);
    expect(map.get('f')).toBe(6);
    map.delete('a');
    expect(map.get('a')).toBeUndefined();
    expect([...map.keys()].sort()).toEqual(['d', 'e', 'f']);
  });

  it('refuses an unbounded configuration', () => {
    expect(() => new GenerationMap(0)).toThrow(RangeError);
    expect(() => new GenerationMap(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});
