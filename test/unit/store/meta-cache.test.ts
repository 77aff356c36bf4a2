/** The metadata cache: hits, absent paths, bounds, and reads that overlap writes are never kept. */
import { describe, expect, it } from 'vitest';
import type { AssetMeta } from '../../../origin/store/asset-store.js';
import { MetaCache } from '../../../origin/store/meta-cache.js';

function metaOf(path: string, sha = 'a'.repeat(64)): AssetMeta {
  return { version: 1, path, contentType: 'image/png', size: 1, sha256: sha, etag: `"${sha.slice(0, 32)}"`, lastModified: 0, tags: ['t'] };
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => (resolve = res));
  return { promise, resolve };
}

/** A disk stand-in: the metadata of each path, and how often each was read. */
function diskOf(...metas: AssetMeta[]) {
  const files = new Map(metas.map((m) => [m.path, m]));
  const reads: string[] = [];
  return {
    files,
    reads,
    reader: (path: string) => async () => {
      reads.push(path);
      const found = files.get(path);
      return found === undefined ? undefined : { ...found, tags: [...found.tags] };
    },
  };
}

describe('MetaCache', () => {
  it('answers a path read before from memory, with a frozen record', async () => {
    const disk = diskOf(metaOf('a.png'));
    const cache = new MetaCache(10);
    const first = await cache.read('a.png', disk.reader('a.png'));
    const second = await cache.read('a.png', disk.reader('a.png'));
    expect(second).toBe(first);
    expect(second).toEqual(metaOf('a.png'));
    expect(disk.reads).toEqual(['a.png']);
    expect(Object.isFrozen(second) && Object.isFrozen(second!.tags)).toBe(true);
  });

  it('does not keep absent paths', async () => {
    const disk = diskOf();
    const cache = new MetaCache(10);
    expect(await cache.read('nope.png', disk.reader('nope.png'))).toBeUndefined();
    expect(await cache.read('nope.png', disk.reader('nope.png'))).toBeUndefined();
    expect([disk.reads.length, cache.size]).toEqual([2, 0]);
  });

  it('reads a path from disk again after a write of it', async () => {
    const disk = diskOf(metaOf('a.png'));
    const cache = new MetaCache(10);
    await cache.read('a.png', disk.reader('a.png'));
    const v2 = metaOf('a.png', 'b'.repeat(64));
    expect(await cache.write('a.png', async () => disk.files.set('a.png', v2))).toBe(disk.files);
    expect(await cache.read('a.png', disk.reader('a.png'))).toEqual(v2);
    await cache.write('a.png', async () => disk.files.delete('a.png'));
    expect(await cache.read('a.png', disk.reader('a.png'))).toBeUndefined();
    expect(disk.reads).toEqual(['a.png', 'a.png', 'a.png']);
  });

  it('drops the path even when the write fails', async () => {
    const disk = diskOf(metaOf('a.png'));
    const cache = new MetaCache(10);
    await cache.read('a.png', disk.reader('a.png'));
    await expect(cache.write('a.png', async () => Promise.reject(new Error('EIO')))).rejects.toThrow('EIO');
    await cache.read('a.png', disk.reader('a.png'));
    expect(disk.reads).toEqual(['a.png', 'a.png']);
  });

  it('never keeps a read that began before a write and ended after it', async () => {
    const cache = new MetaCache(10);
    const oldRead = deferred<AssetMeta | undefined>();
    const racing = cache.read('a.png', () => oldRead.promise);
    await cache.write('a.png', async () => undefined); // the upload happens while the read is on its way
    oldRead.resolve(metaOf('a.png')); // ...which then returns the version the upload replaced
    expect(await racing).toEqual(metaOf('a.png'));
    const v2 = metaOf('a.png', 'b'.repeat(64));
    expect(await cache.read('a.png', async () => v2)).toEqual(v2);
    expect(cache.size).toBe(1);
  });

  it('never keeps a read that ended while a write was running, of any path', async () => {
    const cache = new MetaCache(10);
    const upload = deferred<void>();
    const writing = cache.write('b.png', () => upload.promise);
    await cache.read('a.png', async () => metaOf('a.png'));
    expect(cache.size).toBe(0);
    upload.resolve();
    await writing;
    await cache.read('a.png', async () => metaOf('a.png'));
    expect(cache.size).toBe(1);
  });

  it('keeps at most maxEntries paths, dropping the least recently used', async () => {
    const disk = diskOf(metaOf('a'), metaOf('b'), metaOf('c'));
    const cache = new MetaCache(2);
    for (const path of ['a', 'b', 'a', 'c', 'a', 'b']) await cache.read(path, disk.reader(path));
    expect(disk.reads).toEqual(['a', 'b', 'c', 'b']);
    expect(cache.size).toBe(2);
  });

  it('keeps nothing with a bound of 0, and refuses a bound that is not a count', async () => {
    const disk = diskOf(metaOf('a'));
    const off = new MetaCache(0);
    await off.read('a', disk.reader('a'));
    await off.read('a', disk.reader('a'));
    expect(disk.reads).toEqual(['a', 'a']);
    for (const bad of [-1, 2.5, Number.POSITIVE_INFINITY]) expect(() => new MetaCache(bad)).toThrow(RangeError);
  });
});
