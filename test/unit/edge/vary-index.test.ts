import { describe, expect, it } from 'vitest';
import { VARY_SEPARATOR } from '../../../edge/cache-keys.js';
import { VaryIndex } from '../../../edge/vary-index.js';

describe('VaryIndex over an indexed store', () => {
  it('caches the lookups of 100,000 primaries, and no more', () => {
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
    // All still cached: no lookup goes to the store again.
    expect(index.fields('h/99999')).toBeUndefined();
    expect(asked).toHaveLength(100_000);
    // One more primary drops the least recently used (h/1; h/99999 was just used, h/0 is used now).
    expect(index.fields('h/0')).toEqual(['accept']);
    index.fields('h/100000');
    expect(asked).toHaveLength(100_001);
    index.fields('h/1');
    expect(asked).toHaveLength(100_002);
    expect(asked.at(-1)).toBe(`h/1${VARY_SEPARATOR}`);
  });
});
