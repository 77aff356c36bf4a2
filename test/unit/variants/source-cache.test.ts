/** The source cache: byte bound, LRU order, oversize sources, shared in-flight reads, failures not kept. */
import { describe, expect, it } from 'vitest';
import type { AssetMeta } from '../../../origin/store/asset-store.js';
import { createSourceCache } from '../../../origin/variants/source-cache.js';

function metaOf(sha: string, size: number): AssetMeta {
  return { version: 1, path: `p/${sha.slice(0, 4)}.jpg`, contentType: 'image/jpeg', size, sha256: sha, etag: `"${sha.slice(0, 32)}"`, lastModified: 0, tags: [] };
}

const A = metaOf('a'.repeat(64), 40);
const B = metaOf('b'.repeat(64), 40);
const C = metaOf('c'.repeat(64), 40);

/** A store holding 40-byte sources; counts reads by hash; `fail` makes the next read of a hash throw. */
function storeOf(...metas: AssetMeta[]) {
  const bytes = new Map(metas.map((m) => [m.sha256, Buffer.alloc(m.size, m.sha256.charCodeAt(0))]));
  const reads: string[] = [];
  const failing = new Set<string>();
  let release: (() => void) | undefined;
  let held: Promise<void> | undefined;
  return {
    reads,
    fail: (meta: AssetMeta) => failing.add(meta.sha256),
    hold() {
      held = new Promise<void>((done) => (release = done));
    },
    release: () => release?.(),
    async readVersion(meta: AssetMeta): Promise<Buffer | undefined> {
      reads.push(meta.sha256[0]!);
      await held;
      if (failing.delete(meta.sha256)) throw new Error('EIO');
      return bytes.get(meta.sha256);
    },
  };
}

describe('createSourceCache', () => {
  it('keeps sources up to the byte bound and evicts the least recently used', async () => {
    const store = storeOf(A, B, C);
    const cache = createSourceCache({ store, maxBytes: 100 });
    expect((await cache.read(A))?.equals(Buffer.alloc(40, 'a'))).toBe(true);
    await cache.read(B);
    await cache.read(A); // A is now the most recently used
    await cache.read(C); // 120 bytes > 100: B goes
    expect(cache.size).toBe(80);
    await cache.read(A);
    await cache.read(C);
    expect(store.reads.join('')).toBe('abc');
    await cache.read(B);
    expect(store.reads.join('')).toBe('abcb');
  });

  it('never keeps a source larger than the bound, and keeps one exactly at it', async () => {
    const store = storeOf(A, B);
    const small = createSourceCache({ store, maxBytes: 39 });
    await small.read(A);
    await small.read(A);
    expect([store.reads.join(''), small.size]).toEqual(['aa', 0]);
    const exact = createSourceCache({ store, maxBytes: 40 });
    await exact.read(B);
    await exact.read(B);
    expect([store.reads.join(''), exact.size]).toEqual(['aab', 40]);
  });

  it('keeps nothing with a bound of 0', async () => {
    const store = storeOf(A);
    const cache = createSourceCache({ store, maxBytes: 0 });
    await cache.read(A);
    await cache.read(A);
    expect([store.reads.join(''), cache.size]).toEqual(['aa', 0]);
  });

  it('shares one store read among concurrent readers, even with a bound of 0', async () => {
    for (const maxBytes of [0, 100]) {
      const store = storeOf(A);
      const cache = createSourceCache({ store, maxBytes });
      store.hold();
      const readers = Promise.all([cache.read(A), cache.read(A), cache.read(A)]);
      store.release();
      const [one, two, three] = await readers;
      expect(store.reads).toEqual(['a']);
      expect(one).toBe(two);
      expect(two).toBe(three);
    }
  });

  it('keeps neither a failed read nor a missing version: the next read asks the store again', async () => {
    const store = storeOf(A);
    const cache = createSourceCache({ store, maxBytes: 100 });
    store.fail(A);
    await expect(cache.read(A)).rejects.toThrow('EIO');
    expect(await cache.read(B)).toBeUndefined();
    expect((await cache.read(A))?.length).toBe(40);
    expect(await cache.read(B)).toBeUndefined();
    expect(store.reads.join('')).toBe('abab');
    expect(cache.size).toBe(40);
  });

  it.each([-1, 1.5, Number.POSITIVE_INFINITY, Number.NaN])('refuses the bound %s', (maxBytes) => {
    expect(() => createSourceCache({ store: storeOf(), maxBytes })).toThrow(RangeError);
  });
});
