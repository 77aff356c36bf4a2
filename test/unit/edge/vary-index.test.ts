import { describe, expect, it } from 'vitest';
import { CODING_SEPARATOR, VARY_SEPARATOR } from '../../../edge/cache-keys.js';
import { VaryIndex } from '../../../edge/vary-index.js';

describe('VaryIndex over an indexed store', () => {
  it('caches the lookups of the last 50,000 primaries used, and never more than 100,000', () => {
    const asked: string[] = [];
    const index = new VaryIndex({
      keys: () => [],
      keysWithPrefix: (prefix) => {
        asked.push(prefix);
        return prefix === `h/0${VARY_SEPARATOR}` ? [`h/0${VARY_SEPARATOR}accept=image/webp`] : [];
      },
    });
    for (let i = 0; i < 100_000; i++) index.fields(`h/${i}`);
    expect(asked).toHaveLength(100_000);
    // Two generations of 50,000: all of them are cached still.
    expect(index.fields('h/99999')).toBeUndefined();
    expect(index.fields('h/50000')).toBeUndefined();
    expect(index.fields('h/0')).toEqual(['accept']);
    expect(asked).toHaveLength(100_000);
    // h/0, used from the older generation, was brought into a new one (the older one is now h/50000 … h/99999).
    for (let i = 100_000; i < 149_999; i++) index.fields(`h/${i}`);
    const before = asked.length;
    expect(before).toBe(149_999);
    // The newer generation is full (h/0, h/100000 … h/149998): the next lookup drops h/1 … h/99999 whole.
    index.fields('h/1');
    expect(asked).toHaveLength(before + 1);
    expect(asked.at(-1)).toBe(`h/1${VARY_SEPARATOR}`);
    index.fields('h/50001');
    expect(asked).toHaveLength(before + 2);
    expect(index.fields('h/0')).toEqual(['accept']);
    index.fields('h/149998');
    expect(asked).toHaveLength(before + 2);
  });

  it('lists the keys this process stored for a URL with the store’s, each once', () => {
    const onDisk = [`h/p`, `h/p${CODING_SEPARATOR}br`, `h/pq`];
    const index = new VaryIndex({ keys: () => [], keysWithPrefix: (prefix) => onDisk.filter((k) => k.startsWith(prefix)) });
    index.add('h/p');
    expect(index.keysFor('h/p').sort()).toEqual(['h/p', `h/p${CODING_SEPARATOR}br`]);
    index.add(`h/p${VARY_SEPARATOR}accept=webp`);
    index.add(`h/p${VARY_SEPARATOR}accept=webp`);
    expect(index.keysFor('h/p').sort()).toEqual(['h/p', `h/p${VARY_SEPARATOR}accept=webp`, `h/p${CODING_SEPARATOR}br`].sort());
    expect(index.fields('h/p')).toEqual(['accept']);
    index.remove(`h/p${VARY_SEPARATOR}accept=webp`);
    index.remove('h/p');
    expect([...index.primaries()]).toEqual([]);
    expect(index.keysFor('h/p').sort()).toEqual(['h/p', `h/p${CODING_SEPARATOR}br`]);
  });
});

describe('VaryIndex over a store without an index', () => {
  it('keeps every key, one or several per URL, until each is removed', () => {
    const index = VaryIndex.fromKeys(['h/a', `h/b${VARY_SEPARATOR}accept=avif`, `h/b${VARY_SEPARATOR}accept=webp`, `h/c${CODING_SEPARATOR}gzip`, 'h/c']);
    expect([...index.primaries()].sort()).toEqual(['h/a', 'h/b', 'h/c']);
    expect(index.keysFor('h/a')).toEqual(['h/a']);
    expect(index.keysFor('h/b').sort()).toEqual([`h/b${VARY_SEPARATOR}accept=avif`, `h/b${VARY_SEPARATOR}accept=webp`]);
    expect(index.fields('h/b')).toEqual(['accept']);
    expect(index.fields('h/a')).toBeUndefined();
    index.remove('h/a');
    index.remove('h/a');
    expect(index.keysFor('h/a')).toEqual([]);
    index.remove(`h/b${VARY_SEPARATOR}accept=avif`);
    expect(index.fields('h/b')).toEqual(['accept']);
    index.remove(`h/b${VARY_SEPARATOR}accept=webp`);
    expect(index.fields('h/b')).toBeUndefined();
    index.remove('h/c');
    expect(index.keysFor('h/c')).toEqual([`h/c${CODING_SEPARATOR}gzip`]);
    expect([...index.primaries()]).toEqual(['h/c']);
  });
});
