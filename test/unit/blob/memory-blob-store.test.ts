import { describe, expect, it } from 'vitest';
import { MemoryBlobStore } from '../../../src/blob/memory-blob-store.js';
import { blobStoreContract, commitMeta, expectBody, pattern, sha256 } from '../../contract/blob-store-contract.js';
import { isCdnError } from '../../../src/errors.js';

blobStoreContract('memory', async (limits) => {
  const store = new MemoryBlobStore(limits);
  return { store, cleanup: () => store.close() };
});

// A memory tier without its key lists (as under a tiered store) still answers purges by path and tag, by a visit of every object.
blobStoreContract('memory without key lists', async (limits) => {
  const store = new MemoryBlobStore({ ...limits, keyLists: false });
  return { store, cleanup: () => store.close() };
});

function configErrorField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isCdnError(err) && err.code === 'invalid_config' ? err.field : `unexpected ${String(err)}`;
  }
  return undefined;
}

describe('MemoryBlobStore', () => {
  it('refuses an unbounded configuration, naming the option', () => {
    expect(configErrorField(() => new MemoryBlobStore({ maxEntrySize: 10 } as never))).toBe('maxBytes');
    expect(configErrorField(() => new MemoryBlobStore({ maxBytes: 100 } as never))).toBe('maxEntrySize');
    expect(configErrorField(() => new MemoryBlobStore({ maxBytes: 0, maxEntrySize: 0 }))).toBe('maxBytes');
    expect(configErrorField(() => new MemoryBlobStore({ maxBytes: 100, maxEntrySize: 101 }))).toBe('maxEntrySize');
    expect(configErrorField(() => new MemoryBlobStore({ maxBytes: 100, maxEntrySize: 100 }))).toBeUndefined();
  });

  it('counts metadata in the size, so many tiny entries cannot exceed maxBytes', async () => {
    const store = new MemoryBlobStore({ maxBytes: 64 * 1024, maxEntrySize: 8 * 1024 });
    for (let i = 0; i < 500; i++) {
      const w = (await store.begin(`k${i}`))!;
      await w.write(pattern(1, i + 1));
      await w.commit(commitMeta(`k${i}`, 1));
    }
    const { entries, bytes, maxBytes, evictions } = store.stats();
    expect(bytes).toBeLessThanOrEqual(maxBytes);
    expect(entries).toBeLessThan(100);
    expect(entries + evictions).toBe(500);
  });

  it('put() inserts a finished object and peek() reads it without counting a use', async () => {
    const store = new MemoryBlobStore({ maxBytes: 3000, maxEntrySize: 1500 });
    const meta = { ...commitMeta('a', 500), headers: [], tags: [], version: 1, sha256: sha256(pattern(500)) };
    expect(store.put(meta, pattern(500))).toBe(true);
    expect(store.put({ ...meta, key: 'b' }, pattern(500, 2))).toBe(true);
    expect(store.peek('a')?.meta.key).toBe('a'); // a stays least recently used
    expect(store.put({ ...meta, key: 'c' }, pattern(500, 3))).toBe(true);
    expect(store.put({ ...meta, key: 'd' }, pattern(500, 4))).toBe(true);
    expect(store.peek('a')).toBeUndefined();
    expect(store.put({ ...meta, key: 'big' }, pattern(1500))).toBe(false);
    await expectBody(store, 'b', pattern(500, 2));
  });

  it('tells its drop listeners of each object it evicts, and of nothing deleted or replaced', async () => {
    const store = new MemoryBlobStore({ maxBytes: 3000, maxEntrySize: 1500 });
    const dropped: string[] = [];
    const unsubscribe = store.onDrop((key, reason) => dropped.push(`${key} ${reason}`));
    const meta = { ...commitMeta('a', 500), headers: [], tags: [], version: 1, sha256: sha256(pattern(500)) };
    for (const key of ['a', 'b', 'c']) store.put({ ...meta, key }, pattern(500));
    store.put({ ...meta, key: 'b' }, pattern(500)); // replaced: not a drop
    await store.delete('c'); // deleted: not a drop
    // Three objects fit (bodies and metadata): d, e and f push out the two left, oldest first.
    for (const key of ['d', 'e', 'f']) store.put({ ...meta, key }, pattern(500));
    expect(dropped).toEqual(['a evicted', 'b evicted']);
    unsubscribe();
    store.put({ ...meta, key: 'g' }, pattern(500));
    expect(store.peek('d')).toBeUndefined();
    expect(dropped).toEqual(['a evicted', 'b evicted']);
  });
});
